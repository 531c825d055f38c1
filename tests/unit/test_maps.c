/* Tests for src/maps.c: the text parser on hand-written lines, hostile input and golden fixtures
 * (tests/fixtures/maps/NAME.maps -> NAME.expected, paths relative to the repo root, where the tests
 * run), and both readers against the live kernel on mappings this process makes itself.
 *
 * `test_maps --print FILE` prints FILE parsed in the golden format, to (re)make an .expected file,
 * which must then be read by hand before it is committed. */
#include "check.h"
#include "maps.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIXTURE_DIR "tests/fixtures/maps"
#define PAGE 4096u
#define MIN3(a, b, c) ((a) < (b) ? ((a) < (c) ? (a) : (c)) : ((b) < (c) ? (b) : (c)))

/* ---- helpers: collecting entries ---- */

struct saved {
	struct map_entry e; /* e.path points to path below */
	char *path;
};

struct collect {
	struct saved *v;
	size_t n, cap;
	size_t stop_after;     /* fn returns 42 after this many entries; 0 = never */
	bool only_exec_backed; /* keep only what PROCMAP_QUERY reports: file-backed exec VMAs */
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		perror("realloc");
		exit(2);
	}
	return p;
}

static bool exec_backed(const struct map_entry *e)
{
	/* The VMAs PROCMAP_QUERY_FILE_BACKED_VMA|VMA_EXECUTABLE returns, as the text shows them:
	 * executable and named by something other than a [special] name or nothing. */
	return (e->perms & MAP_PERM_EXEC) && e->kind != MAP_KIND_ANON &&
	       e->kind != MAP_KIND_SPECIAL;
}

static int collect_fn(const struct map_entry *e, void *ud)
{
	struct collect *c = ud;

	if (c->only_exec_backed && !exec_backed(e))
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n].e = *e;
	c->v[c->n].path = xrealloc(NULL, e->path_len + 1);
	memcpy(c->v[c->n].path, e->path, e->path_len + 1);
	c->v[c->n].e.path = c->v[c->n].path;
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 42 : 0;
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].path);
	free(c->v);
	*c = (struct collect){ 0 };
}

static bool entry_eq(const struct map_entry *a, const struct map_entry *b)
{
	return a->start == b->start && a->end == b->end && a->offset == b->offset &&
	       a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && a->perms == b->perms && a->kind == b->kind &&
	       a->deleted == b->deleted && a->path_len == b->path_len &&
	       memcmp(a->path, b->path, a->path_len + 1) == 0;
}

static const struct map_entry *find_start(const struct collect *c, uint64_t start)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].e.start == start)
			return &c->v[i].e;
	return NULL;
}

/* Parses a string literal (sizeof - 1 keeps embedded NULs) from an exact-size heap copy, so
 * ASan catches any read past len. */
static int parse_exact(const char *s, size_t len, struct collect *c, unsigned *bad)
{
	char *copy = xrealloc(NULL, len ? len : 1);
	int r;

	memcpy(copy, s, len);
	r = maps_parse_buf(copy, len, collect_fn, c, bad);
	free(copy);
	return r;
}
#define PARSE_LIT(lit, c, bad) parse_exact(lit, sizeof(lit) - 1, c, bad)

/* ---- helpers: the golden format ---- */

static const char *kind_name(enum map_kind k)
{
	switch (k) {
	case MAP_KIND_ANON:
		return "anon";
	case MAP_KIND_FILE:
		return "file";
	case MAP_KIND_SPECIAL:
		return "special";
	case MAP_KIND_DEVICE:
		return "device";
	case MAP_KIND_MEMFD:
		return "memfd";
	case MAP_KIND_SYSV:
		return "sysv";
	case MAP_KIND_OTHER:
		return "other";
	}
	return "INVALID";
}

struct strbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = 2 * (b->len + n + 1);
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* One entry per line: addresses, perms, offset, dev and inode as the kernel prints them, then
 * kind, deleted flag and the decoded path quoted with C-style escapes. */
static int golden_fn(const struct map_entry *e, void *ud)
{
	struct strbuf *b = ud;

	sb_printf(b,
		  "%08" PRIx64 "-%08" PRIx64 " %c%c%c%c %08" PRIx64 " %02x:%02x %" PRIu64 " %s %s ",
		  e->start, e->end, e->perms & MAP_PERM_READ ? 'r' : '-',
		  e->perms & MAP_PERM_WRITE ? 'w' : '-', e->perms & MAP_PERM_EXEC ? 'x' : '-',
		  e->perms & MAP_PERM_SHARED ? 's' : 'p', e->offset, e->dev_major, e->dev_minor,
		  e->inode, kind_name(e->kind), e->deleted ? "deleted" : "-");
	if (strlen(e->path) != e->path_len)
		sb_printf(b, "PATH_LEN_MISMATCH(%zu) ", e->path_len);
	sb_add(b, "\"", 1);
	for (size_t i = 0; i < e->path_len; i++) {
		unsigned char ch = (unsigned char)e->path[i];

		if (ch == '\n')
			sb_add(b, "\\n", 2);
		else if (ch == '\\' || ch == '"')
			sb_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			sb_printf(b, "\\x%02x", ch);
		else
			sb_add(b, (const char *)&ch, 1);
	}
	sb_add(b, "\"\n", 2);
	return 0;
}

