/* `prelockd --status`: the status file read back, with json-c, and shown as a table. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Prints the status file (as it is with json, else as a table) on stdout. Returns 0 or -errno,
 * having said why on stderr. */
int status_print(const char *status_file, bool json);

/* The table of the status text (len bytes, need not end in NUL) on out. A pure function of its
 * input, for the fuzzer. Returns 0, or -EBADMSG when the text is not a prelockd status file (no
 * output then). */
int status_print_text(const char *text, size_t len, FILE *out);
