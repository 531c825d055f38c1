/* The mountinfo parser and the questions asked of it (mountinfo.h). */
#include <stdlib.h>
#include <sys/sysmacros.h>

#include "check.h"
#include "mountinfo.h"

static const char table[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"30 22 0:45 / /home/u/fuse rw,nosuid - fuse.sshfs host: rw,user_id=1000\n"
	"31 22 0:46 / /srv/with\\040space rw - tmpfs tmpfs rw\n"
	"32 22 0:47 / /srv/ov rw - overlay overlay rw,lowerdir=/srv/low\\134\\054er:/home/u/fuse/l,"
	"upperdir=/srv/with\\040space/up,workdir=/srv/with\\040space/wk\n"
	"33 22 0:48 / /srv/ok rw - overlay overlay rw,lowerdir=/srv/l1:/srv/l2,upperdir=/srv/up\n"
	"34 22 0:49 / /srv/rel rw - overlay overlay rw,lowerdir=lower,upperdir=/srv/up\n"
	"bad line\n"
	"35 22 0:50 / /srv/ok rw - tmpfs tmpfs rw\n"
	"36 22 0:51 / /cut rw - nfs4 s:/x rw"; /* no newline: cut short, not read */

struct seen {
	char dirs[4][64];
	int n;
};

static int collect(const char *dir, void *ud)
{
	struct seen *s = ud;
	if (s->n < 4)
		snprintf(s->dirs[s->n++], sizeof(s->dirs[0]), "%s", dir);
	return 0;
}

int main(void)
{
	char *buf = strdup(table);
	struct mnt_table t = { 0 };
	CHECK(mountinfo_parse(buf, strlen(buf), &t) == 0, "parses");
	CHECK_U64(t.n, 7, "seven good, complete lines (the bad and the cut one skipped)");
	const struct mnt *m = mnt_by_dev(&t, makedev(0, 46));
	CHECK(m && strcmp(m->point, "/srv/with space") == 0, "mount point unescaped (\\040)");
	CHECK(mnt_by_id(&t, 30) && strcmp(mnt_by_id(&t, 30)->fstype, "fuse.sshfs") == 0, "by id");
	CHECK(!mnt_by_dev(&t, makedev(0, 51)), "a line without its newline is not read");

	CHECK(mnt_holding(&t, "/usr/lib/x.so") == mnt_by_id(&t, 22), "/ holds /usr/lib/x.so");
	CHECK(mnt_holding(&t, "/home/u/fuse/a/b") == mnt_by_id(&t, 30), "the longest mount point");
	CHECK(mnt_holding(&t, "/home/u/fusex") == mnt_by_id(&t, 22), "whole components only");
	CHECK(mnt_holding(&t, "/srv/ok/f") == mnt_by_id(&t, 35), "the top of a stack: the last");

	struct seen s = { 0 };
	CHECK(mnt_overlay_layers(mnt_by_id(&t, 32), collect, &s) == 0 && s.n == 3,
	      "three layers (%d)", s.n);
	CHECK_STR(s.dirs[0], "/srv/low,er", "lowerdir: octal and overlayfs escapes undone");
	CHECK_STR(s.dirs[1], "/home/u/fuse/l", "second lower layer");
	CHECK_STR(s.dirs[2], "/srv/with space/up", "upperdir");
	s.n = 0;
	CHECK(mnt_overlay_layers(mnt_by_id(&t, 34), collect, &s) < 0,
	      "a relative layer cannot be placed");

	CHECK(fstype_may_block("fuse") && fstype_may_block("fuse.sshfs") &&
		      fstype_may_block("fuseblk") && fstype_may_block("nfs4") &&
		      fstype_may_block("cifs") && fstype_may_block("9p"),
	      "FUSE and network filesystems may block");
	CHECK(!fstype_may_block("ext4") && !fstype_may_block("tmpfs") &&
		      !fstype_may_block("overlay") && !fstype_may_block("fusex"),
	      "disk filesystems, tmpfs and overlay (judged by its layers) do not");
	mnt_table_free(&t);
	free(buf);
	return check_done();
}
