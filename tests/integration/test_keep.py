#!/usr/bin/env python3
"""`keep`: the number of scans a file stays locked after no process maps it any more, checked in
the daemon's smaps (VmFlags lo, Rss) after each SIGUSR1 pass.

Observed semantics (lockpass.c file_candidate: unlocked when pass - last_seen_pass > keep): call
the last pass that saw a process map the file pass P. With keep = K the file stays locked through
passes P+1 .. P+K (the K rescans after the helper exits) and is unlocked by pass P+K+1. keep = 2:
locked after the 1st and 2nd rescan, unlocked at the 3rd. keep = 0: unlocked at the first rescan
after the helper exits. While kept, the very same bytes stay locked (no shrinking, no
relocking), and the status file shows the file with 0 processes. A file mapped again while kept
starts the count over."""
import os
import shutil

from lib import MiB, Daemon, Mapper, done, eq, locked_mappings, make_file, ok, smaps_locked, workdir

SIZE = 4 * MiB
d = workdir()
m = dm = None
try:
    path = make_file(os.path.join(d, "lib.so"), SIZE)
    other = make_file(os.path.join(d, "other.so"), MiB, seed=2)
    for keep in (2, 0):
        m = Mapper(path)              # exits below
        m2 = Mapper(other)            # maps a second file throughout: unaffected by the first
        dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = mapped\nkeep = {keep}\n")
        try:
            ok(dm.wait_ready(), f"keep={keep}: READY=1", dm.log())
            ok(dm.rescan(), f"keep={keep}: a pass with the helper still running")
            before = smaps_locked(dm.pid, path)
            eq(before, (SIZE, SIZE), f"keep={keep}: the mapped file is locked and resident")
            vmas = [(x["start"], x["end"]) for x in locked_mappings(dm.pid) if x["path"] == path]
            m.stop()
            for k in range(1, keep + 1):
                ok(dm.rescan(), f"keep={keep}: rescan {k} after the helper exited")
                eq(smaps_locked(dm.pid, path), before,
                   f"keep={keep}: still locked, same bytes, after rescan {k}")
                eq([(x["start"], x["end"]) for x in locked_mappings(dm.pid) if x["path"] == path],
                   vmas, f"keep={keep}: the same VMAs (not relocked) after rescan {k}")
                ent = [e for e in dm.status_json()["locked"] if e["path"] == path]
                eq([(e["bytes"], e["processes"]) for e in ent], [(SIZE, 0)],
                   f"keep={keep}: the status file lists it kept, with 0 processes")
            ok(dm.rescan(), f"keep={keep}: rescan {keep + 1} after the helper exited")
            eq(smaps_locked(dm.pid, path), (0, 0), f"keep={keep}: unlocked at rescan {keep + 1}")
            ok(all(e["path"] != path for e in dm.status_json()["locked"]),
               f"keep={keep}: gone from the status file")
            eq(smaps_locked(dm.pid, other), (MiB, MiB),
               f"keep={keep}: the file still mapped stays locked")
            ok(dm.rescan(), f"keep={keep}: one more rescan")
            eq(smaps_locked(dm.pid, path), (0, 0), f"keep={keep}: and stays unlocked")
            if keep:
                # Mapped again while kept: the count starts over from the last pass that saw it.
                m = Mapper(path)
                ok(dm.rescan(), f"keep={keep}: rescan with a new helper")
                eq(smaps_locked(dm.pid, path), before, f"keep={keep}: locked again")
                ok(dm.rescan(), f"keep={keep}: rescan 1 before it exits")
                m.stop()
                ok(dm.rescan(), f"keep={keep}: rescan 1 after it exited")
                assert keep == 2
                ok(dm.rescan(), f"keep={keep}: rescan 2 after it exited")
                eq(smaps_locked(dm.pid, path), before,
                   f"keep={keep}: the count restarted: still locked after {keep} rescans")
                ok(dm.rescan(), f"keep={keep}: rescan {keep + 1} after it exited")
                eq(smaps_locked(dm.pid, path), (0, 0), f"keep={keep}: unlocked at rescan {keep + 1}")
            eq(dm.stop(), 0, f"keep={keep}: SIGTERM exits 0")
        finally:
            dm.stop()
            m.stop()
            m2.stop()
            if os.path.exists(dm.state_file):
                os.unlink(dm.state_file)
finally:
    shutil.rmtree(d, ignore_errors=True)
done()
