#!/usr/bin/env python3
"""`resident` grows the locked set as programs touch more of a file, on each rescan, and grows
the existing mapping where the new pages follow it, so a file does not collect one VMA per
rescan (vm.max_map_count)."""
import os
import shutil

from lib import MiB, PAGE, Daemon, Mapper, done, eq, make_file, ok, smaps_locked, workdir
from lib import locked_mappings

SIZE = 8 * MiB
NP = SIZE // PAGE


def pages(a, b):
    return int(NP * b / 100) - int(NP * a / 100)


d = workdir()
mappers = []
try:
    path = make_file(os.path.join(d, "libgrow.so"), SIZE)
    mappers.append(Mapper(path, 0, 100, 10, 20))
    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = resident\nkeep = 0\n")
    try:
        ok(dm.wait_ready(), "ready", dm.log())
        rss, _ = smaps_locked(dm.pid, path)
        ok(pages(10, 20) * PAGE <= rss <= (pages(10, 20) + 32) * PAGE,
           f"first: the touched tenth is locked ({rss} bytes)")
        vmas0 = [m for m in locked_mappings(dm.pid) if m["path"] == path]
        eq(len(vmas0), 1, "one locked VMA for the file")
        steps = ((20, 30), (30, 45), (45, 50))
        for a, b in steps:
            mappers.append(Mapper(path, 0, 100, a, b))
            ok(dm.rescan(), f"rescan after pages {a}%..{b}% came into use")
        rss, size = smaps_locked(dm.pid, path)
        ok(pages(10, 50) * PAGE <= rss <= (pages(10, 50) + 32) * PAGE,
           f"grown to the touched 40% ({rss} bytes, want about {pages(10, 50) * PAGE})")
        eq(size, rss, "all of it resident")
        vmas = [m for m in locked_mappings(dm.pid) if m["path"] == path]
        eq(len(vmas), 1, "still one VMA: the mapping grew in place of new ones")
        # A range before the locked one cannot grow it; it becomes a second mapping.
        mappers.append(Mapper(path, 0, 100, 0, 5))
        ok(dm.rescan(), "rescan after pages at the front came into use")
        rss2, size2 = smaps_locked(dm.pid, path)
        ok(rss2 >= rss + pages(0, 5) * PAGE, f"the front part is locked too ({rss2} bytes)")
        eq(size2, rss2, "resident")
        for m in mappers[1:]:
            m.stop()
        ok(dm.rescan(), "rescan after most helpers exit")
        rss3, _ = smaps_locked(dm.pid, path)
        eq(rss3, rss2, "resident keeps what was used while one process still maps the file")
    finally:
        eq(dm.stop(), 0, "SIGTERM exits 0")
finally:
    for m in mappers:
        m.stop()
    shutil.rmtree(d, ignore_errors=True)
done()
