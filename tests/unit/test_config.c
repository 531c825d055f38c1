/* Unit tests of src/config.c: value parsers, every key, list rules, error messages with their
 * line numbers, the layer around inih (long lines, every syntax error, section lines, continuation
 * lines), golden fixtures, the shipped file and print round trips.
 * Run from the repo root; PRELOCKD_CONF and CONFIG_FIXTURES override where the files are. */
#include "check.h"
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#define SINK_SIZE 16384

/* Collects every error message, one per line, as a user of config_load would print them. */
struct sink {
	char text[SINK_SIZE];
	size_t len;
	unsigned count;
};

static void sink_error(void *userdata, const char *message)
{
	struct sink *s = userdata;
	int n = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s\n", message);

	if (n > 0 && (size_t)n < sizeof(s->text) - s->len)
		s->len += (size_t)n;
	s->count++;
}

/* Test names and texts are printed on one TAP line: newlines shown as \n. */
static char *escape(const char *s)
{
	size_t n = 0;
	char *e, *p;

	for (const char *q = s ? s : "(null)"; *q; q++)
		n += *q == '\n' || *q == '\r' ? 2 : 1;
	e = p = malloc(n + 1);
	if (!e)
		abort();
	for (const char *q = s ? s : "(null)"; *q; q++) {
		if (*q == '\n' || *q == '\r') {
			*p++ = '\\';
			*p++ = *q == '\n' ? 'n' : 'r';
		} else {
			*p++ = *q;
		}
	}
	*p = '\0';
	return e;
}

static void check_text(const char *got, const char *want, const char *name)
{
	char *g = escape(got), *w = escape(want), *n = escape(name);

	CHECK(got && want && strcmp(got, want) == 0, "%s: got \"%s\", want \"%s\"", n, g, w);
	free(g);
	free(w);
	free(n);
}

static int load_len(const char *text, size_t len, struct config *cfg, struct sink *s)
{
	*s = (struct sink){ .len = 0 };
	return config_load_buf("t.conf", text, len, cfg, sink_error, s);
}

static int load(const char *text, struct config *cfg, struct sink *s)
{
	return load_len(text, strlen(text), cfg, s);
}

/* Loads a file that must be valid. */
static bool load_ok(const char *text, struct config *cfg, const char *name)
{
	struct sink s;
	int r = load(text, cfg, &s);

	char *n = escape(name), *t = escape(s.text);

	CHECK(r == 0 && s.count == 0, "%s loads without errors (r=%d): %s", n, r, t);
	free(n);
	free(t);
	return r == 0;
}

/* Loads a file that must fail with exactly these messages, and leave cfg zeroed. */
static void load_fails(const char *text, const char *want, const char *name)
{
	struct config cfg;
	struct sink s;
	int r = load(text, &cfg, &s);
	char *n = escape(name);

	CHECK(r == -EINVAL, "%s: returns -EINVAL (got %d)", n, r);
	check_text(s.text, want, name);
	CHECK(cfg.state_file == NULL && cfg.include.n == 0 && cfg.interval_usec == 0,
	      "%s: cfg is zeroed after an error", n);
	free(n);
	config_free(&cfg);
}

static char *print_string(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	config_print(f, cfg);
	fclose(f);
	return buf;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	*len = (size_t)n;
	fclose(f);
	return buf;
}

static const char *fixture_dir(void)
{
	const char *d = getenv("CONFIG_FIXTURES");

	return d ? d : "tests/fixtures/config";
}

/* ---- value parsers ---- */

