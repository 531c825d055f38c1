#!/usr/bin/env python3
"""A daemon in a mount namespace of its own, as the sandboxed unit runs it (PrivateTmp=,
ProtectSystem= and friends): every process then looks like another namespace, yet files must be
found by their own paths, saved in the state file, and kept `keep` passes after they are unmapped.
Also a file whose size is not a whole number of 64-page bitmap words in `resident` mode."""
import os
import shutil

from lib import MiB, PAGE, Daemon, Mapper, done, eq, make_file, ok, smaps_locked, workdir

d = workdir()
try:
    size = 3 * MiB + 7 * PAGE + 1
    path = make_file(os.path.join(d, "libodd.so"), size)
    m = Mapper(path, 0, 100, 90, 100)   # touches only the tail, up to the odd last page
    conf = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = resident\nkeep = 2\n"
    dm = Daemon(d, conf, prefix=["unshare", "--mount", "--propagation", "private"])
    try:
        ok(dm.wait_ready(), "READY=1 in a namespace of its own", dm.log())
        rss, sz = smaps_locked(dm.pid, path)
        npages = -(-size // PAGE)
        touched = npages - int(npages * 90 / 100)
        ok(touched * PAGE <= rss <= (touched + 16) * PAGE,
           f"resident: the touched tail is locked up to the last page ({rss} bytes, "
           f"{touched} pages touched)", dm.log())
        m.stop()
        ok(dm.rescan(), "rescan after the helper exits")
        rss2, _ = smaps_locked(dm.pid, path)
        eq(rss2, rss, "keep = 2: still locked one pass after the last process unmapped it")
        ok(dm.rescan(), "second rescan")
        ok(dm.rescan(), "third rescan")
        rss3, _ = smaps_locked(dm.pid, path)
        eq(rss3, 0, "unlocked once keep has run out")
    finally:
        rc = dm.stop()
    eq(rc, 0, "SIGTERM exits 0")
    m = Mapper(path, 0, 100, 90, 100)
    dm = Daemon(d, conf, prefix=["unshare", "--mount", "--propagation", "private"])
    try:
        ok(dm.wait_ready(), "second run ready", dm.log())
    finally:
        dm.stop()
        m.stop()
    with open(dm.state_file) as f:
        text = f.read()
    ok(path in text, "the state file lists the file found through the daemon's own view", text)
finally:
    shutil.rmtree(d, ignore_errors=True)
done()
