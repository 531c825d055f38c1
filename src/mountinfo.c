/* The mountinfo parser and the questions asked of it; see mountinfo.h. */
#include "mountinfo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "util.h"

/* Undoes the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash, and in
 * super options \054 comma) in place. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Cuts the next space-separated field off *p (within a line already cut at its end). */
static char *next_field(char **p)
{
	char *s = *p;
	if (!s || !*s)
		return NULL;
	char *sp = strchr(s, ' ');
	if (sp) {
		*sp = '\0';
		*p = sp + 1;
	} else {
		*p = NULL;
	}
	return s;
}

static bool parse_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long x = strtoul(s, &end, 10);
	if (end == s || *end || x > UINT32_MAX || *s == '-')
		return false;
	*v = (uint32_t)x;
	return true;
}

/* "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS" */
static bool parse_line(char *line, struct mnt *m)
{
	char *p = line, *f[6], *dev, *colon;
	uint32_t major, minor;
	for (int i = 0; i < 6; i++)
		if (!(f[i] = next_field(&p)))
			return false;
	for (char *x; (x = next_field(&p)) && strcmp(x, "-") != 0;)
		;
	m->fstype = next_field(&p);
	(void)next_field(&p); /* source */
	m->super_opts = p ? p : "";
	dev = f[2];
	colon = strchr(dev, ':');
	if (!m->fstype || !colon || !parse_u32(f[0], &m->id))
		return false;
	*colon = '\0';
	if (!parse_u32(dev, &major) || !parse_u32(colon + 1, &minor) || f[4][0] != '/')
		return false;
	m->dev = makedev(major, minor);
	unescape_octal(f[4]);
	m->point = f[4];
	return true;
}

int mountinfo_parse(char *buf, size_t len, struct mnt_table *t)
{
	t->n = 0;
	for (char *line = buf, *end = buf + len; line < end;) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			break; /* a line cut short (the caller's size cap) is not read */
		*nl = '\0';
		struct mnt m;
		if (!memchr(line, '\0', (size_t)(nl - line)) && parse_line(line, &m)) {
			if (GROW_ARRAY(t->v, t->n, t->cap, 64) < 0)
				return -ENOMEM;
			t->v[t->n++] = m;
		}
		line = nl + 1;
	}
	return 0;
}

void mnt_table_free(struct mnt_table *t)
{
	free(t->v);
	*t = (struct mnt_table){ 0 };
}

const struct mnt *mnt_by_id(const struct mnt_table *t, uint32_t id)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->v[i].id == id)
			return &t->v[i];
	return NULL;
}

const struct mnt *mnt_by_dev(const struct mnt_table *t, uint64_t dev)
{
	for (uint32_t i = t->n; i-- > 0;)
		if (t->v[i].dev == dev)
			return &t->v[i];
	return NULL;
}

const struct mnt *mnt_holding(const struct mnt_table *t, const char *path)
{
	const struct mnt *best = NULL;
	size_t best_len = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		const char *pt = t->v[i].point;
		size_t n = strlen(pt);
		if (n == 1) /* "/" */
			n = 0;
		if (strncmp(path, pt, n) != 0 || (path[n] != '/' && path[n] != '\0'))
			continue;
		if (!best || n >= best_len) {
			best = &t->v[i];
			best_len = n;
		}
	}
	return best;
}

/* One layer of a lowerdir list: overlayfs's own escapes (a backslash before ':', ',' or '\')
 * removed. Must be absolute: a relative one was relative to the mounter's directory. */
static int one_layer(char *s, int (*fn)(const char *, void *), void *ud)
{
	char *w = s;
	for (const char *r = s; *r; r++) {
		if (*r == '\\' && r[1])
			r++;
		*w++ = *r;
	}
	*w = '\0';
	if (s[0] != '/')
		return -EINVAL;
	return fn(s, ud);
}

static int split_layers(char *v, bool list, int (*fn)(const char *, void *), void *ud)
{
	char *start = v;
	for (char *p = v;; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p && (!list || *p != ':'))
			continue;
		bool last = !*p;
		*p = '\0';
		int r = one_layer(start, fn, ud);
		if (r != 0 || last)
			return r;
		start = p + 1;
	}
}

int mnt_overlay_layers(const struct mnt *m, int (*fn)(const char *dir, void *ud), void *ud)
{
	static const char *const keys[] = { "lowerdir=", "upperdir=", "lowerdir+=", "datadir+=" };
	const char *o = m->super_opts;
	while (*o) {
		size_t n = strcspn(o, ",");
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			size_t kl = strlen(keys[k]);
			if (n < kl || strncmp(o, keys[k], kl) != 0)
				continue;
			_cleanup_free_ char *v = strndup(o + kl, n - kl);
			if (!v)
				return -ENOMEM;
			unescape_octal(v);
			int r = split_layers(v, k == 0, fn, ud);
			if (r != 0)
				return r;
		}
		o += n;
		if (*o == ',')
			o++;
	}
	return 0;
}

bool fstype_may_block(const char *t)
{
	static const char *const types[] = { "fuse",      "fuseblk", "nfs",      "nfs4", "cifs",
					     "smb3",      "smbfs",   "9p",       "ceph", "afs",
					     "glusterfs", "lustre",  "orangefs", "gfs2", "ocfs2",
					     "coda",      "davfs" };
	if (strncmp(t, "fuse.", 5) == 0)
		return true;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i]) == 0)
			return true;
	return false;
}