static int read_all(const char *path, char **out, size_t *out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 65536;
	char *buf;

	if (fd < 0)
		return -errno;
	buf = xrealloc(NULL, cap);
	for (;;) {
		ssize_t n;

		if (len == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int r = -errno;

			close(fd);
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*out = buf;
	*out_len = len;
	return 0;
}

static char *golden_render(const char *buf, size_t len)
{
	struct strbuf b = { 0 };
	unsigned bad = 12345;

	maps_parse_buf(buf, len, golden_fn, &b, &bad);
	sb_printf(&b, "malformed %u\n", bad);
	return b.s;
}

/* ---- map_classify, map_entry_is_exec_file ---- */

static void test_classify(void)
{
	static const struct {
		const char *name;
		enum map_kind kind;
	} cases[] = {
		{ "", MAP_KIND_ANON },
		{ "[heap]", MAP_KIND_SPECIAL },
		{ "[stack]", MAP_KIND_SPECIAL },
		{ "[stack:123]", MAP_KIND_SPECIAL },
		{ "[vdso]", MAP_KIND_SPECIAL },
		{ "[vvar]", MAP_KIND_SPECIAL },
		{ "[vsyscall]", MAP_KIND_SPECIAL },
		{ "[anon:foo bar]", MAP_KIND_SPECIAL },
		{ "[heap", MAP_KIND_OTHER },
		{ "[", MAP_KIND_OTHER },
		{ "/dev/zero", MAP_KIND_DEVICE },
		{ "/dev/dri/card0", MAP_KIND_DEVICE },
		{ "/dev", MAP_KIND_FILE },
		{ "/devices.so", MAP_KIND_FILE },
		{ "/memfd:x", MAP_KIND_MEMFD },
		{ "/memfd:", MAP_KIND_MEMFD },
		{ "/memfd", MAP_KIND_FILE },
		{ "/SYSV00000000", MAP_KIND_SYSV },
		{ "/SYSV0a1B2c3d", MAP_KIND_SYSV },
		{ "/SYSV0000000", MAP_KIND_FILE },
		{ "/SYSV000000001", MAP_KIND_FILE },
		{ "/SYSV0000000g", MAP_KIND_FILE },
		{ "/usr/lib/libc.so.6", MAP_KIND_FILE },
		{ "/", MAP_KIND_FILE },
		{ "anon_inode:[perf_event]", MAP_KIND_OTHER },
		{ "socket:[77]", MAP_KIND_OTHER },
		{ "relative/path", MAP_KIND_OTHER },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum map_kind k = map_classify(cases[i].name);

		CHECK(k == cases[i].kind, "map_classify(\"%s\") = %s, want %s", cases[i].name,
		      kind_name(k), kind_name(cases[i].kind));
	}
}

static void test_is_exec_file(void)
{
	struct map_entry e = { .kind = MAP_KIND_FILE, .perms = MAP_PERM_READ | MAP_PERM_EXEC };

	CHECK(map_entry_is_exec_file(&e), "r-x file is an exec file");
	e.deleted = true;
	CHECK(map_entry_is_exec_file(&e),
	      "a deleted r-x file is still reported (the caller decides)");
	e.perms = MAP_PERM_READ;
	CHECK(!map_entry_is_exec_file(&e), "r-- file is not");
	e.perms = MAP_PERM_EXEC;
	e.kind = MAP_KIND_MEMFD;
	CHECK(!map_entry_is_exec_file(&e), "--x memfd is not");
	e.kind = MAP_KIND_SPECIAL;
	CHECK(!map_entry_is_exec_file(&e), "--x [vdso] is not");
	e.kind = MAP_KIND_DEVICE;
	CHECK(!map_entry_is_exec_file(&e), "--x device is not");
}

/* ---- the text parser on hand-written lines ---- */

struct want {
	uint64_t start, end, offset, inode;
	unsigned major, minor, perms;
	enum map_kind kind;
	bool deleted;
	const char *path;
	size_t path_len; /* 0: strlen(path) */
};

/* s with newlines and other control bytes escaped, so a TAP line stays one line. */
static const char *shown(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; *s && n + 5 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", ch);
		else
			out[n++] = *s;
	}
	out[n] = '\0';
	return out;
}

static void check_entry(const struct map_entry *e, const struct want *w, const char *what)
{
	char show[160];

	size_t want_len = w->path_len ? w->path_len : strlen(w->path);

	if (!e) {
		CHECK(false, "%s: entry missing", what);
		return;
	}
	CHECK(e->start == w->start && e->end == w->end,
	      "%s: range %" PRIx64 "-%" PRIx64 ", want %" PRIx64 "-%" PRIx64, what, e->start,
	      e->end, w->start, w->end);
	CHECK(e->offset == w->offset && e->inode == w->inode && e->dev_major == w->major &&
		  e->dev_minor == w->minor,
	      "%s: offset %" PRIx64 " dev %x:%x inode %" PRIu64, what, e->offset, e->dev_major,
	      e->dev_minor, e->inode);
	CHECK(e->perms == w->perms && e->kind == w->kind && e->deleted == w->deleted,
	      "%s: perms %#x kind %s deleted %d", what, e->perms, kind_name(e->kind), e->deleted);
	CHECK(e->path_len == want_len && memcmp(e->path, w->path, want_len + 1) == 0,
	      "%s: path \"%s\" (%zu bytes)", what, shown(e->path, show, sizeof(show)), e->path_len);
}

#define RX (MAP_PERM_READ | MAP_PERM_EXEC)
#define RW (MAP_PERM_READ | MAP_PERM_WRITE)

static void test_parse_lines(void)
{
	static const char text[] =
	    "55dd82e55000-55dd82f16000 r-xp 0002f000 fe:00 247101                     /usr/bin/bash\n"
	    "55ddad3fc000-55ddad43d000 rw-p 00000000 00:00 0                          [heap]\n"
	    "7f622b400000-7f622b410000 r-xp 00001000 fe:00 123456                     /opt/My App/lib/libfoo 2.so\n"
	    "7f622b410000-7f622b411000 r-xp 00000000 fe:00 123457                     /usr/lib/libold.so.1 (deleted)\n"
	    "7f622b411000-7f622b412000 r-xp 00000000 fe:00 123458                     /tmp/new\\012line x.so\n"
	    "7f622b412000-7f622b413000 r-xp 00002000 fe:00 123459                     /home/u/back\\slash\\01.so\n"
	    "7f622b413000-7f622b414000 rw-p 00000000 00:00 0                          [anon:foo]\n"
	    "7f622b414000-7f622b415000 r-xs 00000000 00:01 2049                       /memfd:jit-code (deleted)\n"
	    "7f622b415000-7f622b416000 rw-s 00000000 00:01 32769                      /SYSV00000000 (deleted)\n"
	    "7f622b416000-7f622b417000 rw-s 00000000 00:01 4                          /dev/zero (deleted)\n"
	    "7f622b417000-7f622b418000 rw-s 1f0000000 e2:80 1015                      /dev/dri/card0\n"
	    "7f622b418000-7f622b419000 rw-p 00000000 00:0f 1054                       anon_inode:[perf_event]\n"
	    "7f622b41a000-7f622b41b000 rw-p 00000000 00:00 0      \n"
	    "7f622b41b000-7f622b41c000 rw-p 00000000 00:00 0\n"
	    "7f622b41c000-7f622b41d000 r-xp 00000000 103:02 5                         /usr/bin/trailing space \n"
	    "7f622b80b000-7f622b80d000 r-xp 00000000 00:00 0                          [vdso]\n"
	    "7f622b805000-7f622b809000 r--p 00000000 00:00 0                          [vvar]\n"
	    "7ffddb267000-7ffddb288000 rw-p 00000000 00:00 0                          [stack]\n"
	    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";
	static const struct want want[] = {
		{ 0x55dd82e55000, 0x55dd82f16000, 0x2f000, 247101, 0xfe, 0, RX, MAP_KIND_FILE,
		  false, "/usr/bin/bash", 0 },
		{ 0x55ddad3fc000, 0x55ddad43d000, 0, 0, 0, 0, RW, MAP_KIND_SPECIAL, false, "[heap]",
		  0 },
		{ 0x7f622b400000, 0x7f622b410000, 0x1000, 123456, 0xfe, 0, RX, MAP_KIND_FILE, false,
		  "/opt/My App/lib/libfoo 2.so", 0 },
		{ 0x7f622b410000, 0x7f622b411000, 0, 123457, 0xfe, 0, RX, MAP_KIND_FILE, true,
		  "/usr/lib/libold.so.1", 0 },
		{ 0x7f622b411000, 0x7f622b412000, 0, 123458, 0xfe, 0, RX, MAP_KIND_FILE, false,
		  "/tmp/new\nline x.so", 0 },
		{ 0x7f622b412000, 0x7f622b413000, 0x2000, 123459, 0xfe, 0, RX, MAP_KIND_FILE, false,
		  "/home/u/back\\slash\\01.so", 0 },
		{ 0x7f622b413000, 0x7f622b414000, 0, 0, 0, 0, RW, MAP_KIND_SPECIAL, false,
		  "[anon:foo]", 0 },
		{ 0x7f622b414000, 0x7f622b415000, 0, 2049, 0, 1, RX | MAP_PERM_SHARED,
		  MAP_KIND_MEMFD, true, "/memfd:jit-code", 0 },
		{ 0x7f622b415000, 0x7f622b416000, 0, 32769, 0, 1, RW | MAP_PERM_SHARED,
		  MAP_KIND_SYSV, true, "/SYSV00000000", 0 },
		{ 0x7f622b416000, 0x7f622b417000, 0, 4, 0, 1, RW | MAP_PERM_SHARED, MAP_KIND_DEVICE,
		  true, "/dev/zero", 0 },
		{ 0x7f622b417000, 0x7f622b418000, 0x1f0000000, 1015, 0xe2, 0x80,
		  RW | MAP_PERM_SHARED, MAP_KIND_DEVICE, false, "/dev/dri/card0", 0 },
		{ 0x7f622b418000, 0x7f622b419000, 0, 1054, 0, 0xf, RW, MAP_KIND_OTHER, false,
		  "anon_inode:[perf_event]", 0 },
		{ 0x7f622b41a000, 0x7f622b41b000, 0, 0, 0, 0, RW, MAP_KIND_ANON, false, "", 0 },
		{ 0x7f622b41b000, 0x7f622b41c000, 0, 0, 0, 0, RW, MAP_KIND_ANON, false, "", 0 },
		{ 0x7f622b41c000, 0x7f622b41d000, 0, 5, 0x103, 2, RX, MAP_KIND_FILE, false,
		  "/usr/bin/trailing space ", 0 },
		{ 0x7f622b80b000, 0x7f622b80d000, 0, 0, 0, 0, RX, MAP_KIND_SPECIAL, false, "[vdso]",
		  0 },
		{ 0x7f622b805000, 0x7f622b809000, 0, 0, 0, 0, MAP_PERM_READ, MAP_KIND_SPECIAL,
		  false, "[vvar]", 0 },
		{ 0x7ffddb267000, 0x7ffddb288000, 0, 0, 0, 0, RW, MAP_KIND_SPECIAL, false,
		  "[stack]", 0 },
		{ 0xffffffffff600000, 0xffffffffff601000, 0, 0, 0, 0, MAP_PERM_EXEC,
		  MAP_KIND_SPECIAL, false, "[vsyscall]", 0 },
	};
	const size_t n_want = sizeof(want) / sizeof(want[0]);
	struct collect c = { 0 };
	unsigned bad = 999;
	int r = PARSE_LIT(text, &c, &bad);

	CHECK(r == 0, "hand-written lines: returns %d", r);
	CHECK(bad == 0, "hand-written lines: %u malformed, want 0", bad);
	CHECK_U64(c.n, n_want, "hand-written lines: entries");
	for (size_t i = 0; i < n_want && i < c.n; i++) {
		char what[64];

		snprintf(what, sizeof(what), "hand-written line %zu", i + 1);
		check_entry(&c.v[i].e, &want[i], what);
	}
	collect_free(&c);
}

/* Each line alone, with a verdict; the ones that parse are checked field by field in the golden
 * file of hostile.maps. */
static void test_hostile_lines(void)
{
	static const struct {
		const char *text;
		size_t len;
		bool ok;
		const char *why;
	} cases[] = {
#define L(s, ok, why) { s, sizeof(s) - 1, ok, why }
		L("00400000-00401000 r-xp 00000000 08:01 42 /bin/ok", true, "minimal padding"),
		L("0040g000-00401000 r-xp 00000000 08:01 42 /bin/x", false, "bad hex in start"),
		L("00400000-0040100z r-xp 00000000 08:01 42 /bin/x", false, "bad hex in end"),
		L("00400000-00401000 r-xp 0000x000 08:01 42 /bin/x", false, "bad hex in offset"),
		L("00400000-00401000 r-xp 00000000 08:01", false, "no inode"),
		L("00400000-00401000 r-xp 00000000 08:01 ", false, "no inode, trailing space"),
		L("00400000-00401000 r-xp 00000000", false, "no dev"),
		L("00400000-00401000 r-xp", false, "no offset"),
		L("00400000-00401000", false, "no perms"),
		L("00400000", false, "only start"),
		L("00402000-00401000 r-xp 00000000 08:01 42 /bin/x", false, "start > end"),
		L("00401000-00401000 r-xp 00000000 08:01 42 /bin/x", true, "start == end"),
		L("00400000-00401000 r-x 00000000 08:01 42 /bin/x", false, "3-char perms"),
		L("00400000-00401000 r-xpp 00000000 08:01 42 /bin/x", false, "5-char perms"),
		L("00400000-00401000 rwxq 00000000 08:01 42 /bin/x", false, "perm q"),
		L("00400000-00401000 xr-p 00000000 08:01 42 /bin/x", false, "perms out of order"),
		L("00400000-00401000 R-XP 00000000 08:01 42 /bin/x", false, "upper-case perms"),
		L("00400000-00401000 r-xp 00000000 08:01 abc /bin/x", false, "inode abc"),
		L("00400000-00401000 r-xp 00000000 08:01 12a /bin/x", false, "inode 12a"),
		L("00400000-00401000 r-xp 00000000 08:01 -1 /bin/x", false, "inode -1"),
		L("00400000-00401000 r-xp 00000000 08:01 42/bin/x", false, "no space after inode"),
		L("10000000000000000-10000000000000001 r-xp 00000000 08:01 42 /x", false,
		  "start over 64 bits"),
		L("0-10000000000000000 r-xp 00000000 08:01 42 /x", false, "end over 64 bits"),
		L("0-1 r-xp 10000000000000000 08:01 42 /x", false, "offset over 64 bits"),
		L("00400000-00401000 r-xp 00000000 08:01 18446744073709551616 /x", false,
		  "inode over 64 bits"),
		L("00400000-00401000 r-xp 00000000 08:01 99999999999999999999 /x", false,
		  "inode far over 64 bits"),
		L("0-ffffffffffffffff r-xp ffffffffffffffff ffffffff:ffffffff 18446744073709551615 /x",
		  true, "every field at its maximum"),
		L("00000000000000000000000400000-401000 r-xp 0 0:0 0 /x", true, "leading zeros"),
		L("00400000-00401000 r-xp 00000000 100000000:01 42 /x", false,
		  "major over 32 bits"),
		L("00400000-00401000 r-xp 00000000 01:100000000 42 /x", false,
		  "minor over 32 bits"),
		L("00400000-00401000 r-xp 00000000 0x:01 42 /x", false, "dev major 0x"),
		L("00400000-00401000 r-xp 00000000 08:zz 42 /x", false, "dev minor zz"),
		L("00400000-00401000 r-xp 00000000 08-01 42 /x", false, "dev with a dash"),
		L("00400000-00401000 r-xp 00000000 0801 42 /x", false, "dev without colon"),
		L("\n", false, "empty line"),
		L("        ", false, "only spaces"),
		L("00400000-00401000 r-xp 00000000 08:01 42 /bin/nul\0byte", false,
		  "NUL in the name"),
		L("0040\0000-00401000 r-xp 00000000 08:01 42 /bin/x", false, "NUL in start"),
		L("00400000-00401000 r-xp 00000000 08:01 42\0/bin/x", false, "NUL after inode"),
		L(" 00400000-00401000 r-xp 00000000 08:01 42 /bin/x", false, "leading space"),
		L("00400000-00401000\tr-xp 00000000 08:01 42 /bin/x", false, "tab separator"),
		L("00400000-00401000  r-xp 00000000 08:01 42 /bin/x", false, "double space"),
		L("00400000 00401000 r-xp 00000000 08:01 42 /bin/x", false, "no dash"),
		L("-00401000 r-xp 00000000 08:01 42 /bin/x", false, "no start"),
		L("00400000-00401000 r-xp 00000000 08:01 42 \t/bin/x", true, "tab begins the name"),
#undef L
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collect c = { 0 };
		unsigned bad = 999;

		parse_exact(cases[i].text, cases[i].len, &c, &bad);
		CHECK(c.n == (cases[i].ok ? 1u : 0u) && bad == (cases[i].ok ? 0u : 1u),
		      "%s: %zu entries, %u malformed, want %s", cases[i].why, c.n, bad,
		      cases[i].ok ? "parsed" : "malformed");
		collect_free(&c);
	}
}

/* A line "0-1000 r-xp 0 00:00 1 " followed by name; returns a malloc'ed line. */
static char *line_with_name(const char *name, size_t *len)
{
	static const char head[] = "0-1000 r-xp 0 00:00 1 ";
	size_t n = strlen(name);
	char *s = xrealloc(NULL, sizeof(head) - 1 + n);

	memcpy(s, head, sizeof(head) - 1);
	memcpy(s + sizeof(head) - 1, name, n);
	*len = sizeof(head) - 1 + n;
	return s;
}

/* A path of n bytes: '/' then fill, with "\012" (one decoded byte) at the front when escaped. */
static char *long_name(size_t decoded_len, bool escaped, const char *suffix)
{
	size_t sl = strlen(suffix), body = decoded_len - sl;
	char *s = xrealloc(NULL, decoded_len + 4);
	size_t i = 0;

	s[i++] = '/';
	if (escaped) {
		memcpy(s + i, "\\012", 4);
		i += 4;
		body -= 1;
	}
	memset(s + i, 'n', body - 1);
	i += body - 1;
	memcpy(s + i, suffix, sl + 1);
	return s;
}

static void check_name_len(size_t decoded_len, bool escaped, const char *suffix, bool ok,
			   size_t want_path_len)
{
	char *name = long_name(decoded_len, escaped, suffix);
	size_t len;
	char *line = line_with_name(name, &len);
	struct collect c = { 0 };
	unsigned bad = 999;

	parse_exact(line, len, &c, &bad);
	if (ok)
		CHECK(c.n == 1 && bad == 0 && c.v[0].e.path_len == want_path_len &&
			  strlen(c.v[0].e.path) == want_path_len,
		      "a name of %zu decoded bytes%s%s is kept, path %zu bytes", decoded_len,
		      escaped ? " (escaped)" : "", suffix, want_path_len);
	else
		CHECK(c.n == 0 && bad == 1, "a name of %zu decoded bytes%s%s is malformed",
		      decoded_len, escaped ? " (escaped)" : "", suffix);
	collect_free(&c);
	free(line);
	free(name);
}

/* The limit is PATH_MAX - 1 decoded bytes, " (deleted)" included: what PROCMAP_QUERY returns. */
static void test_name_limits(void)
{
	check_name_len(4095, false, "", true, 4095);
	check_name_len(4096, false, "", false, 0);
	check_name_len(4095, true, "", true, 4095);
	check_name_len(4096, true, "", false, 0);
	check_name_len(4095, false, " (deleted)", true, 4085);
	check_name_len(4096, false, " (deleted)", false, 0);
	check_name_len(100000, true, "", false, 0);
}

static void test_escapes(void)
{
	struct collect c = { 0 };
	unsigned bad = 999;

	PARSE_LIT("0-1 r-xp 0 0:0 1 /a\\012\\012b\\\\012\\01\\\n"
		  "0-1 r-xp 0 0:0 1 /x (deleted) (deleted)\n"
		  "0-1 r-xp 0 0:0 1 /x(deleted)\n"
		  "0-1 r-xp 0 0:0 1 /x\\012(deleted)\n"
		  "0-1 r-xp 0 0:0 1 /\\012",
		  &c, &bad);
	CHECK(c.n == 5 && bad == 0, "escape lines: %zu entries, %u malformed", c.n, bad);
	if (c.n == 5) {
		char show[64];

		CHECK(strcmp(c.v[0].path, "/a\n\nb\\\n\\01\\") == 0,
		      "only \\012 is decoded: \"%s\"", shown(c.v[0].path, show, sizeof(show)));
		CHECK(c.v[1].e.deleted && strcmp(c.v[1].path, "/x (deleted)") == 0,
		      "only one \" (deleted)\" is stripped: \"%s\"", c.v[1].path);
		CHECK(!c.v[2].e.deleted && strcmp(c.v[2].path, "/x(deleted)") == 0,
		      "\"(deleted)\" without its space is part of the name");
		CHECK(!c.v[3].e.deleted && strcmp(c.v[3].path, "/x\n(deleted)") == 0,
		      "\"\\012(deleted)\" is not the suffix");
		CHECK(strcmp(c.v[4].path, "/\n") == 0, "a name that is only an escape");
	}
	collect_free(&c);
}

/* ---- buffer edges: callback stop, empty input, prefixes ---- */

static void test_walk_control(void)
{
	static const char three[] =
	    "0-1 r-xp 0 0:0 1 /a\nbad\n1-2 r-xp 0 0:0 2 /b\n2-3 r-xp 0 0:0 3 /c\n";
	struct collect c = { .stop_after = 2 };
	unsigned bad = 999;
	int r = PARSE_LIT(three, &c, &bad);

	CHECK(r == 42 && c.n == 2, "fn's non-zero return stops the walk and is returned (%d, %zu)",
	      r, c.n);
	CHECK(bad == 1, "malformed lines before the stop are counted (%u)", bad);
	collect_free(&c);

	r = PARSE_LIT(three, &c, NULL);
	CHECK(r == 0 && c.n == 3, "n_malformed may be NULL (%d, %zu entries)", r, c.n);
	collect_free(&c);

	bad = 999;
	r = maps_parse_buf(NULL, 0, collect_fn, &c, &bad);
	CHECK(r == 0 && c.n == 0 && bad == 0, "an empty buffer has no lines (%d, %zu, %u)", r, c.n,
	      bad);

	bad = 999;
	r = PARSE_LIT("\n\n0-1 r-xp 0 0:0 1 /a\n\n", &c, &bad);
	CHECK(c.n == 1 && bad == 3, "each empty line counts once (%zu entries, %u malformed)", c.n,
	      bad);
	collect_free(&c);
}

static size_t count_lines(const char *buf, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	return n + (len && buf[len - 1] != '\n');
}

/* Every prefix of a fixture, from an exact-size heap copy (ASan checks the bounds): each line
 * yields an entry or a malformed count, and a prefix cut at a line end parses exactly as the
 * whole file does up to there. */
static void test_prefixes(const char *path)
{
	char *buf;
	size_t len, bad_prefixes = 0, first_bad = 0;
	struct collect full = { 0 };
	unsigned full_bad;

	if (read_all(path, &buf, &len) < 0) {
		CHECK(false, "%s: cannot read", path);
		return;
	}
	maps_parse_buf(buf, len, collect_fn, &full, &full_bad);
	for (size_t l = 0; l <= len; l++) {
		char *copy = xrealloc(NULL, l ? l : 1);
		struct collect c = { 0 };
		unsigned bad;
		bool ok;

		memcpy(copy, buf, l);
		maps_parse_buf(copy, l, collect_fn, &c, &bad);
		ok = c.n + bad == count_lines(copy, l) && c.n <= full.n;
		/* Entries before the last line are those of the whole file. */
		for (size_t i = 0; ok && i + 1 < c.n; i++)
			ok = entry_eq(&c.v[i].e, &full.v[i].e);
		if (ok && c.n > 0 && (l == len || buf[l - 1] == '\n'))
			ok = entry_eq(&c.v[c.n - 1].e, &full.v[c.n - 1].e);
		if (!ok && bad_prefixes++ == 0)
			first_bad = l;
		collect_free(&c);
		free(copy);
	}
	CHECK(bad_prefixes == 0, "%s: all %zu prefixes consistent (first bad: %zu bytes)", path,
	      len + 1, first_bad);
	collect_free(&full);
	free(buf);
}

/* ---- the text in pieces (maps_stream) ---- */

/* Streams buf through a buffer of cap bytes, piece bytes (at most) at a time, leaving out the
 * lines need_any does (0: none). */
static int stream_parse_only(const char *buf, size_t len, size_t cap, size_t piece,
			     unsigned need_any, struct collect *c, unsigned *bad)
{
	char *space = xrealloc(NULL, cap);
	struct maps_stream ms;
	size_t pos = 0;
	int r = 0;

	maps_stream_init(&ms, space, cap);
	ms.need_any = need_any;
	while (pos < len && r == 0) {
		size_t room;
		char *at = maps_stream_space(&ms, &room);
		size_t n = MIN3(room, piece, len - pos);
		memcpy(at, buf + pos, n);
		pos += n;
		r = maps_stream_feed(&ms, n, collect_fn, c);
	}
	if (r == 0)
		r = maps_stream_end(&ms, collect_fn, c);
	*bad = ms.malformed;
	free(space);
	return r;
}

static int stream_parse(const char *buf, size_t len, size_t cap, size_t piece, struct collect *c,
			unsigned *bad)
{
	return stream_parse_only(buf, len, cap, piece, 0, c, bad);
}

static size_t longest_line(const char *buf, size_t len)
{
	size_t best = 0, cur = 0;
	for (size_t i = 0; i < len; i++) {
		cur = buf[i] == '\n' ? 0 : cur + 1;
		best = cur > best ? cur : best;
	}
	return best;
}

/* A fixture read in pieces of every size from 1 byte up, through buffers from just large enough
 * to the daemon's: the same entries and malformed count as the whole text. */
static void test_stream_fixture(const char *path)
{
	char *buf;
	size_t len, mismatches = 0, runs = 0;
	struct collect full = { 0 };
	unsigned full_bad;

	if (read_all(path, &buf, &len) < 0) {
		CHECK(false, "%s: cannot read", path);
		return;
	}
	maps_parse_buf(buf, len, collect_fn, &full, &full_bad);
	size_t caps[] = { longest_line(buf, len) + 2, 4096, MAPS_LINE_MAX, MAPS_READ_BYTES };
	size_t pieces[] = { 1, 2, 3, 7, 64, 100, 4095, 65536 };
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
			struct collect c = { 0 };
			unsigned bad;
			bool ok = stream_parse(buf, len, caps[i], pieces[k], &c, &bad) == 0 &&
				  c.n == full.n && bad == full_bad;
			for (size_t e = 0; ok && e < c.n; e++)
				ok = entry_eq(&c.v[e].e, &full.v[e].e);
			mismatches += !ok;
			runs++;
			collect_free(&c);
		}
	}
	CHECK(mismatches == 0, "%s: read in pieces through a fixed buffer, %zu ways: as the whole "
	      "(%zu mismatches)", path, runs, mismatches);
	collect_free(&full);
	free(buf);
}

