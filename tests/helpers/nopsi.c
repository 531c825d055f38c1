/* Test helper: runs a command where opening a file for reading and writing fails with EPERM, as
 * opening a pressure file for writing does on a kernel before 6.5 without CAP_SYS_RESOURCE
 * (Debian 12's 6.1: kernel/sched/psi.c psi_open() and cgroup_pressure_open() refuse
 * FMODE_WRITE without that capability, at open time, before any trigger is written). So
 * src/psi.c cannot create a trigger and falls back to reading the averages.
 *
 *   nopsi COMMAND [ARG]...
 *
 * A seccomp filter cannot see the path, so it goes by the flags: open/openat with O_RDWR and
 * without O_CREAT (a file that already exists, opened to be read and written, which is how
 * psi.c opens the trigger). prelockd opens nothing else that way; files it writes are created
 * (O_CREAT) and pass. It chains with noquery: `nopsi noquery prelockd ...`. */
#include <errno.h>
#include <fcntl.h>
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

/* The flags are an int: the low half of the argument (little-endian). */
#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]))

int main(int argc, char **argv)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 3, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* openat(dirfd, path, flags): flags in args[2]; open(path, flags): args[1]. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
		BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)),
		/* flags in A: EPERM when (flags & (O_ACCMODE | O_CREAT)) == O_RDWR. */
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, O_ACCMODE | O_CREAT),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, O_RDWR, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	return seccomp_exec("nopsi", &prog, argc, argv);
}
