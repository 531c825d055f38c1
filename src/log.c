#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
/* The CODE_* fields are the caller's (struct log_site), not this file's: without this define,
 * sd_journal_sendv() is a macro that adds src/log.c's own location. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

static struct {
	int max_priority;
	int journal;
} log_state = { LOG_INFO, 0 };

static int level_to_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR: return LOG_ERR;
	case LOG_LEVEL_WARNING: return LOG_WARNING;
	case LOG_LEVEL_NOTICE: return LOG_NOTICE;
	case LOG_LEVEL_INFO: return LOG_INFO;
	case LOG_LEVEL_DEBUG: return LOG_DEBUG;
	}
	return LOG_INFO;
}

/* sd_journal_send() returns success and drops the message when no journald listens, so it cannot
 * tell us to fall back: decide up front, the way systemd does, by JOURNAL_STREAM naming stderr. */
static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_setup(enum log_level level)
{
	log_state.max_priority = level_to_priority(level);
	log_state.journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	log_state.max_priority = level_to_priority(level);
}

int log_get_level(void)
{
	return log_state.max_priority;
}

static const char *priority_prefix(int priority)
{
	switch (priority) {
	case LOG_ERR: return "error: ";
	case LOG_WARNING: return "warning: ";
	case LOG_NOTICE: return "notice: ";
	case LOG_DEBUG: return "debug: ";
	default: return "";
	}
}

/* Returns what sd_journal_sendv() returns: 0, or a negative errno when journald cannot be
 * reached (with no journald listening at all it returns 0 and the message is lost). */
static int send_journal(const struct log_site *site, int priority, const struct log_fields *f,
			const char *msg)
{
	char fields[7][64 + 16];
	char *message, *path = NULL, *code_file = NULL;
	struct iovec iov[9];
	int n = 0, r;

	if (asprintf(&message, "MESSAGE=%s", msg) < 0)
		return -ENOMEM;
	iov[n++] = (struct iovec){ message, strlen(message) };
	snprintf(fields[0], sizeof(fields[0]), "PRIORITY=%d", priority);
	iov[n++] = (struct iovec){ fields[0], strlen(fields[0]) };
	snprintf(fields[1], sizeof(fields[1]), "SYSLOG_IDENTIFIER=prelockd");
	iov[n++] = (struct iovec){ fields[1], strlen(fields[1]) };
	if (f && f->bytes >= 0) {
		snprintf(fields[2], sizeof(fields[2]), "PRELOCKD_BYTES=%lld", (long long)f->bytes);
		iov[n++] = (struct iovec){ fields[2], strlen(fields[2]) };
	}
	if (f && f->files >= 0) {
		snprintf(fields[3], sizeof(fields[3]), "PRELOCKD_FILES=%lld", (long long)f->files);
		iov[n++] = (struct iovec){ fields[3], strlen(fields[3]) };
	}
	if (f && f->path && asprintf(&path, "PRELOCKD_PATH=%s", f->path) >= 0)
		iov[n++] = (struct iovec){ path, strlen(path) };
	if (site && asprintf(&code_file, "CODE_FILE=%s", site->file) >= 0) {
		iov[n++] = (struct iovec){ code_file, strlen(code_file) };
		snprintf(fields[4], sizeof(fields[4]), "CODE_LINE=%d", site->line);
		iov[n++] = (struct iovec){ fields[4], strlen(fields[4]) };
		snprintf(fields[5], sizeof(fields[5]), "CODE_FUNC=%.64s", site->func);
		iov[n++] = (struct iovec){ fields[5], strlen(fields[5]) };
	}
	r = sd_journal_sendv(iov, n);
	free(code_file);
	free(path);
	free(message);
	return r;
}

/* bare: the message goes to stderr as it is, without "prelockd: " and the priority's word. */
static void emit(const struct log_site *site, int priority, const struct log_fields *fields,
		 const char *msg, bool bare)
{
	if (log_state.journal) {
		if (send_journal(site, priority, fields, msg) >= 0)
			return;
		/* journald's socket is gone but stderr is its stream: a "<N>" prefix there sets the
		 * priority as sd-daemon(3) describes. */
		fprintf(stderr, "<%d>prelockd: %s\n", priority, msg);
		return;
	}
	if (bare)
		fprintf(stderr, "%s\n", msg);
	else
		fprintf(stderr, "prelockd: %s%s\n", priority_prefix(priority), msg);
}

void log_at(const struct log_site *site, int priority, const struct log_fields *fields, int errnum,
	    const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	size_t len;

	if (priority > log_state.max_priority)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = strlen(msg);
	if (errnum)
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(abs(errnum)));
	emit(site, priority, fields, msg, false);
}

void log_line_at(const struct log_site *site, int priority, const char *msg)
{
	if (priority > log_state.max_priority)
		return;
	emit(site, priority, NULL, msg, true);
}
