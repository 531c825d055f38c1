/* The config file: one table of {section, key, type, field} drives parsing, defaults, and printing.
 *
 * inih parses the INI syntax. What it cannot do for us, as Debian builds it, is done by a thin
 * layer around it: a reader that hands inih one line at a time (so that the handler knows the
 * line it is called for) and refuses a line longer than inih's buffer (whose tail inih would
 * parse as a line of its own); for each line that inih called no handler for, inih is asked what
 * that line is on its own, since it returns only its first syntax error and calls no handler for
 * a section line; and the handler, which checks names and values. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ini.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regex_cost.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MIN (60 * USEC_PER_SEC)
#define USEC_PER_HOUR (60 * USEC_PER_MIN)
#define MIB (UINT64_C(1) << 20)

/* TASK_COMM_LEN is 16 with the NUL: /proc/PID/comm never holds a longer name. */
#define COMM_MAX 15
/* Config files are small; a cap keeps "-c /dev/zero" from eating all memory. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* What fits in inih's line buffer (INI_MAX_LINE bytes with the NUL) with its '\n': we hand every
 * line over with one, so that no inih version reads on to find the rest of a line. */
#define LINE_MAX_CONTENT (INI_MAX_LINE - 2)
/* Longer names are never close to a real one, and the distance rows stay on the stack. */
#define EDIT_NAME_MAX 64
#define SUGGEST_DISTANCE 2
/* A double holds every integer up to 2^53 exactly, so mantissa / 10^k is correctly rounded. */
#define PERCENT_MANTISSA_MAX (UINT64_C(1) << 53)
#define PERCENT_DECIMALS_MAX 15

struct parse_ctx;
struct config_item;

struct config_type {
	const char *noun; /* in "invalid NOUN 'VALUE'" */
	/* Stores one value (one item, for lists) in field; reports its own errors. */
	int (*parse)(struct parse_ctx *ctx, const struct config_item *it, const char *value,
		     void *field);
	void (*print)(FILE *f, const struct config_item *it, const void *field);
	void (*release)(void *field); /* frees and zeroes the field; NULL for plain values */
	bool list;
};

struct config_item {
	const char *section;
	const char *key;
	const struct config_type *type;
	size_t offset;
	const char *def;      /* default of allocated fields, parsed like a config value */
	const char *expected; /* what a valid value looks like */
	const char *range;    /* why a value is out of range, when the item has limits */
	uint64_t min, max;    /* for sizes and numbers; max 0 = none */
};

static void release_string(void *field);
static void release_strv(void *field);
static void release_regexes(void *field);
static void release_owners(void *field);
static int parse_duration_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_path_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_log_level_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_regex_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_what_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_size_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_percent_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_uint_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_abs_path_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_bool_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_comm_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_owner_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static int parse_fstype_item(struct parse_ctx *, const struct config_item *, const char *, void *);
static void print_duration(FILE *f, const struct config_item *it, const void *field);
static void print_string(FILE *f, const struct config_item *it, const void *field);
static void print_log_level(FILE *f, const struct config_item *it, const void *field);
static void print_regexes(FILE *f, const struct config_item *it, const void *field);
static void print_what(FILE *f, const struct config_item *it, const void *field);
static void print_size(FILE *f, const struct config_item *it, const void *field);
static void print_percent(FILE *f, const struct config_item *it, const void *field);
static void print_uint(FILE *f, const struct config_item *it, const void *field);
static void print_strv(FILE *f, const struct config_item *it, const void *field);
static void print_bool(FILE *f, const struct config_item *it, const void *field);
static void print_owners(FILE *f, const struct config_item *it, const void *field);

#define TYPE(n, p, d, ...) { .noun = n, .parse = p, .print = d, __VA_ARGS__ }
static const struct config_type type_duration = TYPE("duration", parse_duration_item, print_duration);
static const struct config_type type_path = TYPE("path", parse_path_item, print_string,
						 .release = release_string);
static const struct config_type type_log_level = TYPE("log level", parse_log_level_item,
						      print_log_level);
static const struct config_type type_regexes = TYPE("regular expression", parse_regex_item,
						    print_regexes, .release = release_regexes,
						    .list = true);
static const struct config_type type_what = TYPE("value", parse_what_item, print_what);
static const struct config_type type_size = TYPE("size", parse_size_item, print_size);
static const struct config_type type_percent = TYPE("percentage", parse_percent_item, print_percent);
static const struct config_type type_uint = TYPE("number", parse_uint_item, print_uint);
static const struct config_type type_paths = TYPE("path", parse_abs_path_item, print_strv,
						  .release = release_strv, .list = true);
static const struct config_type type_bool = TYPE("boolean", parse_bool_item, print_bool);
static const struct config_type type_comms = TYPE("process name", parse_comm_item, print_strv,
						  .release = release_strv, .list = true);
static const struct config_type type_owners = TYPE("user", parse_owner_item, print_owners,
						   .release = release_owners, .list = true);
static const struct config_type type_fstypes = TYPE("filesystem type", parse_fstype_item,
						    print_strv, .release = release_strv, .list = true);

#define SIZE_EXPECTED "a number with optional K, M, G or T suffix"
#define FIELD(name) offsetof(struct config, name)
#define ITEM(s, k, t, f, ...) { .section = s, .key = k, .type = t, .offset = FIELD(f), __VA_ARGS__ }

