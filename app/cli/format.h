/*
 * format.h: the CLI's human output: aligned tables, relative and absolute
 * times, durations, progress text and bars. Internal to app/cli; pure
 * functions of their arguments (the clock is passed in).
 */
#ifndef BATON_APP_CLI_FORMAT_H
#define BATON_APP_CLI_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_TABLE_MAX_COLS 8

typedef struct cli_table cli_table_t;

/* A table of ncols (1..CLI_TABLE_MAX_COLS) columns with these headers
 * (copied). Returns NULL when out of memory. */
cli_table_t *cli_table_create(size_t ncols, const char *const *headers);

/* cli_table_destroy(NULL) is a no-op. */
void cli_table_destroy(cli_table_t *t);

/* Appends a row of ncols cells; does not take ownership of them, copies
 * them (NULL prints as "-"; control characters as '?'). Returns 0, or -1
 * when out of memory. */
int cli_table_add(cli_table_t *t, const char *const *cells);

size_t cli_table_rows(const cli_table_t *t);

/* Prints the header and the rows, each column padded to its widest cell
 * (counted in UTF-8 characters) and separated by two spaces. */
void cli_table_print(const cli_table_t *t, FILE *f);

/* Copies s (NULL = "-") into buf, truncated to cap, with control
 * characters (C0 and DEL, including ESC) replaced by '?', so text from the
 * server cannot drive the terminal. Returns buf. */
const char *cli_clean(char *buf, size_t cap, const char *s);

/* Parses an RFC 3339 time ("2026-11-25T14:03:07.123Z", any fraction, or a
 * +hh:mm offset) into milliseconds since the epoch. false if malformed. */
bool cli_time_parse(const char *s, long long *ms /* OUT */);

/* "now", "42s ago", "3m ago", "5h ago", "12d ago"; "in 3m" for the future
 * (clock skew). */
void cli_fmt_ago(char *buf, size_t cap, long long delta_ms);

/* "850ms", "42s", "3m07s", "2h05m", "3d04h". */
void cli_fmt_duration(char *buf, size_t cap, long long ms);

/* "3/10", "3/?" (total unknown: -1), "-" when both are 0 and total unknown. */
void cli_fmt_progress(char *buf, size_t cap, long long done, long long total);

/* "[#########...........]" of width cells inside the brackets; with an
 * unknown total a moving marker positioned by tick. */
void cli_fmt_bar(char *buf, size_t cap, long long done, long long total, int width, unsigned tick);

#endif
