/* lineedit.h - the line being typed on a terminal: editing, history, and text
 * printed above it.
 *
 * The caller's poll() loop stays in charge: it calls lineedit_feed() whenever
 * stdin is readable, and a finished line comes back through the on_line callback.
 * Text from elsewhere goes through lineedit_print_above(), which clears the input
 * line, prints the text and redraws the prompt and the half-typed input below it.
 * Nothing outside lineedit.c knows which editing library does the work.
 */
#ifndef NATTER_LINEEDIT_H
#define NATTER_LINEEDIT_H

/* Called with a finished line (without its newline; the callee frees it), or with
 * NULL at end of input (Ctrl-D on an empty line). */
typedef void lineedit_fn(char *line);

/* Take over the terminal (stdin and stdout must be one) and show the prompt.
 * setlocale() must have been called for UTF-8 input to edit correctly. */
void lineedit_start(const char *prompt, lineedit_fn *on_line);
/* Read and handle one key press; call when stdin is readable. */
void lineedit_feed(void);
void lineedit_set_prompt(const char *prompt);
/* Print one line of text (no newline) above the input line. */
void lineedit_print_above(const char *text);
/* Before the process stops (SIGTSTP): clear the input line and give the
 * terminal its modes back. After it continues: take it again and redraw. */
void lineedit_suspend(void);
void lineedit_resume(void);
/* Add a line to the history that Up and Down recall. */
void lineedit_remember(const char *line);
/* The terminal changed size (SIGWINCH). */
void lineedit_resize(void);
/* Clear the prompt line and give the terminal back as it was. */
void lineedit_stop(void);

#endif