/* Table order is print order. Plain defaults are in config_defaults below; allocated ones in .def. */
static const struct config_item items[] = {
	ITEM("daemon", "interval", &type_duration, interval_usec,
	     .expected = "a whole number with unit us, ms, s, sec, min or h, or no unit for seconds"),
	ITEM("daemon", "new_process_check", &type_duration, new_process_check_usec,
	     .expected = "a whole number with unit us, ms, s, sec, min or h, or no unit for seconds"),
	ITEM("daemon", "state_file", &type_path, state_file, .def = "/var/lib/prelockd/state",
	     .expected = "an absolute path of a file, or nothing to disable it"),
	ITEM("daemon", "status_file", &type_path, status_file, .def = "/run/prelockd/status",
	     .expected = "an absolute path of a file, or nothing to disable it"),
	ITEM("daemon", "log_level", &type_log_level, log_level,
	     .expected = "error, warning, notice, info or debug"),
	ITEM("lock", "include", &type_regexes, include, .def = "^/(usr|bin|sbin|lib[^/]*|opt)/"),
	ITEM("lock", "exclude", &type_regexes, exclude),
	ITEM("lock", "what", &type_what, what, .expected = "whole, mapped or resident"),
	ITEM("lock", "read_only_data", &type_bool, read_only_data,
	     .expected = "yes/no, true/false, on/off or 1/0"),
	ITEM("lock", "max_file_size", &type_size, max_file_size_bytes, .expected = SIZE_EXPECTED,
	     .range = "must be greater than 0", .min = 1),
	ITEM("lock", "max_total", &type_size, max_total_bytes, .expected = SIZE_EXPECTED),
	ITEM("lock", "max_total_percent", &type_percent, max_total_percent,
	     .expected = "a number from 0 to 100, optionally with decimals and a trailing '%'",
	     .range = "must be from 0 to 100"),
	ITEM("lock", "keep", &type_uint, keep_scans, .expected = "a whole number of scans",
	     .range = "must be at most 1000000", .max = 1000000),
	ITEM("lock", "always", &type_paths, always, .expected = "an absolute path of a file"),
	ITEM("lock", "owners", &type_owners, owners,
	     .expected = "a user name or a numeric user ID",
	     .range = "user IDs are below 4294967295"),
	ITEM("lock", "allow_blocking_filesystems", &type_fstypes, allow_blocking_filesystems,
	     .expected = "a filesystem type as in /proc/self/mountinfo, such as nfs4 or fuse.sshfs"),
	ITEM("processes", "only_critical", &type_bool, only_critical,
	     .expected = "yes/no, true/false, on/off or 1/0"),
	ITEM("processes", "critical_names", &type_comms, critical_names,
	     .expected = "a name as in /proc/PID/comm, 1 to 15 bytes"),
	ITEM("processes", "critical_cgroups", &type_regexes, critical_cgroups),
};

static const struct config config_defaults = {
	.interval_usec = 60 * USEC_PER_SEC,
	.new_process_check_usec = USEC_PER_SEC,
	.log_level = LOG_LEVEL_INFO,
	.what = WHAT_RESIDENT,
	.read_only_data = true,
	.max_file_size_bytes = 256 * MIB,
	.max_total_bytes = 512 * MIB,
	.max_total_percent = 5,
	.keep_scans = 3,
	.only_critical = false,
};

