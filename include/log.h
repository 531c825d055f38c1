/* Logging: the journal with structured fields when stderr is connected to it, plain lines on
 * stderr otherwise. The level and sink are the one piece of process-wide state outside the daemon
 * context: every module logs, and threading a logger through pure parsers would buy nothing. */
#pragma once
#include <stdint.h>
#include <syslog.h>

/* The levels of the config's log_level key. */
enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_NOTICE, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Chooses the sink (the journal when JOURNAL_STREAM names stderr) and the level. Called first
 * thing, before the config is read, so that errors about the config reach the journal at err
 * priority too; log_set_level() then applies the config's level. */
void log_setup(enum log_level level);
void log_set_level(enum log_level level);
int log_get_level(void); /* as a syslog priority: LOG_ERR .. LOG_DEBUG */

/* Fields (PRELOCKD_PATH, PRELOCKD_BYTES, PRELOCKD_FILES) travel with the message when logging
 * to the journal; path NULL and negative numbers mean "absent". */
struct log_fields {
	const char *path;
	int64_t bytes;
	int64_t files;
};

/* Where a message comes from: the journal records it as CODE_FILE, CODE_LINE and CODE_FUNC, so
 * that an entry points at its caller rather than at this module. */
struct log_site {
	const char *file;
	int line;
	const char *func;
};
#define LOG_SITE (&(const struct log_site){ __FILE__, __LINE__, __func__ })

void log_at(const struct log_site *site, int priority, const struct log_fields *fields, int errnum,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A message already formatted by its source: on stderr exactly as given, without "prelockd: "
 * (config errors read "FILE:LINE: message", as a compiler's do); in the journal at priority. */
void log_line_at(const struct log_site *site, int priority, const char *msg);

#define log_full(priority, fields, errnum, ...) \
	log_at(LOG_SITE, (priority), (fields), (errnum), __VA_ARGS__)
#define log_line(priority, msg) log_line_at(LOG_SITE, (priority), (msg))

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
