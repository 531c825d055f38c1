#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int grow_array(void *arrayp, uint32_t *cap, uint32_t n, size_t elem_size, uint32_t initial)
{
	void *old, *nw;
	if (n < *cap)
		return 0;
	uint32_t ncap = *cap ? *cap * 2 : initial;
	if (ncap <= n || ncap > UINT32_MAX / 2)
		return -ENOMEM;
	/* memcpy, not a cast to void **: the array may be of any pointer type. */
	memcpy(&old, arrayp, sizeof(old));
	nw = realloc(old, (size_t)ncap * elem_size);
	if (!nw)
		return -ENOMEM;
	memcpy(arrayp, &nw, sizeof(nw));
	*cap = ncap;
	return 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){ 0 };
}

int buf_read_fd(struct buf *b, int fd)
{
	b->len = 0;
	for (;;) {
		if (b->cap - b->len < 4096) {
			size_t ncap = b->cap ? b->cap * 2 : 16384;
			char *n = realloc(b->data, ncap);
			if (!n)
				return -ENOMEM;
			b->data = n;
			b->cap = ncap;
		}
		ssize_t r = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		b->len += (size_t)r;
	}
	b->data[b->len] = '\0';
	return 0;
}

int buf_read_at(struct buf *b, int dirfd, const char *path)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	return buf_read_fd(b, fd);
}

static int mkdir_parent(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	char *dir = dirname(copy);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

FILE *atomic_fopen(const char *path, char **tmp, unsigned mode)
{
	int fd;
	FILE *f;

	if (asprintf(tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
		*tmp = NULL;
		errno = ENOMEM;
		return NULL;
	}
	fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	if (fd < 0 && errno == ENOENT) {
		int r = mkdir_parent(path);
		if (r < 0) {
			errno = -r;
			goto fail;
		}
		fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	}
	if (fd < 0)
		goto fail;
	f = fdopen(fd, "w");
	if (f)
		return f;
	close(fd);
	unlink(*tmp);
fail:
	free(*tmp);
	*tmp = NULL;
	return NULL;
}

int atomic_fclose(FILE *f, char *tmp, const char *path, bool durable, bool commit)
{
	int r = 0;
	if (fflush(f) != 0 || ferror(f) || (durable && fsync(fileno(f)) < 0))
		r = -(errno ? errno : EIO);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && commit && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0 || !commit)
		unlink(tmp);
	free(tmp);
	return r;
}

int write_file_atomic(const char *path, const char *data, size_t len, unsigned mode, bool durable)
{
	char *tmp;
	FILE *f = atomic_fopen(path, &tmp, mode);
	if (!f)
		return -errno;
	fwrite(data, 1, len, f);
	return atomic_fclose(f, tmp, path, durable, true);
}

uint64_t now_usec(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (size_t)p : 4096;
}

char *escape_path(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '%' || c == '\\')
			o += sprintf(o, "%%%02X", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int unescape_path(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		int hi = hexval(s[1]), lo = hi >= 0 ? hexval(s[2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		*o++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*o = '\0';
	return 0;
}

const char *format_bytes(char *out, size_t outlen, uint64_t bytes)
{
	if (bytes >= (1ull << 30))
		snprintf(out, outlen, "%.1f GiB", (double)bytes / (double)(1ull << 30));
	else if (bytes >= (1ull << 20))
		snprintf(out, outlen, "%.1f MiB", (double)bytes / (double)(1ull << 20));
	else if (bytes >= 1024)
		snprintf(out, outlen, "%.1f KiB", (double)bytes / 1024.0);
	else
		snprintf(out, outlen, "%llu B", (unsigned long long)bytes);
	return out;
}
