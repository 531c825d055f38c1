/* The daemon's memory cgroup: where it is, what limits it, and how much room is left. See
 * memcg.h for why this matters to mlock(). Works with cgroup v1 (the memory hierarchy) and v2
 * (the unified hierarchy with the memory controller enabled), through /proc/self/cgroup and
 * /proc/self/mountinfo. */
#include "memcg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "procfs.h"
#include "util.h"

/* v1 reports "no limit" as PAGE_COUNTER_MAX in bytes (0x7ffffffffffff000 with 4 KiB pages); any
 * value this large is no limit in practice. */
#define MEMCG_NO_LIMIT_V1 (UINT64_C(1) << 62)
/* Kept free below the limit: readahead past the locked range, the per-CPU charge batches that
 * make usage lag (64 pages per CPU), the daemon's own allocations during a pass. */
#define MEMCG_MARGIN (UINT64_C(8) << 20)

static bool has_word(const char *list, size_t len, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list, *end = list + len;
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
		if (n == wl && memcmp(p, word, wl) == 0)
			return true;
		p += n + 1;
	}
	return false;
}

/* The path of the v1 memory controller's line in /proc/self/cgroup text: "N:memory,...:PATH".
 * (The v2 line, "0::PATH", is parse_proc_cgroup()'s.) */
static bool cgroup_path_v1(const char *text, const char **path, size_t *plen)
{
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2 && has_word(c1 + 1, (size_t)(c2 - c1 - 1), "memory") && c2[1] == '/') {
			*path = c2 + 1;
			*plen = len - (size_t)(c2 + 1 - line);
			return true;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return false;
}

/* Copies a mountinfo field, undoing its octal escapes (\040 for a space), into out (NUL-terminated)
 * and its length into *outn. Returns false when out is too small for all of it: a cut path would
 * name another directory. */
static bool unescape_field(const char *s, size_t n, char *out, size_t outlen, size_t *outn)
{
	size_t o = 0, i = 0;
	if (!outlen)
		return false;
	for (; i < n && o + 1 < outlen; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
					  (s[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	*outn = o;
	return i == n;
}

/* Splits one mountinfo line into its fields: 0 id, 1 parent, 2 dev, 3 root, 4 mount point,
 * 5 options, optional fields, "-", then fstype, source, super options. */
struct mount_fields {
	const char *root, *point, *fstype, *superopts;
	size_t root_len, point_len, fstype_len, superopts_len;
};

static bool split_mountinfo(const char *line, size_t len, struct mount_fields *m)
{
	const char *f[32];
	size_t fl[32], n = 0;
	const char *p = line, *end = line + len;
	while (p < end && n < ARRAY_SIZE(f)) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		const char *s = p;
		while (p < end && *p != ' ')
			p++;
		f[n] = s;
		fl[n++] = (size_t)(p - s);
	}
	size_t dash = 6;
	while (dash < n && !(fl[dash] == 1 && f[dash][0] == '-'))
		dash++;
	if (dash + 1 >= n)
		return false; /* no "-" separator, or nothing after it */
	*m = (struct mount_fields){ f[3],  f[4],  f[dash + 1],  dash + 3 < n ? f[dash + 3] : "",
				    fl[3], fl[4], fl[dash + 1], dash + 3 < n ? fl[dash + 3] : 0 };
	return true;
}

static bool field_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

static int locate(const char *cgroup, const char *mountinfo, bool v2, char *dir, size_t dirlen)
{
	const char *path;
	size_t plen;
	char v2path[4096];
	if (v2) {
		if (parse_proc_cgroup(cgroup, strlen(cgroup), v2path, sizeof(v2path)) < 0 ||
		    v2path[0] != '/')
			return -ENOENT;
		path = v2path;
		plen = strlen(v2path);
	} else if (!cgroup_path_v1(cgroup, &path, &plen)) {
		return -ENOENT;
	}
	for (const char *line = mountinfo; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		struct mount_fields m;
		if (split_mountinfo(line, len, &m) &&
		    (v2 ? field_is(m.fstype, m.fstype_len, "cgroup2")
			: field_is(m.fstype, m.fstype_len, "cgroup") &&
				     has_word(m.superopts, m.superopts_len, "memory"))) {
			char root[4096];
			size_t rl;
			if (!unescape_field(m.root, m.root_len, root, sizeof(root), &rl))
				goto next; /* longer than any path: not a root of ours */
			if (rl == 1 && root[0] == '/')
				rl = 0; /* the hierarchy's root: every path lies under it */
			/* The cgroup must lie at or under the mounted part of the hierarchy. */
			if (plen >= rl && memcmp(path, root, rl) == 0 &&
			    (plen == rl || path[rl] == '/')) {
				size_t o;
				size_t rest = plen - rl;
				if (rest == 1 && path[rl] == '/')
					rest = 0;
				if (!unescape_field(m.point, m.point_len, dir, dirlen, &o) ||
				    o + rest + 1 > dirlen)
					return -ENAMETOOLONG;
				memcpy(dir + o, path + rl, rest);
				dir[o + rest] = '\0';
				return 0;
			}
		}
next:
		if (!nl)
			break;
		line = nl + 1;
	}
	return -ENOENT;
}

int memcg_locate(const char *cgroup, const char *mountinfo, char *dir, size_t dirlen, bool *v2)
{
	/* A memory controller bound to v1 is not on v2: try v1 first. */
	int r = locate(cgroup, mountinfo, false, dir, dirlen);
	*v2 = false;
	if (r == -ENOENT) {
		r = locate(cgroup, mountinfo, true, dir, dirlen);
		*v2 = true;
	}
	return r;
}

/* A whole line of digits: "123\n" or "123". */
static bool parse_bytes(const char *text, uint64_t *v)
{
	const char *p = text;
	return parse_dec_u64(&p, p + strlen(p), v) && (*p == '\n' || *p == '\0');
}

bool memcg_parse_limit(const char *text, uint64_t *limit)
{
	while (*text == ' ')
		text++;
	if (strncmp(text, "max", 3) == 0 && (text[3] == '\n' || text[3] == '\0')) {
		*limit = UINT64_MAX;
		return true;
	}
	uint64_t v;
	if (!parse_bytes(text, &v))
		return false;
	*limit = v >= MEMCG_NO_LIMIT_V1 ? UINT64_MAX : v;
	return true;
}

uint64_t memcg_parse_reclaimable(const char *stat, bool v2)
{
	/* v1's plain fields count the cgroup alone; its total_ ones include the children, as
	 * v2's plain fields do. */
	const char *keys[2] = { v2 ? "inactive_file " : "total_inactive_file ",
				v2 ? "active_file " : "total_active_file " };
	uint64_t sum = 0;
	for (const char *line = stat; *line;) {
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			size_t kl = strlen(keys[k]);
			const char *p = line + kl;
			uint64_t v;
			if (strncmp(line, keys[k], kl) == 0 && parse_dec_u64(&p, p + strlen(p), &v))
				sum = sum + v < sum ? UINT64_MAX : sum + v;
		}
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return sum;
}

void memcg_free(struct memcg *m)
{
	for (uint32_t i = 0; i < m->nlevels; i++)
		free(m->dir[i]);
	buf_free(&m->stat);
	*m = (struct memcg){ 0 };
}

void memcg_init(struct memcg *m)
{
	struct buf cg = { 0 }, mi = { 0 };
	char dir[4096];

	memcg_free(m);
	m->margin = MEMCG_MARGIN;
	/* Our own cgroup, whatever /proc the scan reads (tests point that elsewhere). */
	if (buf_read_at(&cg, AT_FDCWD, "/proc/self/cgroup") < 0 ||
	    buf_read_at(&mi, AT_FDCWD, "/proc/self/mountinfo") < 0 ||
	    memcg_locate(cg.data, mi.data, dir, sizeof(dir), &m->v2) < 0) {
		log_debug("no memory cgroup found: locking is limited by the budget alone");
		goto out;
	}
	/* Levels: the cgroup, then each parent while it is a directory of the hierarchy. The
	 * mount point counts: inside a cgroup namespace it is a limited cgroup like any other. */
	for (size_t len = strlen(dir); m->nlevels < MEMCG_MAX_LEVELS;) {
		char probe[4200];
		snprintf(probe, sizeof(probe), "%.*s/%s", (int)len, dir,
			 m->v2 ? "cgroup.controllers" : "memory.limit_in_bytes");
		if (access(probe, F_OK) < 0)
			break;
		m->dir[m->nlevels] = strndup(dir, len);
		if (!m->dir[m->nlevels])
			break;
		m->nlevels++;
		const char *slash = memrchr(dir, '/', len);
		if (!slash || slash == dir)
			break;
		len = (size_t)(slash - dir);
	}
	memcg_refresh(m);
	if (m->nlevels)
		log_debug("memory cgroup %s (v%d): %s", m->dir[0], m->v2 ? 2 : 1,
			  m->limited ? "limited, locking by chunks" : "no limit");
out:
	buf_free(&cg);
	buf_free(&mi);
}

static bool read_level_file(const char *dir, const char *name, char *out, size_t outlen)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, out, outlen - 1);
	if (n < 0)
		return false;
	out[n] = '\0';
	return true;
}

