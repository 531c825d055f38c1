/* /proc/PID/maps: a pure text parser and the PROCMAP_QUERY ioctl reader.
 *
 * Why two readers of the same data: the ioctl (Linux 6.11+) lets the kernel skip every anonymous
 * and non-executable VMA and hands back start, end, offset, dev, inode and name in binary, so a
 * pass over all processes costs about a third of reading and parsing the text (KERNEL-NOTES). On a
 * busy machine that text is ~125k lines per pass. The text parser stays because older kernels
 * answer the ioctl with ENOTTY/EINVAL, because it is a pure function the tests and fuzzers can
 * feed fixtures, and because it is the reference the live test holds the ioctl to.
 *
 * Both readers agree on names: the text escapes only '\n' (as "\012"), the ioctl returns it raw;
 * both append " (deleted)" to unlinked files, which we strip into e->deleted; and both keep only
 * names that fit PATH_MAX with their NUL (see NAME_MAX_BYTES). */
#include "maps.h"
#include "util.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef PROCMAP_QUERY
/* Debian 12's uapi headers predate Linux 6.11; this is include/uapi/linux/fs.h from 6.11+. */
#include <linux/types.h>

#define PROCFS_IOCTL_MAGIC 'f'

struct procmap_query {
	__u64 size;
	__u64 query_flags; /* in */
	__u64 query_addr;  /* in */
	__u64 vma_start;   /* out */
	__u64 vma_end;     /* out */
	__u64 vma_flags;   /* out: PROCMAP_QUERY_VMA_* */
	__u64 vma_page_size;
	__u64 vma_offset;
	__u64 inode;
	__u32 dev_major;
	__u32 dev_minor;
	__u32 vma_name_size; /* in: buffer size; out: name length + 1, or 0 for no name */
	__u32 build_id_size;
	__u64 vma_name_addr;
	__u64 build_id_addr;
};

#define PROCMAP_QUERY _IOWR(PROCFS_IOCTL_MAGIC, 17, struct procmap_query)

enum {
	PROCMAP_QUERY_VMA_READABLE = 0x01,
	PROCMAP_QUERY_VMA_WRITABLE = 0x02,
	PROCMAP_QUERY_VMA_EXECUTABLE = 0x04,
	PROCMAP_QUERY_VMA_SHARED = 0x08,
	PROCMAP_QUERY_COVERING_OR_NEXT_VMA = 0x10,
	PROCMAP_QUERY_FILE_BACKED_VMA = 0x20,
};

/* The ioctl number encodes the size: 0xc0686611, the value other users hard-code. */
_Static_assert(sizeof(struct procmap_query) == 104, "struct procmap_query layout");
#endif

#define DELETED_SUFFIX " (deleted)"
#define DELETED_SUFFIX_LEN (sizeof(DELETED_SUFFIX) - 1)

/* The longest name kept, " (deleted)" included. PROCMAP_QUERY renders names with d_path into a
 * PATH_MAX buffer and fails longer ones with ENAMETOOLONG; the text has no such limit. Using the
 * same limit for the text keeps both readers reporting the same set, and no longer path could be
 * opened anyway. */
#define NAME_MAX_BYTES (PATH_MAX - 1)

/* ---- text parser ---- */

/* Each hex digit's value + 1; 0 for anything else. A table: parse_hex() runs five times a line,
 * and was the daemon's costliest function of its own in a full pass. */
