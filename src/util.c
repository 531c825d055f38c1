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

int buf_read_regular(struct buf *b, const char *path, size_t max_bytes)
{
	struct stat st;
	/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever. */
	_cleanup_close_ int fd =
		open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if ((uint64_t)st.st_size > max_bytes)
		return -EFBIG;
	int r = buf_read_fd(b, fd);
	if (r < 0)
		return r;
	/* It grew while read: as refused as one that was too big to begin with. */
	return b->len > max_bytes ? -EFBIG : 0;
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

/* Creates the temporary file beside path: a new name each time, O_EXCL, so that nothing planted
 * there (a link to another file, a FIFO) is ever opened. mkostemp() makes it 0600. */
static int create_tmp(const char *path, char **tmp)
{
	if (asprintf(tmp, "%s.tmp.XXXXXX", path) < 0) {
		*tmp = NULL;
		return -ENOMEM;
	}
	int fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		int r = mkdir_parent(path);
		if (r < 0) {
			free(*tmp);
			*tmp = NULL;
			return r;
		}
		memcpy(*tmp + strlen(*tmp) - 6, "XXXXXX", 6); /* mkostemp() may have filled it */
		fd = mkostemp(*tmp, O_CLOEXEC);
	}
	if (fd < 0) {
		int r = -errno;
		free(*tmp);
		*tmp = NULL;
		return r;
	}
	return fd;
}

FILE *atomic_fopen(const char *path, char **tmp, unsigned mode)
{
	int fd = create_tmp(path, tmp);
	if (fd < 0 || !*tmp) { /* !*tmp: create_tmp() never returns it with a descriptor */
		errno = fd < 0 ? -fd : EIO;
		return NULL;
	}
	/* What the daemon writes names the programs users run: never more than its owner may read,
	 * whatever mode asks and whatever the umask. */
	FILE *f = fchmod(fd, (mode_t)(mode & 0600)) == 0 ? fdopen(fd, "w") : NULL;
	if (f)
		return f;
	int e = errno;
	close(fd);
	unlink(*tmp);
	free(*tmp);
	*tmp = NULL;
	errno = e;
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

bool parse_dec_u64(const char **pp, const char *end, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p == end || (unsigned)(*p - '0') > 9)
		return false;
	do {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		p++;
	} while (p < end && (unsigned)(*p - '0') <= 9);
	*pp = p;
	*out = v;
	return true;
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

size_t utf8_char_len(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
	size_t n;

	if (u[0] < 0x80)
		return 1;
	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4;
	else
		return 0; /* a continuation byte, an overlong lead (c0, c1), or past U+10FFFF */
	/* No overlong forms, no surrogates (U+D800..DFFF), nothing past U+10FFFF. */
	if (u[0] == 0xe0)
		lo = 0xa0;
	else if (u[0] == 0xed)
		hi = 0x9f;
	else if (u[0] == 0xf0)
		lo = 0x90;
	else if (u[0] == 0xf4)
		hi = 0x8f;
	if (u[1] < lo || u[1] > hi)
		return 0; /* also stops at the NUL of a string cut short */
	for (size_t i = 2; i < n; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return 0;
	return n;
}

bool utf8_valid(const char *s)
{
	while (*s) {
		size_t n = utf8_char_len(s);
		if (!n)
			return false;
		s += n;
	}
	return true;
}

char *escape_path(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out)
		return NULL;
	while (*s) {
		unsigned char c = (unsigned char)*s;
		size_t k = c >= 0x80 ? utf8_char_len(s) : 1;
		if (c < 0x20 || c == 0x7f || c == '%' || c == '\\' || k == 0) {
			o += sprintf(o, "%%%02X", c);
			s++;
		} else {
			memcpy(o, s, k);
			o += k;
			s += k;
		}
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
