/* libFuzzer target: the state-file reader (state_parse). The file lives in /var/lib/prelockd and
 * only root writes it, but it survives crashes, disks and upgrades: it may be truncated, corrupt
 * or from another program. A file is either taken whole, with only well-formed entries, or
 * refused whole; the path escaping it uses must round-trip. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "statefile.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define PAGE 4096

static void check_escape(const char *path)
{
	char *esc = escape_path(path);
	if (!esc)
		return;
	/* One line whatever the bytes: nothing below 0x20 survives escaping. */
	for (const char *p = esc; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	if (unescape_path(esc) < 0 || strcmp(esc, path) != 0)
		abort();
	free(esc);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	/* state_restore() refuses a file with a NUL byte before parsing; parse what it would. */
	if (memchr(data, '\0', size))
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct saved_file *v = NULL;
	uint32_t n = 0;
	int r = state_parse(text, PAGE, &v, &n);
	if (r != 0) {
		if (r != -ENOMEM && (r < 0 || v || n))
			abort(); /* refused whole: nothing handed out */
	} else {
		for (uint32_t i = 0; i < n; i++) {
			const struct saved_file *f = &v[i];
			if (!f->path || f->path[0] != '/')
				abort();
			for (uint32_t k = 0; k < f->nranges; k++) {
				const struct saved_range *q = &f->ranges[k];
				if (q->off % PAGE || q->len % PAGE || q->len == 0 ||
				    q->off + q->len < q->off)
					abort();
			}
			check_escape(f->path);
		}
		saved_free(v, n);
	}
	free(text);

	/* escape_path() of any string round-trips through unescape_path(). */
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
		check_escape(s);
		free(s);
	}
	return 0;
}
