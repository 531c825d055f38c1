/* Change notification for locked files. A locked file can change under the daemon: truncated,
 * grown, a hole punched, deleted or replaced. Asking each one with fstat() every pass costs a
 * system call per locked file, most of a quiet pass on a desktop. Instead each locked inode
 * gets an inotify watch (through /proc/self/fd/N, so it is the very inode held, whatever its
 * path now names) and only files with events are looked at; every full pass still looks at all,
 * for what inotify cannot see (changes made on another machine to a network filesystem). A file
 * without a watch (no inotify, out of watches) is looked at every pass, as before. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "daemon.h"
#include "log.h"

/* Size, block and link count changes: truncate, write, fallocate (hole punching), unlink,
 * rename over it. */
#define WATCH_MASK (IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

void watch_init(struct daemon *d)
{
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0)
		log_debug("inotify unavailable (%s): locked files are checked every pass",
			  strerror(errno));
}

void watch_free(struct daemon *d)
{
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	d->inotify_fd = -1;
	free(d->wd_events);
	d->wd_events = NULL;
	d->nwd_events = d->cap_wd_events = 0;
}

void watch_add(struct daemon *d, struct lfile *f)
{
	char path[48];
	if (d->inotify_fd < 0 || f->wd > 0 || f->fd < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
	int wd = inotify_add_watch(d->inotify_fd, path, WATCH_MASK);
	if (wd > 0) {
		f->wd = wd;
		return;
	}
	/* ENOSPC: fs.inotify.max_user_watches reached. The file is looked at every pass. */
	if (!(d->warned & WARNED_WATCH)) {
		log_debug("cannot watch %s (%s): looking at it every pass instead", f->path,
			  strerror(errno));
		d->warned |= WARNED_WATCH;
	}
}

void watch_remove(struct daemon *d, struct lfile *f)
{
	if (f->wd > 0 && d->inotify_fd >= 0)
		(void)inotify_rm_watch(d->inotify_fd, f->wd);
	f->wd = 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Reads the events queued since the last pass and marks their files `changed`. */
void watch_drain(struct daemon *d)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool overflow = false;

	d->nwd_events = 0;
	if (d->inotify_fd < 0)
		return;
	for (;;) {
		ssize_t n = read(d->inotify_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN: no more */
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)(void *)p;
			/* Events lost (the queue overflowed), or no memory to keep them: look at
			 * every file. */
			if ((e->mask & IN_Q_OVERFLOW) ||
			    GROW_ARRAY(d->wd_events, d->nwd_events, d->cap_wd_events, 64) < 0)
				overflow = true;
			else
				d->wd_events[d->nwd_events++] = e->wd;
			p += sizeof(*e) + e->len;
		}
	}
	if (!overflow && !d->nwd_events)
		return;
	if (d->nwd_events > 1)
		qsort(d->wd_events, d->nwd_events, sizeof(int), cmp_int);
	for (uint32_t s = 0; s < d->files.nslots; s++) {
		struct lfile *f = &d->files.slots[s];
		if (!f->in_use || f->wd <= 0)
			continue;
		if (overflow || bsearch(&f->wd, d->wd_events, d->nwd_events, sizeof(int), cmp_int))
			f->changed = true;
	}
	/* The lookups are done; keep the array's memory but not its size. */
	d->nwd_events = 0;
}
