#!/usr/bin/env python3
"""The budget (SPEC: "Order when the budget is short: files of critical processes first, then files
mapped by more processes, then smaller files. The budget is never exceeded, not even for a
moment"), checked in the kernel's view of the daemon: its smaps (VmFlags lo, Size and Rss) after
every pass, and its VmLck sampled continuously while passes run.

40 files of distinct sizes (256 KiB .. 3.9 MiB) are each mapped by a helper; max_total = 8M with
max_total_percent = 0; what = whole, so a file's want is exactly its page-rounded size, and
keep = 0, so a file nobody maps drops out at the next pass. After each pass the locked set must
be exactly the greedy fill of the SPEC's order, which implies: at most the budget, at least the
budget minus the largest file, the most shared file first, and a critical process's file first
even when it is the biggest of all."""
import os
import random
import shutil
import tempfile
import threading
import time

from lib import (MAPPER, PAGE, Daemon, Mapper, done, eq, make_file, ok, smaps_locked, vmlck,
                 workdir)

KiB = 1024
BUDGET = 8 << 20
N = 40
SIZES = [256 * KiB + i * 96 * KiB for i in range(N)]  # distinct: the order has no ties
random.Random(7).shuffle(SIZES)

d = workdir()
bindir = tempfile.mkdtemp(prefix="prelockd-bin-", dir="/var/tmp")  # outside the include regex
mappers = {}  # name -> [Mapper]
dm = None
try:
    # Non-critical helpers run as "othermap"; the critical one keeps the comm "mapper".
    other = os.path.join(bindir, "othermap")
    shutil.copy(MAPPER, other)
    paths = {}
    for i, size in enumerate(SIZES):
        name = f"f{i:02d}.bin"
        paths[name] = make_file(os.path.join(d, name), size, seed=i)
    size_of = {n: os.path.getsize(p) for n, p in paths.items()}
    by_size = sorted(paths, key=lambda n: size_of[n])
    smallest, biggest = by_size[:4], by_size[-1]
    shared = by_size[30]  # 3.1 MiB: never chosen for its size alone once the small ones fit
    critical = set()

    def start(name, binary=other):
        mappers.setdefault(name, []).append(Mapper(paths[name], binary=binary))

    def stop_all(name):
        for m in mappers.pop(name, []):
            m.stop()

    def expected():
        """The greedy fill in the SPEC's order over the files some process maps now."""
        cands = sorted((n for n in paths if mappers.get(n)),
                       key=lambda n: (n not in critical, -len(mappers[n]), size_of[n]))
        left, sel = BUDGET, set()
        for n in cands:
            if size_of[n] <= left:
                sel.add(n)
                left -= size_of[n]
        return sel, max((size_of[n] for n in cands), default=0)

    for n in paths:
        start(n)
    start(shared)
    start(shared)

    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = whole\nmax_total = 8M\n"
                   f"max_total_percent = 0\nkeep = 0\n[processes]\ncritical_names = mapper\n")

    # VmLck is one counter the kernel updates with each mlock/munmap: sampling it while passes
    # run sees every intermediate state. The daemon's own locked memory (mlockall) is measured
    # between passes as VmLck minus its locked file mappings.
    sampler = {"stop": False, "max": 0, "samples": 0}
    own = {"max": 0}

    def sample():
        while not sampler["stop"]:
            try:
                v = vmlck(dm.pid)
            except OSError:
                return
            if v is not None:
                sampler["max"] = max(sampler["max"], v)
                sampler["samples"] += 1

    ok(dm.wait_ready(), "READY=1 after the first pass", dm.log())
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()

    def check(label):
        want, largest = expected()
        _, total = smaps_locked(dm.pid, d + "/")
        _, all_lo = smaps_locked(dm.pid)
        own["max"] = max(own["max"], vmlck(dm.pid) - total)
        got = set()
        bad = []
        for n, p in paths.items():
            rss, size = smaps_locked(dm.pid, p)
            if size:
                got.add(n)
                if size != size_of[n] or rss != size:
                    bad.append(f"{n}: size {size_of[n]}, locked {size}, resident {rss}")
        ok(total <= BUDGET, f"{label}: {total} bytes locked, within the budget {BUDGET}")
        ok(total > BUDGET - largest,
           f"{label}: greedy fill: {total} > budget - largest candidate ({BUDGET - largest})")
        eq(sorted(got), sorted(want), f"{label}: locked files are the SPEC's greedy choice")
        eq(bad, [], f"{label}: each chosen file is locked whole and resident")
        eq(vmlck(dm.pid), all_lo, f"{label}: VmLck equals the daemon's locked VMAs")
        st = dm.status_json()
        eq((st["locked_bytes"], st["budget_bytes"]), (total, BUDGET),
           f"{label}: the status file agrees with the kernel")

    check("first pass")
    ok(shared in expected()[0] and smaps_locked(dm.pid, paths[shared])[1] == size_of[shared],
       f"the file mapped by 3 processes ({size_of[shared]} bytes) is locked though bigger than "
       f"the smallest ones that fill the budget")
    for k in range(2):
        ok(dm.rescan(), f"steady rescan {k + 1} answered")
        check(f"steady rescan {k + 1}")

    for n in smallest:
        stop_all(n)
    ok(dm.rescan(), "rescan after stopping the 4 smallest files' helpers")
    check("4 smallest unmapped")
    ok(not any(smaps_locked(dm.pid, paths[n])[1] for n in smallest),
       "keep = 0: the unmapped files are unlocked at once")

    for n in smallest:
        start(n)
    ok(dm.rescan(), "rescan after restarting them")
    check("4 smallest mapped again")

    for m in mappers[shared][1:]:
        m.stop()
    mappers[shared] = mappers[shared][:1]
    ok(dm.rescan(), "rescan after the shared file lost 2 of its 3 processes")
    check("shared file mapped once")
    eq(smaps_locked(dm.pid, paths[shared])[1], 0,
       "the formerly shared file is too big to win on size alone")

    # Only a critical process (comm "mapper") maps the biggest file: one process, the biggest
    # size, so only its tier puts it first.
    critical.add(biggest)
    stop_all(biggest)
    start(biggest, binary=MAPPER)
    ok(dm.rescan(), "rescan with a critical process mapping the biggest file")
    check("critical biggest")
    rss, size = smaps_locked(dm.pid, paths[biggest])
    eq((rss, size), (size_of[biggest], size_of[biggest]),
       f"the critical process's file ({size_of[biggest]} bytes, the biggest) is locked first")

    # Churn: helpers start and stop while passes run.
    rng = random.Random(3)
    for k in range(6):
        for n in rng.sample(sorted(paths), 5):
            if n == biggest:
                continue
            stop_all(n)
            if k % 2 == 0:
                start(n)
        ok(dm.rescan(), f"churn rescan {k + 1} answered")
        check(f"churn rescan {k + 1}")

    critical.discard(biggest)
    stop_all(biggest)
    start(biggest)
    ok(dm.rescan(), "rescan after the critical process exited")
    check("no critical process")

    sampler["stop"] = True
    thread.join(5)
    slack = 128 * KiB  # the daemon's own heap may grow a little inside a pass
    ok(sampler["samples"] > 100, f"VmLck sampled {sampler['samples']} times during the passes")
    ok(sampler["max"] <= BUDGET + own["max"] + slack,
       f"never over budget, not even for a moment: VmLck peaked at {sampler['max']}, budget "
       f"{BUDGET} + the daemon's own {own['max']} (+{slack} slack)")
    eq(dm.stop(), 0, "SIGTERM exits 0")
    ok("accounting mismatch" not in dm.log() and "budget exceeded" not in dm.log(),
       "the debug build's own accounting checks held", dm.log())
finally:
    if dm:
        dm.stop()
    for ms in mappers.values():
        for m in ms:
            m.stop()
    shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(bindir, ignore_errors=True)
done()
