/* lineedit.c - the input line, through libedit's readline-compatible callback
 * interface (see lineedit.h).
 *
 * libedit draws the prompt and the input itself; what it cannot do is get out of
 * the way when a chat message arrives. So to print above the input we work out
 * where the prompt starts (the cursor's row within the input, from laying out the
 * prompt and the text before the cursor as libedit does), clear from there to the
 * end of the screen, print, and ask libedit to redraw everything from scratch at
 * the cursor, which is then at the start of a fresh line.
 *
 * Two libedit habits shape the code. It leaves the finished line in its buffer
 * while our callback runs and only takes the terminal back (raw mode, a fresh
 * prompt) when the handler is installed again, so the callback re-installs it
 * (GNU readline would not mind either). And rl_point, rl_end and rl_line_buffer
 * still describe the previous line until the first key of the next one.
 */
#include "client/lineedit.h"

#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include <editline/readline.h>

#define SEQ_WAIT_MS 500  /* for the rest of an escape sequence or a UTF-8 character */
#define KEY_WAIT_MS 3000 /* for the next key of a search (Ctrl-R) or a Ctrl-V */
#define ESC 033

static struct {
    int active;      /* between lineedit_start() and lineedit_stop() */
    int last_key;    /* what read_key() last returned */
    int in_callback; /* the finished line's rows are gone; libedit redraws on return */
    int fresh;       /* no key read since the prompt was drawn: rl_point is stale */
    char *prompt;
    lineedit_fn *on_line;
} le;

static void handle_line(char *line);

/* ==== Where things are on the screen ==== */

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* A place on the screen, counted from where the prompt starts. */
struct spot {
    int row, col;
};

/* Move *at past n bytes of UTF-8 the way libedit lays them out: a wide character
 * that does not fit at the end of a row goes to the next one (libedit pads the
 * row), and a full row puts the cursor at the start of the next. So the rows are
 * not the total width divided by the columns. */
static void advance(struct spot *at, const char *s, size_t n, int cols)
{
    mbstate_t st;
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
        w = w > 0 ? w : 0;
        if (at->col + w > cols)
            at->row++, at->col = 0;
        at->col += w;
        if (at->col >= cols)
            at->row++, at->col = 0;
        s += k, n -= k;
    }
}

/* The spot after the prompt and the first n bytes of line. */
static struct spot spot_after(const char *line, size_t n)
{
    struct spot at = {0, 0};
    int cols = term_cols();
    advance(&at, le.prompt, strlen(le.prompt), cols);
    advance(&at, line, n, cols);
    return at;
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
    int typed = !le.fresh && rl_line_buffer && rl_point > 0;
    clear_from_rows_up(spot_after(typed ? rl_line_buffer : "", typed ? (size_t)rl_point : 0).row);
}

/* After Enter the cursor is on the row below the finished input; clear that input
 * too, so the caller's own rendering of the line replaces it. */
static void clear_finished(const char *line)
{
    clear_from_rows_up(spot_after(line, strlen(line)).row + 1);
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

/* ==== Reading keys ====
 *
 * We only call libedit when a key is there, but some keys make it read more
 * inside that one call: Esc waits for the rest of an escape sequence, Ctrl-R
 * for the whole search. Its own read() would block there, and with it the
 * chat. So it reads through read_key(), which gives up after a while. */

/* One byte of input within ms milliseconds: the byte, -1 at the end of input,
 * -2 if none came (or a signal came first: the caller has it to handle). */
static int read_byte(int ms)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    unsigned char b;
    if (poll(&p, 1, ms) <= 0)
        return -2;
    ssize_t n = read(STDIN_FILENO, &b, 1);
    return n == 1 ? b : n == 0 ? -1 : -2;
}

/* No key came: right after an Esc that was Esc alone, so end of input, which
 * makes libedit drop the unfinished sequence; otherwise an Esc, which ends a
 * search and keeps the line it found. (Never two Escs: after the first, libedit
 * would wait for the rest of a sequence again.) */
static int no_key(void)
{
    return le.last_key == ESC ? -1 : ESC;
}

/* libedit's rl_getc_function: one character (libedit takes the value as a wide
 * character, so UTF-8 is decoded here), or -1. */
static int read_key(FILE *in)
{
    char buf[MB_LEN_MAX];
    size_t n = 0;
    int dropped = 0;
    (void)in;
    for (;;) {
        int b = read_byte(n > 0 || dropped || le.last_key == ESC ? SEQ_WAIT_MS : KEY_WAIT_MS);
        if (b < 0)
            return le.last_key = b == -1 ? -1 : no_key();
        buf[n++] = (char)b;
        mbstate_t st;
        wchar_t wc;
        memset(&st, 0, sizeof st);
        size_t k = mbrtowc(&wc, buf, n, &st);
        if (k == (size_t)-2 && n < sizeof buf)
            continue; /* more of the character to come */
        if (k == (size_t)-1 || k == (size_t)-2) {
            n = 0, dropped = 1; /* not a character: dropped, as libedit does */
            continue;
        }
        return le.last_key = (int)wc;
    }
}

/* Tab completes nothing: libedit's default would complete the names of local
 * files into a line that is about to be said in a public room. */
static char *complete_nothing(const char *text, int state)
{
    (void)text, (void)state;
    return NULL;
}

void lineedit_start(const char *prompt, lineedit_fn *on_line)
{
    /* Signals are the caller's: libedit's handlers would re-raise them to the
     * whole process group. */
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_completion_entry_function = complete_nothing;
    rl_getc_function = read_key; /* before the first install: libedit reads it then */
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

void lineedit_suspend(void)
{
    if (!le.active)
        return;
    clear_input();
    fflush(stdout);
    rl_deprep_terminal(); /* the modes we found */
}

void lineedit_resume(void)
{
    if (!le.active)
        return;
    rl_prep_terminal(1); /* from the modes the shell gives back */
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
