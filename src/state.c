/* The saved locked set (the format is in statefile.h): written atomically, and read back at
 * start, where each file must still be the one saved before anything is locked. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileopen.h"
#include "lock.h"
#include "select.h"
#include "statefile.h"
#include "util.h"

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

int state_save(const struct lockset *ls, int proc_fd, const char *path)
{
	char *tmp;
	FILE *out;
	bool ok = true;

	if (!path || !*path)
		return 0;
	/* Written through stdio: a buffer for a thousand files would stay in the locked heap. */
	out = atomic_fopen(path, &tmp, 0644);
	if (!out)
		return -errno;
	ok = fputs(STATE_MAGIC, out) >= 0;
	unsigned nfiles = 0;
	for (uint32_t s = 0; ok && s < ls->files.nslots; s++) {
		const struct lfile *f = &ls->files.slots[s];
		struct stat st;
		/* Paths of other mount namespaces mean nothing after a restart. */
		if (!f->in_use || !f->npieces || !f->own_path)
			continue;
		if (f->fd >= 0 ? fstat(f->fd, &st) < 0 : file_stat_by_path(proc_fd, f, &st) < 0)
			continue;
		char *esc = escape_path(f->path);
		ok = esc && fprintf(out, "F %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", f->dev,
				    f->ino, f->size, mtime_ns(&st), esc) >= 0;
		free(esc);
		nfiles++;
		for (uint32_t i = 0; ok && i < f->npieces; i++)
			ok = fprintf(out, "R %" PRIu64 " %" PRIu64 "\n", f->pieces[i].off,
				     f->pieces[i].len) >= 0;
	}
	ok = ok && fprintf(out, "end %u\n", nfiles) >= 0;
	int r = atomic_fclose(out, tmp, path, true, ok);
	return ok ? r : -EIO;
}

/* Locks the saved ranges of one file, if it is still the file saved and the rules still let it
 * in. Opened once, by its own path. */
static void restore_one(struct lockset *ls, struct pass_ctx *c, const struct saved_file *sf)
{
	struct stat st;
	bool created;
	int fd = file_open_by_path(sf->path, &st);

	if (fd < 0)
		return;
	/* Device numbers may be probed in another order after a reboot: the same size and
	 * modification time identify an unchanged file as well. */
	bool same = ((uint64_t)st.st_dev == sf->dev && (uint64_t)st.st_ino == sf->ino) ||
		    ((uint64_t)st.st_size == sf->size && mtime_ns(&st) == sf->mtime_ns);
	int64_t s = same ? file_table_get(&ls->files, (uint64_t)st.st_dev, (uint64_t)st.st_ino,
					  sf->path, &created)
			 : -1;
	if (s < 0 || !created) {
		close(fd);
		return;
	}
	struct lfile *f = file_at(&ls->files, (uint32_t)s);
	f->last_seen_pass = c->pass;
	select_judge_path(c->cfg, f);
	if (!f->eligible) {
		close(fd);
		file_table_remove(&ls->files, (uint32_t)s);
		return;
	}
	if (file_adopt(ls, c, f, fd, &st) < 0) {
		file_table_remove(&ls->files, (uint32_t)s);
		return;
	}
	uint64_t end = round_up(f->size, ls->page);
	for (uint32_t i = 0; i < sf->nranges; i++) {
		uint64_t off = sf->ranges[i].off, len = sf->ranges[i].len;
		if (off >= end)
			continue;
		len = MIN(len, end - off);
		if (f->locked_bytes + len > c->cfg->max_file_size_bytes)
			break;
		if (lock_range(ls, f, off, len) < 0)
			break;
		file_want_set_range(f, off / ls->page, len / ls->page);
	}
	if (!f->npieces) {
		lock_unlock_file(ls, f);
		file_table_remove(&ls->files, (uint32_t)s);
	} else {
		file_hold_or_close(ls, c, f);
	}
}

int state_restore(struct lockset *ls, struct pass_ctx *c, const char *path, int *bad_line)
{
	struct buf b = { 0 };
	struct saved_file *v;
	uint32_t n;

	*bad_line = 0;
	if (!path || !*path)
		return 0;
	int r = buf_read_regular(&b, path, STATE_FILE_MAX_BYTES); /* a FIFO is refused */
	if (r < 0) {
		buf_free(&b);
		return r == -ENOENT ? 0 : r;
	}
	if (memchr(b.data, '\0', b.len))
		r = 1;
	else
		r = state_parse(b.data, ls->page, &v, &n);
	buf_free(&b);
	if (r != 0) {
		*bad_line = r > 0 ? r : 0;
		return r > 0 ? -EBADMSG : r;
	}
	for (uint32_t i = 0; i < n; i++)
		restore_one(ls, c, &v[i]);
	saved_free(v, n);
	ls->changed = false;
	return (int)ls->files.nused;
}

int state_reset(const char *path)
{
	if (!path || !*path)
		return 0;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
