/* What noquery and nopsi share: install a seccomp filter, then run the command under it. */
#pragma once
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Runs argv[1..] under prog; name is the helper's, for messages. Returns only on failure: 64
 * without a command, 1 when the filter cannot be installed, 127 when the command cannot run. */
static int seccomp_exec(const char *name, struct sock_fprog *prog, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s COMMAND [ARG]...\n", name);
		return 64;
	}
	/* Root (CAP_SYS_ADMIN) may install a filter without no_new_privs; keep setuid working. */
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog) < 0 &&
	    (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	     prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog) < 0)) {
		fprintf(stderr, "%s: seccomp: %s\n", name, strerror(errno));
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "%s: %s: %s\n", name, argv[1], strerror(errno));
	return 127;
}
