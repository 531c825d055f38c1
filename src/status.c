/* What is locked, for people and programs: the status file (JSON, rewritten atomically each
 * pass) and the --dry-run plan. `prelockd --status` reads the file back in statusread.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "status.h"
#include "util.h"

/* Text built in memory, or (f set) written straight to a file: the status file of a thousand
 * files would otherwise take a few hundred KiB of heap, locked for good by mlockall(). */
struct out {
	FILE *f;
	char *s;
	size_t len, cap;
	int err;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	if (o->f) {
		va_start(ap, fmt);
		if (vfprintf(o->f, fmt, ap) < 0)
			o->err = -EIO;
		va_end(ap);
		return;
	}
	while (!o->err) {
		va_start(ap, fmt);
		int n = vsnprintf(o->s ? o->s + o->len : NULL, o->s ? o->cap - o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if (o->s && (size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t ncap = (o->cap + (size_t)n + 1) * 2;
		char *p = realloc(o->s, ncap);
		if (!p) {
			o->err = -ENOMEM;
			return;
		}
		o->s = p;
		o->cap = ncap;
	}
}

/* n bytes as they are: the status file's own work is mostly this and numbers, and printf's
 * format parsing costs more than the copying. */
static void outs(struct out *o, const char *s, size_t n)
{
	if (o->f) {
		if (fwrite(s, 1, n, o->f) != n)
			o->err = -EIO;
		return;
	}
	outf(o, "%.*s", (int)n, s);
}

/* Writes v in decimal at p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Copies s without its NUL at p; returns the end. The line is handed on with its length. */
static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static void out_json_chars(struct out *o, const char *s)
{
	outs(o, "\"", 1);
	while (*s) {
		/* Runs of plain characters at once: this is most of a status pass's own work. */
		size_t n = strcspn(s, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
				      "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f");
		if (n) {
			outs(o, s, n);
			s += n;
			continue;
		}
		unsigned char c = (unsigned char)*s++;
		if (c == '"' || c == '\\')
			outf(o, "\\%c", c);
		else
			outf(o, "\\u%04x", c);
	}
	outs(o, "\"", 1);
}

/* A path, as the value of a "path" member. JSON text is UTF-8, file names are bytes: a name that
 * is not valid UTF-8 is written as escape_path() shows it (%XX for control bytes, '%', '\\' and
 * every byte that is not UTF-8), and the member "path_escaped": true follows, so that a reader
 * can tell it from a name that holds "%" and take the bytes back (README, "Status file"). */
static void out_json_string(struct out *o, const char *s)
{
	if (utf8_valid(s)) {
		out_json_chars(o, s);
		return;
	}
	_cleanup_free_ char *esc = escape_path(s);
	if (!esc) {
		o->err = -ENOMEM;
		return;
	}
	out_json_chars(o, esc);
	outs(o, ", \"path_escaped\": true", 22);
}

static int cmp_slot_bytes(const void *a, const void *b, void *ud)
{
	const struct file_table *t = ud;
	const struct lfile *x = &t->slots[*(const uint32_t *)a], *y = &t->slots[*(const uint32_t *)b];
	uint64_t bx = x->npieces ? x->locked_bytes : x->plan_bytes;
	uint64_t by = y->npieces ? y->locked_bytes : y->plan_bytes;
	if (bx != by)
		return bx > by ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Slots of the files to show, largest first. all: every file seen, else only locked ones. */
static uint32_t *sorted_slots(const struct file_table *t, bool all, uint32_t *n)
{
	uint32_t *v = malloc((t->nslots ? t->nslots : 1) * sizeof(*v)), k = 0;
	if (!v)
		return NULL;
	for (uint32_t s = 0; s < t->nslots; s++) {
		const struct lfile *f = &t->slots[s];
		if (f->in_use && (all || f->npieces))
			v[k++] = s;
	}
	qsort_r(v, k, sizeof(*v), cmp_slot_bytes, (void *)t);
	*n = k;
	return v;
}

/* Processes whose pages `resident` could not read (no access to their pagemap): what they map
 * counts as used, as in `mapped`. */
static uint32_t resident_fallback(const struct status_info *si)
{
	return si->what == WHAT_RESIDENT && si->stats ? si->stats->pagemap_denied : 0;
}

/* The last pass's counters: what it read, and what it skipped and why. */
static void out_pass_stats(struct out *o, const struct pass_stats *st)
{
	outf(o, "\"last_pass\": {\"processes\": %u, \"processes_read\": %u, \"vanished\": %u, "
		"\"denied\": %u, \"unreadable\": %u, \"pagemap_denied\": %u, "
		"\"malformed_maps_lines\": %u, \"mappings\": %u, \"files_opened\": %u, "
		"\"open_failed\": %u, \"lock_failed\": %u},\n",
	     st->procs, st->procs_read, st->procs_vanished, st->procs_denied, st->procs_bad,
	     st->pagemap_denied, st->maps_malformed, st->mappings, st->files_opened, st->open_failed,
	     st->lock_failed);
}

/* Mapped, selected by the path rules, and not locked because the daemon may not open it: a 0711
 * program under the unit's user. Said here, or a root --dry-run (which can read it) would be
 * the only word of it, and a wrong one. */
static bool unreadable(const struct lfile *f)
{
	return f->eligible && f->nprocs && f->reason == REASON_OPEN_FAILED &&
	       (f->open_errno == EACCES || f->open_errno == EPERM);
}

static void out_unreadable(struct out *o, const struct file_table *files)
{
	uint32_t n = 0;
	outf(o, "\"unreadable\": [\n");
	for (uint32_t s = 0; s < files->nslots; s++) {
		const struct lfile *f = &files->slots[s];
		if (!f->in_use || !unreadable(f))
			continue;
		if (n++)
			outs(o, ",\n", 2);
		outs(o, "{\"path\": ", 9);
		out_json_string(o, f->path);
		outf(o, ", \"error\": \"%s\", \"processes\": %u, \"kind\": \"%s\"}",
		     strerror(f->open_errno), f->nprocs, file_kind_to_string(f));
	}
	outf(o, "%s],\n\"unreadable_files\": %u\n", n ? "\n" : "", n);
}

int status_write(const char *path, const struct file_table *files, const struct status_info *si)
{
	struct out o = { 0 };
	uint32_t n;
	char *tmp;

	if (!path || !*path)
		return 0;
	_cleanup_free_ uint32_t *slots = sorted_slots(files, false, &n);
	if (!slots)
		return -ENOMEM;
	/* Not secret, but it lists what other users run: 0644 under the unit's UMask=0077 is 0600. */
	o.f = atomic_fopen(path, &tmp, 0644);
	if (!o.f)
		return -errno;
	outf(&o, "{\n\"version\": 1,\n\"pid\": %d,\n\"pass\": %u,\n\"updated_realtime_usec\": %" PRIu64
		 ",\n\"what\": \"%s\",\n\"interval_usec\": %" PRIu64 ",\n\"files\": %u,\n"
		 "\"locked_bytes\": %" PRIu64 ",\n\"budget_bytes\": %" PRIu64 ",\n\"processes\": %u,\n",
	     (int)si->pid, si->pass, now_usec(CLOCK_REALTIME), lock_what_to_string(si->what),
	     si->interval_usec, si->locked_files, si->locked_bytes, si->budget_bytes, si->processes);
	if (si->stats)
		out_pass_stats(&o, si->stats);
	outf(&o, "\"pressure\": {\"mode\": \"%s\", \"active\": %s, \"passes\": %u},\n",
	     si->pressure_mode ? si->pressure_mode : "none", si->pressure_active ? "true" : "false",
	     si->pressure_passes);
	outf(&o, "\"new_processes\": {\"check_usec\": %" PRIu64 ", \"read\": %u},\n",
	     si->new_check_usec, si->new_checks_read);
	outf(&o, "\"resident_fallback_processes\": %u,\n", resident_fallback(si));
	outf(&o, "\"locked\": [\n");
	for (uint32_t i = 0; i < n; i++) {
		const struct lfile *f = &files->slots[slots[i]];
		char line[192], *e = line;
		outs(&o, "{\"path\": ", 9);
		out_json_string(&o, f->path);
		e = put_u64(put_str(e, ", \"bytes\": "), f->locked_bytes);
		e = put_u64(put_str(e, ", \"size\": "), f->size);
		e = put_u64(put_str(e, ", \"ranges\": "), f->npieces);
		e = put_u64(put_str(e, ", \"processes\": "), f->nprocs);
		e = put_str(put_str(put_str(e, ", \"kind\": \""), file_kind_to_string(f)), "\"");
		e = put_str(e, f->critical || f->always ? ", \"critical\": true}"
							: ", \"critical\": false}");
		e = put_str(e, i + 1 < n ? ",\n" : "\n");
		outs(&o, line, (size_t)(e - line));
	}
	outf(&o, "],\n");
	out_unreadable(&o, files);
	outf(&o, "}\n");
	int r = atomic_fclose(o.f, tmp, path, false, o.err == 0);
	return o.err ? o.err : r;
}

/* --- the --dry-run plan ---------------------------------------------------------------------- */

void dry_run_print(const struct file_table *files, const struct status_info *si, bool json)
{
	uint32_t n;
	char sb[32], lb[32], bb[32];
	_cleanup_free_ uint32_t *slots = sorted_slots(files, true, &n);
	if (!slots)
		return;
	if (json) {
		struct out o = { 0 };
		outf(&o, "{\"budget_bytes\": %" PRIu64 ", \"what\": \"%s\", \"processes\": %u, "
			 "\"resident_fallback_processes\": %u, \"files\": [\n",
		     si->budget_bytes, lock_what_to_string(si->what), si->processes,
		     resident_fallback(si));
		for (uint32_t i = 0; i < n; i++) {
			const struct lfile *f = &files->slots[slots[i]];
			outf(&o, "{\"path\": ");
			out_json_string(&o, f->path);
			outf(&o, ", \"size\": %" PRIu64 ", \"lock_bytes\": %" PRIu64
				 ", \"processes\": %u, \"kind\": \"%s\", \"critical\": %s, "
				 "\"selected\": %s, \"reason\": \"%s\"}%s\n",
			     f->size, f->plan_bytes, f->nprocs, file_kind_to_string(f),
			     f->tier ? "true" : "false",
			     f->plan_bytes ? "true" : "false", file_reason_to_string(f->reason),
			     i + 1 < n ? "," : "");
		}
		outf(&o, "]}\n");
		if (!o.err)
			fwrite(o.s, 1, o.len, stdout);
		free(o.s);
		return;
	}
	uint64_t total = 0;
	uint32_t selected = 0;
	printf("%-10s %12s %12s %6s %-9s  %-22s %s\n", "DECISION", "SIZE", "WOULD LOCK", "PROCS",
	       "KIND", "WHY", "PATH");
	for (uint32_t i = 0; i < n; i++) {
		const struct lfile *f = &files->slots[slots[i]];
		const char *why = file_reason_to_string(f->reason);
		char whybuf[64];
		if (f->plan_bytes) {
			selected++;
			total += f->plan_bytes;
			snprintf(whybuf, sizeof(whybuf), "%s%s",
				 f->always ? "always" : f->critical ? "critical process" : "in use",
				 f->reason == REASON_BUDGET_PARTLY ? ", cannot grow" : "");
			why = whybuf;
		} else if (f->reason == REASON_OPEN_FAILED) {
			snprintf(whybuf, sizeof(whybuf), "cannot open: %s", strerror(f->open_errno));
			why = whybuf;
		}
		/* One line per file, whatever bytes the name holds: control characters as %XX. */
		_cleanup_free_ char *shown = escape_path(f->path);
		printf("%-10s %12s %12s %6u %-9s  %-22s %s\n", f->plan_bytes ? "lock" : "skip",
		       f->opened_once ? format_bytes(sb, sizeof(sb), f->size) : "-",
		       format_bytes(lb, sizeof(lb), f->plan_bytes), f->nprocs, file_kind_to_string(f), why,
		       shown ? shown : f->path);
	}
	printf("\n%u of %u files selected: %s of a %s budget (what = %s), %u processes scanned\n",
	       selected, n, format_bytes(lb, sizeof(lb), total), format_bytes(bb, sizeof(bb), si->budget_bytes),
	       lock_what_to_string(si->what), si->processes);
	if (resident_fallback(si))
		printf("what = resident fell back to mapped for %u processes: no access to their "
		       "/proc/PID/pagemap (it needs CAP_DAC_READ_SEARCH for other users' processes)\n",
		       resident_fallback(si));
}