/* A line longer than the buffer is dropped up to its newline and counted once; the lines around
 * it are not disturbed, however the pieces fall. The last line without a newline is parsed. */
static void test_stream_long_line(void)
{
	const char *good1 = "00400000-00401000 r-xp 00000000 08:01 42 /usr/bin/one\n";
	const char *good2 = "00500000-00501000 r-xp 00001000 08:01 43 /usr/lib/two.so";
	size_t name = 3 * MAPS_READ_BYTES, n1 = strlen(good1), n2 = strlen(good2);
	const char *head = "00600000-00601000 r-xp 00000000 08:01 44 /";
	size_t nh = strlen(head), len = n1 + nh + name + 1 + n2;
	char *buf = xrealloc(NULL, len);

	memcpy(buf, good1, n1);
	memcpy(buf + n1, head, nh);
	memset(buf + n1 + nh, 'x', name);
	buf[n1 + nh + name] = '\n';
	memcpy(buf + n1 + nh + name + 1, good2, n2);
	size_t pieces[] = { 1, 13, 4096, MAPS_READ_BYTES, 3 * MAPS_READ_BYTES };
	for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		struct collect c = { 0 };
		unsigned bad = 0;
		int r = stream_parse(buf, len, MAPS_READ_BYTES, pieces[k], &c, &bad);
		CHECK(r == 0 && c.n == 2 && bad == 1 &&
			      strcmp(c.v[0].path, "/usr/bin/one") == 0 &&
			      strcmp(c.v[1].path, "/usr/lib/two.so") == 0,
		      "a %zu-byte line in a %u-byte buffer, pieces of %zu: 2 entries (got %zu), 1 "
		      "malformed (got %u)", nh + name, MAPS_READ_BYTES, pieces[k], c.n, bad);
		collect_free(&c);
	}
	/* The whole-text parser agrees on this input. */
	struct collect w = { 0 };
	unsigned wbad = 0;
	maps_parse_buf(buf, len, collect_fn, &w, &wbad);
	CHECK(w.n == 2 && wbad == 1, "the whole-text parser: 2 entries, 1 malformed");
	collect_free(&w);

	/* maps_read_fd over a file: what it holds is the buffer given, whatever the text. */
	char tmpl[] = "/tmp/test_maps_stream.XXXXXX";
	int fd = mkstemp(tmpl);
	CHECK(fd >= 0, "temporary file");
	if (fd >= 0) {
		unlink(tmpl);
		bool written = true;
		for (int i = 0; i < 8 && written; i++) /* 8 copies: 1.5 MiB of text */
			written = write(fd, buf, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
		char space[MAPS_LINE_MAX];
		struct maps_stream ms;
		struct collect c = { 0 };
		maps_stream_init(&ms, space, sizeof(space));
		int r = written && lseek(fd, 0, SEEK_SET) == 0 ? maps_read_fd(fd, &ms, collect_fn, &c)
							       : -EIO;
		CHECK(r == 0 && c.n == 16 && ms.malformed == 8,
		      "maps_read_fd: %zu KiB through %zu bytes: 16 entries (got %zu), 8 malformed "
		      "(got %u)", 8 * (len + 1) >> 10, sizeof(space), c.n, ms.malformed);
		collect_free(&c);
		close(fd);
	}
	free(buf);
}

