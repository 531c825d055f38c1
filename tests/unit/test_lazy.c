/* PROCMAP_QUERY without names: the lazy walk gives each VMA first without its name, fetches the
 * name only when asked, and sees the same VMAs as the eager walk. */
#include "check.h"
#include "maps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct seen {
	uint64_t start[512], inode[512];
	int n, nameless, named, asked;
	char our_path[256];
	uint64_t our_inode;
	int our_named;
	int ask_for_ours_only;
};

static int lazy_cb(const struct map_entry *e, void *ud)
{
	struct seen *s = ud;
	if (!e->path) {
		s->nameless++;
		if (s->n < 512) {
			s->start[s->n] = e->start;
			s->inode[s->n++] = e->inode;
		}
		if (!s->ask_for_ours_only || e->inode == s->our_inode) {
			s->asked++;
			return MAPS_NEED_NAME;
		}
		return 0;
	}
	s->named++;
	if (e->inode == s->our_inode && strcmp(e->path, s->our_path) == 0)
		s->our_named++;
	return 0;
}

static int eager_cb(const struct map_entry *e, void *ud)
{
	struct seen *s = ud;
	if (s->n < 512) {
		s->start[s->n] = e->start;
		s->inode[s->n++] = e->inode;
	}
	return 0;
}

int main(void)
{
	struct seen lazy = { 0 }, eager = { 0 }, some = { 0 };
	char dir[] = "/var/tmp/prelockd-lazy-XXXXXX";
	struct stat st;

	if (!mkdtemp(dir))
		return 1;
	snprintf(lazy.our_path, sizeof(lazy.our_path), "%s/lib lazy.so", dir);
	int fd = open(lazy.our_path, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 3 * 4096) == 0 && fstat(fd, &st) == 0, "test file made");
	void *a = mmap(NULL, 3 * 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	CHECK(a != MAP_FAILED, "mapped read+exec");
	lazy.our_inode = (uint64_t)st.st_ino;
	some = lazy;
	some.ask_for_ours_only = 1;

	int mfd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	int r = maps_query_fd_lazy(mfd, lazy_cb, &lazy);
	if (r == -ENOTTY || r == -EINVAL) {
		CHECK(1, "# SKIP kernel without PROCMAP_QUERY");
		close(mfd);
		goto out;
	}
	CHECK(r == 0, "lazy walk ends cleanly (%d)", r);
	CHECK(maps_query_fd(mfd, eager_cb, &eager) == 0, "eager walk ends cleanly");
	CHECK(maps_query_fd_lazy(mfd, lazy_cb, &some) == 0, "selective lazy walk ends cleanly");
	close(mfd);

	CHECK(lazy.n == eager.n && lazy.n > 2, "same number of executable file VMAs (%d, %d)", lazy.n,
	      eager.n);
	int same = lazy.n == eager.n;
	for (int i = 0; same && i < lazy.n; i++)
		same = lazy.start[i] == eager.start[i] && lazy.inode[i] == eager.inode[i];
	CHECK(same, "the same VMAs in the same order");
	CHECK(lazy.nameless == lazy.n && lazy.named == lazy.asked,
	      "every VMA first comes without a name, and a name follows each request (%d/%d)",
	      lazy.named, lazy.asked);
	CHECK(lazy.our_named == 1, "our file's name is the exact path, spaces kept");
	CHECK(some.asked == 1 && some.named == 1 && some.our_named == 1,
	      "names are fetched only when asked (asked %d, named %d)", some.asked, some.named);

out:
	munmap(a, 3 * 4096);
	close(fd);
	unlink(lazy.our_path);
	rmdir(dir);
	return check_done();
}