static void test_parse_size(void)
{
	static const struct {
		const char *s;
		int r;
		uint64_t bytes;
	} cases[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "64K", 0, 65536 },
		{ "64k", 0, 65536 },
		{ "64KB", 0, 65536 },
		{ "64KiB", 0, 65536 },
		{ "256M", 0, UINT64_C(256) << 20 },
		{ "1G", 0, UINT64_C(1) << 30 },
		{ "2T", 0, UINT64_C(2) << 40 },
		{ "  12M  ", 0, UINT64_C(12) << 20 },
		{ "12 M", 0, UINT64_C(12) << 20 },
		{ "100B", 0, 100 },
		{ "007", 0, 7 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "16777216T", -ERANGE, 0 },
		{ "16777215T", 0, UINT64_C(16777215) << 40 },
		{ "99999999999999999999999Q", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "   ", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ "12Q", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
		{ "K", -EINVAL, 0 },
		{ "64iB", -EINVAL, 0 },
		{ "64Ki", -EINVAL, 0 },
		{ "64Kb", -EINVAL, 0 },
		{ "64KBB", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "1 2", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t bytes = 12345;
		int r = parse_size(cases[i].s, &bytes);

		CHECK(r == cases[i].r, "parse_size(\"%s\") returns %d (got %d)", cases[i].s,
		      cases[i].r, r);
		if (cases[i].r == 0)
			CHECK_U64(bytes, cases[i].bytes, cases[i].s);
	}
}

static void test_parse_duration(void)
{
	static const struct {
		const char *s;
		int r;
		uint64_t usec;
	} cases[] = {
		{ "0", 0, 0 },
		{ "60", 0, 60000000 },
		{ "60s", 0, 60000000 },
		{ "60sec", 0, 60000000 },
		{ "500ms", 0, 500000 },
		{ "5min", 0, 300000000 },
		{ "1h", 0, 3600000000 },
		{ "250us", 0, 250 },
		{ " 2 h ", 0, 7200000000 },
		{ "0ms", 0, 0 },
		{ "5m", -EINVAL, 0 },
		{ "5M", -EINVAL, 0 },
		{ "5d", -EINVAL, 0 },
		{ "5 min 3", -EINVAL, 0 },
		{ "1min30s", -EINVAL, 0 },
		{ "1.5s", -EINVAL, 0 },
		{ "-1s", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "18446744073709s", 0, UINT64_C(18446744073709) * 1000000 },
		{ "18446744073710s", -ERANGE, 0 },
		{ "99999999999999999999", -ERANGE, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t usec = 12345;
		int r = parse_duration(cases[i].s, &usec);

		CHECK(r == cases[i].r, "parse_duration(\"%s\") returns %d (got %d)", cases[i].s,
		      cases[i].r, r);
		if (cases[i].r == 0)
			CHECK_U64(usec, cases[i].usec, cases[i].s);
	}
}

static void test_parse_bool(void)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "1", "on", "ON", " yes " };
	static const char *const no[] = { "no", "No", "false", "FALSE", "0", "off", "Off" };
	static const char *const bad[] = { "", "y", "n", "2", "yess", "enable", "on off" };
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		CHECK(parse_bool(yes[i], &b) == 0 && b, "parse_bool(\"%s\") is true", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		CHECK(parse_bool(no[i], &b) == 0 && !b, "parse_bool(\"%s\") is false", no[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = true;
		CHECK(parse_bool(bad[i], &b) == -EINVAL && b, "parse_bool(\"%s\") is -EINVAL", bad[i]);
	}
}

/* ---- defaults and small helpers ---- */

static void test_defaults(void)
{
	struct config cfg;

	CHECK(config_init_defaults(&cfg) == 0, "config_init_defaults succeeds");
	CHECK_U64(cfg.interval_usec, 60000000, "default interval");
	check_text(cfg.state_file, "/var/lib/prelockd/state", "default state_file");
	check_text(cfg.status_file, "/run/prelockd/status", "default status_file");
	CHECK(cfg.log_level == LOG_LEVEL_INFO, "default log_level is info");
	CHECK(cfg.include.n == 1, "default include has one regex");
	check_text(cfg.include.n ? cfg.include.src[0] : NULL, "^/(usr|bin|sbin|lib[^/]*|opt)/",
		  "default include");
	CHECK(cfg.exclude.n == 0, "default exclude is empty");
	CHECK(cfg.what == WHAT_RESIDENT, "default what is resident");
	CHECK_U64(cfg.max_file_size_bytes, 256u << 20, "default max_file_size");
	CHECK_U64(cfg.max_total_bytes, 512u << 20, "default max_total");
	CHECK(cfg.max_total_percent == 5, "default max_total_percent is 5");
	CHECK(cfg.keep_scans == 3, "default keep is 3");
	CHECK(cfg.always.n == 0, "default always is empty");
	CHECK(!cfg.only_critical, "default only_critical is no");
	CHECK(cfg.critical_names.n == 0 && cfg.critical_cgroups.n == 0, "default critical lists empty");

	CHECK(regex_list_match(&cfg.include, "/usr/bin/bash"), "default include matches /usr/bin/bash");
	CHECK(regex_list_match(&cfg.include, "/lib64/ld-linux-x86-64.so.2"), "... and /lib64/...");
	CHECK(regex_list_match(&cfg.include, "/libexec/x"), "... and /libexec/x");
	CHECK(regex_list_match(&cfg.include, "/opt/app/bin"), "... and /opt/app/bin");
	CHECK(!regex_list_match(&cfg.include, "/home/u/bin/x"), "... but not /home/u/bin/x");
	CHECK(!regex_list_match(&cfg.include, "/usr"), "... nor /usr itself");
	CHECK(!regex_list_match(&cfg.include, "/x/usr/lib"), "... nor /x/usr/lib (anchored)");
	CHECK(!regex_list_match(&cfg.exclude, "/usr/bin/bash"), "an empty list matches nothing");
	config_free(&cfg);
	CHECK(cfg.state_file == NULL && cfg.include.n == 0 && cfg.include.re == NULL,
	      "config_free zeroes the struct");
	config_free(&cfg);
	CHECK(cfg.state_file == NULL, "config_free twice is harmless");
}

static void test_helpers(void)
{
	char *v[] = { "sshd", "systemd-journal", "Xorg" };
	struct strv l = { 3, v }, empty = { 0, NULL };

	CHECK(strv_contains(&l, "sshd") && strv_contains(&l, "Xorg"), "strv_contains finds items");
	CHECK(!strv_contains(&l, "ssh") && !strv_contains(&l, "xorg"), "strv_contains is exact");
	CHECK(!strv_contains(&empty, "sshd"), "strv_contains on an empty list");
	check_text(lock_what_to_string(WHAT_WHOLE), "whole", "what whole");
	check_text(lock_what_to_string(WHAT_MAPPED), "mapped", "what mapped");
	check_text(lock_what_to_string(WHAT_RESIDENT), "resident", "what resident");
	check_text(log_level_to_string(LOG_LEVEL_ERROR), "error", "level error");
	check_text(log_level_to_string(LOG_LEVEL_WARNING), "warning", "level warning");
	check_text(log_level_to_string(LOG_LEVEL_NOTICE), "notice", "level notice");
	check_text(log_level_to_string(LOG_LEVEL_INFO), "info", "level info");
	check_text(log_level_to_string(LOG_LEVEL_DEBUG), "debug", "level debug");
}

/* ---- every key, good values ---- */

static void test_every_key_good(void)
{
	struct config cfg;

	if (!load_ok("[daemon]\n"
		     "interval = 1500ms\n"
		     "state_file = /tmp/state file\n"
		     "status_file =\n"
		     "log_level = DEBUG\n"
		     "[lock]\n"
		     "include = ^/home/\n"
		     "exclude = \\.so\\.[0-9]+$\n"
		     "what = whole\n"
		     "max_file_size = 64KiB\n"
		     "max_total = 0\n"
		     "max_total_percent = 2.5%\n"
		     "keep = 1000000\n"
		     "always = /usr/bin/top\n"
		     "owners = root\n"
		     "owners = 4321\n"
		     "allow_blocking_filesystems = nfs4\n"
		     "[processes]\n"
		     "only_critical = on\n"
		     "critical_names = systemd-journal\n"
		     "critical_cgroups = ^/system\\.slice/sshd\\.service$\n",
		     &cfg, "every key"))
		return;
	CHECK_U64(cfg.interval_usec, 1500000, "interval 1500ms");
	check_text(cfg.state_file, "/tmp/state file", "state_file keeps inner space");
	check_text(cfg.status_file, "", "empty status_file disables it");
	CHECK(cfg.log_level == LOG_LEVEL_DEBUG, "log_level DEBUG (case-insensitive)");
	CHECK(cfg.include.n == 1 && regex_list_match(&cfg.include, "/home/u/x") &&
		      !regex_list_match(&cfg.include, "/usr/bin/x"),
	      "include replaced by ^/home/");
	CHECK(regex_list_match(&cfg.exclude, "/usr/lib/libc.so.6") &&
		      !regex_list_match(&cfg.exclude, "/usr/lib/libc.so.6x"),
	      "exclude regex is extended and anchored as written");
	CHECK(cfg.what == WHAT_WHOLE, "what whole");
	CHECK_U64(cfg.max_file_size_bytes, 65536, "max_file_size 64KiB");
	CHECK_U64(cfg.max_total_bytes, 0, "max_total 0");
	CHECK(cfg.max_total_percent == 2.5, "max_total_percent 2.5%%");
	CHECK(cfg.keep_scans == 1000000, "keep 1000000");
	CHECK(cfg.always.n == 1 && strv_contains(&cfg.always, "/usr/bin/top"), "always");
	CHECK(cfg.owners.n == 2 && cfg.owners.uid[0] == 0 && cfg.owners.uid[1] == 4321,
	      "owners: a name looked up, a number as it is");
	CHECK(cfg.allow_blocking_filesystems.n == 1 &&
		      strv_contains(&cfg.allow_blocking_filesystems, "nfs4"),
	      "allow_blocking_filesystems");
	CHECK(owner_allowed(&cfg, 0) && owner_allowed(&cfg, 4321) && !owner_allowed(&cfg, 4322),
	      "owner_allowed: root and the listed ones");
	CHECK(cfg.only_critical, "only_critical on");
	CHECK(strv_contains(&cfg.critical_names, "systemd-journal"), "critical_names 15 bytes");
	CHECK(regex_list_match(&cfg.critical_cgroups, "/system.slice/sshd.service") &&
		      !regex_list_match(&cfg.critical_cgroups, "/system.slice/sshd.service/x"),
	      "critical_cgroups");
	config_free(&cfg);
}

static void test_other_good_values(void)
{
	static const struct {
		const char *text;
		size_t offset;
		uint64_t want;
	} cases[] = {
		{ "[daemon]\ninterval = 0\n", offsetof(struct config, interval_usec), 0 },
		{ "[daemon]\ninterval = 2h\n", offsetof(struct config, interval_usec), 7200000000 },
		{ "[daemon]\ninterval: 90\n", offsetof(struct config, interval_usec), 90000000 },
		{ "[lock]\nmax_total = 1T\n", offsetof(struct config, max_total_bytes), UINT64_C(1) << 40 },
		{ "[lock]\nmax_file_size=1\n", offsetof(struct config, max_file_size_bytes), 1 },
		{ "[lock]\nkeep = 0\n", offsetof(struct config, keep_scans), 0 },
		{ "[lock]\nwhat = mapped\n", offsetof(struct config, what), WHAT_MAPPED },
		{ "[lock]\nwhat = Resident ; comment\n", offsetof(struct config, what), WHAT_RESIDENT },
		{ "[daemon]\nlog_level = error\n", offsetof(struct config, log_level), LOG_LEVEL_ERROR },
		{ "[daemon]\nlog_level = warning\n", offsetof(struct config, log_level), LOG_LEVEL_WARNING },
		{ "[daemon]\nlog_level = notice\n", offsetof(struct config, log_level), LOG_LEVEL_NOTICE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		uint64_t got;
		char *name;

		if (!load_ok(cases[i].text, &cfg, cases[i].text))
			continue;
		if (cases[i].offset == offsetof(struct config, keep_scans))
			got = cfg.keep_scans;
		else if (cases[i].offset == offsetof(struct config, what))
			got = cfg.what;
		else if (cases[i].offset == offsetof(struct config, log_level))
			got = cfg.log_level;
		else
			memcpy(&got, (char *)&cfg + cases[i].offset, sizeof(got));
		name = escape(cases[i].text);
		CHECK_U64(got, cases[i].want, name);
		free(name);
		config_free(&cfg);
	}
}

static void test_percent_values(void)
{
	static const struct {
		const char *v;
		double want;
	} good[] = { { "0", 0 },	 { "100", 100 }, { "100%", 100 },  { "5 %", 5 },
		     { "0.5", 0.5 },	 { ".5", 0.5 },	 { "5.", 5 },	    { "33.333", 33.333 },
		     { "0.001", 0.001 }, { "07", 7 },	 { "99.99%", 99.99 } };
	char text[128];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct config cfg;

		snprintf(text, sizeof(text), "[lock]\nmax_total_percent = %s\n", good[i].v);
		if (!load_ok(text, &cfg, text))
			continue;
		CHECK(cfg.max_total_percent == good[i].want, "max_total_percent '%s' is %g (got %g)",
		      good[i].v, good[i].want, cfg.max_total_percent);
		config_free(&cfg);
	}
}

/* ---- every key, bad values: the whole message ---- */

static void test_every_key_bad(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[daemon]\ninterval = 5m\n",
		  "t.conf:2: interval: invalid duration '5m' (expected a whole number with unit us, ms, "
		  "s, sec, min or h, or no unit for seconds)\n" },
		{ "[daemon]\ninterval =\n",
		  "t.conf:2: interval: invalid duration '' (expected a whole number with unit us, ms, s, "
		  "sec, min or h, or no unit for seconds)\n" },
		{ "[daemon]\ninterval = 99999999999999h\n",
		  "t.conf:2: interval: duration '99999999999999h' is out of range (too large)\n" },
		{ "[daemon]\nstate_file = var/lib/x\n",
		  "t.conf:2: state_file: invalid path 'var/lib/x' (expected an absolute path of a file, "
		  "or nothing to disable it)\n" },
		{ "[daemon]\nstatus_file = /run/prelockd/\n",
		  "t.conf:2: status_file: invalid path '/run/prelockd/' (expected an absolute path of a "
		  "file, or nothing to disable it)\n" },
		{ "[daemon]\nlog_level = verbose\n",
		  "t.conf:2: log_level: invalid log level 'verbose' (expected error, warning, notice, "
		  "info or debug)\n" },
		{ "[lock]\ninclude = (\n", NULL }, /* regerror's text: see test_regex_error */
		{ "[lock]\nwhat = all\n",
		  "t.conf:2: what: invalid value 'all' (expected whole, mapped or resident)\n" },
		{ "[lock]\nmax_file_size = 0\n",
		  "t.conf:2: max_file_size: size '0' is out of range (must be greater than 0)\n" },
		{ "[lock]\nmax_file_size = 1.5G\n",
		  "t.conf:2: max_file_size: invalid size '1.5G' (expected a number with optional K, M, "
		  "G or T suffix)\n" },
		{ "[lock]\nmax_total = 12Q\n",
		  "t.conf:2: max_total: invalid size '12Q' (expected a number with optional K, M, G or "
		  "T suffix)\n" },
		{ "[lock]\nmax_total = 99999999T\n",
		  "t.conf:2: max_total: size '99999999T' is out of range (too large)\n" },
		{ "[lock]\nmax_total_percent = 101\n",
		  "t.conf:2: max_total_percent: percentage '101' is out of range (must be from 0 to "
		  "100)\n" },
		{ "[lock]\nmax_total_percent = 100.01%\n",
		  "t.conf:2: max_total_percent: percentage '100.01%' is out of range (must be from 0 to "
		  "100)\n" },
		{ "[lock]\nmax_total_percent = -1\n",
		  "t.conf:2: max_total_percent: invalid percentage '-1' (expected a number from 0 to "
		  "100, optionally with decimals and a trailing '%')\n" },
		{ "[lock]\nmax_total_percent = 1e1\n",
		  "t.conf:2: max_total_percent: invalid percentage '1e1' (expected a number from 0 to "
		  "100, optionally with decimals and a trailing '%')\n" },
		{ "[lock]\nmax_total_percent = 1..2\n",
		  "t.conf:2: max_total_percent: invalid percentage '1..2' (expected a number from 0 to "
		  "100, optionally with decimals and a trailing '%')\n" },
		{ "[lock]\nmax_total_percent = nan\n",
		  "t.conf:2: max_total_percent: invalid percentage 'nan' (expected a number from 0 to "
		  "100, optionally with decimals and a trailing '%')\n" },
		{ "[lock]\nkeep = 1000001\n",
		  "t.conf:2: keep: number '1000001' is out of range (must be at most 1000000)\n" },
		{ "[lock]\nkeep = 99999999999999999999999\n",
		  "t.conf:2: keep: number '99999999999999999999999' is out of range (must be at most "
		  "1000000)\n" },
		{ "[lock]\nkeep = 3 scans\n",
		  "t.conf:2: keep: invalid number '3 scans' (expected a whole number of scans)\n" },
		{ "[lock]\nkeep = -1\n",
		  "t.conf:2: keep: invalid number '-1' (expected a whole number of scans)\n" },
		{ "[lock]\nalways = bin/busybox\n",
		  "t.conf:2: always: invalid path 'bin/busybox' (expected an absolute path of a file)\n" },
		{ "[lock]\nallow_blocking_filesystems = fuse/x\n",
		  "t.conf:2: allow_blocking_filesystems: invalid filesystem type 'fuse/x' (expected a "
		  "filesystem type as in /proc/self/mountinfo, such as nfs4 or fuse.sshfs)\n" },
		{ "[lock]\nowners = no-such-user-here\n",
		  "t.conf:2: owners: no user 'no-such-user-here'\n" },
		{ "[lock]\nowners = 4294967295\n",
		  "t.conf:2: owners: user '4294967295' is out of range (user IDs are below "
		  "4294967295)\n" },
		{ "[processes]\nonly_critical = maybe\n",
		  "t.conf:2: only_critical: invalid boolean 'maybe' (expected yes/no, true/false, on/off "
		  "or 1/0)\n" },
		{ "[processes]\ncritical_names = systemd-journald\n",
		  "t.conf:2: critical_names: 'systemd-journald' is 16 bytes, but process names (comm) "
		  "are at most 15 bytes\n" },
		{ "[processes]\ncritical_cgroups = [a\n", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].want) {
			load_fails(cases[i].text, cases[i].want, cases[i].text);
		} else {
			struct config cfg;
			struct sink s;
			int r = load(cases[i].text, &cfg, &s);
			char *n = escape(cases[i].text), *t = escape(s.text);

			CHECK(r == -EINVAL && s.count == 1 && strstr(s.text, "invalid regular expression"),
			      "%s: one regex error: %s", n, t);
			free(n);
			free(t);
		}
	}
}