void memcg_refresh(struct memcg *m)
{
	char text[64];
	m->limited = false;
	m->full = false;
	for (uint32_t i = 0; i < m->nlevels; i++) {
		uint64_t lim = UINT64_MAX, v;
		if (m->v2) {
			/* Past memory.high the kernel reclaims and throttles: as good as a wall. */
			if (read_level_file(m->dir[i], "memory.max", text, sizeof(text)) &&
			    memcg_parse_limit(text, &v))
				lim = MIN(lim, v);
			if (read_level_file(m->dir[i], "memory.high", text, sizeof(text)) &&
			    memcg_parse_limit(text, &v))
				lim = MIN(lim, v);
		} else if (read_level_file(m->dir[i], "memory.limit_in_bytes", text,
					   sizeof(text)) &&
			   memcg_parse_limit(text, &v)) {
			lim = v;
		}
		m->limit[i] = lim;
		if (lim != UINT64_MAX)
			m->limited = true;
	}
}

uint64_t memcg_room(struct memcg *m)
{
	uint64_t room = UINT64_MAX;
	char text[64];

	for (uint32_t i = 0; i < m->nlevels && room; i++) {
		uint64_t usage;
		if (m->limit[i] == UINT64_MAX)
			continue;
		if (!read_level_file(m->dir[i], m->v2 ? "memory.current" : "memory.usage_in_bytes",
				     text, sizeof(text)) ||
		    !parse_bytes(text, &usage)) {
			room = 0; /* cannot tell: do not go near the limit blind */
			break;
		}
		char path[4200];
		snprintf(path, sizeof(path), "%s/memory.stat", m->dir[i]);
		uint64_t reclaimable = 0;
		if (buf_read_at(&m->stat, AT_FDCWD, path) == 0)
			reclaimable = memcg_parse_reclaimable(m->stat.data, m->v2);
		/* Saturating: the limit is below 2^62, but usage and the stat sum are whatever the
		 * files say, and a wrapped sum would be room where there is none. */
		uint64_t have = m->limit[i] + MIN(reclaimable, UINT64_MAX - m->limit[i]);
		uint64_t need = usage + MIN(m->margin, UINT64_MAX - usage);
		room = MIN(room, have > need ? have - need : 0);
	}
	return room;
}