static void test_stream(void)
{
	glob_t g;
	if (glob(FIXTURE_DIR "/*.maps", 0, NULL, &g) != 0) {
		CHECK(false, "fixtures in " FIXTURE_DIR);
		return;
	}
	for (size_t i = 0; i < g.gl_pathc; i++)
		test_stream_fixture(g.gl_pathv[i]);
	globfree(&g);
	test_stream_long_line();
}

/* ---- leaving lines out by their permissions (maps_parse_buf_only, maps_stream.need_any) ---- */

static bool passes(const struct map_entry *e, unsigned need_any)
{
	return !need_any || (!(e->perms & MAP_PERM_WRITE) && (e->perms & need_any));
}

/* The entries of text that pass need_any, by the whole-text parser, the filtering one and the
 * stream at several buffer sizes and piece sizes: the same entries, in the same order. Returns
 * the malformed count of the filtering parser. */
static unsigned check_only(const char *what, const char *buf, size_t len, unsigned need_any)
{
	struct collect full = { 0 }, only = { 0 };
	unsigned full_bad = 0, only_bad = 0;
	size_t kept = 0, mismatches = 0, runs = 0;

	maps_parse_buf(buf, len, collect_fn, &full, &full_bad);
	maps_parse_buf_only(buf, len, need_any, collect_fn, &only, &only_bad);
	bool same = true;
	for (size_t i = 0; i < full.n; i++) {
		if (!passes(&full.v[i].e, need_any))
			continue;
		same = same && kept < only.n && entry_eq(&full.v[i].e, &only.v[kept].e);
		kept++;
	}
	CHECK(same && kept == only.n && only_bad <= full_bad,
	      "%s, need_any %#x: the entries of the whole parse that pass (%zu), no more (got %zu); "
	      "malformed %u <= %u", what, need_any, kept, only.n, only_bad, full_bad);
	size_t caps[] = { longest_line(buf, len) + 2, 4096, MAPS_LINE_MAX };
	size_t pieces[] = { 1, 2, 5, 33, 34, 35, 100, 4095, 65536 };
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
			struct collect c = { 0 };
			unsigned bad;
			/* A line longer than the buffer is dropped and counted by the stream alone. */
			bool fits = caps[i] > longest_line(buf, len);
			bool ok = stream_parse_only(buf, len, caps[i], pieces[k], need_any, &c, &bad) == 0 &&
				  (!fits || (c.n == only.n && bad == only_bad));
			for (size_t e = 0; ok && fits && e < c.n; e++)
				ok = entry_eq(&c.v[e].e, &only.v[e].e);
			mismatches += !ok;
			runs++;
			collect_free(&c);
		}
	}
	CHECK(mismatches == 0, "%s, need_any %#x: in pieces through a fixed buffer, %zu ways: as the "
	      "whole (%zu mismatches)", what, need_any, runs, mismatches);
	collect_free(&full);
	collect_free(&only);
	return only_bad;
}