static void test_regex_error(void)
{
	char want[512], why[256];
	regex_t re;
	int r = regcomp(&re, "(", REG_EXTENDED | REG_NOSUB);

	CHECK(r != 0, "'(' does not compile here either");
	regerror(r, &re, why, sizeof(why));
	snprintf(want, sizeof(want), "t.conf:3: exclude: invalid regular expression '(': %s\n", why);
	load_fails("[lock]\nexclude = ^/a\n\t(\n\t^/b\n", want, "regex error with regerror text");
}

/* glibc's regcomp() would take gigabytes for these; they are refused before it runs. */
static void test_regex_complexity(void)
{
	static const char *const ok[] = {
		"^/(usr|bin|sbin|lib[^/]*|opt)/", "[]+]+\\.so", "[^]a]*x", "[[:alpha:]+]+$",
		"a\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+\\+",
		"[+++++++++++++++++++++++]", "a**********************", "(a{255}){255}", "a{1,}b{3,5}",
	};
	static const char *const bad[] = {
		"x++++++++++++++++++++++", "(a{1000}){1000}", "((a+)+){60000}", "a{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}{2}",
		"((a{50001}{2}",
	};
	char text[256], want[512];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config cfg;

		snprintf(text, sizeof(text), "[lock]\nexclude = %s\n", ok[i]);
		if (load_ok(text, &cfg, ok[i]))
			config_free(&cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[lock]\nexclude = %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "t.conf:2: exclude: regular expression '%s' is too complex (its repetitions "
			 "expand to more than 100000 elements)\n",
			 bad[i]);
		load_fails(text, want, bad[i]);
	}
}

