#!/usr/bin/env python3
"""SIGHUP and SIGTERM (SPEC "Signals and lifecycle"), seen by a fake service manager and in the
daemon's smaps:

- a good new config that excludes one of two locked files: the excluded one is unlocked; the other
  stays locked the whole time (a sampler reading smaps throughout never sees it missing or
  shrunk, and its VMAs keep their addresses: it was not relocked);
- a broken config (unknown key): the daemon runs on, says why (FILE:LINE on stderr), and the old
  rules both stay in force (the broken file would unlock one file and lock the other);
- each reload sends RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC, microseconds), then READY=1;
- SIGTERM sends STOPPING=1 and exits 0."""
import os
import re
import signal
import threading
import time

from lib import (Daemon, Mapper, MiB, cleanup, done, eq, locked_mappings, make_file, ok, workdir)

d = workdir()
mappers = []
dm = None


def vmas(pid, path):
    return sorted((m["start"], m["end"], m["offset"], m["rss"]) for m in locked_mappings(pid)
                  if m["path"] == path)


def check_reload(dm, i, j, t0, t1, label):
    ok(i is not None, f"{label}: RELOADING=1 sent")
    ok(j is not None and i is not None and j > i, f"{label}: READY=1 after RELOADING=1")
    if i is None:
        return
    msgs = dm.notify.messages
    mono = [m for m in msgs[i:(j if j else len(msgs))] if m.startswith("MONOTONIC_USEC=")]
    ok(len(mono) == 1, f"{label}: MONOTONIC_USEC= sent with RELOADING=1", "\n".join(msgs[i:]))
    if mono:
        v = int(mono[0].split("=", 1)[1])
        ok(t0 <= v <= t1, f"{label}: MONOTONIC_USEC={v} is CLOCK_MONOTONIC at the reload "
                          f"({t0}..{t1})")


def reload(dm, label):
    t0 = time.monotonic_ns() // 1000
    i, j = dm.reload()
    t1 = time.monotonic_ns() // 1000
    check_reload(dm, i, j, t0, t1, label)


try:
    a = make_file(os.path.join(d, "a.so"), 4 * MiB, seed=1)
    b = make_file(os.path.join(d, "b.so"), 6 * MiB, seed=2)
    mappers += [Mapper(a), Mapper(b)]
    base = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = resident\nkeep = 3\n"
    dm = Daemon(d, base)
    ok(dm.wait_ready(), "READY=1", dm.log())
    eq(len(vmas(dm.pid, a)) > 0 and sum(x[3] for x in vmas(dm.pid, a)), 4 * MiB, "a.so locked")
    b_before = vmas(dm.pid, b)
    eq(sum(x[3] for x in b_before), 6 * MiB, "b.so locked")

    # Sample b.so's locked mappings continuously through both reloads.
    sampler = {"stop": False, "bad": [], "n": 0}

    def sample():
        while not sampler["stop"]:
            try:
                v = vmas(dm.pid, b)
            except OSError:
                return
            sampler["n"] += 1
            if v != b_before:
                sampler["bad"].append(v)

    th = threading.Thread(target=sample, daemon=True)
    th.start()

    # 1. A good config that excludes a.so.
    dm.write_config(base + f"exclude = ^{d}/a\\.so$\n")
    reload(dm, "good reload")
    ok(dm.alive(), "alive after the good reload")
    eq(vmas(dm.pid, a), [], "the newly excluded a.so is unlocked (although keep = 3)")
    eq(vmas(dm.pid, b), b_before, "b.so: same VMAs, same Rss right after the reload (not relocked)")
    ok(re.search(r"SIGHUP", dm.log()), "the log mentions the reload", dm.log())

    # 2. A broken config: unknown key. Were it applied, b.so would go (include) and a.so would
    # come back (no exclude).
    dm.write_config(f"interval = 0\n[lock]\ninclude = ^{d}/nothing/\nwhat = resident\n"
                    f"keep = 3\nbogus_key = 1\n")
    with open(dm.conf) as f:
        bad_line = next(n for n, line in enumerate(f, 1) if line.startswith("bogus_key"))
    reload(dm, "broken reload")
    ok(dm.alive(), "alive after the broken reload", dm.log())
    log = dm.log()
    ok(f"{dm.conf}:{bad_line}: " in log and "bogus_key" in log,
       f"the log says why: {dm.conf}:{bad_line}: ... bogus_key", log)
    ok(dm.rescan(), "a rescan after the broken reload")
    eq(vmas(dm.pid, a), [], "old exclude rule still in force: a.so stays unlocked")
    eq(vmas(dm.pid, b), b_before, "old include rule still in force: b.so stays locked, same VMAs")

    sampler["stop"] = True
    th.join(5)
    ok(sampler["n"] >= 2, f"b.so's mappings sampled {sampler['n']} times during the reloads")
    eq(sampler["bad"][:3], [], "b.so was never unlocked, shrunk or moved, not even for a moment")

    # 3. A good config again, without the exclude: a.so is locked again.
    dm.write_config(base)
    reload(dm, "third reload")
    eq(sum(x[3] for x in vmas(dm.pid, a)), 4 * MiB, "a.so locked again after the third reload")
    eq(vmas(dm.pid, b), b_before, "b.so untouched by the third reload")

    eq(dm.notify.messages.count("RELOADING=1"), 3, "one RELOADING=1 per SIGHUP")
    eq(dm.notify.messages.count("READY=1"), 4, "READY=1 at start and after each reload")

    # SIGTERM.
    n = dm.notify.count()
    dm.proc.send_signal(signal.SIGTERM)
    ok(dm.notify.wait_for(lambda m: m == "STOPPING=1", 30, n) is not None, "SIGTERM: STOPPING=1")
    eq(dm.stop(), 0, "SIGTERM exits 0")
finally:
    cleanup(d, dm, mappers)
done()