static const char *const log_level_words[] = {
	[LOG_LEVEL_ERROR] = "error",   [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info",     [LOG_LEVEL_DEBUG] = "debug",
};
static const char *const what_words[] = {
	[WHAT_WHOLE] = "whole", [WHAT_MAPPED] = "mapped", [WHAT_RESIDENT] = "resident"
};
/* Even index = false, odd = true. */
static const char *const bool_words[] = { "no", "yes", "false", "true", "0", "1", "off", "on" };

struct parse_ctx {
	const char *name; /* file name for messages */
	const char *buf;
	size_t len, pos;
	unsigned line;
	const char *text; /* the current line in buf, without its '\n'; NULL once it is checked */
	size_t text_len;
	const char *inih_line; /* inih's line buffer, as given to the reader */
	size_t inih_size;
	bool rejected;  /* the reader refused the current line (too long, NUL byte) */
	bool handled;   /* inih called the handler for the current line */
	bool drop_cont; /* the line indented lines continue was refused: skip them too */
	unsigned set_line[ELEMENTSOF(items)]; /* where each key was first set; 0 = not in the file */
	unsigned errors;
	bool oom;
	struct config *cfg;
	config_error_fn err;
	void *userdata;
};

/* ---- error reporting ---- */

__attribute__((format(printf, 3, 0))) static void vreport_at(struct parse_ctx *ctx, unsigned line,
							      const char *fmt, va_list ap)
{
	char *msg = NULL, *full = NULL;

	ctx->errors++;
	if (!ctx->err)
		return;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (!msg || asprintf(&full, "%s:%u: %s", ctx->name, line, msg) < 0)
		full = NULL;
	ctx->err(ctx->userdata, full ? full : "out of memory while formatting a config error");
	free(full);
	free(msg);
}

__attribute__((format(printf, 3, 4))) static void report_at(struct parse_ctx *ctx, unsigned line,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(ctx, line, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void report(struct parse_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(ctx, ctx->line, fmt, ap);
	va_end(ap);
}

static int report_oom(struct parse_ctx *ctx)
{
	ctx->oom = true;
	report(ctx, "out of memory");
	return -ENOMEM;
}

static int bad_value(struct parse_ctx *ctx, const struct config_item *it, const char *value, int r)
{
	if (r == -ENOMEM)
		return report_oom(ctx);
	if (r == -ERANGE)
		report(ctx, "%s: %s '%s' is out of range (%s)", it->key, it->type->noun, value,
		       it->range ? it->range : "too large");
	else
		report(ctx, "%s: invalid %s '%s' (expected %s)", it->key, it->type->noun, value,
		       it->expected);
	return r;
}

/* ---- small string helpers; isspace() as inih uses it, so we agree on what is blank ---- */

static const char *skip_space(const char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* Compares s, without surrounding whitespace, case-insensitively with each word. */
static int lookup_word(const char *const *words, size_t n, const char *s)
{
	const char *start = skip_space(s);
	size_t len = strlen(start);

	while (len > 0 && isspace((unsigned char)start[len - 1]))
		len--;
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == len && strncasecmp(start, words[i], len) == 0)
			return (int)i;
	return -EINVAL;
}

/* Levenshtein distance, ignoring case; SIZE_MAX for names too long to be a typo of ours. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[EDIT_NAME_MAX + 1];

	if (la > EDIT_NAME_MAX || lb > EDIT_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			size_t best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* ---- value parsers ---- */

/* At least one decimal digit; *overflow is set instead of failing, so that garbage after a huge
 * number is reported as garbage. */
static int parse_digits(const char **s, uint64_t *n, bool *overflow)
{
	const char *p = *s;

	*n = 0;
	*overflow = false;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (*n > (UINT64_MAX - d) / 10)
			*overflow = true;
		else
			*n = *n * 10 + d;
	}
	*s = p;
	return 0;
}

static int multiply(uint64_t n, uint64_t unit, bool overflow, uint64_t *out)
{
	if (overflow || (unit != 0 && n > UINT64_MAX / unit))
		return -ERANGE;
	*out = n * unit;
	return 0;
}

int parse_size(const char *s, uint64_t *bytes)
{
	static const char prefixes[] = "KMGT";
	const char *p = skip_space(s), *prefix;
	uint64_t n, unit = 1;
	bool overflow;

	if (parse_digits(&p, &n, &overflow) < 0)
		return -EINVAL;
	p = skip_space(p);
	if (*p && (prefix = strchr(prefixes, toupper((unsigned char)*p)))) {
		unit <<= 10 * (prefix - prefixes + 1);
		p++;
		if (*p == 'i' && p[1] == 'B')
			p += 2;
		else if (*p == 'B')
			p++;
	} else if (*p == 'B') {
		p++;
	}
	if (*skip_space(p))
		return -EINVAL;
	return multiply(n, unit, overflow, bytes);
}

int parse_duration(const char *s, uint64_t *usec)
{
	/* "m" would be minutes to some and milliseconds to others: not accepted. */
	static const struct {
		const char *name;
		uint64_t usec;
	} units[] = {
		{ "us", 1 },		  { "ms", USEC_PER_MSEC }, { "s", USEC_PER_SEC },
		{ "sec", USEC_PER_SEC }, { "min", USEC_PER_MIN }, { "h", USEC_PER_HOUR },
	};
	const char *p = skip_space(s), *unit;
	uint64_t n;
	bool overflow;
	size_t len;

	if (parse_digits(&p, &n, &overflow) < 0)
		return -EINVAL;
	unit = skip_space(p);
	for (len = 0; isalpha((unsigned char)unit[len]); len++)
		;
	if (*skip_space(unit + len))
		return -EINVAL;
	if (len == 0)
		return multiply(n, USEC_PER_SEC, overflow, usec);
	for (size_t i = 0; i < ELEMENTSOF(units); i++)
		if (strlen(units[i].name) == len && strncmp(unit, units[i].name, len) == 0)
			return multiply(n, units[i].usec, overflow, usec);
	return -EINVAL;
}

int parse_bool(const char *s, bool *b)
{
	int i = lookup_word(bool_words, ELEMENTSOF(bool_words), s);

	if (i < 0)
		return i;
	*b = i % 2;
	return 0;
}

static double pow10_exact(unsigned k)
{
	double p = 1;

	while (k--)
		p *= 10; /* exact up to 1e22 */
	return p;
}

/* Decimal digits with an optional '.', then an optional '%'. Parsed by hand, not with strtod(),
 * which would take "nan", "1e2" and hex, and follows the locale. */
static int parse_percent(const char *s, double *pct)
{
	const char *p = skip_space(s);
	uint64_t mantissa = 0;
	unsigned decimals = 0;
	bool dot = false, digits = false;

	for (;; p++) {
		if (isdigit((unsigned char)*p)) {
			mantissa = mantissa * 10 + (unsigned)(*p - '0');
			if (mantissa > PERCENT_MANTISSA_MAX)
				return -EINVAL;
			decimals += dot;
			digits = true;
		} else if (*p == '.' && !dot) {
			dot = true;
		} else {
			break;
		}
	}
	p = skip_space(p);
	if (*p == '%')
		p = skip_space(p + 1);
	if (!digits || *p || decimals > PERCENT_DECIMALS_MAX)
		return -EINVAL;
	*pct = (double)mantissa / pow10_exact(decimals);
	return *pct > 100 ? -ERANGE : 0;
}

static bool is_file_path(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[0] == '/' && s[n - 1] != '/';
}

/* ---- parsers of table items ---- */

static int parse_duration_item(struct parse_ctx *ctx, const struct config_item *it,
			       const char *value, void *field)
{
	int r = parse_duration(value, field);

	return r < 0 ? bad_value(ctx, it, value, r) : 0;
}

static bool in_range(const struct config_item *it, uint64_t n)
{
	return n >= it->min && (it->max == 0 || n <= it->max);
}

static int parse_size_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			   void *field)
{
	uint64_t bytes;
	int r = parse_size(value, &bytes);

	if (r == 0 && !in_range(it, bytes))
		r = -ERANGE;
	if (r < 0)
		return bad_value(ctx, it, value, r);
	*(uint64_t *)field = bytes;
	return 0;
}

static int parse_uint_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			   void *field)
{
	const char *p = skip_space(value);
	uint64_t n;
	bool overflow;
	int r = parse_digits(&p, &n, &overflow);

	if (r == 0 && *skip_space(p))
		r = -EINVAL;
	if (r == 0 && (overflow || !in_range(it, n)))
		r = -ERANGE;
	if (r < 0)
		return bad_value(ctx, it, value, r);
	*(unsigned *)field = (unsigned)n; /* it->max keeps it in range */
	return 0;
}