/* ---- rules across keys ---- */

static void test_cross_checks(void)
{
	struct config cfg;

	load_fails("[lock]\nmax_total = 0\n\nmax_total_percent = 0%\n",
		   "t.conf:4: no budget: max_total and max_total_percent are both 0, so nothing could "
		   "be locked (set at least one of them)\n",
		   "no budget, at the later line");
	load_fails("[lock]\nmax_total_percent = 0\nmax_total = 0\n",
		   "t.conf:3: no budget: max_total and max_total_percent are both 0, so nothing could "
		   "be locked (set at least one of them)\n",
		   "no budget, either order");
	if (load_ok("[lock]\nmax_total_percent = 0\n", &cfg, "percent 0 alone is fine"))
		config_free(&cfg);
	if (load_ok("[lock]\nmax_total = 0\n", &cfg, "max_total 0 alone is fine"))
		config_free(&cfg);
	load_fails("[processes]\nonly_critical = yes\n",
		   "t.conf:2: only_critical is set, but critical_names and critical_cgroups are both "
		   "empty: no process would be scanned\n",
		   "only_critical with nothing to scan");
	if (load_ok("[processes]\nonly_critical = yes\ncritical_cgroups = ^/system\\.slice/\n", &cfg,
		    "only_critical with cgroups")) {
		CHECK(cfg.only_critical, "only_critical kept");
		config_free(&cfg);
	}
	if (load_ok("[processes]\ncritical_names = sshd\nonly_critical = 1\n", &cfg,
		    "only_critical with names"))
		config_free(&cfg);
}

/* ---- lists ---- */