static void test_only(void)
{
	static const unsigned needs[] = { 0, MAP_PERM_EXEC, MAP_PERM_EXEC | MAP_PERM_READ,
					  MAP_PERM_READ, MAP_PERM_SHARED };
	glob_t g;

	if (glob(FIXTURE_DIR "/*.maps", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			char *buf;
			size_t len;
			if (read_all(g.gl_pathv[i], &buf, &len) < 0)
				continue;
			for (size_t k = 0; k < sizeof(needs) / sizeof(needs[0]); k++)
				check_only(g.gl_pathv[i], buf, len, needs[k]);
			free(buf);
		}
		globfree(&g);
	} else {
		CHECK(false, "fixtures in " FIXTURE_DIR);
	}

	/* Lines the permission test reads wrongly if it is careless: it must leave out only what it
	 * can tell apart, and what it cannot (no space in the first 34 bytes, no perms, perms cut
	 * short or misspelt) goes to the full parser, which counts the bad ones. */
	static const char hostile[] =
		"00400000-00401000 r-xp 00000000 08:01 42 /bin/code\n"
		"00401000-00402000 rw-p zz garbage after writable perms\n"
		"00402000-00403000 ---p zz\n"
		"00403000-00404000 r--p 00000000 08:01 42 /bin/data\n"
		"00404000-00405000 r--p 00000000 08:01\n"      /* a candidate cut short: malformed */
		"00405000-00406000 r-x\n"                       /* perms cut short: malformed */
		"00405000-00406000 r-xq 00000000 08:01 42 /x\n" /* misspelt: malformed */
		"0000000000000000000000000000000400000-00401000 r-xp 00000000 08:01 42 /long\n"
		"0000000000000000000000000000000500000-00501000 r--p 00000000 08:01 42 /longdata\n"
		"00406000-00407000\n"                     /* no perms: malformed */
		"\n"                                       /* empty: malformed */
		" r-xp\n"                                  /* space first: malformed */
		"00407000-00408000 rw-s 00000000 00:05 7 /dev/zero\n"
		"00408000-00409000 --xp 00000000 08:01 43 /bin/execonly\n"
		"00409000-0040a000 r-xp 00000000 08:01 44 /bin/last-without-newline";
	unsigned bad_all = check_only("hostile lines", hostile, sizeof(hostile) - 1, 0);
	unsigned bad_code = check_only("hostile lines", hostile, sizeof(hostile) - 1, MAP_PERM_EXEC);
	unsigned bad_data =
		check_only("hostile lines", hostile, sizeof(hostile) - 1, MAP_PERM_EXEC | MAP_PERM_READ);
	CHECK(bad_all == 8 && bad_code == 5 && bad_data == 6,
	      "hostile lines: 8 malformed of all (got %u); 5 when only code is wanted (got %u): the "
	      "rw-p and ---p garbage and the r--p line cut short are left out unread; 6 with data "
	      "(got %u): the r--p one is read", bad_all, bad_code, bad_data);

	/* A huge line (a name far longer than any buffer) among good ones, left out or not. */
	size_t name = 2 * MAPS_LINE_MAX, len = 0;
	char *buf = xrealloc(NULL, name + 256);
	len += (size_t)sprintf(buf + len, "00400000-00401000 r-xp 00000000 08:01 42 /bin/a\n");
	len += (size_t)sprintf(buf + len, "00401000-00402000 rw-p 00000000 08:01 42 /");
	memset(buf + len, 'w', name);
	len += name;
	len += (size_t)sprintf(buf + len, "\n00402000-00403000 r-xp 00000000 08:01 42 /bin/b\n");
	struct collect c = { 0 };
	unsigned bad = 0;
	int r = stream_parse_only(buf, len, MAPS_LINE_MAX, 4096, MAP_PERM_EXEC, &c, &bad);
	CHECK(r == 0 && c.n == 2 && bad == 1, "a writable line of %zu bytes through a %u-byte buffer: "
	      "dropped, counted once as too long (%u); the lines around it kept (%zu)", name,
	      MAPS_LINE_MAX, bad, c.n);
	collect_free(&c);
	check_only("a huge writable line", buf, len, MAP_PERM_EXEC);
	free(buf);
}

