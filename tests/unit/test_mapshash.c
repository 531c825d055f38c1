/* Tests for the keyed hash of maps text (maps.h, maps_hash_*): the same text gives the same hash
 * however it is cut into pieces, by maps_hash_add(), maps_stream_feed() or maps_hash_fd(); any
 * change of a byte, of the length or of the prefix changes it; it is the polynomial maps.c
 * describes, computed here the slow way. (Its speed against the parse it saves is measured by
 * bench/ab.py, not here: timings are for benchmarks.) */
#include "check.h"
#include "maps.h"
#include "util.h"

#include <stdlib.h>
#include <unistd.h>

#define P ((UINT64_C(1) << 61) - 1)

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t mulmod(uint64_t a, uint64_t b)
{
	return (uint64_t)((unsigned __int128)a * b % P);
}

/* The definition: elements of 7 bytes little-endian, zero-padded to a multiple of eight, after
 * the prefix and before the length; Horner's rule modulo P at the key's point. */
static uint64_t reference(uint64_t r, uint64_t prefix, const unsigned char *t, size_t n)
{
	size_t blocks = (n + 55) / 56;
	uint64_t h = prefix % P;
	for (size_t e = 0; e < blocks * 8; e++) {
		uint64_t m = 0;
		for (int b = 6; b >= 0; b--) {
			size_t i = e * 7 + (size_t)b;
			m = m << 8 | (i < n ? t[i] : 0);
		}
		h = (mulmod(h, r) + m) % P;
	}
	return (mulmod(h, r) + n) % P;
}

static uint64_t whole(const struct maps_hash_key *k, uint64_t prefix, const void *t, size_t n)
{
	struct maps_hash h;
	maps_hash_init(&h, k, prefix);
	maps_hash_add(&h, t, n);
	return maps_hash_end(&h);
}

/* In pieces of random sizes up to max (0 bytes included). */
static uint64_t pieces(const struct maps_hash_key *k, uint64_t prefix, const unsigned char *t,
		       size_t n, size_t max)
{
	struct maps_hash h;
	maps_hash_init(&h, k, prefix);
	for (size_t at = 0; at < n;) {
		size_t m = (size_t)(rnd() % (max + 1));
		if (m > n - at)
			m = n - at;
		maps_hash_add(&h, t + at, m);
		at += m;
	}
	return maps_hash_end(&h);
}

static void test_reference(void)
{
	unsigned char t[300];
	for (size_t i = 0; i < sizeof(t); i++)
		t[i] = (unsigned char)rnd();
	uint64_t seeds[] = { 0, 1, P - 1, P, P + 1, UINT64_MAX, rnd(), rnd(), rnd() };
	bool all = true;
	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		struct maps_hash_key k;
		maps_hash_key_init(&k, seeds[s]);
		uint64_t r = k.r[0];
		all &= r > 0 && r < P;
		for (int i = 1; i < 8; i++)
			all &= k.r[i] == mulmod(k.r[i - 1], r);
		for (size_t n = 0; n <= sizeof(t); n += (n < 64 ? 1 : 17)) {
			uint64_t prefix = rnd() >> 8;
			all &= whole(&k, prefix, t, n) == reference(r, prefix, t, n);
		}
	}
	CHECK(all, "the hash is the polynomial modulo 2^61 - 1, for lengths 0 to 300 and 9 keys");
	/* Bytes of 0xff make every element as large as it gets: the lazy reductions hold. */
	memset(t, 0xff, sizeof(t));
	struct maps_hash_key k;
	maps_hash_key_init(&k, P - 1);
	all = true;
	for (size_t n = 0; n <= sizeof(t); n++)
		all &= whole(&k, (UINT64_C(1) << 56) - 1, t, n) ==
		       reference(k.r[0], (UINT64_C(1) << 56) - 1, t, n);
	CHECK(all, "elements and key at their largest");
}

static int count_fn(const struct map_entry *e, void *userdata)
{
	(void)e;
	(*(unsigned *)userdata)++;
	return 0;
}