static void test_lists(void)
{
	struct config cfg;

	if (load_ok("[lock]\n"
		    "include = ^/a/\n"
		    "  ^/b/\n"
		    "\t^/c d/ ; comment\n"
		    "; a comment between items\n"
		    "\n"
		    "  ^/e/\n"
		    "what = whole\n"
		    "include = ^/f/\n"
		    "exclude =\n"
		    "    x y  \n"
		    "always = /bin/a\n"
		    "always = /bin/b\n"
		    "always =\n",
		    &cfg, "list file")) {
		CHECK(cfg.include.n == 5, "include has 5 items (got %zu)", cfg.include.n);
		CHECK(!regex_list_match(&cfg.include, "/usr/bin/x"), "the default include is replaced");
		check_text(cfg.include.n > 2 ? cfg.include.src[2] : NULL, "^/c d/",
			  "continuation: comment stripped, inner space kept");
		CHECK(regex_list_match(&cfg.include, "/e/x") && regex_list_match(&cfg.include, "/f/x"),
		      "items after blank lines and repeated keys are added");
		CHECK(cfg.exclude.n == 1, "exclude = then a continuation line: one item");
		check_text(cfg.exclude.n ? cfg.exclude.src[0] : NULL, "x y", "item trimmed at both ends");
		CHECK(cfg.always.n == 2, "always: repeated key adds, a later empty value adds nothing");
		CHECK(cfg.what == WHAT_WHOLE, "a scalar between list lines");
		config_free(&cfg);
	}
	if (load_ok("[lock]\nexclude = ^/a/\n[processes]\n[lock]\nexclude = ^/b/\n", &cfg,
		    "repeat across two [lock] sections")) {
		CHECK(cfg.exclude.n == 2, "a repeated section header keeps adding (got %zu)",
		      cfg.exclude.n);
		config_free(&cfg);
	}
	if (load_ok("[lock]\ninclude =\n", &cfg, "empty include")) {
		CHECK(cfg.include.n == 0, "'include =' alone empties the default list");
		config_free(&cfg);
	}
	if (load_ok("[lock]\ninclude =;x\n", &cfg, "';' right after '=' is not a comment")) {
		check_text(cfg.include.n ? cfg.include.src[0] : NULL, ";x", "value ';x'");
		config_free(&cfg);
	}
}

/* ---- scalars twice, continuations of scalars ---- */

static void test_scalar_rules(void)
{
	load_fails("[daemon]\ninterval = 10s\nlog_level = info\ninterval = 20s\n",
		   "t.conf:4: 'interval' already set on line 2\n", "scalar set twice");
	load_fails("[lock]\nkeep = x\n[daemon]\n[lock]\nkeep = 4\n",
		   "t.conf:2: keep: invalid number 'x' (expected a whole number of scans)\n"
		   "t.conf:5: 'keep' already set on line 2\n",
		   "set twice after a bad value, across sections");
	load_fails("[daemon]\nstate_file = /a\n  /b\n",
		   "t.conf:3: 'state_file' takes one value, but this indented line continues it\n",
		   "continuation of a scalar");
}

/* ---- unknown names and suggestions ---- */

static void test_unknown_names(void)
{
	load_fails("[daemon]\n\n; c\n\n\n\nintervall = 5\n",
		   "t.conf:7: unknown key 'intervall' in [daemon] (did you mean 'interval'?)\n",
		   "unknown key with suggestion");
	load_fails("[daemon]\nInterval = 5\n",
		   "t.conf:2: unknown key 'Interval' in [daemon] (did you mean 'interval'?)\n",
		   "keys are case-sensitive; case is only a suggestion");
	load_fails("[daemon]\ninclude = ^/x/\n  ^/y/\n",
		   "t.conf:2: unknown key 'include' in [daemon] (it belongs in [lock])\n",
		   "key of another section, its continuation dropped silently");
	load_fails("[daemon]\nexlude = x\n",
		   "t.conf:2: unknown key 'exlude' in [daemon] (did you mean 'exclude' in [lock]?)\n",
		   "close to a key of another section");
	load_fails("[daemon]\nintrvl = 1\n",
		   "t.conf:2: unknown key 'intrvl' in [daemon] (did you mean 'interval'?)\n",
		   "suggestion at edit distance 2");
	load_fails("[daemon]\nintvl = 1\n", "t.conf:2: unknown key 'intvl' in [daemon]\n",
		   "no suggestion at edit distance 3");
	load_fails("[lk]\n[prcsss]\n",
		   "t.conf:1: unknown section [lk] (did you mean [lock]?)\n"
		   "t.conf:2: unknown section [prcsss]\n",
		   "section suggestions at edit distance 2 and 3");
	load_fails("[lock]\nfrobnicate = 1\n", "t.conf:2: unknown key 'frobnicate' in [lock]\n",
		   "unknown key, nothing close");
	load_fails("[lock]\nmax total = 1G\n",
		   "t.conf:2: unknown key 'max total' in [lock] (did you mean 'max_total'?)\n",
		   "key with a space");
	load_fails("[lok]\nkeep = 1\nnonsense = 2\n[lock]\nkep = 2\n",
		   "t.conf:1: unknown section [lok] (did you mean [lock]?)\n"
		   "t.conf:5: unknown key 'kep' in [lock] (did you mean 'keep'?)\n",
		   "unknown section: suggestion, its keys skipped, next section checked again");
	load_fails("[Processes]\n", "t.conf:1: unknown section [Processes] (did you mean [processes]?)\n",
		   "section names are case-sensitive");
	load_fails("[general]\n", "t.conf:1: unknown section [general]\n", "unknown section");
	load_fails("interval = 5\nfoo = 1\n[daemon]\n",
		   "t.conf:1: key 'interval' before any [section] header (it belongs in [daemon])\n"
		   "t.conf:2: key 'foo' before any [section] header\n",
		   "keys before any section");
}

/* ---- syntax: every bad line reported with its number ---- */

static void test_syntax_errors(void)
{
	load_fails("[lock]\n"
		   "keep 3\n"
		   "[daemon\n"
		   "interval = 5\n"
		   "[lock] what = whole\n"
		   "= 5\n"
		   "[lock] ; fine\n"
		   "keep = 3 ; fine\n"
		   "what: mapped # not an inline comment\n",
		   "t.conf:2: expected 'key = value' or '[section]'\n"
		   "t.conf:3: expected ']' at the end of the section name\n"
		   "t.conf:4: unknown key 'interval' in [lock] (it belongs in [daemon])\n"
		   "t.conf:5: unexpected text after the section name: 'what = whole'\n"
		   "t.conf:6: expected a key name before '='\n"
		   "t.conf:9: what: invalid value 'mapped # not an inline comment' (expected whole, "
		   "mapped or resident)\n",
		   "several syntax errors, all reported; a broken header leaves the section as it was");
	load_fails("[lock]\n"
		   "include = ^/a/\n"
		   "  [processes]\n"
		   "only_critical = yes\n"
		   "critical_names = sshd\n"
		   "keep = 1\n",
		   "t.conf:3: indented [processes] continues the value of 'include'; remove the "
		   "indentation to start the section\n"
		   "t.conf:4: unknown key 'only_critical' in [lock] (it belongs in [processes])\n"
		   "t.conf:5: unknown key 'critical_names' in [lock] (it belongs in [processes])\n",
		   "indented section header: reported; inih stays in [lock] for the lines after it");
	load_fails("[lock]\n"
		   "include = ^/a/\n"
		   "  exclude = ^/b/\n"
		   "  ^/c/\n"
		   "keep = x\n",
		   "t.conf:3: indented 'exclude = ^/b/' continues the value of 'include'; remove the "
		   "indentation to set a key\n"
		   "t.conf:5: keep: invalid number 'x' (expected a whole number of scans)\n",
		   "indented key assignment");
}