/* ---- golden files ---- */

static void first_diff(const char *got, const char *want)
{
	unsigned line = 1;
	const char *g = got, *w = want;

	while (*g && *g == *w) {
		line += *g == '\n';
		g++;
		w++;
	}
	while (g > got && g[-1] != '\n') {
		g--;
		w--;
	}
	printf("# first difference at line %u:\n#  got:  %.*s\n#  want: %.*s\n", line,
	       (int)strcspn(g, "\n"), g, (int)strcspn(w, "\n"), w);
}

static void test_golden(void)
{
	glob_t g;
	int r = glob(FIXTURE_DIR "/*.maps", 0, NULL, &g);

	CHECK(r == 0 && g.gl_pathc >= 2,
	      "found %zu fixtures in " FIXTURE_DIR " (run from the repo root)",
	      r == 0 ? g.gl_pathc : 0);
	if (r != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *maps = g.gl_pathv[i];
		char expected[PATH_MAX], *buf, *want, *got;
		size_t len, want_len;

		snprintf(expected, sizeof(expected), "%.*s.expected", (int)(strlen(maps) - 5),
			 maps);
		if (read_all(maps, &buf, &len) < 0 || read_all(expected, &want, &want_len) < 0) {
			CHECK(false, "%s: cannot read it or %s", maps, expected);
			continue;
		}
		want = xrealloc(want, want_len + 1);
		want[want_len] = '\0';
		got = golden_render(buf, len);
		CHECK(strcmp(got, want) == 0, "%s matches %s", maps, expected);
		if (strcmp(got, want) != 0)
			first_diff(got, want);
		free(got);
		free(want);
		free(buf);
		test_prefixes(maps);
	}
	globfree(&g);
}

/* Spot checks that the golden files cannot hide behind a regenerated .expected. */
static void test_fixture_facts(void)
{
	char *buf;
	size_t len;
	struct collect c = { 0 };
	unsigned bad = 999;

	if (read_all(FIXTURE_DIR "/hostile.maps", &buf, &len) < 0) {
		CHECK(false, "hostile.maps: cannot read");
		return;
	}
	maps_parse_buf(buf, len, collect_fn, &c, &bad);
	CHECK(c.n == 12 && bad == 27, "hostile.maps: %zu entries, %u malformed; want 12, 27", c.n,
	      bad);
	CHECK(c.n > 0 && strcmp(c.v[0].path, "/bin/ok") == 0 &&
		  strcmp(c.v[c.n - 1].path, "/bin/last-ok") == 0,
	      "hostile.maps: the first and last good lines survive the bad ones between");
	collect_free(&c);
	free(buf);

	if (read_all(FIXTURE_DIR "/bash.maps", &buf, &len) < 0) {
		CHECK(false, "bash.maps: cannot read");
		return;
	}
	c.only_exec_backed = true;
	maps_parse_buf(buf, len, collect_fn, &c, &bad);
	CHECK(bad == 0 && c.n == 10, "bash.maps: %zu executable file-backed entries, %u malformed",
	      c.n, bad);
	CHECK(c.n > 0 &&
		  strcmp(c.v[c.n - 1].path, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2") == 0,
	      "bash.maps: the last exec mapping is ld.so");
	collect_free(&c);
	free(buf);
}

/* ---- live: both readers against this process's own mappings ---- */

struct live {
	char dir[64];
	int dirfd;
	uint8_t *base; /* a reserved range the test maps files into at known places */
	size_t base_len;
	int chain[32]; /* directory fds of the long-path chain, outermost first */
	size_t n_chain;
	char *long_ok, *long_bad; /* paths of PATH_MAX - 1 and PATH_MAX bytes */
};

static int make_file_at(int dirfd, const char *name, size_t pages)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	char page[PAGE];

	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < pages; i++) {
		memset(page, (int)('a' + i), sizeof(page));
		if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page)) {
			close(fd);
			return -EIO;
		}
	}
	return fd;
}