static int parse_percent_item(struct parse_ctx *ctx, const struct config_item *it,
			      const char *value, void *field)
{
	double pct;
	int r = parse_percent(value, &pct);

	if (r < 0)
		return bad_value(ctx, it, value, r);
	*(double *)field = pct;
	return 0;
}

static int parse_bool_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			   void *field)
{
	int r = parse_bool(value, field);

	return r < 0 ? bad_value(ctx, it, value, r) : 0;
}

static int parse_log_level_item(struct parse_ctx *ctx, const struct config_item *it,
				const char *value, void *field)
{
	int i = lookup_word(log_level_words, ELEMENTSOF(log_level_words), value);

	if (i < 0)
		return bad_value(ctx, it, value, i);
	*(enum log_level *)field = (enum log_level)i;
	return 0;
}

static int parse_what_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			   void *field)
{
	int i = lookup_word(what_words, ELEMENTSOF(what_words), value);

	if (i < 0)
		return bad_value(ctx, it, value, i);
	*(enum lock_what *)field = (enum lock_what)i;
	return 0;
}

static int parse_path_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			   void *field)
{
	char **s = field, *copy;

	if (*value && !is_file_path(value))
		return bad_value(ctx, it, value, -EINVAL);
	copy = strdup(value);
	if (!copy)
		return report_oom(ctx);
	free(*s);
	*s = copy;
	return 0;
}

static int strv_add(struct strv *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = strdup(s);
	if (!v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

static int parse_abs_path_item(struct parse_ctx *ctx, const struct config_item *it,
			       const char *value, void *field)
{
	if (!is_file_path(value))
		return bad_value(ctx, it, value, -EINVAL);
	return strv_add(field, value) < 0 ? report_oom(ctx) : 0;
}

static int parse_comm_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			   void *field)
{
	if (strlen(value) > COMM_MAX) {
		report(ctx, "%s: '%s' is %zu bytes, but process names (comm) are at most %d bytes",
		       it->key, value, strlen(value), COMM_MAX);
		return -EINVAL;
	}
	return strv_add(field, value) < 0 ? report_oom(ctx) : 0;
}

static int parse_fstype_item(struct parse_ctx *ctx, const struct config_item *it,
			     const char *value, void *field)
{
	size_t n = strlen(value);
	if (n == 0 || n > 64 ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789._-+ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n)
		return bad_value(ctx, it, value, -EINVAL);
	return strv_add(field, value) < 0 ? report_oom(ctx) : 0;
}

/* A user name (looked up now: a reload looks it up again) or a number. */
static int parse_owner_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			    void *field)
{
	struct owner_list *l = field;
	uid_t uid;

	if (*value && strspn(value, "0123456789") == strlen(value)) {
		errno = 0;
		unsigned long long n = strtoull(value, NULL, 10);
		if (errno || n >= (uid_t)-1)
			return bad_value(ctx, it, value, -ERANGE);
		uid = (uid_t)n;
	} else {
		struct passwd pw, *res = NULL;
		char buf[2048];
		int r = getpwnam_r(value, &pw, buf, sizeof(buf), &res);
		if (r != 0 || !res) {
			report(ctx, "%s: no user '%s'%s%s", it->key, value, r ? ": " : "",
			       r ? strerror(r) : "");
			return -EINVAL;
		}
		uid = res->pw_uid;
	}
	char **src = realloc(l->src, (l->n + 1) * sizeof(*src));
	if (!src)
		return report_oom(ctx);
	l->src = src;
	uid_t *u = realloc(l->uid, (l->n + 1) * sizeof(*u));
	if (!u)
		return report_oom(ctx);
	l->uid = u;
	src[l->n] = strdup(value);
	if (!src[l->n])
		return report_oom(ctx);
	u[l->n++] = uid;
	return 0;
}

static int parse_regex_item(struct parse_ctx *ctx, const struct config_item *it, const char *value,
			    void *field)
{
	struct regex_list *l = field;
	char why[256], **src;
	regex_t *re;
	int r;

	if (regex_cost(value) > REGEX_COST_MAX) {
		report(ctx, "%s: regular expression '%s' is too complex (its repetitions expand to more "
			    "than %d elements)", it->key, value, REGEX_COST_MAX);
		return -EINVAL;
	}
	/* Grow both arrays first so that regcomp() compiles in place: regex_t is not ours to move. */
	src = realloc(l->src, (l->n + 1) * sizeof(*src));
	if (!src)
		return report_oom(ctx);
	l->src = src;
	re = realloc(l->re, (l->n + 1) * sizeof(*re));
	if (!re)
		return report_oom(ctx);
	l->re = re;
	src[l->n] = strdup(value);
	if (!src[l->n])
		return report_oom(ctx);
	r = regcomp(&re[l->n], value, REG_EXTENDED | REG_NOSUB);
	if (r != 0) {
		regerror(r, &re[l->n], why, sizeof(why));
		report(ctx, "%s: invalid regular expression '%s': %s", it->key, value, why);
		free(src[l->n]);
		return -EINVAL;
	}
	l->n++;
	return 0;
}

/* ---- releasing ---- */

static void release_string(void *field)
{
	char **s = field;

	free(*s);
	*s = NULL;
}

