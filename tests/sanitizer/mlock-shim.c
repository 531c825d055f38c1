/* Linked into every program that make check-asan builds, so that the daemon under ASan locks
 * what it locks without ASan.
 *
 * 1. The ASan runtime replaces mlock(), munlock(), mlockall() and munlockall() with functions that
 *    do nothing and return 0 (sanitizer_common: mlock is unsupported). The daemon would lock
 *    nothing, and its tests would test nothing. A definition in the executable comes first in
 *    symbol lookup, before libasan's and libc's: these make the system calls.
 * 2. mlockall(MCL_CURRENT) would mark ASan's shadow and allocator reservations locked too: some
 *    20 TiB. With MCL_ONFAULT that costs no memory, but VmLck then counts it (so no
 *    RLIMIT_MEMLOCK can be large enough for a daemon without CAP_IPC_LOCK), and the kernel adds a
 *    VMA's pages to VmLck in an int, which wraps for the 15 TiB shadow VMA (VmLck then disagrees
 *    with smaps, and the test build's accounting check aborts). So MCL_CURRENT is done here
 *    VMA by VMA with mlock2(), leaving out those reservations (any VMA of 64 GiB or more: the
 *    daemon's own are tiny), and MCL_FUTURE (new mappings) is left to mlockall().
 * The daemon's code is unchanged: this only undoes what the sanitizer runtime does. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif
#define SANITIZER_RESERVATION ((uint64_t)64 << 30)

int mlock(const void *addr, size_t len)
{
	return (int)syscall(SYS_mlock, addr, len);
}

int munlock(const void *addr, size_t len)
{
	return (int)syscall(SYS_munlock, addr, len);
}

int munlockall(void)
{
	return (int)syscall(SYS_munlockall);
}

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* mlock2() on every VMA of /proc/self/maps smaller than a sanitizer reservation. Reads with
 * system calls into a static buffer: no allocation while the allocator's pages are being locked. */
static int lock_current(unsigned flags)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (len < sizeof(buf) - 1 &&
	       (n = (ssize_t)syscall(SYS_read, fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	syscall(SYS_close, fd);
	buf[len] = '\0';
	for (char *p = buf; *p;) {
		uint64_t start = 0, end = 0;
		int d;
		while ((d = hexdigit(*p)) >= 0)
			start = start << 4 | (uint64_t)d, p++;
		if (*p == '-')
			p++;
		while ((d = hexdigit(*p)) >= 0)
			end = end << 4 | (uint64_t)d, p++;
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
		/* [vsyscall], above user space, is listed but is no VMA of ours: mlock() says
		 * ENOMEM for it. */
		if (end <= start || end - start >= SANITIZER_RESERVATION ||
		    start >= (uint64_t)1 << 47)
			continue;
		/* [vvar] and the like refuse, as mlockall() would skip them: only a limit is an
		 * error worth reporting. The address comes as text: an integer is all there is. */
		void *addr = (void *)(uintptr_t)start; /* NOLINT(performance-no-int-to-ptr) */
		if (syscall(SYS_mlock2, addr, (size_t)(end - start), flags) < 0 &&
		    (errno == ENOMEM || errno == EPERM))
			return -1;
	}
	return 0;
}

int mlockall(int flags)
{
	if ((flags & MCL_CURRENT) && lock_current((flags & MCL_ONFAULT) ? MLOCK_ONFAULT : 0) < 0)
		return -1;
	if (!(flags & MCL_FUTURE))
		return 0;
	return (int)syscall(SYS_mlockall, flags & ~MCL_CURRENT);
}