/* inih returns only the first syntax error; every one is reported, in line order with the rest. */
static void test_every_syntax_error(void)
{
	char *text, *t;
	size_t len = 0, size = 8192;
	struct config cfg;
	struct sink s;
	int r;

	load_fails("[lock]\nfoo\nkeep = x\n[bar\nwhat = y\nbaz\n: 5\n",
		   "t.conf:2: expected 'key = value' or '[section]'\n"
		   "t.conf:3: keep: invalid number 'x' (expected a whole number of scans)\n"
		   "t.conf:4: expected ']' at the end of the section name\n"
		   "t.conf:5: what: invalid value 'y' (expected whole, mapped or resident)\n"
		   "t.conf:6: expected 'key = value' or '[section]'\n"
		   "t.conf:7: expected a key name before ':'\n",
		   "syntax and value errors interleaved, in line order");
	/* A line inih calls an error is, to inih, like an empty one: the indented line after it
	 * still continues the key above (the regex error shows the item went to include). */
	load("[lock]\ninclude = ^/a/\nnonsense\n  (\n", &cfg, &s);
	t = escape(s.text);
	CHECK(s.count == 2 && strstr(s.text, "t.conf:3: expected 'key = value'") &&
		      strstr(s.text, "t.conf:4: include: invalid regular expression '('"),
	      "a continuation after a syntax error continues the key: %s", t);
	free(t);

	/* Many of them: each at its line, and the value error after them. */
	text = malloc(size);
	if (!text)
		abort();
	len += (size_t)snprintf(text + len, size - len, "[lock]\n");
	for (int i = 0; i < 150; i++)
		len += (size_t)snprintf(text + len, size - len, "junk%d\n", i);
	snprintf(text + len, size - len, "keep = x\n");
	r = load(text, &cfg, &s);
	CHECK(r == -EINVAL && s.count == 151, "150 syntax errors and a value error: 151 messages "
					      "(got %u)", s.count);
	CHECK(strstr(s.text, "t.conf:2: expected 'key = value' or '[section]'\n") &&
		      strstr(s.text, "t.conf:151: expected 'key = value' or '[section]'\n"
				     "t.conf:152: keep: invalid number 'x'"),
	      "150 syntax errors: the first and the last at their lines, then the value error");
	free(text);
}

/* inih calls no handler for a section line: the layer around it looks at each one. */
static void test_section_lines(void)
{
	char text[256];
	struct config cfg;

	load_fails("\xEF\xBB\xBF[lk]\nkeep = 1\n",
		   "t.conf:1: unknown section [lk] (did you mean [lock]?)\n",
		   "unknown section on line 1 after a BOM");
	load_fails("[lok]\nkeep = 1\n  2\nfoo\n",
		   "t.conf:1: unknown section [lok] (did you mean [lock]?)\n"
		   "t.conf:4: expected 'key = value' or '[section]'\n",
		   "keys of an unknown section and their continuations are skipped");
	load_fails("[lock]]\n", "t.conf:1: unexpected text after the section name: ']'\n",
		   "a second ']'");
	snprintf(text, sizeof(text), "[%s]\nkeep = 1\n",
		 "a-section-name-longer-than-the-fifty-bytes-inih-keeps-of-it");
	load_fails(text,
		   "t.conf:1: unknown section [a-section-name-longer-than-the-fifty-bytes-inih-k]\n",
		   "a long unknown section name, reported once, as inih keeps it (49 bytes)");
	if (load_ok("  [lock]\n  keep = 2\n[daemon]\nlog_level = debug\n[lock] # c\n"
		    "\twhat = whole\n",
		    &cfg, "indented lines with no key above them are ordinary lines")) {
		CHECK(cfg.keep_scans == 2 && cfg.what == WHAT_WHOLE && cfg.log_level == LOG_LEVEL_DEBUG,
		      "indented section and key lines read as such");
		config_free(&cfg);
	}
}

static void test_continuations(void)
{
	struct config cfg;

	if (load_ok("[processes]\ncritical_names = a\n  b;c\n\td\t; c\n  ; only a comment\n"
		    "  e ;f\n",
		    &cfg, "inline comments on continuation lines")) {
		CHECK(cfg.critical_names.n == 4, "four names (got %zu)", cfg.critical_names.n);
		check_text(cfg.critical_names.n > 1 ? cfg.critical_names.v[1] : NULL, "b;c",
			  "';' without white space before it is kept");
		check_text(cfg.critical_names.n > 2 ? cfg.critical_names.v[2] : NULL, "d",
			  "comment after a tab cut, the tab too");
		check_text(cfg.critical_names.n > 3 ? cfg.critical_names.v[3] : NULL, "e",
			  "comment after a space cut");
		config_free(&cfg);
	}
	load_fails("[lock]\nkeep = 1\n  2\n  3\n",
		   "t.conf:3: 'keep' takes one value, but this indented line continues it\n"
		   "t.conf:4: 'keep' takes one value, but this indented line continues it\n",
		   "each continuation of a scalar reported");
	load_fails("[lock]\ninclude = ^/a/\n  [processes] x ; c\n",
		   "t.conf:3: indented [processes] x continues the value of 'include'; remove the "
		   "indentation to start the section\n",
		   "indented section line with text after it");
	if (load_ok("[lock]\ninclude = ^/a/\n  [xy]\n  other = 1\n", &cfg,
		    "indented lines that name no section or key of the section are items")) {
		CHECK(cfg.include.n == 3 && regex_list_match(&cfg.include, "x") &&
			      regex_list_match(&cfg.include, "other = 1"),
		      "'[xy]' and 'other = 1' added to include");
		config_free(&cfg);
	}
	load_fails("[lock]\nkeep: 1\n  what: whole\n",
		   "t.conf:3: indented 'what: whole' continues the value of 'keep'; remove the "
		   "indentation to set a key\n",
		   "indented key with ':'");
}

static void test_many_errors(void)
{
	struct config cfg;
	struct sink s;
	int r = load("[daemon]\n"
		     "interval = soon\n"
		     "log_level = loud\n"
		     "[lock]\n"
		     "max_total = 1Q\n"
		     "keep = 2\n"
		     "keep = 3\n"
		     "whatever\n"
		     "[processes]\n"
		     "critical_names = a-name-that-is-too-long\n"
		     "  ok\n"
		     "  another-name-too-long\n",
		     &cfg, &s);

	char *t = escape(s.text);

	CHECK(r == -EINVAL, "many errors: -EINVAL");
	CHECK(s.count == 7, "many errors: all 7 reported (got %u)", s.count);
	CHECK(strstr(s.text, "t.conf:2: interval:") && strstr(s.text, "t.conf:3: log_level:") &&
		      strstr(s.text, "t.conf:5: max_total:") &&
		      strstr(s.text, "t.conf:7: 'keep' already set on line 6") &&
		      strstr(s.text, "t.conf:8: expected") &&
		      strstr(s.text, "t.conf:10: critical_names:") &&
		      strstr(s.text, "t.conf:12: critical_names: 'another-name-too-long'"),
	      "many errors: each at its line: %s", t);
	free(t);
}

