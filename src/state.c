/* The saved locked set: what to lock at the next start, before the first scan, so that a reboot
 * is protected before the desktop comes up. Text, versioned, written atomically:
 *
 *   prelockd-state 1
 *   F <dev> <inode> <size> <mtime_nsec> <path, %XX-escaped>
 *   R <offset> <length>          (ranges of the F above, bytes, page-aligned)
 *   end <number of F lines>      (last: a file cut short at a line's end is refused too)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "log.h"

#define STATE_MAGIC "prelockd-state 1\n"

int state_save(struct daemon *d)
{
	char *tmp;
	FILE *out;
	bool ok = true;

	if (!d->cfg.state_file || !*d->cfg.state_file || d->dry_run)
		return 0;
	/* Written through stdio: a buffer for a thousand files would stay in the locked heap. */
	out = atomic_fopen(d->cfg.state_file, &tmp, 0644);
	if (!out)
		return -errno;
	ok = fputs(STATE_MAGIC, out) >= 0;
	unsigned nfiles = 0;
	for (uint32_t s = 0; ok && s < d->files.nslots; s++) {
		struct lfile *f = &d->files.slots[s];
		struct stat st;
		/* Paths of other mount namespaces mean nothing after a restart. */
		if (!f->in_use || !f->npieces || !f->own_path)
			continue;
		if (f->fd >= 0 ? fstat(f->fd, &st) < 0 : file_stat_by_path(d, f, &st) < 0)
			continue;
		char *esc = escape_path(f->path);
		ok = esc && fprintf(out, "F %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", f->dev,
				    f->ino, f->size,
				    (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec,
				    esc) >= 0;
		free(esc);
		nfiles++;
		for (uint32_t i = 0; ok && i < f->npieces; i++)
			ok = fprintf(out, "R %" PRIu64 " %" PRIu64 "\n", f->pieces[i].off,
				     f->pieces[i].len) >= 0;
	}
	ok = ok && fprintf(out, "end %u\n", nfiles) >= 0;
	int r = atomic_fclose(out, tmp, d->cfg.state_file, true, ok);
	return ok ? r : -EIO;
}

void saved_free(struct saved_file *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].ranges);
	}
	free(v);
}

/* Parses the whole file first: a corrupt or foreign file is ignored as a whole. Returns the
 * line number of the first error (> 0), 0 on success, or -errno. */
/* A decimal number, digits only (no sign, no space: sscanf() would take "-1" as 2^64 - 1),
 * followed by the separator sep. */
static bool take_u64(const char **p, uint64_t *v, char sep)
{
	const char *q = *p;
	uint64_t x = 0;
	if (*q < '0' || *q > '9')
		return false;
	for (; *q >= '0' && *q <= '9'; q++) {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*q - '0');
	}
	if (*q != sep)
		return false;
	*p = sep ? q + 1 : q;
	*v = x;
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

static void restore_one(struct daemon *d, const struct saved_file *sf)
{
	struct stat st;
	bool created;
	int fd = open(sf->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);

	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	uint64_t mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
	close(fd);
	/* Device numbers may be probed in another order after a reboot: the same size and
	 * modification time identify an unchanged file as well. */
	bool same = ((uint64_t)st.st_dev == sf->dev && (uint64_t)st.st_ino == sf->ino) ||
		    ((uint64_t)st.st_size == sf->size && mtime == sf->mtime_ns);
	if (!same)
		return;
	int64_t s = file_table_get(&d->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino, sf->path,
				   &created);
	if (s < 0 || !created)
		return;
	struct lfile *f = file_at(&d->files, (uint32_t)s);
	f->last_seen_pass = d->pass;
	file_check_evaluate(d, f);
	if (!f->eligible || file_open_verified(d, f) < 0) {
		file_table_remove(&d->files, (uint32_t)s);
		return;
	}
	uint64_t end = round_up(f->size, d->page);
	for (uint32_t i = 0; i < sf->nranges; i++) {
		uint64_t off = sf->ranges[i].off, len = sf->ranges[i].len;
		if (off >= end)
			continue;
		len = MIN(len, end - off);
		if (f->locked_bytes + len > d->cfg.max_file_size_bytes)
			break;
		if (file_lock_range(d, f, off, len) < 0)
			break;
		file_want_set_range(f, off / d->page, len / d->page);
	}
	if (!f->npieces) {
		file_unlock_all(d, f);
		file_table_remove(&d->files, (uint32_t)s);
	} else {
		file_hold_or_close(d, f);
	}
}

int state_restore(struct daemon *d)
{
	struct buf b = { 0 };
	struct saved_file *v;
	uint32_t n;

	if (!d->cfg.state_file || !*d->cfg.state_file)
		return 0;
	/* A state of the most files and ranges the daemon can hold (vm.max_map_count ranges, a
	 * PATH_MAX name each, escaped) stays well below this; anything bigger is not ours, and
	 * would sit in the locked heap while read. */
	const size_t max_bytes = 16u << 20;
	int r = buf_read_regular(&b, d->cfg.state_file, max_bytes);
	if (r == -ENOENT) {
		buf_free(&b);
		return 0;
	}
	if (r < 0) {
		buf_free(&b);
		if (r == -EBADFD)
			log_warning("state file %s is not a regular file, ignoring", d->cfg.state_file);
		else if (r == -EFBIG)
			log_warning("state file %s is bigger than %zu MiB, ignoring", d->cfg.state_file,
				    max_bytes >> 20);
		else
			log_warning_errno(r, "cannot read state file %s, ignoring", d->cfg.state_file);
		return r;
	}
	if (memchr(b.data, '\0', b.len))
		r = 1;
	else
		r = state_parse(b.data, d->page, &v, &n);
	buf_free(&b);
	if (r != 0) {
		if (r > 0)
			log_warning("%s:%d: not a valid prelockd state file, ignoring it",
				    d->cfg.state_file, r);
		return r > 0 ? -EBADMSG : r;
	}
	for (uint32_t i = 0; i < n; i++)
		restore_one(d, &v[i]);
	saved_free(v, n);
	char buf[32];
	struct log_fields lf = { .bytes = (int64_t)d->locked_bytes, .files = (int64_t)d->files.nused };
	log_full(LOG_INFO, &lf, 0, "restored %u files, %s locked from %s", d->files.nused,
		 format_bytes(buf, sizeof(buf), d->locked_bytes), d->cfg.state_file);
	d->locked_set_changed = false;
	return 0;
}

int state_reset(const struct config *cfg)
{
	if (!cfg->state_file || !*cfg->state_file)
		return 0;
	if (unlink(cfg->state_file) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
