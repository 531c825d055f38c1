#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
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

int log_to_journal(void)
{
	return log_state.journal;
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

static void send_journal(int priority, const struct log_fields *f, const char *msg)
{
	char fields[4][64 + 16];
	char *message, *path = NULL;
	struct iovec iov[6];
	int n = 0;

	if (asprintf(&message, "MESSAGE=%s", msg) < 0)
		return;
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
	sd_journal_sendv(iov, n);
	free(path);
	free(message);
}

void log_full(int priority, const struct log_fields *fields, int errnum, const char *fmt, ...)
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
	if (log_state.journal)
		send_journal(priority, fields, msg);
	else
		fprintf(stderr, "prelockd: %s%s\n", priority_prefix(priority), msg);
}