/* ---- the line reader ---- */

static void test_long_lines(void)
{
	char text[1024], regex[256];
	struct config cfg;
	struct sink s;
	int r;

	/* inih's buffer holds 200 bytes: 198, the '\n' we always hand over, and the NUL. 250 bytes of
	 * content: one error at its line, and the tail is not read as a line. */
	memset(regex, 'a', sizeof(regex));
	snprintf(text, sizeof(text), "[lock]\n; two\ninclude = ^/%.237s/\nkeep = x\nwhat = mapped\n",
		 regex);
	r = load(text, &cfg, &s);
	CHECK(r == -EINVAL, "long line: -EINVAL");
	check_text(s.text,
		  "t.conf:3: line too long (250 bytes, at most 198)\n"
		  "t.conf:4: keep: invalid number 'x' (expected a whole number of scans)\n",
		  "long line: one error, the next line parsed with its own number");

	/* Exactly 198 bytes is fine; 199 is not. */
	snprintf(text, sizeof(text), "[lock]\ninclude = /%.187s\nwhat = mapped\n", regex);
	if (load_ok(text, &cfg, "198-byte line")) {
		CHECK(cfg.include.n == 1 && strlen(cfg.include.src[0]) == 188, "198-byte line read whole");
		CHECK(cfg.what == WHAT_MAPPED, "line after a 198-byte line");
		config_free(&cfg);
	}
	snprintf(text, sizeof(text), "[lock]\ninclude = /%.188s\nwhat = mapped\n", regex);
	load_fails(text, "t.conf:2: line too long (199 bytes, at most 198)\n", "199-byte line");
	snprintf(text, sizeof(text), "[lock]\nkeep = 1\ninclude = /%.188s", regex);
	load_fails(text, "t.conf:3: line too long (199 bytes, at most 198)\n",
		   "199-byte last line without a newline");

	/* An over-long key line takes its continuation lines with it. */
	snprintf(text, sizeof(text), "[lock]\nexclude = /%.200s\n  ^/x/\nkeep = y\n", regex);
	load_fails(text,
		   "t.conf:2: line too long (211 bytes, at most 198)\n"
		   "t.conf:4: keep: invalid number 'y' (expected a whole number of scans)\n",
		   "long key line: its continuations dropped, not added to another key");

	/* An over-long comment is an error too: inih would read its tail as a line. */
	snprintf(text, sizeof(text), "[lock]\n; %.220s\nwhat = whole\n", regex);
	load_fails(text, "t.conf:2: line too long (222 bytes, at most 198)\n", "long comment");

	/* The CR of a CRLF is a byte of the line like any other (inih strips it as white space). */
	snprintf(text, sizeof(text), "[lock]\r\ninclude = /%.186s\r\n", regex);
	if (load_ok(text, &cfg, "197 bytes plus CRLF")) {
		CHECK(cfg.include.n == 1 && strlen(cfg.include.src[0]) == 187, "no CR in the value");
		config_free(&cfg);
	}
	snprintf(text, sizeof(text), "[lock]\r\ninclude = /%.187s\r\n", regex);
	load_fails(text, "t.conf:2: line too long (199 bytes, at most 198)\n", "198 bytes plus CRLF");
}

static void test_bom_crlf(void)
{
	struct config cfg;

	if (load_ok("\xEF\xBB\xBF[daemon]\r\n"
		    "state_file = /var/x\r\n"
		    "interval = 5min\r\n"
		    "\r\n"
		    "[lock]\r\n"
		    "always =\r\n"
		    "  /bin/a\r\n"
		    "  /bin/b ; c\r\n",
		    &cfg, "BOM and CRLF")) {
		check_text(cfg.state_file, "/var/x", "no CR left in values");
		CHECK_U64(cfg.interval_usec, 300000000, "interval 5min with CRLF");
		CHECK(cfg.always.n == 2 && strv_contains(&cfg.always, "/bin/a") &&
			      strv_contains(&cfg.always, "/bin/b"),
		      "continuation lines with CRLF");
		config_free(&cfg);
	}
	if (load_ok("[lock]\nkeep = 9", &cfg, "no newline at the end")) {
		CHECK(cfg.keep_scans == 9, "last line without newline read");
		config_free(&cfg);
	}
	if (load_ok("", &cfg, "empty file")) {
		CHECK(cfg.keep_scans == 3 && cfg.include.n == 1, "empty file gives the defaults");
		config_free(&cfg);
	}
	load_fails("[daemon]\n\xEF\xBB\xBF[lock]\n",
		   "t.conf:2: expected 'key = value' or '[section]'\n", "a BOM after line 1 is junk");
	load_fails("[lock]\r\nkeep = 1\r\nkeep = 2\r\n", "t.conf:3: 'keep' already set on line 2\n",
		   "CRLF line numbers");
}

static void test_nul_byte(void)
{
	static const char text[] = "[lock]\nkeep = 1\0 2\nwhat = all\n  /x\n";
	struct config cfg;
	struct sink s;
	int r = load_len(text, sizeof(text) - 1, &cfg, &s);

	CHECK(r == -EINVAL, "NUL byte: -EINVAL");
	check_text(s.text,
		  "t.conf:2: NUL byte in line\n"
		  "t.conf:3: what: invalid value 'all' (expected whole, mapped or resident)\n"
		  "t.conf:4: 'what' takes one value, but this indented line continues it\n",
		  "NUL byte: reported, lines after it numbered right");
	CHECK(cfg.state_file == NULL, "NUL byte: cfg zeroed");
}

/* ---- files ---- */

static void test_missing_file(void)
{
	char path[512], want[600];
	struct config cfg;
	struct sink s = { .len = 0 };
	int r;

	snprintf(path, sizeof(path), "%s/no-such-file.conf", fixture_dir());
	r = config_load(path, &cfg, sink_error, &s);
	CHECK(r == -ENOENT, "missing file: -ENOENT (got %d)", r);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory\n", path);
	check_text(s.text, want, "missing file: the message names the file");
	CHECK(cfg.state_file == NULL && cfg.include.n == 0, "missing file: cfg zeroed");

	s = (struct sink){ .len = 0 };
	r = config_load(fixture_dir(), &cfg, sink_error, &s);
	CHECK(r == -EISDIR && s.count == 1, "a directory: -EISDIR (got %d)", r);
}

static const char *shipped_path(int argc, char **argv)
{
	const char *env = getenv("PRELOCKD_CONF");

	if (argc > 1)
		return argv[1];
	return env ? env : "prelockd.conf";
}

