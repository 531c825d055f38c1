/* `prelockd --status`: reads the status file back with json-c, a parser kept by others and
 * fuzzed by them, rather than one of our own. The file is the daemon's, but it is read by an
 * administrator's command: whatever is in it must not make that command misbehave. */
#include "statusread.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <string.h>

#include "util.h"

/* A status file lists every locked file once, a few hundred bytes each. */
#define STATUS_MAX_BYTES (64u << 20)
/* Files shown in the table; --status --json has them all. */
#define STATUS_SHOWN 20

static bool get_u64(struct json_object *obj, const char *key, uint64_t *v)
{
	struct json_object *x;
	if (!json_object_object_get_ex(obj, key, &x) || !json_object_is_type(x, json_type_int))
		return false;
	int64_t i = json_object_get_int64(x);
	/* json-c keeps integers above INT64_MAX as unsigned; get_uint64 returns those too. */
	*v = i < 0 ? 0 : json_object_get_uint64(x);
	return true;
}

/* The path of one entry, as bytes: NULL when it is missing, holds a NUL, or is marked escaped
 * and does not unescape. Returns malloc'd. */
static char *entry_path(struct json_object *e)
{
	struct json_object *p, *esc;
	if (!json_object_object_get_ex(e, "path", &p) || !json_object_is_type(p, json_type_string))
		return NULL;
	int n = json_object_get_string_len(p);
	const char *s = json_object_get_string(p);
	if (n <= 0 || memchr(s, '\0', (size_t)n))
		return NULL;
	char *path = strndup(s, (size_t)n);
	if (path && json_object_object_get_ex(e, "path_escaped", &esc) &&
	    json_object_get_boolean(esc) && unescape_path(path) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

static void print_entry(FILE *out, struct json_object *e)
{
	uint64_t bytes = 0, size = 0, procs = 0;
	char tb[32], sb[32];
	if (!json_object_is_type(e, json_type_object) || !get_u64(e, "bytes", &bytes))
		return;
	get_u64(e, "size", &size);
	get_u64(e, "processes", &procs);
	struct json_object *k;
	const char *kind = json_object_object_get_ex(e, "kind", &k) && json_object_is_type(k, json_type_string)
				   ? json_object_get_string(k)
				   : "-";
	_cleanup_free_ char *path = entry_path(e);
	/* One line whatever the name holds, and valid UTF-8: escaped as in --dry-run. */
	_cleanup_free_ char *shown = path ? escape_path(path) : NULL;
	_cleanup_free_ char *kind_shown = escape_path(kind);
	fprintf(out, "%12s %12s %6" PRIu64 " %-9s  %s\n", format_bytes(tb, sizeof(tb), bytes),
		format_bytes(sb, sizeof(sb), size), procs, kind_shown ? kind_shown : "?",
		shown ? shown : "?");
}

/* Files the daemon could not open, with why: "  PATH (ERROR)". */
static void print_unreadable(FILE *out, struct json_object *top)
{
	struct json_object *arr, *err;
	uint64_t count = 0;
	if (!get_u64(top, "unreadable_files", &count) || !count ||
	    !json_object_object_get_ex(top, "unreadable", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return;
	size_t n = json_object_array_length(arr), i;
	fprintf(out, "\nnot locked, the daemon's user may not open them: %" PRIu64 " files\n", count);
	for (i = 0; i < n && i < STATUS_SHOWN; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_object))
			continue;
		_cleanup_free_ char *path = entry_path(e);
		_cleanup_free_ char *shown = path ? escape_path(path) : NULL;
		const char *why = json_object_object_get_ex(e, "error", &err) &&
					  json_object_is_type(err, json_type_string)
				  ? json_object_get_string(err)
				  : "?";
		_cleanup_free_ char *why_shown = escape_path(why);
		fprintf(out, "  %s (%s)\n", shown ? shown : "?", why_shown ? why_shown : "?");
	}
	if (n > i)
		fprintf(out, "  ... and %zu more (see --status --json)\n", n - i);
}

int status_print_text(const char *text, size_t len, FILE *out)
{
	uint64_t files = 0, bytes = 0, budget = 0, pass = 0, pid = 0;
	char tb[32], bb[32];
	struct json_object *top = NULL, *locked;
	int r = -EBADMSG;

	if (len > INT_MAX)
		return -EBADMSG;
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	top = json_tokener_parse_ex(tok, text, (int)len);
	/* The whole text is one value: nothing cut short, nothing after it but white space. */
	bool whole = top && json_tokener_get_error(tok) == json_tokener_success;
	for (size_t i = whole ? json_tokener_get_parse_end(tok) : len; i < len; i++)
		if (!strchr(" \t\r\n", text[i]) || !text[i])
			whole = false;
	json_tokener_free(tok);
	if (!whole || !json_object_is_type(top, json_type_object) ||
	    !get_u64(top, "locked_bytes", &bytes) || !get_u64(top, "files", &files))
		goto out;
	get_u64(top, "budget_bytes", &budget);
	get_u64(top, "pass", &pass);
	get_u64(top, "pid", &pid);
	fprintf(out, "prelockd (pid %" PRIu64 ", pass %" PRIu64 "): %" PRIu64 " files, %s locked of %s "
		     "budget\n",
		pid, pass, files, format_bytes(tb, sizeof(tb), bytes), format_bytes(bb, sizeof(bb), budget));
	uint64_t fallback = 0;
	struct json_object *pr, *mode, *active;
	if (get_u64(top, "resident_fallback_processes", &fallback) && fallback)
		fprintf(out, "what = resident fell back to mapped for %" PRIu64 " processes: no access "
			     "to their /proc/PID/pagemap\n", fallback);
	if (json_object_object_get_ex(top, "pressure", &pr) &&
	    json_object_object_get_ex(pr, "mode", &mode) &&
	    json_object_is_type(mode, json_type_string) &&
	    json_object_object_get_ex(pr, "active", &active)) {
		uint64_t passes = 0;
		get_u64(pr, "passes", &passes);
		_cleanup_free_ char *m = escape_path(json_object_get_string(mode));
		fprintf(out, "memory pressure: %s (%s), %" PRIu64 " pressure passes\n",
			json_object_get_boolean(active) ? "now" : "none now", m ? m : "?", passes);
	}
	struct json_object *np;
	uint64_t every = 0, nread = 0;
	if (json_object_object_get_ex(top, "new_processes", &np) && get_u64(np, "check_usec", &every)) {
		get_u64(np, "read", &nread);
		if (every)
			fprintf(out, "new processes: looked for every %" PRIu64 " ms, %" PRIu64
				     " read between passes\n", every / 1000, nread);
		else
			fprintf(out, "new processes: not looked for between passes\n");
	}
	fputc('\n', out);
	fprintf(out, "%12s %12s %6s %-9s  %s\n", "LOCKED", "SIZE", "PROCS", "KIND", "PATH");
	size_t shown = 0, n = 0;
	if (json_object_object_get_ex(top, "locked", &locked) &&
	    json_object_is_type(locked, json_type_array))
		n = json_object_array_length(locked);
	for (; shown < n && shown < STATUS_SHOWN; shown++)
		print_entry(out, json_object_array_get_idx(locked, shown));
	if (files > shown)
		fprintf(out, "... and %" PRIu64 " more (see --status --json)\n", files - shown);
	print_unreadable(out, top);
	r = 0;
out:
	json_object_put(top);
	return r;
}

int status_print(const char *status_file, bool json)
{
	struct buf b = { 0 };

	int r = buf_read_regular(&b, status_file, STATUS_MAX_BYTES);
	if (r == -EACCES || r == -EPERM) {
		/* The file names what other users run: the daemon writes it 0600. */
		fprintf(stderr, "prelockd: cannot read %s: %s: it is readable by root only, run "
				"prelockd --status as root\n", status_file, strerror(-r));
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "prelockd: cannot read %s: %s%s\n", status_file,
			r == -EBADFD ? "not a regular file" : strerror(-r),
			r == -ENOENT ? " (is the daemon running?)" : "");
		buf_free(&b);
		return r;
	}
	if (json)
		fwrite(b.data, 1, b.len, stdout);
	else if ((r = status_print_text(b.data, b.len, stdout)) == -EBADMSG)
		fprintf(stderr, "prelockd: %s: not a prelockd status file\n", status_file);
	buf_free(&b);
	return r;
}