static void test_pieces(void)
{
	size_t n = 200000;
	unsigned char *t = malloc(n);
	struct maps_hash_key k;
	maps_hash_key_init(&k, rnd());
	for (size_t i = 0; i < n; i++)
		t[i] = (unsigned char)("0123456789abcdef-/ \n"[rnd() % 20]);
	uint64_t want = whole(&k, 5, t, n);
	bool all = true;
	size_t maxes[] = { 1, 3, 55, 56, 57, 100, 4096, 65536 };
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++)
		all &= pieces(&k, 5, t, n, maxes[m]) == want;
	CHECK(all, "200000 bytes in pieces of random sizes hash as a whole");
	/* Every cut of a short text into two. */
	all = true;
	for (size_t cut = 0; cut <= 100; cut++) {
		struct maps_hash h;
		maps_hash_init(&h, &k, 5);
		maps_hash_add(&h, t, cut);
		maps_hash_add(&h, t + cut, 100 - cut);
		all &= maps_hash_end(&h) == whole(&k, 5, t, 100);
	}
	CHECK(all, "every cut of 100 bytes in two");

	/* maps_stream_feed() adds what it is fed, as the reader feeds it. */
	char buf[4096];
	struct maps_stream ms;
	struct maps_hash h;
	maps_stream_init(&ms, buf, sizeof(buf));
	maps_hash_init(&h, &k, 5);
	ms.hash = &h;
	const char *line = "7f0000000000-7f0000001000 r-xp 00000000 08:01 1234 /usr/lib/x.so\n";
	size_t total = 0;
	unsigned count = 0;
	char *text = malloc(200 * strlen(line));
	for (int i = 0; i < 200; i++) {
		size_t room, l = strlen(line);
		memcpy(text + total, line, l);
		total += l;
		for (size_t at = 0; at < l;) {
			char *space = maps_stream_space(&ms, &room);
			size_t m = (size_t)(1 + rnd() % 40);
			m = MIN(m, MIN(room, l - at));
			memcpy(space, line + at, m);
			maps_stream_feed(&ms, m, count_fn, &count);
			at += m;
		}
	}
	maps_stream_end(&ms, count_fn, &count);
	CHECK_U64(maps_hash_end(&h), whole(&k, 5, text, total), "maps_stream_feed hashes the text");
	CHECK_U64(count, 200, "and parses it");

	/* maps_hash_fd() reads to the end, in pieces of the buffer's size. */
	char path[] = "/tmp/test_mapshash.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, t, n) == (ssize_t)n && lseek(fd, 0, SEEK_SET) == 0,
	      "a file of 200000 bytes");
	unlink(path);
	maps_hash_init(&h, &k, 5);
	CHECK(maps_hash_fd(fd, buf, 1000, &h) == 0 && maps_hash_end(&h) == want,
	      "maps_hash_fd hashes all the file");
	CHECK(maps_hash_fd(-1, buf, 1000, &h) < 0, "maps_hash_fd: an error is returned");
	close(fd);
	free(text);
	free(t);
}

static void test_differs(void)
{
	unsigned char t[1000], u[1000];
	struct maps_hash_key k, k2;
	maps_hash_key_init(&k, rnd());
	maps_hash_key_init(&k2, rnd());
	for (size_t i = 0; i < sizeof(t); i++)
		t[i] = (unsigned char)rnd();
	uint64_t base = whole(&k, 3, t, sizeof(t));
	bool all = true;
	for (size_t i = 0; i < sizeof(t); i++) {
		memcpy(u, t, sizeof(t));
		u[i] ^= (unsigned char)(1u << (rnd() % 8));
		all &= whole(&k, 3, u, sizeof(u)) != base;
	}
	CHECK(all, "flipping any one bit of 1000 bytes changes the hash");
	memcpy(u, t, sizeof(t));
	u[10] ^= 1;
	u[500] ^= 0x80;
	CHECK(whole(&k, 3, u, sizeof(u)) != base, "two bits flipped");
	/* Zero bytes at the end are what the padding adds: the length tells them apart. */
	unsigned char z[64] = { 'a' };
	all = true;
	for (size_t n = 1; n < sizeof(z); n++)
		all &= whole(&k, 3, z, n) != whole(&k, 3, z, n + 1);
	CHECK(all, "\"a\" and \"a\" with 1 to 63 zero bytes after it all differ");
	CHECK(whole(&k, 3, "", 0) != whole(&k, 3, z + 1, 1), "empty and one zero byte differ");
	CHECK(whole(&k, 3, t, 100) != whole(&k, 4, t, 100), "another prefix, another hash");
	CHECK(whole(&k, 0, z + 1, 7) != whole(&k, 0, "", 0), "a zero element is not nothing");
	CHECK(whole(&k, 3, t, 100) != whole(&k2, 3, t, 100), "another key, another hash");
	/* Swapping two elements, or two lines, changes it (a sum of elements would not). */
	memcpy(u, t, 14);
	memcpy(u, t + 7, 7);
	memcpy(u + 7, t, 7);
	CHECK(whole(&k, 3, u, 14) != whole(&k, 3, t, 14), "two elements swapped");
}

int main(void)
{
	test_reference();
	test_pieces();
	test_differs();
	return check_done();
}
