#include "procfs.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "util.h"

int parse_proc_stat(const char *buf, size_t len, struct proc_stat *st)
{
	const char *open = memchr(buf, '(', len), *close = NULL;
	/* comm may itself contain ')' and spaces: the last ')' ends it. */
	for (size_t i = len; i > 0; i--)
		if (buf[i - 1] == ')') {
			close = buf + i - 1;
			break;
		}
	if (!open || !close || close < open)
		return -EINVAL;
	size_t clen = MIN((size_t)(close - open - 1), sizeof(st->comm) - 1);
	memcpy(st->comm, open + 1, clen);
	st->comm[clen] = '\0';

	/* Fields after comm, numbered as in proc(5): 3 state, 9 flags, 10 minflt, 12 majflt,
	 * 22 starttime, 23 vsize. Some in between (priority, nice) may be negative. */
	const char *p = close + 1, *end = buf + len;
	uint64_t v[24] = { 0 };
	for (int field = 3; field <= 23; field++) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			return -EINVAL;
		if (field == 3) {
			p++;
			continue;
		}
		bool neg = *p == '-';
		if (neg)
			p++;
		uint64_t x;
		if (!parse_dec_u64(&p, end, &x) || (p < end && *p != ' ' && *p != '\n'))
			return -EINVAL;
		v[field] = neg ? 0 : x;
	}
	st->flags = (unsigned long)v[9];
	st->minflt = v[10];
	st->majflt = v[12];
	st->starttime = v[22];
	st->vsize = v[23];
	return 0;
}

int parse_loadavg_last_pid(const char *buf, size_t len, uint64_t *pid)
{
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	size_t start = len;
	while (start > 0 && buf[start - 1] != ' ')
		start--;
	/* Five fields: the last is alone after the fourth space. */
	size_t spaces = 0;
	for (size_t i = 0; i < start; i++)
		spaces += buf[i] == ' ';
	const char *p = buf + start, *end = buf + len;
	if (spaces != 4 || !parse_dec_u64(&p, end, pid) || p != end)
		return -EINVAL;
	return 0;
}

int parse_proc_cgroup(const char *buf, size_t len, char *out, size_t outlen)
{
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le - p >= 3 && memcmp(p, "0::", 3) == 0) {
			size_t n = (size_t)(le - p - 3);
			if (n >= outlen)
				return -ENAMETOOLONG;
			memcpy(out, p + 3, n);
			out[n] = '\0';
			return 0;
		}
		p = le + 1;
	}
	return -ENOENT;
}
