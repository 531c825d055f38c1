/* Parsers of /proc/PID/stat and /proc/PID/cgroup, and the file table. */
#include "check.h"
#include "files.h"
#include "procfs.h"

#include <errno.h>

static void test_loadavg(void)
{
	uint64_t pid = 0;
	const char *s = "0.52 0.58 0.59 3/466 123456\n";
	CHECK(parse_loadavg_last_pid(s, strlen(s), &pid) == 0 && pid == 123456, "loadavg: last pid");
	CHECK(parse_loadavg_last_pid(s, strlen(s) - 1, &pid) == 0 && pid == 123456,
	      "loadavg: without the newline");
	const char *bad[] = { "", "\n", "0.52 0.58 0.59 3/466", "0.52 0.58 0.59 3/466 ",
			      "0.52 0.58 0.59 3/466 12x", "0.52 0.58 0.59 3/466 -1",
			      "0.52 0.58 0.59 3/466 99999999999999999999999",
			      "0.52 0.58 0.59 3/466 1 2", "1 2 3 4 5 6" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(parse_loadavg_last_pid(bad[i], strlen(bad[i]), &pid) == -EINVAL,
		      "loadavg: malformed %zu rejected", i);
	/* Never reads past len: the same text cut inside the last field is another number. */
	CHECK(parse_loadavg_last_pid(s, strlen(s) - 3, &pid) == 0 && pid == 1234,
	      "loadavg: only len bytes read");
}

static void test_stat(void)
{
	struct proc_stat st;
	const char *s = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 1500 0 25 0 10 5 0 0 20 0 "
			"3 0 987654 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
	CHECK(parse_proc_stat(s, strlen(s), &st) == 0, "stat parses");
	CHECK_STR(st.comm, "my (odd) prog", "comm with parens and spaces");
	CHECK_U64(st.flags, 4194560, "flags");
	CHECK_U64(st.minflt, 1500, "minflt");
	CHECK_U64(st.majflt, 25, "majflt");
	CHECK_U64(st.starttime, 987654, "starttime");
	CHECK_U64(st.vsize, 123456789, "vsize");

	const char *kt = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0 "
			 "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 0 0 0 0 0\n";
	CHECK(parse_proc_stat(kt, strlen(kt), &st) == 0 && (st.flags & 0x00200000),
	      "kernel thread flag PF_KTHREAD seen");

	const char *bad[] = { "", "1234", "1234 (x", "1234 (x) S 1 2", "1234 (x) S 1 a 3",
			      "1234 (x) S 1 1 1 0 -1 0 99999999999999999999999 0 0 0 0 0 0 0 0 0 0 0 0 0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(parse_proc_stat(bad[i], strlen(bad[i]), &st) == -EINVAL, "malformed stat %zu rejected", i);
	/* Never reads past len: cut a valid line short. */
	CHECK(parse_proc_stat(s, 40, &st) == -EINVAL, "truncated stat rejected");
}

static void test_cgroup(void)
{
	char out[64];
	const char *v2 = "0::/user.slice/user-1000.slice/session-2.scope\n";
	CHECK(parse_proc_cgroup(v2, strlen(v2), out, sizeof(out)) == 0, "v2 line found");
	CHECK_STR(out, "/user.slice/user-1000.slice/session-2.scope", "v2 path");
	const char *hybrid = "12:memory:/system.slice/ssh.service\n1:name=systemd:/system.slice/ssh.service\n"
			     "0::/system.slice/ssh.service\n";
	CHECK(parse_proc_cgroup(hybrid, strlen(hybrid), out, sizeof(out)) == 0, "hybrid: v2 line found");
	CHECK_STR(out, "/system.slice/ssh.service", "hybrid path");
	const char *v1 = "12:memory:/x\n";
	CHECK(parse_proc_cgroup(v1, strlen(v1), out, sizeof(out)) == -ENOENT, "v1 only: no v2 path");
	char small[8];
	CHECK(parse_proc_cgroup(v2, strlen(v2), small, sizeof(small)) == -ENAMETOOLONG, "too long");
}

static void test_file_table(void)
{
	struct file_table t = { 0 };
	bool created;
	int64_t first = -1;
	for (uint64_t i = 0; i < 5000; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/usr/lib/lib%llu.so", (unsigned long long)i);
		int64_t s = file_table_get(&t, 2049, 1000 + i, path, &created);
		if (i == 0)
			first = s;
		if (s < 0 || !created)
			break;
	}
	CHECK_U64(t.nused, 5000, "5000 files added");
	int64_t again = file_table_get(&t, 2049, 1000, "/other", &created);
	CHECK(again == first && !created, "same dev+inode finds the same slot");
	CHECK(file_table_find(&t, 2050, 1000) == -1, "other device is another file");
	int miss = 0;
	for (uint64_t i = 0; i < 5000; i += 2) {
		int64_t s = file_table_find(&t, 2049, 1000 + i);
		if (s < 0)
			miss++;
		else
			file_table_remove(&t, (uint32_t)s);
	}
	CHECK(miss == 0 && t.nused == 2500, "half removed (%d missing, %u left)", miss, t.nused);
	int wrong = 0;
	for (uint64_t i = 0; i < 5000; i++) {
		int64_t s = file_table_find(&t, 2049, 1000 + i);
		if ((i % 2 == 0) != (s < 0))
			wrong++;
	}
	CHECK(wrong == 0, "lookups after removal right (%d wrong)", wrong);
	int64_t s = file_table_get(&t, 7, 7, "/x", &created);
	CHECK(created && s >= 0 && s < 5000, "freed slots are reused (slot %lld)", (long long)s);

	struct lfile *f = file_at(&t, (uint32_t)s);
	CHECK(file_want_reserve(f, 200) == 0, "bitmap reserved");
	file_want_set_range(f, 60, 70);
	CHECK(!file_want_test(f, 59) && file_want_test(f, 60) && file_want_test(f, 129) &&
		      !file_want_test(f, 130),
	      "page range set exactly");
	file_want_set_range(f, 190, 50);
	CHECK(file_want_test(f, 199) && !file_want_test(f, 200), "range clipped at the bitmap end");
	file_want_clear(f);
	CHECK(!file_want_test(f, 60), "cleared");
	file_table_free(&t);
}

int main(void)
{
	test_stat();
	test_loadavg();
	test_cgroup();
	test_file_table();
	return check_done();
}
