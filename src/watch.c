/* Change notification for locked files. A locked file can change under the daemon: truncated,
 * grown, a hole punched, deleted or replaced. Asking each one with fstat() every pass costs a
 * system call per locked file, most of a quiet pass on a desktop. Instead each locked inode
 * gets an inotify watch (through /proc/self/fd/N, so it is the very inode held, whatever its
 * path now names) and only files with events are looked at; every full pass still looks at all,
 * for what inotify cannot see (changes made on another machine to a network filesystem). A file
 * without a watch (no inotify, out of watches) is looked at every pass. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "util.h"
#include "watch.h"

/* Size, block and link count changes: truncate, write, fallocate (hole punching), unlink,
 * rename over it. */
#define WATCH_MASK (IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

void watch_init(struct watch *w)
{
	*w = (struct watch){ .fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC) };
}

void watch_free(struct watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->events);
	*w = (struct watch){ .fd = -1 };
}

int watch_add(struct watch *w, struct lfile *f)
{
	char path[48];
	if (w->fd < 0)
		return -EBADF;
	if (f->wd > 0 || f->fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
	int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
	if (wd < 0)
		return -errno; /* ENOSPC: fs.inotify.max_user_watches reached */
	f->wd = wd;
	return 0;
}

void watch_remove(struct watch *w, struct lfile *f)
{
	if (f->wd > 0 && w->fd >= 0)
		(void)inotify_rm_watch(w->fd, f->wd);
	f->wd = 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

void watch_drain(struct watch *w, struct file_table *t)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool overflow = false;

	w->nevents = 0;
	if (w->fd < 0)
		return;
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN: no more */
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)(void *)p;
			/* Events lost (the queue overflowed), or no memory to keep them: look at
			 * every file. */
			if ((e->mask & IN_Q_OVERFLOW) ||
			    GROW_ARRAY(w->events, w->nevents, w->cap_events, 64) < 0)
				overflow = true;
			else
				w->events[w->nevents++] = e->wd;
			p += sizeof(*e) + e->len;
		}
	}
	if (!overflow && !w->nevents)
		return;
	if (w->nevents > 1)
		qsort(w->events, w->nevents, sizeof(int), cmp_int);
	for (uint32_t s = 0; s < t->nslots; s++) {
		struct lfile *f = &t->slots[s];
		if (!f->in_use || f->wd <= 0)
			continue;
		if (overflow || bsearch(&f->wd, w->events, w->nevents, sizeof(int), cmp_int))
			f->changed = true;
	}
	/* The lookups are done; keep the array's memory but not its size. */
	w->nevents = 0;
}
