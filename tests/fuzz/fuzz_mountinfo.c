/* libFuzzer target: the mountinfo parser (mountinfo_parse) and the questions asked of its
 * table. A user controls much of their own namespace's table: mount points with any bytes,
 * overlayfs layer lists, thousands of lines. Nothing may read past the buffer or loop, and
 * every answer must point into the table. */
#include <stdlib.h>
#include <string.h>

#include "mountinfo.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int count_layer(const char *dir, void *ud)
{
	if (dir[0] != '/')
		abort(); /* only absolute layers are handed out */
	(*(int *)ud)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *text = malloc(size + 1);
	struct mnt_table t = { 0 };
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (mountinfo_parse(text, size, &t) == 0) {
		for (uint32_t i = 0; i < t.n; i++) {
			const struct mnt *m = &t.v[i];
			if (m->point[0] != '/' || mnt_by_id(&t, m->id) == NULL ||
			    mnt_by_dev(&t, m->dev) == NULL)
				abort();
			const struct mnt *h = mnt_holding(&t, m->point);
			if (!h || h < t.v || h >= t.v + t.n)
				abort(); /* its own mount point is held, at least by itself */
			int layers = 0;
			(void)mnt_overlay_layers(m, count_layer, &layers);
			(void)fstype_may_block(m->fstype);
		}
	}
	mnt_table_free(&t);
	free(text);
	return 0;
}