static void release_strv(void *field)
{
	struct strv *l = field;

	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct strv){ 0 };
}

static void release_owners(void *field)
{
	struct owner_list *l = field;

	for (size_t i = 0; i < l->n; i++)
		free(l->src[i]);
	free(l->src);
	free(l->uid);
	*l = (struct owner_list){ 0 };
}

static void release_regexes(void *field)
{
	struct regex_list *l = field;

	for (size_t i = 0; i < l->n; i++) {
		regfree(&l->re[i]);
		free(l->src[i]);
	}
	free(l->re);
	free(l->src);
	*l = (struct regex_list){ 0 };
}

/* ---- printing (prelockd -t --print) ---- */

/* Every value the parser accepted comes back as it was read: "key = value" when it fits; "key=value"
 * when the value starts with ';' (after " = " it would be a comment) or the spaces do not fit;
 * and, for list items that came from a long continuation line, "key =" and an indented line. */
static void print_value(FILE *f, const struct config_item *it, const char *value)
{
	size_t len = strlen(it->key) + strlen(value);

	if (!*value)
		fprintf(f, "%s =\n", it->key);
	else if (value[0] != ';' && len + 3 <= LINE_MAX_CONTENT)
		fprintf(f, "%s = %s\n", it->key, value);
	else if (len + 1 <= LINE_MAX_CONTENT || !it->type->list)
		fprintf(f, "%s=%s\n", it->key, value);
	else
		fprintf(f, "%s =\n\t%s\n", it->key, value);
}

static void print_number(FILE *f, const struct config_item *it, uint64_t n, const char *unit)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64 "%s", n, unit);
	print_value(f, it, buf);
}

static void print_duration(FILE *f, const struct config_item *it, const void *field)
{
	uint64_t usec = *(const uint64_t *)field;

	if (usec == 0)
		print_number(f, it, 0, "");
	else if (usec % USEC_PER_HOUR == 0)
		print_number(f, it, usec / USEC_PER_HOUR, "h");
	else if (usec % USEC_PER_SEC == 0)
		print_number(f, it, usec / USEC_PER_SEC, "s");
	else if (usec % USEC_PER_MSEC == 0)
		print_number(f, it, usec / USEC_PER_MSEC, "ms");
	else
		print_number(f, it, usec, "us");
}

static void print_size(FILE *f, const struct config_item *it, const void *field)
{
	static const char prefixes[] = "KMGT";
	uint64_t bytes = *(const uint64_t *)field;

	for (int i = 3; i >= 0; i--) {
		uint64_t unit = UINT64_C(1) << (10 * (i + 1));

		if (bytes != 0 && bytes % unit == 0) {
			char suffix[2] = { prefixes[i], '\0' };

			print_number(f, it, bytes / unit, suffix);
			return;
		}
	}
	print_number(f, it, bytes, "");
}

/* The fewest decimals that parse back to the same double, formatted without the locale. */
static void print_percent(FILE *f, const struct config_item *it, const void *field)
{
	double pct = *(const double *)field;
	char buf[40];

	for (unsigned k = 0; pct >= 0 && pct <= 100 && k <= PERCENT_DECIMALS_MAX; k++) {
		double scale = pow10_exact(k);
		uint64_t m = (uint64_t)(pct * scale + 0.5);
		int n;

		if ((double)m / scale != pct)
			continue;
		n = snprintf(buf, sizeof(buf), "%0*" PRIu64, (int)k + 1, m);
		if (k > 0) {
			memmove(buf + n - k + 1, buf + n - k, k + 1);
			buf[n - (int)k] = '.';
		}
		print_value(f, it, buf);
		return;
	}
	snprintf(buf, sizeof(buf), "%.17g", pct); /* not from a config file; best effort */
	print_value(f, it, buf);
}

static void print_uint(FILE *f, const struct config_item *it, const void *field)
{
	print_number(f, it, *(const unsigned *)field, "");
}

static void print_bool(FILE *f, const struct config_item *it, const void *field)
{
	print_value(f, it, *(const bool *)field ? "yes" : "no");
}

static void print_log_level(FILE *f, const struct config_item *it, const void *field)
{
	print_value(f, it, log_level_to_string(*(const enum log_level *)field));
}

static void print_what(FILE *f, const struct config_item *it, const void *field)
{
	print_value(f, it, lock_what_to_string(*(const enum lock_what *)field));
}

static void print_string(FILE *f, const struct config_item *it, const void *field)
{
	const char *s = *(char *const *)field;

	print_value(f, it, s ? s : "");
}

/* Lists are repeated keys; an empty one is "key =", which empties the default when read back. */
static void print_list(FILE *f, const struct config_item *it, char *const *v, size_t n)
{
	if (n == 0)
		print_value(f, it, "");
	for (size_t i = 0; i < n; i++)
		print_value(f, it, v[i]);
}

static void print_strv(FILE *f, const struct config_item *it, const void *field)
{
	print_list(f, it, ((const struct strv *)field)->v, ((const struct strv *)field)->n);
}

static void print_owners(FILE *f, const struct config_item *it, const void *field)
{
	print_list(f, it, ((const struct owner_list *)field)->src,
		   ((const struct owner_list *)field)->n);
}

static void print_regexes(FILE *f, const struct config_item *it, const void *field)
{
	print_list(f, it, ((const struct regex_list *)field)->src,
		   ((const struct regex_list *)field)->n);
}

void config_print(FILE *f, const struct config *cfg)
{
	const char *section = NULL;

	for (size_t i = 0; i < ELEMENTSOF(items); i++) {
		const struct config_item *it = &items[i];

		if (!section || strcmp(section, it->section) != 0) {
			fprintf(f, "%s[%s]\n", section ? "\n" : "", it->section);
			section = it->section;
		}
		it->type->print(f, it, (const char *)cfg + it->offset);
	}
}

