#!/usr/bin/env python3
"""Recovery of files that could not be locked when the daemon first saw them (issue 5: "recovers
when room returns"). Checked by inode in the daemon's smaps, in each `what` mode:

(a) a mapped file the config excluded at first: a reload that drops the exclude locks it;
(b) a mapped file whose open failed at first (a tmpfs mounted over its directory hides it, as
    a full descriptor table or a passing error would make the open fail): once the path leads
    to it again, a full pass (forced by the same reload) locks it.
The test runs in a private mount namespace of its own.
(Was a bug in `mapped` and `resident`: a file's page bitmap was only sized when it was first
seen and opened, so such files kept an empty want and were never locked.)"""
import os
import subprocess
import sys

if os.environ.get("PRELOCKD_IN_NS") != "1":
    # Re-run inside a private mount namespace; its TAP output is ours.
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable,
                           os.path.abspath(__file__)], dict(os.environ, PRELOCKD_IN_NS="1"))

from lib import (Daemon, Mapper, MiB, cleanup, done, eq, locked_by_inode, make_file, ok, workdir)

d = workdir()
mappers = []
dm = None
try:
    for what in ("whole", "mapped", "resident"):
        ex = make_file(os.path.join(d, f"libex-{what}.so"), 2 * MiB, seed=1)
        sub = os.path.join(d, f"sub-{what}")
        os.mkdir(sub)
        mv = make_file(os.path.join(sub, f"libmv.so"), 3 * MiB, seed=2)
        est, mst = os.stat(ex), os.stat(mv)
        mappers += [Mapper(ex), Mapper(mv)]
        base = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = {what}\nkeep = 0\n"
        subprocess.run(["mount", "-n", "-t", "tmpfs", "tmpfs", sub], check=True)
        ok(not os.path.exists(mv), f"{what}: (b) a tmpfs over its directory hides the file")
        dm = Daemon(d, base + f"exclude = ^{d}/libex\n")
        ok(dm.wait_ready(), f"{what}: READY=1", dm.log())
        eq(locked_by_inode(dm.pid, est), (0, 0), f"{what}: (a) the excluded file is not locked")
        eq(locked_by_inode(dm.pid, mst), (0, 0), f"{what}: (b) the hidden file is not locked")
        subprocess.run(["umount", "-n", sub], check=True)
        dm.write_config(base)
        i, j = dm.reload()
        ok(j is not None, f"{what}: a reload without the exclude is answered")
        tag = ""
        eq(locked_by_inode(dm.pid, est), (2 * MiB, 2 * MiB),
           f"{tag}{what}: (a) the file the reload includes is locked")
        eq(locked_by_inode(dm.pid, mst), (3 * MiB, 3 * MiB),
           f"{tag}{what}: (b) the file whose first open failed is locked once it opens")
        eq(dm.stop(), 0, f"{what}: SIGTERM exits 0")
        ok("accounting mismatch" not in dm.log(), f"{what}: the debug build's checks held")
        dm = None
        os.unlink(os.path.join(d, "state"))
        for m in mappers:
            m.stop()
        mappers.clear()
finally:
    cleanup(d, dm, mappers)
done()
