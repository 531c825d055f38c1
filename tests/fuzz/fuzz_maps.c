/* libFuzzer target: the /proc/PID/maps text parser (maps_parse_buf). The text comes from the
 * kernel, but the names in it come from any local user (file names, memfd and prctl names), so
 * the parser must survive anything and hand out only consistent entries. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maps.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

struct walk {
	unsigned entries;
	unsigned stop_after; /* 0: never stop */
};

static int on_entry(const struct map_entry *e, void *userdata)
{
	struct walk *w = userdata;

	if (e->start > e->end)
		abort();
	if (!e->path || strlen(e->path) != e->path_len || e->path_len > PATH_MAX - 1)
		abort();
	if (e->kind != map_classify(e->path))
		abort();
	if (e->perms & ~(MAP_PERM_READ | MAP_PERM_WRITE | MAP_PERM_EXEC | MAP_PERM_SHARED))
		abort();
	if (map_entry_is_exec_file(e) && (e->path[0] != '/' || !(e->perms & MAP_PERM_EXEC)))
		abort();
	w->entries++;
	return w->stop_after && w->entries == w->stop_after ? 7 : 0;
}

/* A checksum of the entries a walk hands out, in order. */
struct sum {
	unsigned entries;
	uint64_t h;
};

static void mix(uint64_t *h, uint64_t v)
{
	*h = (*h ^ v) * 0x100000001b3ull;
}

static int sum_entry(const struct map_entry *e, void *userdata)
{
	struct sum *s = userdata;
	uint64_t f[] = { e->start, e->end, e->offset, e->inode, e->dev_major, e->dev_minor,
			 e->perms, (uint64_t)e->kind, e->deleted, e->path_len };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		mix(&s->h, f[i]);
	for (size_t i = 0; i < e->path_len; i++)
		mix(&s->h, (unsigned char)e->path[i]);
	s->entries++;
	return 0;
}

/* maps_parse_buf_only: exactly the entries of the whole parse that pass its permission test, in
 * order, and no more lines counted malformed. */
struct only {
	unsigned need_any;
	struct sum sum;
};

static int sum_passing(const struct map_entry *e, void *userdata)
{
	struct only *o = userdata;
	if (!(e->perms & MAP_PERM_WRITE) && (e->perms & o->need_any))
		sum_entry(e, &o->sum);
	return 0;
}

static void check_only(const char *buf, size_t size, unsigned need_any, unsigned all_bad)
{
	struct only want = { need_any, { 0, 0xcbf29ce484222325ull } };
	struct sum got = want.sum;
	unsigned bad;
	maps_parse_buf(buf, size, sum_passing, &want, NULL);
	if (maps_parse_buf_only(buf, size, need_any, sum_entry, &got, &bad) != 0)
		abort();
	if (got.entries != want.sum.entries || got.h != want.sum.h || bad > all_bad)
		abort();
}

/* The reader in pieces (maps_stream) against the whole-text parser: a buffer of cap bytes (from
 * the input's first bytes, 1 to 1024) fed pieces whose sizes come from the input too. Each line
 * that fits (with its '\n', or the last one without) must come out as the whole-text parser
 * makes it of that line alone; each line that does not fit counts one malformed. The hash of
 * the pieces (maps_hash) is that of the whole text. */
static void check_stream(const char *buf, size_t size, size_t cap, const unsigned char *steps,
			 size_t nsteps)
{
	struct sum want = { 0, 0xcbf29ce484222325ull }, got = want;
	unsigned want_bad = 0, bad;
	char *space = malloc(cap);
	if (!space)
		return;
	for (size_t p = 0; p < size;) {
		const char *nl = memchr(buf + p, '\n', size - p);
		size_t line = nl ? (size_t)(nl - (buf + p)) + 1 : size - p;
		if (line <= cap && (nl || line < cap)) {
			maps_parse_buf(buf + p, line, sum_entry, &want, &bad);
			want_bad += bad;
		} else {
			want_bad++;
		}
		p += line;
	}
	struct maps_stream ms;
	struct maps_hash_key key;
	struct maps_hash hash, whole;
	maps_hash_key_init(&key, cap * 0x9e3779b97f4a7c15ull);
	maps_hash_init(&hash, &key, cap);
	maps_hash_init(&whole, &key, cap);
	maps_hash_add(&whole, buf, size);
	maps_stream_init(&ms, space, cap);
	ms.hash = &hash;
	size_t pos = 0, k = 0;
	while (pos < size) {
		size_t room, n = nsteps ? (size_t)steps[k++ % nsteps] + 1 : size;
		char *at = maps_stream_space(&ms, &room);
		if (room == 0 || room > cap)
			abort();
		n = n < room ? n : room;
		n = n < size - pos ? n : size - pos;
		memcpy(at, buf + pos, n);
		pos += n;
		if (maps_stream_feed(&ms, n, sum_entry, &got) != 0)
			abort();
	}
	if (maps_stream_end(&ms, sum_entry, &got) != 0)
		abort();
	if (got.entries != want.entries || got.h != want.h || ms.malformed != want_bad)
		abort();
	if (maps_hash_end(&hash) != maps_hash_end(&whole))
		abort();
	free(space);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	/* The parser must not read past len: give it a buffer with no terminator of any kind. */
	char *buf = malloc(size ? size : 1);
	unsigned bad = 0, lines = 0;
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	for (size_t i = 0; i < size; i++)
		lines += buf[i] == '\n';
	if (size && buf[size - 1] != '\n')
		lines++;

	struct walk w = { 0 };
	if (maps_parse_buf(buf, size, on_entry, &w, &bad) != 0)
		abort();
	/* Every line is either an entry or counted malformed. */
	if (w.entries + bad != lines)
		abort();

	check_only(buf, size, MAP_PERM_EXEC, bad);
	check_only(buf, size, MAP_PERM_EXEC | MAP_PERM_READ, bad);
	/* A callback's non-zero return stops the walk and is returned. */
	if (w.entries) {
		struct walk s = { .stop_after = 1 };
		if (maps_parse_buf(buf, size, on_entry, &s, NULL) != 7 || s.entries != 1)
			abort();
	}
	/* In pieces: the buffer's size from the first two bytes, the pieces' from the next eight. */
	if (size > 10) {
		size_t cap = (((size_t)data[0] << 8 | data[1]) % 1024) + 1;
		check_stream(buf + 10, size - 10, cap, data + 2, 8);
	}
	check_stream(buf, size, 4096, NULL, 0);
	free(buf);
	return 0;
}
