/* libFuzzer target: the /proc/PID/maps text parser (maps_parse_buf). The text comes from the
 * kernel, but the names in it come from any local user (file names, memfd and prctl names), so
 * the parser must survive anything and hand out only consistent entries. */
#include <limits.h>
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

	/* A callback's non-zero return stops the walk and is returned. */
	if (w.entries) {
		struct walk s = { .stop_after = 1 };
		if (maps_parse_buf(buf, size, on_entry, &s, NULL) != 7 || s.entries != 1)
			abort();
	}
	free(buf);
	return 0;
}