/* ---- table lookups and suggestions ---- */

static void *field_of(struct config *cfg, const struct config_item *it)
{
	return (char *)cfg + it->offset;
}

static const struct config_item *find_item(const char *section, const char *key)
{
	for (size_t i = 0; i < ELEMENTSOF(items); i++)
		if (strcmp(items[i].section, section) == 0 && strcmp(items[i].key, key) == 0)
			return &items[i];
	return NULL;
}

static const char *find_section(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(items); i++)
		if (strcmp(items[i].section, name) == 0)
			return items[i].section;
	return NULL;
}

static const char *closest_section(const char *name)
{
	const char *best = NULL;
	size_t best_d = SUGGEST_DISTANCE + 1;

	for (size_t i = 0; i < ELEMENTSOF(items); i++) {
		size_t d = edit_distance(name, items[i].section);

		if (d < best_d) {
			best = items[i].section;
			best_d = d;
		}
	}
	return best;
}

/* The closest key, a key of the current section winning a tie against a key elsewhere. */
static const struct config_item *closest_key(const char *name, const char *section)
{
	const struct config_item *best = NULL;
	size_t best_rank = SIZE_MAX;

	for (size_t i = 0; i < ELEMENTSOF(items); i++) {
		size_t d = edit_distance(name, items[i].key), rank;

		if (d > SUGGEST_DISTANCE)
			continue;
		rank = 2 * d + (!section || strcmp(section, items[i].section) != 0);
		if (rank < best_rank) {
			best = &items[i];
			best_rank = rank;
		}
	}
	return best;
}

static void key_hint(const char *name, const char *section, char *buf, size_t size)
{
	const struct config_item *it = closest_key(name, section);

	if (!it)
		buf[0] = '\0';
	else if (section && strcmp(section, it->section) == 0)
		snprintf(buf, size, " (did you mean '%s'?)", it->key);
	else if (strcmp(name, it->key) == 0)
		snprintf(buf, size, " (it belongs in [%s])", it->section);
	else
		snprintf(buf, size, " (did you mean '%s' in [%s]?)", it->key, it->section);
}

/* ---- the layer around inih: one line at a time, and a look at each line no handler saw ---- */

