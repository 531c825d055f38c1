/* The state file's reader; the format is in statefile.h. */
#include "statefile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void saved_free(struct saved_file *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].ranges);
	}
	free(v);
}

/* A decimal number, digits only (no sign, no space: sscanf() would take "-1" as 2^64 - 1),
 * followed by the separator sep. */
static bool take_u64(const char **p, uint64_t *v, char sep)
{
	const char *q = *p;
	if (!parse_dec_u64(&q, q + strlen(q), v) || *q != sep)
		return false;
	*p = sep ? q + 1 : q;
	return true;
}

int state_parse(char *text, size_t page, struct saved_file **out, uint32_t *nout)
{
	struct saved_file *v = NULL;
	uint32_t n = 0;
	int line = 1;
	char *save = NULL;
	bool ended = false;

	*out = NULL;
	*nout = 0;
	if (strncmp(text, STATE_MAGIC, strlen(STATE_MAGIC)) != 0)
		return 1;
	for (char *l = strtok_r(text + strlen(STATE_MAGIC), "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		line++;
		struct saved_file f = { 0 };
		uint64_t off, len, count;
		const char *q = l + 2;
		if (ended) {
			saved_free(v, n);
			return line; /* nothing may follow the end line */
		}
		if (strncmp(l, "end ", 4) == 0) {
			q = l + 4;
			if (!take_u64(&q, &count, '\0') || count != n) {
				saved_free(v, n);
				return line;
			}
			ended = true;
		} else if (l[0] == 'F' && l[1] == ' ' && take_u64(&q, &f.dev, ' ') && take_u64(&q, &f.ino, ' ') &&
		    take_u64(&q, &f.size, ' ') && take_u64(&q, &f.mtime_ns, ' ') && *q == '/') {
			f.path = strdup(q);
			struct saved_file *nv = realloc(v, (n + 1) * sizeof(*nv));
			if (!f.path || !nv || unescape_path(f.path) < 0) {
				free(f.path);
				if (nv)
					v = nv;
				saved_free(v, n);
				return line;
			}
			v = nv;
			v[n++] = f;
		} else if (l[0] == 'R' && l[1] == ' ' && take_u64(&q, &off, ' ') &&
			   take_u64(&q, &len, '\0') && n > 0 && off % page == 0 && len % page == 0 &&
			   len > 0 && off + len > off) {
			struct saved_file *cur = &v[n - 1];
			struct saved_range *nr = realloc(cur->ranges, (cur->nranges + 1) * sizeof(*nr));
			if (!nr) {
				saved_free(v, n);
				return -ENOMEM;
			}
			cur->ranges = nr;
			cur->ranges[cur->nranges++] = (struct saved_range){ off, len };
		} else {
			saved_free(v, n);
			return line;
		}
	}
	if (!ended) {
		saved_free(v, n);
		return line + 1; /* cut short: the end line is missing */
	}
	*out = v;
	*nout = n;
	return 0;
}

