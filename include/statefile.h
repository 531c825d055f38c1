/* The state file's format and its reader: a pure function over the file's text, so the unit
 * tests and the fuzzer feed it anything. The format (text, versioned):
 *
 *   prelockd-state 1
 *   F <dev> <inode> <size> <mtime_nsec> <path, %XX-escaped>
 *   R <offset> <length>          (ranges of the F above, bytes, page-aligned)
 *   end <number of F lines>      (last: a file cut short at a line's end is refused too)
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define STATE_MAGIC "prelockd-state 1\n"

struct saved_range {
	uint64_t off, len;
};

struct saved_file {
	uint64_t dev, ino, size, mtime_ns;
	char *path;
	struct saved_range *ranges;
	uint32_t nranges;
};

/* Parses the NUL-terminated text (modified in place) as a whole: a corrupt or foreign file is
 * ignored as a whole. Returns 0, the line number of the first error (> 0), or -ENOMEM. */
int state_parse(char *text, size_t page, struct saved_file **out, uint32_t *nout);
void saved_free(struct saved_file *v, uint32_t n);
