#include "files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *file_reason_to_string(enum file_reason r)
{
	static const char *const names[] = {
		[REASON_NONE] = "selected",
		[REASON_NOT_INCLUDED] = "not included",
		[REASON_EXCLUDED] = "excluded",
		[REASON_DELETED] = "deleted",
		[REASON_OPEN_FAILED] = "cannot open",
		[REASON_NOT_REGULAR] = "not a regular file",
		[REASON_REPLACED] = "replaced on disk",
		[REASON_SPARSE] = "sparse",
		[REASON_EMPTY] = "nothing to lock",
		[REASON_BUDGET] = "over budget",
		[REASON_BUDGET_PARTLY] = "budget: cannot grow",
		[REASON_UNMAPPED] = "unmapped, kept",
		[REASON_LOCK_FAILED] = "lock failed",
		[REASON_NOT_OWNED] = "not owned by root",
		[REASON_WRITABLE] = "writable by others",
		[REASON_MAY_BLOCK] = "filesystem may block",
	};
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

const char *file_kind_to_string(const struct lfile *f)
{
	return f->as_code ? (f->as_data ? "code+data" : "code") : f->as_data ? "data" : "-";
}

static uint32_t hash_id(uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);
	return (uint32_t)(h ^ (h >> 29));
}

void file_table_free(struct file_table *t)
{
	for (uint32_t i = 0; i < t->nslots; i++) {
		free(t->slots[i].path);
		free(t->slots[i].want_bits);
		free(t->slots[i].pieces);
	}
	free(t->slots);
	free(t->free_list);
	free(t->buckets);
	*t = (struct file_table){ 0 };
}

int64_t file_table_find(const struct file_table *t, uint64_t dev, uint64_t ino)
{
	if (!t->nbuckets)
		return -1;
	for (uint32_t s = t->buckets[hash_id(dev, ino) & (t->nbuckets - 1)]; s;
	     s = t->slots[s - 1].hash_next) {
		const struct lfile *f = &t->slots[s - 1];
		if (f->dev == dev && f->ino == ino)
			return s - 1;
	}
	return -1;
}

static int rehash(struct file_table *t, uint32_t nbuckets)
{
	uint32_t *b = calloc(nbuckets, sizeof(*b));
	if (!b)
		return -ENOMEM;
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nbuckets;
	for (uint32_t i = 0; i < t->nslots; i++) {
		struct lfile *f = &t->slots[i];
		if (!f->in_use)
			continue;
		uint32_t h = hash_id(f->dev, f->ino) & (nbuckets - 1);
		f->hash_next = b[h];
		b[h] = i + 1;
	}
	return 0;
}

static int64_t new_slot(struct file_table *t)
{
	if (t->nfree)
		return t->free_list[--t->nfree];
	if (t->nslots == t->cap) {
		uint32_t ncap = t->cap ? t->cap * 2 : 256;
		struct lfile *n = realloc(t->slots, ncap * sizeof(*n));
		uint32_t *fl = realloc(t->free_list, ncap * sizeof(*fl));
		if (n)
			t->slots = n;
		if (fl)
			t->free_list = fl;
		if (!n || !fl)
			return -ENOMEM;
		t->cap = ncap;
	}
	return t->nslots++;
}

int64_t file_table_get(struct file_table *t, uint64_t dev, uint64_t ino, const char *path,
		       bool *created)
{
	int64_t s = file_table_find(t, dev, ino);
	*created = false;
	if (s >= 0)
		return s;
	if (t->nused + 1 > t->nbuckets / 2 && rehash(t, t->nbuckets ? t->nbuckets * 2 : 512) < 0)
		return -ENOMEM;
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	s = new_slot(t);
	if (s < 0) {
		free(p);
		return s;
	}
	struct lfile *f = &t->slots[s];
	size_t n = strlen(p);
	*f = (struct lfile){ .dev = dev, .ino = ino, .path = p, .fd = -1, .in_use = true };
	f->path_len = n < UINT16_MAX ? (uint16_t)n : UINT16_MAX;
	uint32_t h = hash_id(dev, ino) & (t->nbuckets - 1);
	f->hash_next = t->buckets[h];
	t->buckets[h] = (uint32_t)s + 1;
	t->nused++;
	*created = true;
	return s;
}

void file_table_remove(struct file_table *t, uint32_t slot)
{
	struct lfile *f = &t->slots[slot];
	uint32_t *link = &t->buckets[hash_id(f->dev, f->ino) & (t->nbuckets - 1)];
	while (*link && *link != slot + 1)
		link = &t->slots[*link - 1].hash_next;
	if (*link)
		*link = f->hash_next;
	free(f->path);
	free(f->want_bits);
	free(f->pieces);
	*f = (struct lfile){ .fd = -1 };
	t->free_list[t->nfree++] = slot;
	t->nused--;
}

int file_want_reserve(struct lfile *f, uint64_t npages)
{
	if (npages <= f->want_npages)
		return 0;
	if (npages > UINT32_MAX)
		return -EFBIG;
	size_t oldw = (f->want_npages + 63) / 64, neww = (size_t)((npages + 63) / 64);
	if (neww > oldw) {
		uint64_t *n = realloc(f->want_bits, neww * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + oldw, 0, (neww - oldw) * sizeof(*n));
		f->want_bits = n;
	}
	f->want_npages = (uint32_t)npages;
	f->settled = false;
	f->pm_since = 0; /* the new pages were never looked up */
	return 0;
}

void file_want_set_range(struct lfile *f, uint64_t first, uint64_t n)
{
	uint64_t end = first + n < f->want_npages ? first + n : f->want_npages;
	for (uint64_t p = first; p < end;) {
		if (p % 64 == 0 && end - p >= 64) {
			if (f->want_bits[p / 64] != ~0ull) {
				f->want_bits[p / 64] = ~0ull;
				f->settled = false;
			}
			p += 64;
			continue;
		}
		uint64_t bit = 1ull << (p % 64);
		if (!(f->want_bits[p / 64] & bit)) {
			f->want_bits[p / 64] |= bit;
			f->settled = false;
		}
		p++;
	}
}

void file_want_clear(struct lfile *f)
{
	if (f->want_bits)
		memset(f->want_bits, 0, (f->want_npages + 63) / 64 * sizeof(uint64_t));
	f->settled = false;
	f->pm_since = 0;
}
