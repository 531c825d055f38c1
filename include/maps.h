/* /proc/PID/maps: a pure text parser and the PROCMAP_QUERY ioctl reader. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum map_kind {
	MAP_KIND_ANON,    /* no name */
	MAP_KIND_FILE,    /* an absolute path of a file */
	MAP_KIND_SPECIAL, /* [heap], [stack], [vdso], [vvar], [vsyscall], [anon:...], ... */
	MAP_KIND_DEVICE,  /* /dev/... */
	MAP_KIND_MEMFD,   /* /memfd:... */
	MAP_KIND_SYSV,    /* /SYSV%08x shared memory */
	MAP_KIND_OTHER,   /* anything else that does not start with '/' (anon_inode:..., etc.) */
};

#define MAP_PERM_READ 0x1u
#define MAP_PERM_WRITE 0x2u
#define MAP_PERM_EXEC 0x4u
#define MAP_PERM_SHARED 0x8u

struct map_entry {
	uint64_t start, end; /* virtual addresses, [start, end) */
	uint64_t offset;     /* file offset of start */
	uint64_t inode;
	unsigned int dev_major, dev_minor;
	unsigned int perms; /* MAP_PERM_* */
	enum map_kind kind;
	bool deleted;     /* the name ended in " (deleted)", which is stripped from path */
	const char *path; /* decoded ("\012" -> '\n'), NUL-terminated; "" for anonymous;
			     valid only during the callback */
	size_t path_len;
};

/* Called per entry; a non-zero return stops the walk and is returned. */
typedef int (*map_entry_fn)(const struct map_entry *e, void *userdata);

/* Parses maps text. Malformed lines are skipped and counted in *n_malformed (may be NULL).
 * The buffer need not be NUL-terminated; a last line without '\n' is parsed.
 * Returns 0 or the first non-zero value returned by fn. */
int maps_parse_buf(const char *buf, size_t len, map_entry_fn fn, void *userdata,
		   unsigned *n_malformed);
/* maps_parse_buf, but lines that could never be lockable are left out by their permissions alone,
 * before anything else in them is parsed: writable ones, and those with none of the
 * MAP_PERM_* bits in need_any (0: none left out). A line left out is not checked further, so
 * it is not counted malformed either. fn sees exactly the entries maps_parse_buf would give it
 * that pass the permission test. */
int maps_parse_buf_only(const char *buf, size_t len, unsigned need_any, map_entry_fn fn,
			void *userdata, unsigned *n_malformed);

/* The text in fixed pieces: whatever the size of a process's maps (a user can make it hundreds
 * of MiB: 65530 mappings under names of 4 KiB), the reader holds one buffer of a size the caller
 * chooses. Lines are handed to maps_parse_buf() as soon as they are complete; a line longer than
 * the buffer is dropped up to its '\n' and counted malformed. No line the parser keeps is that
 * long when the buffer holds MAPS_LINE_MAX bytes: its name is at most PATH_MAX - 1 bytes, each
 * at most 4 in the text ("\012"), and its fields fit the rest. */
#define MAPS_LINE_MAX 20480
#define MAPS_READ_BYTES 65536 /* what the daemon reads with */

/* A keyed hash of the text, to tell whether a process's maps read now is byte for byte the text
 * read last time (scan.c then need not parse it again). A polynomial over the integers modulo the
 * prime 2^61 - 1 evaluated at a secret random point (Carter-Wegman universal hashing): for any two
 * different texts of at most N bytes, chosen without knowing the key, the hashes agree for fewer
 * than N / 7 + 10 of the 2^61 - 2 keys: one key in 2^37 for 100 MiB of text. It runs at
 * several GB/s, far faster than the parser; see maps.c for the encoding. */
struct maps_hash_key {
	uint64_t r[8]; /* the point and its powers up to the 8th, all below 2^61 - 1 */
};
struct maps_hash {
	const struct maps_hash_key *key;
	uint64_t h;   /* the polynomial so far, modulo 2^61 - 1 (not fully reduced) */
	uint64_t len; /* bytes hashed */
	unsigned ntail;
	unsigned char tail[56]; /* bytes of a block not complete yet */
};
#define MAPS_HASH_BLOCK 56 /* eight elements of 7 bytes */

