/* What is locked, for people and programs: the status file (JSON, rewritten atomically each
 * pass), `prelockd --status`, and the --dry-run plan. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "files.h"
#include "pass.h"

/* The daemon's summary of the last pass, for the status file and the plan. */
struct status_info {
	pid_t pid;
	uint32_t pass;
	enum lock_what what;
	uint64_t interval_usec;
	uint32_t locked_files;
	uint64_t locked_bytes, budget_bytes;
	uint32_t processes;
	const struct pass_stats *stats; /* the last pass's counters */
	const char *pressure_mode;      /* "trigger", "poll" or "none" */
	bool pressure_active;           /* in a memory pressure episode */
	uint32_t pressure_passes;       /* since the start */
	uint64_t new_check_usec;        /* new_process_check, 0: off */
	uint32_t new_checks_read;       /* processes the checks for new processes read, since start */
};

/* Rewrites the status file at path (nothing when path is empty). Returns 0 or -errno. */
int status_write(const char *path, const struct file_table *files, const struct status_info *si);
/* Prints the status file for --status. Returns 0 or -errno. */
int status_print(const char *status_file, bool json);
/* Prints the plan of a --dry-run pass. */
void dry_run_print(const struct file_table *files, const struct status_info *si, bool json);
