/* Small helpers shared by every module: cleanup attributes, file reading, numbers. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))
#define _cleanup_fclose_ __attribute__((cleanup(fclosep)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Makes room for element n of the growable array *arrayp (capacity *cap, doubling from
 * initial). Returns 0 or -ENOMEM, leaving the array as it was. */
int grow_array(void *arrayp, uint32_t *cap, uint32_t n, size_t elem_size, uint32_t initial);
#define GROW_ARRAY(arr, n, cap, initial) grow_array(&(arr), &(cap), (n), sizeof(*(arr)), (initial))

/* A growable buffer reused across reads so a pass allocates nothing in steady state. */
struct buf {
	char *data;
	size_t len, cap;
};
void buf_free(struct buf *b);

/* Reads all of fd (from its current position) into b; returns 0 or -errno. */
int buf_read_fd(struct buf *b, int fd);
/* Opens path relative to dirfd (AT_FDCWD allowed) and reads it into b. */
int buf_read_at(struct buf *b, int dirfd, const char *path);
/* Reads a file that someone else may have replaced by anything: opened without following a
 * symlink and without blocking (a FIFO), it must be a regular file of at most max_bytes.
 * Returns 0, -EBADFD (not a regular file), -EFBIG (too big) or another -errno. */
int buf_read_regular(struct buf *b, const char *path, size_t max_bytes);

/* Writes a file atomically through stdio, without building the text in memory: atomic_fopen()
 * opens a temporary file in the same directory, creating the directory (mode 0755) when missing
 * (NULL with errno set); atomic_fclose() flushes, fsyncs when durable, and renames it over path
 * when commit (else removes it); frees tmp. The temporary file has a new name each time
 * (created with O_EXCL, never opened over something that is there) and is mode & 0600 whatever
 * the umask. */
FILE *atomic_fopen(const char *path, char **tmp, unsigned mode);
int atomic_fclose(FILE *f, char *tmp, const char *path, bool durable, bool commit);

/* Reads the decimal digits at *pp (at least one, no sign; stops at end or the first non-digit)
 * and moves *pp past them. False, with *pp unmoved, when there is no digit or the value does not
 * fit 64 bits. The one decimal reader of /proc text, the state file and cgroup files. */
bool parse_dec_u64(const char **pp, const char *end, uint64_t *out);

uint64_t now_usec(int clock);
size_t page_size(void);
static inline uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Escapes bytes < 0x20, 0x7f, '%', '\\' and every byte that is not part of a valid UTF-8
 * character as %XX, so that a path fits on one line and is valid UTF-8 text; returns malloc'd
 * string. unescape_path reverses it in place; returns -EINVAL on a bad escape. */
char *escape_path(const char *s);
/* The length (1 to 4) of the valid UTF-8 character at s, or 0 when s does not start one
 * (overlong forms and surrogates are not valid). utf8_valid(): the whole string is UTF-8. */
size_t utf8_char_len(const char *s);
bool utf8_valid(const char *s);
int unescape_path(char *s);

/* Formats bytes as "12.3 MiB" into out. */
const char *format_bytes(char *out, size_t outlen, uint64_t bytes);
