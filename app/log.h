/*
 * log.h: the service's structured log, one logfmt line per event on stderr
 * (or any fd):
 *
 *   ts=2026-11-25T14:03:07.123Z level=info event=run.start run=0195... job=nightly
 *
 * Values with spaces, quotes, '=' or control characters are quoted and
 * escaped, so every line parses as logfmt. A line is written with one
 * write(2), so lines from several threads never interleave. Safe from any
 * thread once bt_log_init() has returned (or without it: info to stderr).
 */
#ifndef BATON_APP_LOG_H
#define BATON_APP_LOG_H

#include <stdbool.h>

typedef enum bt_log_level {
    BT_LOG_DEBUG,
    BT_LOG_INFO,
    BT_LOG_WARN,
    BT_LOG_ERROR,
    BT_LOG_OFF, /* as a minimum level: log nothing */
} bt_log_level_t;

/* Sets the minimum level and the fd lines go to. Call before other threads
 * log (it is a plain store). */
void bt_log_init(bt_log_level_t min, int fd);

/* "debug", "info", "warn", "error" -> level; -1 for anything else. */
int bt_log_level_parse(const char *name);
const char *bt_log_level_name(bt_log_level_t level);

bool bt_log_enabled(bt_log_level_t level);

/* Logs one event: key/value string pairs, terminated by NULL. A NULL value
 * prints as an empty string. Lines longer than 4 KiB are truncated, never
 * split. */
void bt_log(bt_log_level_t level, const char *event, ...) __attribute__((sentinel));

#endif
