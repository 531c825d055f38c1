/* The memory cgroup: finding it from /proc/self/{cgroup,mountinfo} text, parsing its limit and
 * stat files, and the room left under the tightest limit of a cgroup and its ancestors (on a
 * directory tree of files shaped like the kernel's). */
#include "check.h"
#include "memcg.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (UINT64_C(1) << 20)

static const char *mounts_v1 =
	"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
	"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void test_locate(void)
{
	char dir[256];
	bool v2;

	const char *hybrid = "9:name=systemd:/system.slice/prelockd.service\n"
			     "4:memory:/system.slice/prelockd.service\n"
			     "0::/system.slice/prelockd.service\n";
	CHECK(memcg_locate(hybrid, mounts_v1, dir, sizeof(dir), &v2) == 0 && !v2,
	      "hybrid: the v1 memory hierarchy wins over the unified one");
	CHECK_STR(dir, "/sys/fs/cgroup/memory/system.slice/prelockd.service",
		  "hybrid: v1 directory");

	const char *joined = "4:cpu,memory:/a\n";
	const char *mounts_joined = "34 30 0:31 / /cg/cm rw - cgroup cgroup rw,cpu,memory\n";
	CHECK(memcg_locate(joined, mounts_joined, dir, sizeof(dir), &v2) == 0 && !v2,
	      "v1 with memory co-mounted with cpu");
	CHECK_STR(dir, "/cg/cm/a", "co-mounted directory");

	/* "memoryx" and "name=memory" are other hierarchies. */
	const char *lookalike = "4:memoryx:/a\n5:name=memory:/b\n";
	const char *mounts_lookalike = "34 30 0:31 / /cg/x rw - cgroup cgroup rw,memoryx\n";
	CHECK(memcg_locate(lookalike, mounts_lookalike, dir, sizeof(dir), &v2) == -ENOENT,
	      "controller names are matched whole");

	const char *unified = "0::/system.slice/prelockd.service\n";
	const char *mounts_v2 =
		"25 21 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
	CHECK(memcg_locate(unified, mounts_v2, dir, sizeof(dir), &v2) == 0 && v2, "unified: v2");
	CHECK_STR(dir, "/sys/fs/cgroup/system.slice/prelockd.service", "unified: directory");

	const char *root = "0::/\n";
	CHECK(memcg_locate(root, mounts_v2, dir, sizeof(dir), &v2) == 0 && v2, "root cgroup");
	CHECK_STR(dir, "/sys/fs/cgroup", "root cgroup is the mount point");

	/* A container's view: the mount shows a subtree of the hierarchy; the path lies under it. */
	const char *mounts_sub = "25 21 0:22 /lxc/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
	const char *in_c1 = "0::/lxc/c1/app\n";
	CHECK(memcg_locate(in_c1, mounts_sub, dir, sizeof(dir), &v2) == 0, "mounted subtree");
	CHECK_STR(dir, "/sys/fs/cgroup/app", "path relative to the mounted subtree");
	const char *at_c1 = "0::/lxc/c1\n";
	CHECK(memcg_locate(at_c1, mounts_sub, dir, sizeof(dir), &v2) == 0, "at the mounted root");
	CHECK_STR(dir, "/sys/fs/cgroup", "at the mounted root: the mount point");
	const char *beside = "0::/lxc/c10/app\n";
	CHECK(memcg_locate(beside, mounts_sub, dir, sizeof(dir), &v2) == -ENOENT,
	      "a path beside the mounted subtree (c10 is not under c1) is not reachable");

	const char *mounts_space = "25 21 0:22 / /run/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
	CHECK(memcg_locate(unified, mounts_space, dir, sizeof(dir), &v2) == 0,
	      "escaped mount point");
	CHECK_STR(dir, "/run/my cgroups/system.slice/prelockd.service", "\\040 is a space");

	/* Optional fields (shared:N) before the separator. */
	const char *mounts_opt =
		"25 21 0:22 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw\n";
	CHECK(memcg_locate(unified, mounts_opt, dir, sizeof(dir), &v2) == 0,
	      "optional fields before the separator");
	CHECK_STR(dir, "/sys/fs/cgroup/system.slice/prelockd.service",
		  "optional fields: directory");

	CHECK(memcg_locate(hybrid, "", dir, sizeof(dir), &v2) == -ENOENT, "no mounts: none");
	CHECK(memcg_locate("", mounts_v1, dir, sizeof(dir), &v2) == -ENOENT,
	      "no cgroup lines: none");
	const char *garbage = "x\n::\n4:memory\n34 30 0:31\n - -\n";
	CHECK(memcg_locate(garbage, garbage, dir, sizeof(dir), &v2) == -ENOENT, "garbage: none");
	char small[16];
	CHECK(memcg_locate(hybrid, mounts_v1, small, sizeof(small), &v2) == -ENAMETOOLONG,
	      "a directory longer than the buffer is refused, not cut");
	/* The same when the mount point alone is too long and the cgroup is the mount's root. */
	char tiny[8];
	CHECK(memcg_locate(root, mounts_v2, tiny, sizeof(tiny), &v2) == -ENAMETOOLONG,
	      "a mount point longer than the buffer is refused, not cut");
	CHECK(memcg_locate(root, mounts_v2, tiny, 0, &v2) == -ENAMETOOLONG, "no buffer at all");
	/* A mounted root longer than the 4096 bytes kept of it cannot be compared whole: a path
	 * that shares only its first 4095 bytes is not under it. */
	static char long_root[5200], long_path[4200];
	int n = snprintf(long_root, sizeof(long_root), "25 21 0:22 /");
	memset(long_root + n, 'x', 5000);
	snprintf(long_root + n + 5000, sizeof(long_root) - (size_t)n - 5000,
		 " /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	n = snprintf(long_path, sizeof(long_path), "0::/");
	memset(long_path + n, 'x', 4094);
	snprintf(long_path + n + 4094, sizeof(long_path) - (size_t)n - 4094, "/app\n");
	CHECK(memcg_locate(long_path, long_root, dir, sizeof(dir), &v2) == -ENOENT,
	      "a mounted root longer than a path: not matched on its first 4095 bytes");
}

static void test_parse(void)
{
	uint64_t v = 0;
	CHECK(memcg_parse_limit("max\n", &v) && v == UINT64_MAX, "v2 max: no limit");
	CHECK(memcg_parse_limit("268435456\n", &v) && v == 256 * MiB, "a byte count");
	CHECK(memcg_parse_limit("9223372036854771712\n", &v) && v == UINT64_MAX,
	      "v1's PAGE_COUNTER_MAX: no limit");
	CHECK(!memcg_parse_limit("", &v), "empty: malformed");
	CHECK(!memcg_parse_limit("-1\n", &v), "negative: malformed");
	CHECK(!memcg_parse_limit("12k\n", &v), "suffix: malformed");
	CHECK(!memcg_parse_limit("maximum\n", &v), "maximum is not max");
	CHECK(!memcg_parse_limit("99999999999999999999999\n", &v), "overflow: malformed");

	const char *v1 = "cache 100\ninactive_file 1\nactive_file 2\ntotal_cache 300\n"
			 "total_inactive_file 4096\ntotal_active_file 8192\ntotal_unevictable 5\n";
	CHECK_U64(memcg_parse_reclaimable(v1, false), 12288, "v1: the hierarchical total_ fields");
	const char *v2 = "anon 5\nfile 9\ninactive_anon 1\ninactive_file 4096\nactive_file 4096\n"
			 "unevictable 7\n";
	CHECK_U64(memcg_parse_reclaimable(v2, true), 8192, "v2: inactive_file + active_file");
	CHECK_U64(memcg_parse_reclaimable("", true), 0, "empty stat: nothing reclaimable");
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_room(void)
{
	char top[] = "/tmp/prelockd-memcg-XXXXXX", child[64];
	if (!mkdtemp(top)) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(child, sizeof(child), "%s/child", top);
	mkdir(child, 0755);

	struct memcg m = { .nlevels = 2, .margin = 8 * MiB };
	m.dir[0] = strdup(child);
	m.dir[1] = strdup(top);

	/* v1: the child unlimited, its parent limited to 100 MiB with 60 used, 10 reclaimable. */
	put(child, "memory.limit_in_bytes", "9223372036854771712\n");
	put(child, "memory.usage_in_bytes", "1048576\n");
	put(child, "memory.stat", "total_inactive_file 0\ntotal_active_file 0\n");
	put(top, "memory.limit_in_bytes", "104857600\n");
	put(top, "memory.usage_in_bytes", "62914560\n");
	put(top, "memory.stat", "total_inactive_file 6291456\ntotal_active_file 4194304\n");
	memcg_refresh(&m);
	CHECK(m.limited, "an ancestor's limit limits");
	CHECK_U64(memcg_room(&m), (100 - 60 + 10 - 8) * MiB,
		  "room = limit - usage + reclaimable - margin");

	/* The child gets a tighter limit: the smaller room counts. */
	put(child, "memory.limit_in_bytes", "20971520\n");
	put(child, "memory.usage_in_bytes", "10485760\n");
	memcg_refresh(&m);
	CHECK_U64(memcg_room(&m), (20 - 10 - 8) * MiB, "the tightest level counts");

	/* Usage past limit - margin: no room, never a wrapped-around huge number. */
	put(child, "memory.usage_in_bytes", "20000000\n");
	CHECK_U64(memcg_room(&m), 0, "no room near the limit");

	/* Usage near 2^64 (whatever the file says): no room, not a sum that wrapped around. */
	put(child, "memory.usage_in_bytes", "18446744073709551615\n");
	CHECK_U64(memcg_room(&m), 0, "huge usage: no room");

	/* Unreadable usage: no room rather than a guess. */
	put(child, "memory.usage_in_bytes", "garbage\n");
	CHECK_U64(memcg_room(&m), 0, "unreadable usage: no room");

	/* Limits read once per pass: a removed limit shows after refresh. */
	put(child, "memory.limit_in_bytes", "9223372036854771712\n");
	put(top, "memory.limit_in_bytes", "9223372036854771712\n");
	CHECK(m.limited, "still limited until refreshed");
	m.full = true;
	memcg_refresh(&m);
	CHECK(!m.limited && !m.full, "refresh: no limit, and a new pass may try again");
	CHECK_U64(memcg_room(&m), UINT64_MAX, "no limit: unlimited room");

	/* v2: memory.high below memory.max is the wall. */
	m.v2 = true;
	put(child, "memory.max", "max\n");
	put(child, "memory.high", "52428800\n");
	put(child, "memory.current", "20971520\n");
	put(child, "memory.stat", "inactive_file 1048576\nactive_file 1048576\n");
	put(top, "memory.max", "max\n");
	put(top, "memory.high", "max\n");
	memcg_refresh(&m);
	CHECK(m.limited, "v2: memory.high limits");
	CHECK_U64(memcg_room(&m), (50 - 20 + 2 - 8) * MiB, "v2 room under memory.high");

	memcg_free(&m);
	CHECK(m.nlevels == 0 && !m.limited, "freed");
	/* Cleanup without a shell: the files put() may have written, then the two directories. */
	static const char *const names[] = { "memory.limit_in_bytes", "memory.usage_in_bytes",
					     "memory.stat", "memory.max", "memory.high",
					     "memory.current" };
	bool clean = true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", child, names[i]);
		clean &= unlink(path) == 0 || errno == ENOENT;
		snprintf(path, sizeof(path), "%s/%s", top, names[i]);
		clean &= unlink(path) == 0 || errno == ENOENT;
	}
	CHECK(clean && rmdir(child) == 0 && rmdir(top) == 0, "cleanup");
}

/* The daemon's own cgroup on this machine: found without error, whatever the setup. */
static void test_self(void)
{
	struct memcg m = { 0 };
	memcg_init(&m);
	CHECK(m.nlevels <= MEMCG_MAX_LEVELS, "init: %u level(s), %s", m.nlevels,
	      m.nlevels ? m.dir[0] : "no memory controller");
	if (m.nlevels)
		CHECK(m.limited || memcg_room(&m) == UINT64_MAX, "unlimited: room is unbounded");
	memcg_free(&m);
}

int main(void)
{
	test_locate();
	test_parse();
	test_room();
	test_self();
	return check_done();
}
