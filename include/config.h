/* The daemon's settings: one struct, filled from one table of {section, key, parser, field}. */
#pragma once
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "log.h" /* enum log_level */

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/prelockd.conf"

enum lock_what { WHAT_WHOLE, WHAT_MAPPED, WHAT_RESIDENT };

struct strv {
	size_t n;
	char **v;
};

/* POSIX extended regexes with their source text (for printing and messages). */
struct regex_list {
	size_t n;
	char **src;
	regex_t *re;
};

/* Owners given by name or number, with the text they were given as (for printing). */
struct owner_list {
	size_t n;
	char **src;
	uid_t *uid;
};

struct config {
	/* [daemon] */
	uint64_t interval_usec; /* 0: scan at start and on SIGHUP/SIGUSR1 only */
	uint64_t new_process_check_usec; /* look for new processes this often; 0: never */
	char *state_file;       /* "" disables the state file */
	char *status_file;      /* "" disables the status file */
	enum log_level log_level;
	/* [lock] */
	struct regex_list include;
	struct regex_list exclude;
	enum lock_what what;
	bool read_only_data; /* read-only data mappings too, not only code */
	uint64_t max_file_size_bytes;
	uint64_t max_total_bytes;    /* 0: no absolute cap */
	double max_total_percent;    /* of MemTotal; 0: no relative cap */
	unsigned keep_scans;
	struct strv always;          /* absolute paths */
	struct owner_list owners;    /* besides root, whose files may be locked */
	struct strv allow_blocking_filesystems; /* FUSE, network types that may be locked */
	/* [processes] */
	bool only_critical;
	struct strv critical_names;
	struct regex_list critical_cgroups;
};

/* Receives each error, already formatted as "FILE:LINE: message" (no newline). */
typedef void (*config_error_fn)(void *userdata, const char *message);

/* Fills *cfg with the defaults. Returns 0 or -ENOMEM. */
int config_init_defaults(struct config *cfg);

/* Parses the INI file at path into *cfg (defaults first), reporting every error through err.
 * Returns 0; -EINVAL when any error was reported (cfg is then freed and zeroed);
 * -errno when the file cannot be opened or read (also reported through err). */
int config_load(const char *path, struct config *cfg, config_error_fn err, void *userdata);

/* Same, from a buffer; name is used in messages. */
int config_load_buf(const char *name, const char *buf, size_t len, struct config *cfg,
		    config_error_fn err, void *userdata);

void config_free(struct config *cfg);

/* Writes every setting as INI, in table order, with its current value (`prelockd -t --print`):
 * text that config_load_buf() reads back to the same settings. */
void config_print(FILE *f, const struct config *cfg);

bool regex_list_match(const struct regex_list *l, const char *s);
bool strv_contains(const struct strv *l, const char *s);
/* Root, or an owner the config names. */
bool owner_allowed(const struct config *cfg, uid_t uid);

const char *lock_what_to_string(enum lock_what w);
const char *log_level_to_string(enum log_level l);

/* Value parsers, exposed for tests. Return 0 or -EINVAL (-ERANGE on overflow). */
int parse_size(const char *s, uint64_t *bytes);       /* 4096, 64K, 256M, 1G, 2T; binary */
int parse_duration(const char *s, uint64_t *usec);   /* 500ms, 60s, 5min, 1h, bare = seconds */
int parse_bool(const char *s, bool *b);               /* yes/no true/false 1/0 on/off */
