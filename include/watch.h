/* inotify watches on locked files: a quiet pass looks only at files with events. */
#pragma once
#include <stdint.h>

#include "files.h"

struct watch {
	int fd;          /* the inotify descriptor, or -1 */
	int *events;     /* scratch: watch descriptors with events this pass */
	uint32_t nevents, cap_events;
};

void watch_init(struct watch *w);
void watch_free(struct watch *w);
/* Watches the inode f holds open. Returns 0, or -errno when it cannot (the file is then looked
 * at every pass). */
int watch_add(struct watch *w, struct lfile *f);
void watch_remove(struct watch *w, struct lfile *f);
/* Reads the events queued since the last call and marks their files `changed`. */
void watch_drain(struct watch *w, struct file_table *t);
