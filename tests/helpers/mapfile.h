/* Shared by the test helpers: a whole file mapped read+exec and private, as a loader maps code. */
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Maps the whole of path; returns the address and sets *size, or returns NULL (errno set; an
 * empty file is EINVAL, as mmap() of 0 bytes would be). */
static inline unsigned char *map_exec_file(const char *path, size_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		if (st.st_size == 0)
			errno = EINVAL;
		close(fd);
		return NULL;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	close(fd); /* the mapping holds the file */
	if (p == MAP_FAILED)
		return NULL;
	*size = (size_t)st.st_size;
	return p;
}

/* Reads a byte of every page, so that each enters the process's page tables; returns their sum
 * (for the caller to keep in a volatile, or the reads could be optimized away). */
static inline unsigned char touch_pages(const unsigned char *p, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char sum = 0;
	for (size_t off = 0; off < size; off += page)
		sum = (unsigned char)(sum + p[off]);
	return sum;
}