/* Where the text of the current line starts, as inih sees it (after the BOM it skips on line 1). */
static size_t first_nonblank(const struct parse_ctx *ctx)
{
	size_t i = 0;

	if (ctx->line == 1 && ctx->text_len >= 3 && memcmp(ctx->text, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < ctx->text_len && isspace((unsigned char)ctx->text[i]))
		i++;
	return i;
}

/* What inih makes of one line on its own. */
struct probe {
	enum { PROBE_OTHER, PROBE_SECTION, PROBE_KEY } kind;
	char name[INI_MAX_LINE]; /* of the section or the key, as inih keeps it */
	bool called;
};

static int probe_handler(void *user, const char *section, const char *name, const char *value)
{
	struct probe *p = user;

	(void)value;
	if (!p->called && (*name || *section)) {
		p->kind = *name ? PROBE_KEY : PROBE_SECTION;
		snprintf(p->name, sizeof(p->name), "%s", *name ? name : section);
	}
	p->called = true;
	return 1;
}

/* Asks inih what a line is on its own: 1 for a syntax error, else 0 and what it is in p. A line
 * of the file that inih called no handler for is a syntax error, a section line, a comment or an
 * empty line, wherever it stands: only a continuation line depends on the lines before it, and
 * inih calls the handler for one. The "=" after the line makes inih call the handler at least
 * once, with the section it is in; an empty line before it (but on line 1) keeps inih from
 * skipping a BOM that is not at the start of the file. */
static int probe_line(const char *text, size_t len, bool line1, struct probe *p)
{
	size_t skip = !line1;
	char *s = malloc(skip + len + 4);
	int r;

	if (!s)
		return -ENOMEM;
	memcpy(s, "\n", skip);
	memcpy(s + skip, text, len);
	memcpy(s + skip + len, "\n=\n", 4);
	*p = (struct probe){ .kind = PROBE_OTHER };
	r = ini_parse_string(s, probe_handler, p);
	free(s);
	return r < 0 ? -ENOMEM : r == (int)skip + 1;
}

/* A section line inih took: its name must be known, and nothing but a comment may follow its ']'
 * (inih ignores it: a key written there would be lost without a word). */
static void check_section_line(struct parse_ctx *ctx, const char *name)
{
	const char *end = ctx->text + ctx->text_len, *near;
	const char *rest = memchr(ctx->text, ']', ctx->text_len);
	size_t n;

	while (rest && ++rest < end && isspace((unsigned char)*rest))
		;
	if (rest && rest < end && *rest != ';' && *rest != '#') {
		for (n = (size_t)(end - rest); isspace((unsigned char)rest[n - 1]); n--)
			;
		report(ctx, "unexpected text after the section name: '%.*s'", (int)n, rest);
	}
	if (find_section(name))
		return;
	near = closest_section(name);
	report(ctx, "unknown section [%s]%s%s%s", name, near ? " (did you mean [" : "",
	       near ? near : "", near ? "]?)" : ""); /* its keys are skipped without a word */
}

/* inih calls no handler for a section line, and says only that some line is wrong: so each line
 * that no handler call was for is looked at once inih is done with it. */
static void check_line(struct parse_ctx *ctx)
{
	struct probe p;
	int r;

	if (!ctx->text || ctx->rejected || ctx->handled)
		return;
	r = probe_line(ctx->text, ctx->text_len, ctx->line == 1, &p);
	if (r < 0)
		report_oom(ctx);
	else if (r == 1 && ctx->text[first_nonblank(ctx)] == '[')
		report(ctx, "expected ']' at the end of the section name");
	else if (r == 1)
		report(ctx, "expected 'key = value' or '[section]'");
	else if (p.kind == PROBE_SECTION)
		check_section_line(ctx, p.name);
}

static void report_rejected(struct parse_ctx *ctx, size_t max)
{
	if (memchr(ctx->text, '\0', ctx->text_len))
		report(ctx, "NUL byte in line");
	else
		report(ctx, "line too long (%zu bytes, at most %zu)", ctx->text_len, max);
}

/* The ini_reader: hands inih the next line, with a '\n' (see LINE_MAX_CONTENT). A refused line
 * is handed over cut short, so that inih's state after it is the closest to what its author
 * meant; the handler ignores what inih makes of it. */
static char *config_reader(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	size_t max = num > 2 ? (size_t)num - 2 : 0, n;
	const char *eol;

	check_line(ctx);
	ctx->text = NULL;
	if (ctx->pos >= ctx->len || max == 0)
		return NULL;
	ctx->text = ctx->buf + ctx->pos;
	eol = memchr(ctx->text, '\n', ctx->len - ctx->pos);
	ctx->text_len = eol ? (size_t)(eol - ctx->text) : ctx->len - ctx->pos;
	ctx->pos += ctx->text_len + (eol != NULL);
	ctx->line++;
	ctx->inih_line = str;
	ctx->inih_size = (size_t)num;
	ctx->handled = false;
	n = ctx->text_len < max ? ctx->text_len : max;
	ctx->rejected = n < ctx->text_len || memchr(ctx->text, '\0', n);
	if (ctx->rejected) {
		ctx->drop_cont = true;
		report_rejected(ctx, max);
	}
	memcpy(str, ctx->text, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/* ---- the inih handler: names and values ---- */

static void set_scalar(struct parse_ctx *ctx, const struct config_item *it, const char *value)
{
	unsigned *set_line = &ctx->set_line[it - items];

	if (*set_line) {
		report(ctx, "'%s' already set on line %u", it->key, *set_line);
		return;
	}
	*set_line = ctx->line;
	it->type->parse(ctx, it, value, field_of(ctx->cfg, it));
}

/* The first occurrence of a list key in the file replaces the default; every line adds one item,
 * and an empty value adds none. */
static void add_to_list(struct parse_ctx *ctx, const struct config_item *it, const char *value)
{
	unsigned *set_line = &ctx->set_line[it - items];

	if (!*set_line) {
		it->type->release(field_of(ctx->cfg, it));
		*set_line = ctx->line;
	}
	if (*value)
		it->type->parse(ctx, it, value, field_of(ctx->cfg, it));
}

/* The key of a key line, or NULL when it is reported (or its section was). */
static const struct config_item *check_key(struct parse_ctx *ctx, const char *section,
					   const char *name)
{
	const struct config_item *it;
	char hint[128];

	if (!*name) {
		/* The name is empty, so the line starts with its '=' or ':'. */
		report(ctx, "expected a key name before '%c'", ctx->text[first_nonblank(ctx)]);
		return NULL;
	}
	if (!*section) {
		key_hint(name, NULL, hint, sizeof(hint));
		report(ctx, "key '%s' before any [section] header%s", name, hint);
		return NULL;
	}
	if (!find_section(section))
		return NULL; /* reported at its section line */
	it = find_item(section, name);
	if (!it) {
		key_hint(name, section, hint, sizeof(hint));
		report(ctx, "unknown key '%s' in [%s]%s", name, section, hint);
	}
	return it;
}

/* inih r55 leaves an inline comment on a continuation line, though not on a key line (later
 * versions cut both): cut it the same way, so that every version reads the same values. */
static void cut_inline_comment(char *s)
{
	bool was_space = false;
	char *p;

	for (p = s; *p && !(was_space && *p == ';'); p++)
		was_space = isspace((unsigned char)*p);
	*p = '\0';
	rstrip(s);
}

/* An indented line continues the key above it (configparser's rule, which inih follows), so an
 * indented "[lock]" or "exclude = x" would silently become one more item of a list: nobody
 * means that. inih says what the line would be unindented. */
static void continuation(struct parse_ctx *ctx, const char *section, const char *name,
			 const char *value)
{
	const struct config_item *it = find_item(section, name);
	struct probe p;
	char *v;

	if (!it)
		return; /* cannot happen: a key line that is not in the table sets drop_cont */
	v = strdup(value);
	if (v)
		cut_inline_comment(v);
	if (!v || probe_line(v, strlen(v), false, &p) < 0) {
		free(v);
		report_oom(ctx);
		return;
	}
	if (p.kind == PROBE_SECTION && find_section(p.name))
		report(ctx, "indented %s continues the value of '%s'; remove the indentation to start "
			    "the section", v, it->key);
	else if (p.kind == PROBE_KEY && find_item(section, p.name))
		report(ctx, "indented '%s' continues the value of '%s'; remove the indentation to set "
			    "a key", v, it->key);
	else if (!it->type->list)
		report(ctx, "'%s' takes one value, but this indented line continues it", it->key);
	else
		add_to_list(ctx, it, v);
	free(v);
}

/* inih hands over a key line's name inside the line buffer our reader filled, and a continuation
 * line's from its own copy of the key above. */
static bool in_inih_line(const struct parse_ctx *ctx, const char *p)
{
	return (uintptr_t)p - (uintptr_t)ctx->inih_line < ctx->inih_size;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	const struct config_item *it;

	ctx->handled = true;
	if (ctx->rejected || !name)
		return 1; /* !name: a section line, from an inih built to report them (not Debian's) */
	if (!value) { /* a line without '=', from an inih built to allow them (not Debian's) */
		report(ctx, "expected 'key = value' or '[section]'");
		return 1;
	}
	if (!in_inih_line(ctx, name)) {
		if (!ctx->drop_cont)
			continuation(ctx, section, name, value);
		return 1;
	}
	it = check_key(ctx, section, name);
	ctx->drop_cont = !it;
	if (it && it->type->list)
		add_to_list(ctx, it, value);
	else if (it)
		set_scalar(ctx, it, value);
	return 1; /* errors are counted in ctx; inih would remember only the first */
}

static unsigned line_of(const struct parse_ctx *ctx, size_t offset)
{
	for (size_t i = 0; i < ELEMENTSOF(items); i++)
		if (items[i].offset == offset)
			return ctx->set_line[i];
	return 0;
}

static unsigned max_line(unsigned a, unsigned b)
{
	return a > b ? a : b;
}

/* Rules across keys, reported at the line that broke them. */
static void check_config(struct parse_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;

	if (cfg->max_total_bytes == 0 && cfg->max_total_percent == 0)
		report_at(ctx,
			  max_line(line_of(ctx, FIELD(max_total_bytes)),
				   line_of(ctx, FIELD(max_total_percent))),
			  "no budget: max_total and max_total_percent are both 0, so nothing could "
			  "be locked (set at least one of them)");
	if (cfg->only_critical && cfg->critical_names.n == 0 && cfg->critical_cgroups.n == 0)
		report_at(ctx, line_of(ctx, FIELD(only_critical)),
			  "only_critical is set, but critical_names and critical_cgroups are both "
			  "empty: no process would be scanned");
}

/* ---- public API ---- */

int config_init_defaults(struct config *cfg)
{
	struct parse_ctx ctx = { .name = "(defaults)", .cfg = cfg };

	*cfg = config_defaults;
	for (size_t i = 0; i < ELEMENTSOF(items); i++) {
		if (!items[i].def)
			continue;
		if (items[i].type->parse(&ctx, &items[i], items[i].def, field_of(cfg, &items[i])) < 0) {
			config_free(cfg);
			return ctx.oom ? -ENOMEM : -EINVAL;
		}
	}
	return 0;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < ELEMENTSOF(items); i++)
		if (items[i].type->release)
			items[i].type->release(field_of(cfg, &items[i]));
	*cfg = (struct config){ 0 };
}

int config_load_buf(const char *name, const char *buf, size_t len, struct config *cfg,
		    config_error_fn err, void *userdata)
{
	struct parse_ctx ctx = {
		.name = name, .buf = buf, .len = len, .cfg = cfg, .err = err, .userdata = userdata,
	};
	int r = config_init_defaults(cfg);

	if (r < 0)
		return r == -ENOMEM ? report_oom(&ctx) : r;
	/* What it returns, the first syntax error, is reported with the others already. */
	r = ini_parse_stream(config_reader, &ctx, config_handler, &ctx);
	if (r < 0)
		report_oom(&ctx);
	if (!ctx.oom)
		check_config(&ctx);
	if (ctx.oom || ctx.errors) {
		config_free(cfg);
		return ctx.oom ? -ENOMEM : -EINVAL;
	}
	return 0;
}

static int read_all(int fd, char **buf, size_t *len)
{
	size_t size = 0, n = 0;
	char *b = NULL;
	int r = 0;

	for (;;) {
		ssize_t k;

		if (n == size) {
			char *nb;

			if (size > CONFIG_FILE_MAX) {
				r = -EFBIG;
				break;
			}
			size = size ? 2 * size : 4096;
			if (size > CONFIG_FILE_MAX + 1)
				size = CONFIG_FILE_MAX + 1;
			nb = realloc(b, size);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			b = nb;
		}
		k = read(fd, b + n, size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			r = -errno;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	if (r < 0) {
		free(b);
		return r;
	}
	*buf = b;
	*len = n;
	return 0;
}

int config_load(const char *path, struct config *cfg, config_error_fn err, void *userdata)
{
	char *buf = NULL, msg[512];
	size_t len = 0;
	int fd, r;

	*cfg = (struct config){ 0 };
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		r = -errno;
	else {
		r = read_all(fd, &buf, &len);
		close(fd);
	}
	if (r < 0) {
		if (r == -EFBIG)
			snprintf(msg, sizeof(msg), "%s: too large (more than %d KiB)", path,
				 CONFIG_FILE_MAX / 1024);
		else
			snprintf(msg, sizeof(msg), "%s: cannot read: %s", path, strerror(-r));
		if (err)
			err(userdata, msg);
		return r;
	}
	r = config_load_buf(path, buf, len, cfg, err, userdata);
	free(buf);
	return r;
}

bool regex_list_match(const struct regex_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (regexec(&l->re[i], s, 0, NULL, 0) == 0)
			return true;
	return false;
}

bool owner_allowed(const struct config *cfg, uid_t uid)
{
	if (uid == 0)
		return true;
	for (size_t i = 0; i < cfg->owners.n; i++)
		if (cfg->owners.uid[i] == uid)
			return true;
	return false;
}

bool strv_contains(const struct strv *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

const char *lock_what_to_string(enum lock_what w)
{
	return (size_t)w < ELEMENTSOF(what_words) ? what_words[w] : "unknown";
}

const char *log_level_to_string(enum log_level l)
{
	return (size_t)l < ELEMENTSOF(log_level_words) ? log_level_words[l] : "unknown";
}
