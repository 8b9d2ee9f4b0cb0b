/* lineedit.c - the input line, through libedit's readline-compatible callback
 * interface (see lineedit.h).
 *
 * libedit draws the prompt and the input itself; what it cannot do is get out of
 * the way when a chat message arrives. So to print above the input we work out
 * where the prompt starts (the cursor's row within the input, from the display
 * width of the prompt and of the text before the cursor), clear from there to the
 * end of the screen, print, and ask libedit to redraw everything from scratch at
 * the cursor, which is then at the start of a fresh line.
 *
 * Two libedit habits shape the code. It leaves the finished line in its buffer
 * while our callback runs and only takes the terminal back (raw mode, a fresh
 * prompt) when the handler is installed again, so the callback re-installs it
 * (GNU readline would not mind either). And rl_point, rl_end and rl_line_buffer
 * still describe the previous line until the first key of the next one.
 */
#include "lineedit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include <editline/readline.h>

static struct {
    int active;      /* between lineedit_start() and lineedit_stop() */
    int in_callback; /* the finished line's rows are gone; libedit redraws on return */
    int fresh;       /* no key read since the prompt was drawn: rl_point is stale */
    char *prompt;
    lineedit_fn *on_line;
} le;

static void handle_line(char *line);

/* ==== Where things are on the screen ==== */

/* Columns that n bytes of UTF-8 take on the terminal. */
static int display_width(const char *s, size_t n)
{
    mbstate_t st;
    int width = 0;
    memset(&st, 0, sizeof st);
    while (n > 0) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, s, n, &st);
        if (k == (size_t)-1 || k == (size_t)-2) { /* not UTF-8: libedit shows it as one cell */
            memset(&st, 0, sizeof st);
            k = 1, wc = L'?';
        } else if (k == 0) {
            break;
        }
        int w = wcwidth(wc);
        width += w > 0 ? w : 0;
        s += k, n -= k;
    }
    return width;
}

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Move the cursor up `rows` rows to column 0 and clear to the end of the screen. */
static void clear_from_rows_up(int rows)
{
    fputs("\r", stdout);
    if (rows > 0)
        printf("\033[%dA", rows);
    fputs("\033[J", stdout);
}

/* The cursor sits in the input; clear the prompt and input, leaving the cursor
 * where the prompt started. */
static void clear_input(void)
{
    int before = display_width(le.prompt, strlen(le.prompt));
    if (!le.fresh && rl_line_buffer && rl_point > 0)
        before += display_width(rl_line_buffer, (size_t)rl_point);
    clear_from_rows_up(before / term_cols());
}

/* After Enter the cursor is on the row below the finished input; clear that input
 * too, so the caller's own rendering of the line replaces it. */
static void clear_finished(const char *line)
{
    int width = display_width(le.prompt, strlen(le.prompt)) + display_width(line, strlen(line));
    clear_from_rows_up(width / term_cols() + 1);
}

static void redraw(void)
{
    fflush(stdout);
    rl_forced_update_display();
    fflush(stdout);
}

/* ==== The interface ==== */

static void install(void)
{
    rl_callback_handler_install(le.prompt, handle_line);
    le.fresh = 1;
}

void lineedit_start(const char *prompt, lineedit_fn *on_line)
{
    /* Signals are the caller's: libedit's handlers would re-raise them to the
     * whole process group. */
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    free(le.prompt);
    le.prompt = strdup(prompt ? prompt : "");
    le.on_line = on_line;
    le.active = 1;
    install();
    fflush(stdout);
}

static void handle_line(char *line)
{
    if (line)
        clear_finished(line);
    else
        clear_input(); /* Ctrl-D: the cursor is still on the prompt line */
    fflush(stdout);
    le.in_callback = 1;
    le.on_line(line);
    le.in_callback = 0;
    if (le.active)
        install(); /* raw mode again and a fresh prompt */
    fflush(stdout);
}

void lineedit_feed(void)
{
    le.fresh = 0;
    rl_callback_read_char();
}

void lineedit_set_prompt(const char *prompt)
{
    if (le.prompt && strcmp(le.prompt, prompt) == 0)
        return;
    int redraw_now = le.active && !le.in_callback;
    if (redraw_now)
        clear_input();
    free(le.prompt);
    le.prompt = strdup(prompt);
    if (!le.active)
        return;
    rl_set_prompt(le.prompt);
    if (redraw_now)
        redraw();
}

void lineedit_print_above(const char *text)
{
    if (!le.active || le.in_callback) {
        /* The cursor is at the start of an empty line. */
        fputs(text, stdout);
        fputs(le.active ? "\r\n" : "\n", stdout);
        fflush(stdout);
        return;
    }
    clear_input();
    fputs(text, stdout);
    fputs("\r\n", stdout); /* "\r" too: the terminal may be in raw mode */
    redraw();
}

void lineedit_remember(const char *line)
{
    add_history(line);
}

void lineedit_resize(void)
{
    if (le.active)
        rl_resize_terminal();
}

void lineedit_stop(void)
{
    if (!le.active)
        return;
    if (!le.in_callback)
        clear_input();
    fflush(stdout);
    le.active = 0;
    rl_callback_handler_remove(); /* back to the terminal modes we found */
    free(le.prompt);
    le.prompt = NULL;
}
