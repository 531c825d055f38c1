/* Parsers of /proc text: pure functions over a buffer, so tests and fuzzers feed them fixtures. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The fields of /proc/PID/stat prelockd uses. */
struct proc_stat {
	char comm[64];
	unsigned long flags;
	uint64_t minflt, majflt, starttime, vsize;
};

/* Parses /proc/PID/stat text (need not be NUL-terminated). Returns 0 or -EINVAL. */
int parse_proc_stat(const char *buf, size_t len, struct proc_stat *st);

/* The last PID the kernel gave out, from /proc/loadavg text ("0.00 0.01 0.05 1/300 4242\n":
 * the last field; need not be NUL-terminated). Returns 0 or -EINVAL. */
int parse_loadavg_last_pid(const char *buf, size_t len, uint64_t *pid);

/* Extracts the cgroup v2 path ("0::PATH") from /proc/PID/cgroup text into out. Returns 0,
 * -ENOENT without such a line, or -ENAMETOOLONG. */
int parse_proc_cgroup(const char *buf, size_t len, char *out, size_t outlen);