/* Every key of the table is in the shipped file, and the file gives exactly the defaults. */
static void test_shipped_file(const char *path)
{
	struct config def, cfg;
	struct sink s = { .len = 0 };
	char *want = NULL, *got = NULL, *text, *line, *save = NULL, *errors;
	size_t len;
	int r;

	CHECK(config_init_defaults(&def) == 0, "defaults for the shipped file");
	r = config_load(path, &cfg, sink_error, &s);
	errors = escape(s.text);
	CHECK(r == 0 && s.count == 0, "%s parses cleanly (r=%d): %s", path, r, errors);
	free(errors);
	if (r == 0) {
		want = print_string(&def);
		got = print_string(&cfg);
		check_text(got, want, "the shipped file sets exactly the defaults");
		config_free(&cfg);
	}
	text = read_file(path, &len);
	CHECK(text != NULL, "read %s", path);
	for (line = want && text ? strtok_r(want, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[64], pattern[80];

		if (line[0] == '[' || sscanf(line, "%63[a-z_]", key) != 1)
			continue;
		snprintf(pattern, sizeof(pattern), "\n%s =", key);
		CHECK(strstr(text, pattern), "the shipped file sets '%s'", key);
	}
	for (line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
		if (strlen(line) > 198)
			CHECK(false, "shipped line too long: %s", line);
	free(text);
	free(want);
	free(got);
	config_free(&def);
}

/* ---- printing (prelockd -t --print) ---- */

static void round_trip(const char *text, const char *name)
{
	struct config a, b;
	struct sink s = { .len = 0 };
	char *da, *db;
	int r;

	if (!load_ok(text, &a, name))
		return;
	da = print_string(&a);
	r = da ? config_load_buf("printed", da, strlen(da), &b, sink_error, &s) : -ENOMEM;
	CHECK(r == 0 && s.count == 0, "%s: the printed text parses back (r=%d, %u errors)", name, r, s.count);
	if (r == 0) {
		db = print_string(&b);
		check_text(db, da, name);
		CHECK(a.max_total_percent == b.max_total_percent && a.interval_usec == b.interval_usec &&
			      a.max_total_bytes == b.max_total_bytes,
		      "%s: numbers equal after the round trip", name);
		free(db);
		config_free(&b);
	}
	free(da);
	config_free(&a);
}

static void test_print(void)
{
	char long_item[256], text[512];
	struct config cfg;
	char *d;

	round_trip("", "round trip of the defaults");
	round_trip("[daemon]\ninterval = 1500ms\nstate_file =\nstatus_file = /run/x y\n"
		   "log_level = notice\n"
		   "[lock]\ninclude = ^/a/\n  ^/b c/\ninclude = #x\ninclude =;y\nexclude = \\.so$\n"
		   "what = mapped\nmax_file_size = 3\nmax_total = 64KiB\nmax_total_percent = 33.333\n"
		   "keep = 0\nalways = /bin/a\nalways = /bin/b\n"
		   "[processes]\nonly_critical = true\ncritical_names = sshd\n  Xorg\n"
		   "critical_cgroups = ^/user\\.slice/\n",
		   "round trip of everything set");
	round_trip("[daemon]\ninterval = 0\n[lock]\nmax_total_percent = 0.05\n", "round trip 0, 0.05");
	round_trip("[daemon]\ninterval = 7200\n[lock]\nmax_total_percent = 99.99\nmax_total = 0\n",
		   "round trip 2h, 99.99");
	round_trip("[daemon]\ninterval = 250us\n[lock]\nmax_total_percent = 0.000000000000001\n",
		   "round trip 250us, 1e-15");

	/* Items too long for "key = value": a key line with no spaces, a long continuation line. */
	memset(long_item, 'b', sizeof(long_item));
	snprintf(text, sizeof(text), "[lock]\nexclude=/%.189s\nalways =\n /%.196s\n", long_item,
		 long_item);
	round_trip(text, "round trip of the longest items");

	if (load_ok("[daemon]\ninterval = 7200s\n[lock]\nmax_file_size = 1048576\n"
		    "max_total_percent = 2.50%\nexclude =\n",
		    &cfg, "print format")) {
		d = print_string(&cfg);
		CHECK(d && strstr(d, "[daemon]\ninterval = 2h\n"), "durations printed in the largest unit");
		CHECK(d && strstr(d, "\nmax_file_size = 1M\n"), "sizes printed with a suffix");
		CHECK(d && strstr(d, "\nmax_total_percent = 2.5\n"), "percent printed short");
		CHECK(d && strstr(d, "\nexclude =\n"), "an empty list printed as 'key ='");
		CHECK(d && strstr(d, "\n\n[lock]\n") && strstr(d, "\n\n[processes]\n"),
		      "sections in table order");
		free(d);
		config_free(&cfg);
	}
}

/* ---- golden fixtures ---- */

static void golden(const char *conf, const char *expected, bool want_ok)
{
	char conf_path[512], exp_path[512];
	size_t conf_len = 0, exp_len = 0;
	char *text, *want;
	struct config cfg;
	struct sink s = { .len = 0 };
	int r;

	snprintf(conf_path, sizeof(conf_path), "%s/%s", fixture_dir(), conf);
	snprintf(exp_path, sizeof(exp_path), "%s/%s", fixture_dir(), expected);
	text = read_file(conf_path, &conf_len);
	want = read_file(exp_path, &exp_len);
	CHECK(text && want, "fixtures %s and %s exist", conf_path, exp_path);
	if (text && want) {
		r = config_load_buf(conf, text, conf_len, &cfg, sink_error, &s);
		CHECK(want_ok ? r == 0 : r == -EINVAL, "%s: returns %d", conf, r);
		if (r == 0) {
			char *d = print_string(&cfg);

			check_text(d, want, expected);
			free(d);
			config_free(&cfg);
		} else {
			check_text(s.text, want, expected);
		}
	}
	free(text);
	free(want);
}

int main(int argc, char **argv)
{
	test_parse_size();
	test_parse_duration();
	test_parse_bool();
	test_defaults();
	test_helpers();
	test_every_key_good();
	test_other_good_values();
	test_percent_values();
	test_every_key_bad();
	test_regex_error();
	test_regex_complexity();
	test_cross_checks();
	test_lists();
	test_scalar_rules();
	test_unknown_names();
	test_syntax_errors();
	test_many_errors();
	test_every_syntax_error();
	test_section_lines();
	test_continuations();
	test_long_lines();
	test_bom_crlf();
	test_nul_byte();
	test_missing_file();
	test_shipped_file(shipped_path(argc, argv));
	test_print();
	golden("bad.conf", "bad.expected", false);
	golden("good.conf", "good.expected", true);
	return check_done();
}