/* The key from 64 random bits (any value; a point of 0 is made 1). */
void maps_hash_key_init(struct maps_hash_key *k, uint64_t random);
/* Starts a hash; prefix (below 2^56) is hashed before the text, as a leading element: what
 * else than the text the result must depend on (scan.c: the settings the parse depends on). */
void maps_hash_init(struct maps_hash *h, const struct maps_hash_key *k, uint64_t prefix);
/* Adds n bytes; the result does not depend on how the text is cut into calls. */
void maps_hash_add(struct maps_hash *h, const void *data, size_t n);
/* The hash of everything added, below 2^61 - 1. h is spent. */
uint64_t maps_hash_end(struct maps_hash *h);

struct maps_stream {
	char *buf;          /* the caller's, cap bytes */
	size_t cap, len;    /* len: the start of a line not complete yet */
	bool skipping;      /* in a line longer than the buffer: dropped up to its '\n' */
	unsigned malformed; /* lines skipped or malformed so far */
	unsigned need_any;  /* as maps_parse_buf_only's; 0 after maps_stream_init(): every line */
	struct maps_hash *hash; /* NULL after maps_stream_init(); else every byte fed is added */
};

void maps_stream_init(struct maps_stream *s, char *buf, size_t cap);
/* Where the next bytes go, and how many fit (always at least one). */
char *maps_stream_space(struct maps_stream *s, size_t *room);
/* n bytes were written at the space: parses the lines they complete. Returns 0 or fn's non-zero
 * return (the walk then stops). */
int maps_stream_feed(struct maps_stream *s, size_t n, map_entry_fn fn, void *userdata);
/* The end of the text: parses a last line without '\n'. Returns 0 or fn's non-zero return. */
int maps_stream_end(struct maps_stream *s, map_entry_fn fn, void *userdata);
/* Reads fd (an open /proc/PID/maps) to its end through s. Returns 0, -errno, or fn's non-zero
 * return; s->malformed counts the bad lines. */
int maps_read_fd(int fd, struct maps_stream *s, map_entry_fn fn, void *userdata);
/* Reads fd to its end in pieces of cap bytes at buf, only adding them to h (nothing is
 * parsed). Returns 0 or -errno. */
int maps_hash_fd(int fd, char *buf, size_t cap, struct maps_hash *h);

/* True for a file-backed (MAP_KIND_FILE), executable mapping that is not writable: code. */
bool map_entry_is_exec_file(const struct map_entry *e);
/* True for a mapping prelockd may lock: code, or with data also a readable file mapping that is
 * not writable (ELF read-only segments, fonts, locale and ICU data). Never a writable one. */
bool map_entry_is_lockable(const struct map_entry *e, bool data);

/* Walks the file-backed executable VMAs of an open /proc/PID/maps fd with the PROCMAP_QUERY
 * ioctl (Linux 6.11+), calling fn for each (kind MAP_KIND_FILE or as classified by name).
 * Returns 0; -ENOTTY or -EINVAL when the kernel does not support it (use the text parser);
 * -ESRCH/-ENOENT when the process is gone; other -errno; or fn's non-zero return. */
int maps_query_fd(int fd, map_entry_fn fn, void *userdata);

/* Returned by fn for an entry given without a name (path NULL; see maps_query_fd_lazy) when it
 * needs the name: the same VMA is then asked for again, with its name, and fn called again. */
#define MAPS_NEED_NAME 0x4e414d45

/* The walk behind both: VMAs that are file-backed and have every permission in need_perms
 * (MAP_PERM_EXEC for code, MAP_PERM_READ for code and data; the kernel cannot leave out the
 * writable ones, fn does). lazy: as maps_query_fd_lazy. */
int maps_query_walk(int fd, unsigned need_perms, bool lazy, map_entry_fn fn, void *userdata);

/* maps_query_fd, but names are fetched only for the entries fn asks them for: fn first sees each
 * VMA with path NULL, path_len 0, kind MAP_KIND_FILE and deleted false. The kernel then skips
 * d_path() and the copy for every file the caller already knows by device and inode. */
int maps_query_fd_lazy(int fd, map_entry_fn fn, void *userdata);

/* Classifies a name as it appears in maps (after decoding). */
enum map_kind map_classify(const char *name);