static const uint8_t hex_digit[256] = {
	['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
	['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
	['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12,
	['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static bool hex_value(char c, unsigned *v)
{
	unsigned u = (unsigned char)c;

	if (u - '0' < 10) {
		*v = u - '0';
		return true;
	}
	u |= 0x20; /* ASCII lower case */
	if (u - 'a' < 6) {
		*v = u - 'a' + 10;
		return true;
	}
	return false;
}

/* At least one hex digit; fails on overflow of 64 bits rather than wrapping. */
static bool parse_hex(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	unsigned d;

	if (p == end || !(d = hex_digit[(unsigned char)*p]))
		return false;
	do {
		if (v >> 60)
			return false;
		v = v << 4 | (d - 1);
		p++;
	} while (p < end && (d = hex_digit[(unsigned char)*p]));
	*pp = p;
	*out = v;
	return true;
}

static bool expect(const char **pp, const char *end, char c)
{
	if (*pp == end || **pp != c)
		return false;
	(*pp)++;
	return true;
}

/* Exactly "[r-][w-][x-][sp]", as show_vma_header_prefix() prints it. */
static bool parse_perms(const char **pp, const char *end, unsigned *perms)
{
	const char *p = *pp;
	unsigned v = 0;

	if (end - p < 4)
		return false;
	if (p[0] == 'r')
		v |= MAP_PERM_READ;
	else if (p[0] != '-')
		return false;
	if (p[1] == 'w')
		v |= MAP_PERM_WRITE;
	else if (p[1] != '-')
		return false;
	if (p[2] == 'x')
		v |= MAP_PERM_EXEC;
	else if (p[2] != '-')
		return false;
	if (p[3] == 's')
		v |= MAP_PERM_SHARED;
	else if (p[3] != 'p')
		return false;
	*pp = p + 4;
	*perms = v;
	return true;
}

/* Copies [s, e) into out (NAME_MAX_BYTES + 1 bytes), turning "\012" into '\n': seq_path()
 * escapes only newline, so any other backslash is literal. Fails on an over-long name or an
 * embedded NUL, which no kernel-made name contains. */
static bool decode_name(const char *s, const char *e, char *out, size_t *out_len)
{
	size_t n = 0;

	while (s < e) {
		const char *bs = memchr(s, '\\', (size_t)(e - s));
		const char *stop = bs ? bs : e;
		size_t chunk = (size_t)(stop - s);

		if (chunk > NAME_MAX_BYTES - n)
			return false;
		memcpy(out + n, s, chunk);
		n += chunk;
		s = stop;
		if (!bs)
			break;
		if (n == NAME_MAX_BYTES)
			return false;
		if (e - s >= 4 && memcmp(s, "\\012", 4) == 0) {
			out[n++] = '\n';
			s += 4;
		} else {
			out[n++] = '\\';
			s++;
		}
	}
	if (memchr(out, '\0', n))
		return false;
	out[n] = '\0';
	*out_len = n;
	return true;
}

/* Strips " (deleted)" from a NUL-terminated name of length n and fills the name fields of e. */
static void set_name(struct map_entry *e, char *name, size_t n)
{
	e->deleted = n >= DELETED_SUFFIX_LEN &&
		     memcmp(name + n - DELETED_SUFFIX_LEN, DELETED_SUFFIX, DELETED_SUFFIX_LEN) == 0;
	if (e->deleted) {
		n -= DELETED_SUFFIX_LEN;
		name[n] = '\0';
	}
	e->path = name;
	e->path_len = n;
	e->kind = map_classify(name);
}

/* Parses one line [p, eol) without its '\n'. name_buf holds NAME_MAX_BYTES + 1 bytes. */
static bool parse_line(const char *p, const char *eol, char *name_buf, struct map_entry *e)
{
	uint64_t major, minor;
	size_t name_len;

	*e = (struct map_entry){ 0 };
	if (!parse_hex(&p, eol, &e->start) || !expect(&p, eol, '-') ||
	    !parse_hex(&p, eol, &e->end) || !expect(&p, eol, ' ') ||
	    !parse_perms(&p, eol, &e->perms) || !expect(&p, eol, ' ') ||
	    !parse_hex(&p, eol, &e->offset) || !expect(&p, eol, ' ') ||
	    !parse_hex(&p, eol, &major) || !expect(&p, eol, ':') || !parse_hex(&p, eol, &minor) ||
	    !expect(&p, eol, ' ') || !parse_dec_u64(&p, eol, &e->inode))
		return false;
	if (e->start > e->end || major > UINT_MAX || minor > UINT_MAX)
		return false;
	e->dev_major = (unsigned)major;
	e->dev_minor = (unsigned)minor;

	/* The kernel always prints a space after the inode, then pads to a column only when a name
	 * follows. No name starts with a space (paths start with '/'), so all leading spaces are
	 * padding; trailing ones belong to the name. */
	if (p < eol && *p != ' ')
		return false;
	while (p < eol && *p == ' ')
		p++;
	if (!decode_name(p, eol, name_buf, &name_len))
		return false;
	set_name(e, name_buf, name_len);
	return true;
}

/* "start-end " is at most 34 bytes: two addresses of 16 digits. */
#define PERMS_AT_MOST 34

static bool perms_wanted(unsigned perms, unsigned need_any)
{
	return !need_any || (!(perms & MAP_PERM_WRITE) && (perms & need_any));
}

/* Whether a line's permissions say it can be left out without parsing the rest: it is
 * writable, or has none of need_any. A line whose permissions are not where they belong is
 * never left out here: parse_line() judges it (and counts it if malformed). */
static bool line_unwanted(const char *p, const char *eol, unsigned need_any)
{
	size_t n = (size_t)(eol - p);
	const char *sp = memchr(p, ' ', MIN(n, (size_t)PERMS_AT_MOST));
	unsigned perms;

	if (!need_any || !sp)
		return false;
	sp++;
	if (!parse_perms(&sp, eol, &perms))
		return false;
	return !perms_wanted(perms, need_any);
}

static int parse_lines(const char *buf, size_t len, unsigned need_any, map_entry_fn fn,
		       void *userdata, unsigned *n_malformed)
{
	/* One buffer for the whole walk: no allocation per line. */
	char name_buf[NAME_MAX_BYTES + 1];
	const char *p = buf, *end;
	unsigned bad = 0;
	int r = 0;

	if (len == 0)
		goto out;
	end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct map_entry e;

		if (line_unwanted(p, eol, need_any)) {
			p = nl ? nl + 1 : end;
			continue;
		}
		if (parse_line(p, eol, name_buf, &e)) {
			/* Perms too far in for line_unwanted() (zeros before an address) are
			 * tested here, so that fn sees the same entries either way. */
			if (!perms_wanted(e.perms, need_any)) {
				p = nl ? nl + 1 : end;
				continue;
			}
			r = fn(&e, userdata);
			if (r != 0)
				break;
		} else if (bad < UINT_MAX) {
			bad++;
		}
		p = nl ? nl + 1 : end;
	}
out:
	if (n_malformed)
		*n_malformed = bad;
	return r;
}

int maps_parse_buf(const char *buf, size_t len, map_entry_fn fn, void *userdata,
		   unsigned *n_malformed)
{
	return parse_lines(buf, len, 0, fn, userdata, n_malformed);
}

int maps_parse_buf_only(const char *buf, size_t len, unsigned need_any, map_entry_fn fn,
			void *userdata, unsigned *n_malformed)
{
	return parse_lines(buf, len, need_any, fn, userdata, n_malformed);
}

/* ---- the text in pieces ---- */

_Static_assert(MAPS_READ_BYTES >= MAPS_LINE_MAX, "the daemon's buffer holds every line kept");
_Static_assert(MAPS_LINE_MAX > 4 * NAME_MAX_BYTES + 200, "a line kept fits MAPS_LINE_MAX");

static void count_bad(struct maps_stream *s, unsigned bad)
{
	s->malformed = bad > UINT_MAX - s->malformed ? UINT_MAX : s->malformed + bad;
}

void maps_stream_init(struct maps_stream *s, char *buf, size_t cap)
{
	*s = (struct maps_stream){ .buf = buf, .cap = cap };
}

char *maps_stream_space(struct maps_stream *s, size_t *room)
{
	*room = s->cap - s->len;
	return s->buf + s->len;
}

/* Drops the first n bytes held. */
static void consume(struct maps_stream *s, size_t n)
{
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

int maps_stream_feed(struct maps_stream *s, size_t n, map_entry_fn fn, void *userdata)
{
	unsigned bad = 0;

	if (s->hash)
		maps_hash_add(s->hash, s->buf + s->len, n);
	s->len += n;
	if (s->skipping) {
		/* The buffer held nothing but these bytes: the rest of the long line, and more. */
		const char *nl = memchr(s->buf, '\n', s->len);
		if (!nl) {
			s->len = 0;
			return 0;
		}
		s->skipping = false;
		consume(s, (size_t)(nl + 1 - s->buf));
	}
	const char *last = memrchr(s->buf, '\n', s->len);
	if (!last) {
		if (s->len == s->cap) { /* a line as long as the buffer, and longer */
			count_bad(s, 1);
			s->skipping = true;
			s->len = 0;
		}
		return 0;
	}
	size_t whole = (size_t)(last + 1 - s->buf);
	int r = parse_lines(s->buf, whole, s->need_any, fn, userdata, &bad);
	count_bad(s, bad);
	consume(s, whole);
	return r;
}

int maps_stream_end(struct maps_stream *s, map_entry_fn fn, void *userdata)
{
	unsigned bad = 0;
	int r = 0;

	if (!s->skipping && s->len)
		r = parse_lines(s->buf, s->len, s->need_any, fn, userdata, &bad);
	count_bad(s, bad);
	s->len = 0;
	s->skipping = false;
	return r;
}

int maps_read_fd(int fd, struct maps_stream *s, map_entry_fn fn, void *userdata)
{
	for (;;) {
		size_t room;
		char *at = maps_stream_space(s, &room);
		ssize_t n = read(fd, at, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return maps_stream_end(s, fn, userdata);
		int r = maps_stream_feed(s, (size_t)n, fn, userdata);
		if (r != 0)
			return r;
	}
}

int maps_hash_fd(int fd, char *buf, size_t cap, struct maps_hash *h)
{
	for (;;) {
		ssize_t n = read(fd, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		maps_hash_add(h, buf, (size_t)n);
	}
}

/* ---- a keyed hash of the text ----
 *
 * The text is cut into elements of 7 bytes (little-endian, so each is below 2^56 and the cut is
 * one to one), the last one padded with zero bytes to a whole block of eight; the element list is
 * the prefix, those elements, and the length in bytes. The hash is that list's polynomial at the
 * key r, by Horner's rule, modulo P = 2^61 - 1. Two different texts of the same length differ in
 * an element; of different lengths, in the last one (a shorter list is a longer one with leading
 * zeros, which Horner's rule does not see). Their difference is then a polynomial that is not
 * zero, of degree at most N / 7 + 9, so at most that many keys make them collide.
 *
 * Eight elements a step, h = h r^8 + m0 r^7 + ... + m6 r + m7, summed in 128 bits and reduced
 * once: only the first product waits for the step before. Reductions are lazy: values stay
 * congruent modulo P, and h below 2^62. */
#define MH_P ((UINT64_C(1) << 61) - 1)
#define MH_M56 ((UINT64_C(1) << 56) - 1)

/* x below 2^64 -> congruent, below 2^61 + 8. */
static inline uint64_t mh_fold(uint64_t x)
{
	return (x & MH_P) + (x >> 61);
}

/* t below 2^125 -> congruent, below 2^61 + 8. */
static inline uint64_t mh_reduce(unsigned __int128 t)
{
	return mh_fold(((uint64_t)t & MH_P) + (uint64_t)(t >> 61));
}

/* a below 2^62, b below 2^61 -> a b modulo P, congruent, below 2^61 + 8. */
static inline uint64_t mh_mul(uint64_t a, uint64_t b)
{
	return mh_reduce((unsigned __int128)a * b);
}

static inline uint64_t mh_load(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

typedef unsigned __int128 mh_u128;

/* One block of MAPS_HASH_BLOCK bytes; reads none beyond it. r[i] is the point to the (i+1)th. */
static inline uint64_t mh_block(uint64_t h, const uint64_t *r, const unsigned char *b)
{
	/* h r^8 is below 2^123, each of the seven products below 2^117, m7 below 2^56: the sum
	 * is below 2^124. */
	mh_u128 t = (mh_u128)h * r[7];
	for (int i = 0; i < 7; i++)
		t += (mh_u128)(mh_load(b + 7 * i) & MH_M56) * r[6 - i];
	return mh_reduce(t + (mh_load(b + 48) >> 8));
}

_Static_assert(MAPS_HASH_BLOCK == 56 && sizeof(((struct maps_hash *)0)->tail) == MAPS_HASH_BLOCK,
	       "eight elements of 7 bytes");

void maps_hash_key_init(struct maps_hash_key *k, uint64_t random)
{
	uint64_t r = random % MH_P;
	k->r[0] = r ? r : 1;
	for (int i = 1; i < 8; i++) {
		uint64_t x = mh_fold(mh_mul(k->r[i - 1], k->r[0]));
		k->r[i] = x >= MH_P ? x - MH_P : x;
	}
}

void maps_hash_init(struct maps_hash *h, const struct maps_hash_key *k, uint64_t prefix)
{
	*h = (struct maps_hash){ .key = k, .h = prefix & MH_M56 };
}

void maps_hash_add(struct maps_hash *h, const void *data, size_t n)
{
	const unsigned char *p = data;
	const uint64_t *r = h->key->r;
	uint64_t acc = h->h;

	h->len += n;
	if (h->ntail) {
		size_t k = MIN(n, (size_t)(MAPS_HASH_BLOCK - h->ntail));
		memcpy(h->tail + h->ntail, p, k);
		h->ntail += (unsigned)k;
		p += k;
		n -= k;
		if (h->ntail < MAPS_HASH_BLOCK)
			return;
		acc = mh_block(acc, r, h->tail);
		h->ntail = 0;
	}
	for (; n >= MAPS_HASH_BLOCK; p += MAPS_HASH_BLOCK, n -= MAPS_HASH_BLOCK)
		acc = mh_block(acc, r, p);
	memcpy(h->tail, p, n);
	h->ntail = (unsigned)n;
	h->h = acc;
}

uint64_t maps_hash_end(struct maps_hash *h)
{
	uint64_t acc = h->h;
	if (h->ntail) {
		memset(h->tail + h->ntail, 0, MAPS_HASH_BLOCK - h->ntail);
		acc = mh_block(acc, h->key->r, h->tail);
		h->ntail = 0;
	}
	acc = mh_fold(mh_mul(acc, h->key->r[0]) + (h->len & MH_M56));
	acc = mh_fold(acc);
	return acc >= MH_P ? acc - MH_P : acc;
}

bool map_entry_is_exec_file(const struct map_entry *e)
{
	return e->kind == MAP_KIND_FILE && (e->perms & MAP_PERM_EXEC) && !(e->perms & MAP_PERM_WRITE);
}

bool map_entry_is_lockable(const struct map_entry *e, bool data)
{
	return map_entry_is_exec_file(e) || (data && e->kind == MAP_KIND_FILE &&
					     (e->perms & MAP_PERM_READ) && !(e->perms & MAP_PERM_WRITE));
}

static bool is_sysv_name(const char *name)
{
	unsigned d;

	if (strncmp(name, "/SYSV", 5) != 0)
		return false;
	for (int i = 5; i < 13; i++)
		if (!hex_value(name[i], &d)) /* stops at the NUL too */
			return false;
	return name[13] == '\0';
}

enum map_kind map_classify(const char *name)
{
	if (!name || name[0] == '\0')
		return MAP_KIND_ANON;
	if (name[0] == '[')
		return name[strlen(name) - 1] == ']' ? MAP_KIND_SPECIAL : MAP_KIND_OTHER;
	if (name[0] != '/')
		return MAP_KIND_OTHER;
	/* By the second byte first: this runs for every mapping the daemon looks at, and nearly
	 * all are files under /usr, /lib, /opt. */
	switch (name[1]) {
	case 'd':
		return strncmp(name, "/dev/", 5) == 0 ? MAP_KIND_DEVICE : MAP_KIND_FILE;
	case 'm':
		return strncmp(name, "/memfd:", 7) == 0 ? MAP_KIND_MEMFD : MAP_KIND_FILE;
	case 'S':
		return is_sysv_name(name) ? MAP_KIND_SYSV : MAP_KIND_FILE;
	default:
		return MAP_KIND_FILE;
	}
}

/* ---- PROCMAP_QUERY ---- */

#define QUERY_FLAGS (PROCMAP_QUERY_COVERING_OR_NEXT_VMA | PROCMAP_QUERY_FILE_BACKED_VMA)

static uint64_t perms_to_vma_flags(unsigned perms)
{
	return (perms & MAP_PERM_READ ? PROCMAP_QUERY_VMA_READABLE : 0) |
	       (perms & MAP_PERM_WRITE ? PROCMAP_QUERY_VMA_WRITABLE : 0) |
	       (perms & MAP_PERM_EXEC ? PROCMAP_QUERY_VMA_EXECUTABLE : 0) |
	       (perms & MAP_PERM_SHARED ? PROCMAP_QUERY_VMA_SHARED : 0);
}

/* Asks for the first matching VMA at or above addr (or, with exact, the one covering addr);
 * name may be NULL with name_size 0. */
static int query_vma(int fd, struct procmap_query *q, uint64_t addr, char *name, uint32_t name_size,
		     bool exact, unsigned need)
{
	uint64_t flags = QUERY_FLAGS | perms_to_vma_flags(need);
	*q = (struct procmap_query){
		.size = sizeof(*q),
		.query_flags = exact ? flags & ~(uint64_t)PROCMAP_QUERY_COVERING_OR_NEXT_VMA : flags,
		.query_addr = addr,
		.vma_name_size = name_size,
		.vma_name_addr = (uint64_t)(uintptr_t)name,
	};
	if (ioctl(fd, PROCMAP_QUERY, q) < 0)
		return -errno;
	return 0;
}

static unsigned perms_from_vma_flags(uint64_t f)
{
	return (f & PROCMAP_QUERY_VMA_READABLE ? MAP_PERM_READ : 0) |
	       (f & PROCMAP_QUERY_VMA_WRITABLE ? MAP_PERM_WRITE : 0) |
	       (f & PROCMAP_QUERY_VMA_EXECUTABLE ? MAP_PERM_EXEC : 0) |
	       (f & PROCMAP_QUERY_VMA_SHARED ? MAP_PERM_SHARED : 0);
}

/* Turns one answer into an entry for fn; a name that does not fit is skipped (returns 0). */
static int emit_vma(const struct procmap_query *q, char *name, size_t name_size, map_entry_fn fn,
		    void *userdata)
{
	struct map_entry e = {
		.start = q->vma_start,
		.end = q->vma_end,
		.offset = q->vma_offset,
		.inode = q->inode,
		.dev_major = q->dev_major,
		.dev_minor = q->dev_minor,
		.perms = perms_from_vma_flags(q->vma_flags),
	};
	/* vma_name_size counts the NUL; 0 means no name. The kernel caps names at PATH_MAX, which
	 * is smaller than our buffer, so the check only guards against a kernel we do not know. */
	size_t n = q->vma_name_size ? q->vma_name_size - 1 : 0;

	if (n > NAME_MAX_BYTES || n >= name_size)
		return 0;
	name[n] = '\0';
	set_name(&e, name, n);
	return fn(&e, userdata);
}

/* Sends fn a VMA without its name; on MAPS_NEED_NAME asks the kernel again for that VMA with
 * its name. */
static int emit_lazy(int fd, const struct procmap_query *first, char *name, size_t name_size,
		     unsigned need, map_entry_fn fn, void *userdata)
{
	struct procmap_query q;
	struct map_entry e = {
		.start = first->vma_start,
		.end = first->vma_end,
		.offset = first->vma_offset,
		.inode = first->inode,
		.dev_major = first->dev_major,
		.dev_minor = first->dev_minor,
		.perms = perms_from_vma_flags(first->vma_flags),
		.kind = MAP_KIND_FILE,
	};
	int r = fn(&e, userdata);
	if (r != MAPS_NEED_NAME)
		return r;
	r = query_vma(fd, &q, first->vma_start, name, (uint32_t)name_size, true, need);
	if (r == -ENAMETOOLONG || r == -E2BIG || r == -ENOENT)
		return 0; /* a name the text parser would drop too, or the VMA went away */
	if (r < 0)
		return r;
	if (q.vma_start != first->vma_start || q.inode != first->inode)
		return 0; /* replaced between the two questions: the next pass sees the new one */
	r = emit_vma(&q, name, name_size, fn, userdata);
	return r == MAPS_NEED_NAME ? 0 : r;
}

int maps_query_walk(int fd, unsigned need, bool lazy, map_entry_fn fn, void *userdata)
{
	char name[PATH_MAX + 32];
	struct procmap_query q;
	uint64_t addr = 0;
	bool answered = false;

	for (;;) {
		int r = lazy ? query_vma(fd, &q, addr, NULL, 0, false, need)
			     : query_vma(fd, &q, addr, name, (uint32_t)sizeof(name), false, need);
		bool skip = false;

		/* d_path() of a name longer than PATH_MAX fails the whole query, vma_end included:
		 * ask again without the name to learn where to resume. (The uapi comment says
		 * E2BIG, the code returns ENAMETOOLONG.) The text parser drops the same names. */
		if (r == -ENAMETOOLONG || r == -E2BIG) {
			r = query_vma(fd, &q, addr, NULL, 0, false, need);
			skip = true;
		}
		if (r == -ENOENT)
			return 0; /* no more matching VMAs */
		if (r < 0)
			/* ENOTTY/EINVAL tell the caller to fall back to the text, which would
			 * repeat what fn has already seen if it came after a good answer. */
			return answered && (r == -ENOTTY || r == -EINVAL) ? -EIO : r;
		answered = true;
		if (q.vma_end <= addr)
			return -EIO; /* a kernel that does not move forward would loop us forever */
		addr = q.vma_end;
		if (skip)
			continue;
		r = lazy ? emit_lazy(fd, &q, name, sizeof(name), need, fn, userdata)
			 : emit_vma(&q, name, sizeof(name), fn, userdata);
		if (r != 0)
			return r;
	}
}

int maps_query_fd(int fd, map_entry_fn fn, void *userdata)
{
	return maps_query_walk(fd, MAP_PERM_EXEC, false, fn, userdata);
}

int maps_query_fd_lazy(int fd, map_entry_fn fn, void *userdata)
{
	return maps_query_walk(fd, MAP_PERM_EXEC, true, fn, userdata);
}
