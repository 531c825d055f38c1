#!/usr/bin/env python3
"""Each `what` mode locks what it promises, checked in the daemon's smaps (VmFlags lo, Rss) and
VmLck, not in what the daemon says. A helper maps the middle half of a 16 MiB file and touches a
tenth of the file inside that: whole = all of it, mapped = the mapped half, resident = about the
touched tenth."""
import os
import shutil

from lib import MiB, PAGE, Daemon, Mapper, done, eq, make_file, ok, smaps_locked, vmlck, workdir

# Not a whole number of 64-page bitmap words, nor of pages: the last range must still count.
SIZE = 16 * MiB + 5 * PAGE + 123
NPAGES = -(-SIZE // PAGE)


def pages(first, last):
    """Pages the helper maps or touches for [first%, last%), as it computes them."""
    return int(NPAGES * last / 100) - int(NPAGES * first / 100)

d = workdir()
try:
    path = make_file(os.path.join(d, "code.bin"), SIZE)
    with Mapper(path, 25, 75, 40, 50) as m:
        for what, lo, hi in (("whole", NPAGES * PAGE, NPAGES * PAGE),
                             ("mapped", pages(25, 75) * PAGE, pages(25, 75) * PAGE),
                             # the kernel's fault-around and our gap filling add a few pages
                             ("resident", pages(40, 50) * PAGE, (pages(40, 50) + 64) * PAGE)):
            with Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = {what}\nkeep = 0\n") as dm:
                ok(dm.wait_ready(), f"{what}: READY=1 after the first pass", dm.log())
                rss, size = smaps_locked(dm.pid, path)
                ok(lo <= rss <= hi, f"{what}: {rss} bytes resident and locked, want {lo}..{hi}",
                   dm.log())
                eq(size, rss, f"{what}: every locked page of the file is resident")
                # VmLck counts every locked VMA of the daemon, itself included.
                _, all_lo = smaps_locked(dm.pid)
                eq(vmlck(dm.pid), all_lo, f"{what}: VmLck equals the sum of locked VMAs")
                rc = dm.stop()
                eq(rc, 0, f"{what}: SIGTERM exits 0")
                os.unlink(dm.state_file)  # each mode starts afresh
        ok(m.proc.poll() is None, "the helper survived all of it")
finally:
    shutil.rmtree(d, ignore_errors=True)
done()
