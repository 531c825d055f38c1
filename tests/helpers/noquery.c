/* Test helper: runs a command with the PROCMAP_QUERY ioctl answered ENOTTY, as a kernel older
 * than 6.11 would, so that prelockd uses its text parser of /proc/PID/maps.
 *
 *   noquery COMMAND [ARG]...
 *
 * make check-valgrind runs the daemon this way: memcheck does not know that the ioctl writes the
 * mapping's name through the pointer inside its argument, and would report every use of a name
 * as uninitialised. A seccomp filter makes the kernel refuse the call; everything else passes. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp_exec.h"

/* _IOWR('f', 17, struct procmap_query), 104 bytes: see src/maps.c. */
#define PROCMAP_QUERY_CMD 0xc0686611u

int main(int argc, char **argv)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* The command is an unsigned int: the low half of args[1] (little-endian). */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROCMAP_QUERY_CMD, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTTY),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	return seccomp_exec("noquery", &prog, argc, argv);
}
