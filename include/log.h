/* Logging: the journal with structured fields when stderr is connected to it, plain lines on
 * stderr otherwise. The level and sink are the one piece of process-wide state outside the daemon
 * context: every module logs, and threading a logger through pure parsers would buy nothing. */
#pragma once
#include <stdint.h>
#include <syslog.h>

#include "config.h"

void log_setup(enum log_level level);
void log_set_level(enum log_level level);
int log_get_level(void); /* as a syslog priority: LOG_ERR .. LOG_DEBUG */
int log_to_journal(void);

/* Fields (PRELOCKD_PATH, PRELOCKD_BYTES, PRELOCKD_FILES) travel with the message when logging
 * to the journal; path NULL and negative numbers mean "absent". */
struct log_fields {
	const char *path;
	int64_t bytes;
	int64_t files;
};

void log_full(int priority, const struct log_fields *fields, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_full(LOG_ERR, NULL, 0, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, 0, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, NULL, 0, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, NULL, 0, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, NULL, 0, __VA_ARGS__)
/* _errno variants append ": strerror(-r)" (r is a negative errno, as functions return). */
#define log_error_errno(r, ...) log_full(LOG_ERR, NULL, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_full(LOG_WARNING, NULL, (r), __VA_ARGS__)
#define log_debug_errno(r, ...) log_full(LOG_DEBUG, NULL, (r), __VA_ARGS__)

#define log_enabled(prio) ((prio) <= log_get_level())
