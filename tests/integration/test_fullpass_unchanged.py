#!/usr/bin/env python3
"""A full pass reads every process's maps text but parses only what changed since its last read
(scan.c: a keyed hash of the text). Checked by inode in the daemon's smaps, in `mapped` and in
`resident` mode, with keep = 0 (a file no process maps is unlocked at once):

- swapmap maps a.so and touches it, then (on a byte on its stdin) unmaps it and maps b.so, of
  the very same size, at the very same address, touching nothing: its stat (vsize, faults) does
  not change, only its maps text does.
- mapper maps c.so and never changes.

After the swap, a quick pass (SIGUSR1) does not see it: the stat is as it was, a.so stays locked
(in `mapped` mode b.so is not locked). A full pass (SIGHUP) must see it although the stat is the
same: a.so is unlocked, and in `mapped` mode b.so is locked. c.so stays locked through it, and the
debug line of the pass counts processes whose text was as last read (not parsed again): at least
c.so's mapper, and swapmap too on a full pass after that one."""
import os
import re

from lib import BUILD, Daemon, Mapper, MiB, cleanup, done, eq, locked_by_inode, make_file, ok, workdir

import subprocess

SWAPMAP = os.path.join(BUILD, "helpers", "swapmap")
SIZE = 2 * MiB


def stat_signal(pid):
    """What the daemon's change signal reads in /proc/PID/stat: start time, vsize, faults."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[19]), int(fields[20]), int(fields[7]) + int(fields[9])


def unchanged(log, n):
    """Processes the debug line of pass n counts as read with their maps as last read."""
    m = re.search(rf"details of pass {n} \((full|quick)\): .*?(\d+) with maps as last read", log)
    return (m.group(1), int(m.group(2))) if m else (None, -1)


d = workdir()
dm = None
mappers = []
try:
    a = make_file(os.path.join(d, "a.so"), SIZE, seed=1)
    b = make_file(os.path.join(d, "b.so"), SIZE, seed=2)
    c = make_file(os.path.join(d, "c.so"), SIZE, seed=3)
    st = {p: os.stat(p) for p in (a, b, c)}
    for what in ("mapped", "resident"):
        sw = subprocess.Popen([SWAPMAP, a, b], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
        mappers.append(sw)
        ok(sw.stdout.readline() == "ready\n", f"{what}: swapmap maps a.so")
        mc = Mapper(c)
        mappers.append(mc)
        dm = Daemon(d, "interval = 0\nlog_level = debug\n"
                    f"[lock]\ninclude = ^{d}/\nwhat = {what}\nkeep = 0\n",
                    env={"PRELOCKD_DEBUG_FULL_PASS_USEC": str(3600 * 1000000)})
        ok(dm.wait_ready(), f"{what}: READY=1", dm.log())
        eq(locked_by_inode(dm.pid, st[a]), (SIZE, SIZE), f"{what}: a.so locked at start")
        eq(locked_by_inode(dm.pid, st[c]), (SIZE, SIZE), f"{what}: c.so locked at start")
        eq(locked_by_inode(dm.pid, st[b]), (0, 0), f"{what}: b.so is not: nothing maps it")

        # A full pass with nothing changed: nothing is parsed again (but processes that came
        # or went meanwhile on a busy machine), and what was locked stays so.
        dm.reload()
        n = dm.status_pass()
        kind, same = unchanged(dm.log(), n)
        ok(kind == "full" and same >= 2, f"{what}: full pass {n} took swapmap and mapper as "
           f"last read ({kind}, {same} processes)", dm.log())
        eq(locked_by_inode(dm.pid, st[a]), (SIZE, SIZE), f"{what}: a.so still locked")
        eq(locked_by_inode(dm.pid, st[c]), (SIZE, SIZE), f"{what}: c.so still locked")

        before = stat_signal(sw.pid)
        sw.stdin.write("s")
        sw.stdin.flush()
        ok(sw.stdout.readline() == "swapped\n", f"{what}: swapmap maps b.so in place of a.so")
        after = stat_signal(sw.pid)
        with open(f"/proc/{sw.pid}/maps") as f:
            text = f.read()
        ok(b in text and a not in text, f"{what}: its maps say b.so, not a.so")
        eq(after, before, f"{what}: its start time, vsize and faults did not change")

        ok(dm.rescan(), f"{what}: a quick pass")
        kind, _ = unchanged(dm.log(), dm.status_pass())
        ok(kind == "quick", f"{what}: it is quick ({kind})")
        eq(locked_by_inode(dm.pid, st[a]), (SIZE, SIZE),
           f"{what}: a quick pass does not see the swap: a.so stays locked")
        eq(locked_by_inode(dm.pid, st[b]), (0, 0), f"{what}: nor is b.so locked")

        dm.reload()
        n = dm.status_pass()
        kind, same = unchanged(dm.log(), n)
        ok(kind == "full" and same >= 1, f"{what}: full pass {n} ({kind}); {same} processes as "
           "last read")
        eq(locked_by_inode(dm.pid, st[a]), (0, 0),
           f"{what}: the full pass saw the swap: a.so, mapped no more, is unlocked")
        # `resident` locks pages a process has in its page tables: swapmap never touched b.so.
        want_b = (SIZE, SIZE) if what == "mapped" else (0, 0)
        eq(locked_by_inode(dm.pid, st[b]), want_b, f"{what}: b.so locked as {what} says")
        eq(locked_by_inode(dm.pid, st[c]), (SIZE, SIZE), f"{what}: c.so still locked")

        # And a full pass after that takes both as last read again.
        dm.reload()
        n = dm.status_pass()
        kind, same = unchanged(dm.log(), n)
        ok(kind == "full" and same >= 2, f"{what}: full pass {n} ({kind}); {same} processes as "
           "last read", dm.log())
        eq(locked_by_inode(dm.pid, st[b]), want_b, f"{what}: b.so as it was")
        eq(locked_by_inode(dm.pid, st[c]), (SIZE, SIZE), f"{what}: c.so still locked")
        ok(dm.stop() == 0, f"{what}: SIGTERM exits 0")
        dm = None
        sw.stdin.close()
        sw.wait()
        mc.stop()
        mappers = []
finally:
    for m in mappers:
        if isinstance(m, Mapper):
            m.stop()
        else:
            m.kill()
            m.wait()
    cleanup(d, dm)
done()
