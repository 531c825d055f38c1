/* The test build's accounting check; not in release binaries. */
#include "debug.h"

#ifdef PRELOCKD_DEBUG
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

/* VmLck of the daemon in kB, read into the stack: a heap allocation here could grow a locked
 * mapping and change the very number being read. -1 when unreadable. */
static long long read_vmlck_kb(void)
{
	char buf[4096];
	_cleanup_close_ int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nVmLck:");
	return p ? strtoll(p + 8, NULL, 10) : -1;
}

/* Whether f may have changed since lock_refresh() last looked at it: then pages missing from
 * its locked ranges are the next pass's to lock again, not a fault of this one. An inotify event
 * not read yet, or other size or times than those seen; a file held by its mappings alone
 * cannot be asked. */
static bool changed_since_look(const struct lockset *ls, const struct lfile *f)
{
	struct stat st;
	int pending = 0;

	if (ls->watch.fd >= 0 && ioctl(ls->watch.fd, FIONREAD, &pending) == 0 && pending > 0)
		return true;
	if (f->fd < 0 || fstat(f->fd, &st) < 0)
		return true;
	return (uint64_t)st.st_size != f->size ||
	       (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != f->mtime_ns ||
	       (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec != f->ctime_ns;
}

/* Sums the daemon's locked VMAs in smaps: all of them, the bytes of ours inside them, and of
 * those VMAs that are ours alone, the bytes not resident (a locked range the kernel emptied,
 * by truncation or a hole punched, and the daemon did not lock again). */
static int smaps_locked(const struct lockset *ls, unsigned long long *all_locked,
			unsigned long long *kernel_bytes, unsigned long long *kernel_rss,
			unsigned long long *lost_bytes)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	unsigned long long start = 0, end = 0, rss_kb = 0, ours = 0;
	const struct lfile *owner = NULL;

	*all_locked = *kernel_bytes = *kernel_rss = *lost_bytes = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
			start = a;
			end = b;
			/* The kernel may merge two of our mappings into one VMA (same file, adjacent
			 * addresses and offsets), or hold one of ours in several: count overlaps. */
			ours = 0;
			owner = NULL;
			for (uint32_t s = 0; s < ls->files.nslots; s++) {
				const struct lfile *lf = &ls->files.slots[s];
				for (uint32_t i = 0; lf->in_use && i < lf->npieces; i++) {
					uintptr_t pa = (uintptr_t)lf->pieces[i].addr;
					uintptr_t pe = pa + lf->pieces[i].len;
					if (pa < end && pe > start) {
						ours += MIN(end, pe) - MAX(start, pa);
						owner = lf;
					}
				}
			}
		} else if (sscanf(line, "Rss: %llu kB", &rss_kb) == 1) {
			continue;
		} else if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " lo")) {
			*all_locked += end - start;
			*kernel_bytes += ours;
			if (ours != end - start)
				continue;
			*kernel_rss += rss_kb * 1024;
			if (rss_kb * 1024 < ours && owner && !changed_since_look(ls, owner))
				*lost_bytes += ours - rss_kb * 1024;
		}
	}
	return 0;
}

/* Debug builds: ask the kernel what this process holds locked in our ranges (smaps VmFlags "lo",
 * Rss), and compare with our count. smaps' Locked: is PSS-weighted, so it is not used. */
int debug_verify_accounting(const struct lockset *ls)
{
	unsigned long long all_locked = 0, kernel_bytes = 0, kernel_rss = 0, lost_bytes = 0;
	long long vmlck_kb = -1, before;

	/* Reading smaps allocates (stdio), and under mlockall() a grown heap is a grown locked
	 * mapping: VmLck read before and after must agree, or the two views are of different
	 * moments. The second round reuses the freed memory. */
	for (int round = 0; round < 3; round++) {
		before = read_vmlck_kb();
		int r = smaps_locked(ls, &all_locked, &kernel_bytes, &kernel_rss, &lost_bytes);
		if (r < 0)
			return r;
		vmlck_kb = read_vmlck_kb();
		if (vmlck_kb == before)
			break;
	}
	/* VmLck counts every locked VMA, ours and the daemon's own (mlockall): the two views must
	 * agree, and what is left after our own ranges is the daemon itself. */
	if (vmlck_kb < 0 || (unsigned long long)vmlck_kb * 1024 != all_locked) {
		log_error("accounting mismatch: VmLck is %lld kB, locked VMAs in smaps add up to %llu kB",
			  vmlck_kb, all_locked / 1024);
		return -EIO;
	}
	if (kernel_bytes != ls->locked_bytes) {
		log_error("accounting mismatch: kernel reports %llu bytes in locked ranges, we count %llu",
			  kernel_bytes, (unsigned long long)ls->locked_bytes);
		return -EIO;
	}
	/* Counted as locked, yet not in memory: the count says what the kernel maps, not what it
	 * holds. */
	if (lost_bytes) {
		log_error("accounting mismatch: %llu bytes of our locked ranges are not resident",
			  lost_bytes);
		return -EIO;
	}
	if (ls->locked_bytes > ls->budget_bytes) {
		log_error("budget exceeded: %llu > %llu bytes", (unsigned long long)ls->locked_bytes,
			  (unsigned long long)ls->budget_bytes);
		return -EIO;
	}
	log_debug("accounting verified: %llu bytes locked (%llu resident), VmLck %lld kB of which "
		  "%llu kB the daemon itself", kernel_bytes, kernel_rss, vmlck_kb,
		  (unsigned long long)vmlck_kb - kernel_bytes / 1024);
	return 0;
}
#endif