/* Maps pages [file_page, +n) of fd at base + at_page pages, r-x, private or shared. */
static bool map_at(struct live *l, int fd, size_t at_page, size_t n, size_t file_page, int share)
{
	void *p = mmap(l->base + at_page * PAGE, n * PAGE, PROT_READ | PROT_EXEC, share | MAP_FIXED,
		       fd, (off_t)(file_page * PAGE));

	return p == l->base + at_page * PAGE;
}

/* Builds dir/ddd.../ddd/ with total path length so that a leaf of leaf_len bytes gives a path
 * of exactly want bytes; the chain is walked with fds since the path does not fit PATH_MAX. */
static char *make_chain(struct live *l, size_t want, size_t *leaf_len)
{
	size_t len = strlen(l->dir), rem = want - len;
	char comp[202], *path = xrealloc(NULL, want + 1);
	int fd = l->dirfd;

	memcpy(path, l->dir, len);
	memset(comp, 'd', 200);
	comp[200] = '\0';
	while (rem > 256) {
		if (mkdirat(fd, comp, 0755) < 0 ||
		    (fd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			free(path);
			return NULL;
		}
		l->chain[l->n_chain++] = fd;
		path[len] = '/';
		memcpy(path + len + 1, comp, 200);
		len += 201;
		rem -= 201;
	}
	path[len] = '/';
	path[len + 1] = '\0';
	*leaf_len = rem - 1;
	return path;
}

static int make_long_file(struct live *l, const char *chain_path, size_t leaf_len, char fill,
			  char **path)
{
	char leaf[256];
	size_t cl = strlen(chain_path);

	memset(leaf, fill, leaf_len);
	leaf[leaf_len] = '\0';
	*path = xrealloc(NULL, cl + leaf_len + 1);
	memcpy(*path, chain_path, cl);
	memcpy(*path + cl, leaf, leaf_len + 1);
	return make_file_at(l->chain[l->n_chain - 1], leaf, 1);
}

static void live_cleanup(struct live *l)
{
	char comp[201];

	for (int i = 0; i < 2 && l->n_chain; i++) {
		const char *p = i ? l->long_bad : l->long_ok;

		if (p)
			unlinkat(l->chain[l->n_chain - 1], strrchr(p, '/') + 1, 0);
	}
	memset(comp, 'd', 200);
	comp[200] = '\0';
	for (size_t i = l->n_chain; i-- > 0;) {
		close(l->chain[i]);
		unlinkat(i ? l->chain[i - 1] : l->dirfd, comp, AT_REMOVEDIR);
	}
	if (l->dirfd >= 0) {
		unlinkat(l->dirfd, "lib a.so", 0);
		unlinkat(l->dirfd, "new\nline x.so", 0);
		unlinkat(l->dirfd, "gone.so", 0);
		close(l->dirfd);
		rmdir(l->dir);
	}
	if (l->base)
		munmap(l->base, l->base_len);
	free(l->long_ok);
	free(l->long_bad);
}

static bool kernel_has_procmap_query(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	/* make check-valgrind filters the ioctl out (tests/helpers/noquery.c): as on an old kernel. */
	if (getenv("PRELOCKD_NO_PROCMAP_QUERY"))
		return false;
	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > 6 || (major == 6 && minor >= 11);
}

/* Reads /proc/self/maps both ways, keeping what PROCMAP_QUERY would report. Returns the ioctl's
 * result; *text_bad gets the text's malformed count. */
static int snapshot(struct collect *text, struct collect *query, unsigned *text_bad)
{
	char *buf;
	size_t len;
	int fd, r;

	*text = (struct collect){ .only_exec_backed = true };
	*query = (struct collect){ 0 };
	if (read_all("/proc/self/maps", &buf, &len) < 0)
		return -EIO;
	maps_parse_buf(buf, len, collect_fn, text, text_bad);
	free(buf);
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = maps_query_fd(fd, collect_fn, query);
	close(fd);
	return r;
}

static void check_same(const struct collect *text, const struct collect *query, const char *when)
{
	size_t i, n_exec = 0;
	char a[160], b[160];

	for (i = 0; i < text->n && i < query->n; i++)
		if (!entry_eq(&text->v[i].e, &query->v[i].e))
			break;
	for (size_t j = 0; j < query->n; j++)
		n_exec += map_entry_is_exec_file(&query->v[j].e);
	CHECK(text->n == query->n && i == text->n && n_exec > 0,
	      "%s: text and PROCMAP_QUERY agree on all %zu file-backed exec VMAs (%zu exec files); "
	      "%zu of %zu text entries matched",
	      when, query->n, n_exec, i, text->n);
	if (i < text->n && i < query->n)
		printf("#  text:  %" PRIx64 " %s\n#  query: %" PRIx64 " %s\n", text->v[i].e.start,
		       shown(text->v[i].path, a, sizeof(a)), query->v[i].e.start,
		       shown(query->v[i].path, b, sizeof(b)));
}

static void check_live_entry(const struct collect *c, const char *how, const struct live *l,
			     size_t at_page, size_t pages, size_t file_page, int fd,
			     const char *path, bool deleted, unsigned perms)
{
	struct stat st;
	const struct map_entry *e = find_start(c, (uint64_t)(uintptr_t)(l->base + at_page * PAGE));
	char what[96], show[64];

	snprintf(what, sizeof(what), "%s: %s%s", how,
		 strlen(path) > 64 ? "the PATH_MAX - 1 byte name"
				   : shown(strrchr(path, '/') + 1, show, sizeof(show)),
		 deleted ? " (unlinked)" : "");
	if (fstat(fd, &st) < 0) {
		CHECK(false, "%s: fstat: %s", what, strerror(errno));
		return;
	}
	check_entry(e,
		    &(struct want){
			.start = (uint64_t)(uintptr_t)(l->base + at_page * PAGE),
			.end = (uint64_t)(uintptr_t)(l->base + (at_page + pages) * PAGE),
			.offset = file_page * PAGE,
			.inode = st.st_ino,
			.major = major(st.st_dev),
			.minor = minor(st.st_dev),
			.perms = perms,
			.kind = MAP_KIND_FILE,
			.deleted = deleted,
			.path = path,
		    },
		    what);
}

static bool live_setup(struct live *l, int fds[5])
{
	size_t leaf_len;
	char *chain;
	bool ok;

	snprintf(l->dir, sizeof(l->dir), "/var/tmp/prelockd-test-maps.XXXXXX");
	if (!mkdtemp(l->dir))
		return false;
	l->dirfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	l->base_len = 16 * PAGE;
	l->base = mmap(NULL, l->base_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->dirfd < 0 || l->base == MAP_FAILED) {
		l->base = NULL;
		return false;
	}
	fds[0] = make_file_at(l->dirfd, "lib a.so", 4);
	fds[1] = make_file_at(l->dirfd, "new\nline x.so", 1);
	fds[2] = make_file_at(l->dirfd, "gone.so", 1);
	chain = make_chain(l, PATH_MAX, &leaf_len);
	if (!chain)
		return false;
	fds[3] = make_long_file(l, chain, leaf_len, 'b', &l->long_bad);    /* PATH_MAX bytes */
	fds[4] = make_long_file(l, chain, leaf_len - 1, 'a', &l->long_ok); /* PATH_MAX - 1 */
	free(chain);
	ok = fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0 && fds[3] >= 0 && fds[4] >= 0;
	/* Low to high: the too-long name first, so the ioctl walk must step past it. */
	return ok && map_at(l, fds[3], 0, 2, 0, MAP_PRIVATE) &&
	       map_at(l, fds[4], 3, 1, 0, MAP_PRIVATE) && map_at(l, fds[0], 6, 2, 1, MAP_PRIVATE) &&
	       map_at(l, fds[1], 9, 1, 0, MAP_PRIVATE) &&
	       map_at(l, fds[2], 11, 1, 0, MAP_PRIVATE) && map_at(l, fds[0], 13, 1, 3, MAP_SHARED);
}

static void test_live(void)
{
	struct live l = { .dirfd = -1 };
	int fds[5] = { -1, -1, -1, -1, -1 };
	struct collect text, query;
	unsigned text_bad = 999;
	char path[PATH_MAX];
	int r;

	if (!live_setup(&l, fds)) {
		CHECK(false, "live setup in %s: %s", l.dir, strerror(errno));
		goto out;
	}
	r = snapshot(&text, &query, &text_bad);
	CHECK(text_bad == 1, "text: the one PATH_MAX-byte name is malformed (%u)", text_bad);
	if (r == -ENOTTY && !kernel_has_procmap_query()) {
		CHECK(true, "# SKIP PROCMAP_QUERY needs Linux 6.11");
	} else {
		CHECK(r == 0, "maps_query_fd on /proc/self/maps returns %d (%s)", r, strerror(-r));
		check_same(&text, &query, "mapped");
	}
	snprintf(path, sizeof(path), "%s/lib a.so", l.dir);
	check_live_entry(&text, "text", &l, 6, 2, 1, fds[0], path, false, RX);
	if (r == 0)
		check_live_entry(&query, "query", &l, 6, 2, 1, fds[0], path, false, RX);
	snprintf(path, sizeof(path), "%s/new\nline x.so", l.dir);
	check_live_entry(&text, "text", &l, 9, 1, 0, fds[1], path, false, RX);
	if (r == 0)
		check_live_entry(&query, "query", &l, 9, 1, 0, fds[1], path, false, RX);
	check_live_entry(&text, "text", &l, 3, 1, 0, fds[4], l.long_ok, false, RX);
	if (r == 0)
		check_live_entry(&query, "query", &l, 3, 1, 0, fds[4], l.long_ok, false, RX);
	snprintf(path, sizeof(path), "%s/lib a.so", l.dir);
	check_live_entry(&text, "text, shared", &l, 13, 1, 3, fds[0], path, false,
			 RX | MAP_PERM_SHARED);
	if (r == 0)
		check_live_entry(&query, "query, shared", &l, 13, 1, 3, fds[0], path, false,
				 RX | MAP_PERM_SHARED);
	CHECK(!find_start(&text, (uint64_t)(uintptr_t)l.base) &&
		  !find_start(&query, (uint64_t)(uintptr_t)l.base),
	      "neither reader reports the PATH_MAX-byte name");
	collect_free(&text);
	collect_free(&query);

	snprintf(path, sizeof(path), "%s/gone.so", l.dir);
	CHECK(unlink(path) == 0, "unlink %s while mapped", path);
	r = snapshot(&text, &query, &text_bad);
	check_live_entry(&text, "text", &l, 11, 1, 0, fds[2], path, true, RX);
	if (r == 0) {
		check_live_entry(&query, "query", &l, 11, 1, 0, fds[2], path, true, RX);
		check_same(&text, &query, "after unlink");
	}
	collect_free(&text);
	collect_free(&query);
out:
	for (int i = 0; i < 5; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	live_cleanup(&l);
}

/* A memfd mapped executable: "/memfd:NAME (deleted)" in both readers. */
static void test_live_memfd(void)
{
	int fd = memfd_create("prelockd-test", MFD_CLOEXEC);
	struct collect text, query;
	unsigned bad;
	void *p;
	int r;

	if (fd < 0 || ftruncate(fd, PAGE) < 0) {
		CHECK(false, "memfd_create: %s", strerror(errno));
		return;
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		CHECK(true, "# SKIP executable memfd refused (vm.memfd_noexec?): %s",
		      strerror(errno));
		close(fd);
		return;
	}
	r = snapshot(&text, &query, &bad);
	for (int i = 0; i < 2; i++) {
		const struct collect *c = i ? &query : &text;
		const struct map_entry *e = find_start(c, (uint64_t)(uintptr_t)p);

		if (i && r == -ENOTTY && !kernel_has_procmap_query())
			break;
		CHECK(e && e->kind == MAP_KIND_MEMFD && e->deleted &&
			  strcmp(e->path, "/memfd:prelockd-test") == 0 &&
			  !map_entry_is_exec_file(e),
		      "%s: an exec memfd is kind memfd, deleted, \"/memfd:prelockd-test\"",
		      i ? "query" : "text");
	}
	collect_free(&text);
	collect_free(&query);
	munmap(p, PAGE);
	close(fd);
}

static int count_fn(const struct map_entry *e, void *ud)
{
	(void)e;
	++*(int *)ud;
	return 7;
}

static void test_query_errors(void)
{
	int fd, r, calls = 0, pipefd[2];
	bool supported = kernel_has_procmap_query();
	pid_t pid;

	/* Under tests/helpers/noquery, seccomp answers every such ioctl before the kernel looks. */
	bool filtered = getenv("PRELOCKD_NO_PROCMAP_QUERY") != NULL;

	r = maps_query_fd(-1, count_fn, &calls);
	if (filtered)
		CHECK(true, "# SKIP PROCMAP_QUERY filtered out");
	else
		CHECK(r == -EBADF && calls == 0, "a bad fd gives -EBADF (%d)", r);

	fd = open("tests/unit/check.h", O_RDONLY | O_CLOEXEC);
	r = maps_query_fd(fd, count_fn, &calls);
	CHECK(fd >= 0 && r == -ENOTTY && calls == 0,
	      "a file that is not maps gives -ENOTTY, the fall-back signal (%d)", r);
	if (fd >= 0)
		close(fd);

	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	r = maps_query_fd(fd, count_fn, &calls);
	if (supported)
		CHECK(r == 7 && calls == 1,
		      "fn's non-zero return stops the ioctl walk (%d, %d calls)", r, calls);
	else
		CHECK(true, "# SKIP PROCMAP_QUERY needs Linux 6.11");
	if (fd >= 0)
		close(fd);

	/* A process that exits while we hold its maps fd. (Nothing buffered may be inherited: the
	 * child's exit could print it again.) */
	fflush(stdout);
	if (pipe2(pipefd, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		CHECK(false, "pipe/fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		char c;

		close(pipefd[1]);
		_exit(read(pipefd[0], &c, 1) == 0 ? 0 : 1);
	}
	close(pipefd[0]);
	{
		char p[64];

		snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
		fd = open(p, O_RDONLY | O_CLOEXEC);
	}
	close(pipefd[1]);
	waitpid(pid, NULL, 0);
	calls = 0;
	r = maps_query_fd(fd, count_fn, &calls);
	if (filtered)
		CHECK(true, "# SKIP PROCMAP_QUERY filtered out");
	else
		CHECK(fd >= 0 && r < 0 && r != -ENOTTY && r != -EINVAL && calls == 0,
		      "the maps fd of a reaped process gives a negative errno, not the fall-back one "
		      "(%d %s)",
		      r, strerror(-r));
	if (fd >= 0) {
		ssize_t n = read(fd, (char[64]){ 0 }, 64);

		CHECK(n <= 0, "its text is empty too (%zd)", n);
		close(fd);
	}
}

static int print_golden(const char *path)
{
	char *buf, *out;
	size_t len;
	int r = read_all(path, &buf, &len);

	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(-r));
		return 1;
	}
	out = golden_render(buf, len);
	fputs(out, stdout);
	free(out);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--print") == 0)
		return print_golden(argv[2]);

	test_classify();
	test_is_exec_file();
	test_parse_lines();
	test_hostile_lines();
	test_name_limits();
	test_escapes();
	test_walk_control();
	test_golden();
	test_stream();
	test_only();
	test_fixture_facts();
	test_live();
	test_live_memfd();
	test_query_errors();
	return check_done();
}
