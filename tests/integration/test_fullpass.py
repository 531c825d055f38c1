#!/usr/bin/env python3
"""Full passes come by wall time (issue 11 item 3): a full pass (every process read again, every
locked file looked at) costs about as much as reading every maps file as text, so SIGUSR1 and
pressure passes must not bring more of them. The test build's PRELOCKD_DEBUG_FULL_PASS_USEC
shortens the period (5 minutes in the release build) to 3 s. Each pass says at debug whether it
was full, and the pass line how many processes it read.

- The first pass is full: it reads every process.
- Ten SIGUSR1 within the period are quick passes: none full, each reading only processes that
  changed (far fewer than all).
- The first SIGUSR1 after the period is full again; a reload forces one at once."""
import os
import re
import subprocess
import time

from lib import Daemon, cleanup, done, ok, workdir

PERIOD_S = 3


def user_processes():
    """{pid: start time} of the processes that are not kernel threads (which no pass reads:
    PF_KTHREAD in stat)."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            flags, start = int(fields[6]), int(fields[19])
        except (OSError, ValueError, IndexError):
            continue
        if not flags & 0x00200000:
            out[int(pid)] = start
    return out


def steady(before, after):
    """How many processes lived through the whole time between two looks (the same PID and
    start time in both): a full pass in between must have read each of them. Processes that
    came or went meanwhile (a busy CI machine's) may or may not have been read."""
    return sum(1 for pid, start in before.items() if after.get(pid) == start)


def passes(log):
    """(number, kind, processes, read) of each pass, in order."""
    out = {}
    for m in re.finditer(r"pass (\d+)(?: \([a-z]+\))?: .*?; (\d+) processes \((\d+) read\)", log):
        out[int(m.group(1))] = [None, int(m.group(2)), int(m.group(3))]
    for m in re.finditer(r"details of pass (\d+) \((full|quick)\)", log):
        if int(m.group(1)) in out:
            out[int(m.group(1))][0] = m.group(2)
    return [(n, *out[n]) for n in sorted(out)]


d = workdir()
dm = None
# Processes of our own that live through the whole test: a bare machine has few besides.
sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(20)]
try:
    before = user_processes()
    dm = Daemon(d, f"interval = 0\nlog_level = debug\n[lock]\ninclude = ^{d}/\n",
                env={"PRELOCKD_DEBUG_FULL_PASS_USEC": str(PERIOD_S * 1000000)})
    ok(dm.wait_ready(), "READY=1", dm.log())
    t0 = time.monotonic()
    for _ in range(10):
        ok(dm.rescan(), "a rescan is answered")
    inside = time.monotonic() - t0
    p = passes(dm.log())
    ok(len(p) == 11, f"11 passes logged ({len(p)})", dm.log())
    users = steady(before, user_processes())
    ok(users >= len(sleepers), f"{users} processes lived through the first pass")
    ok(p and p[0][1] == "full" and p[0][3] >= users,
       f"the first pass is full and reads every process ({users} lived through it): {p[:1]}")
    if inside < PERIOD_S:
        quick = p[1:11]
        ok(all(k == "quick" for _, k, _, _ in quick), f"ten SIGUSR1 within {inside:.1f} s "
           f"(< {PERIOD_S} s) bring no full pass: {[k for _, k, _, _ in quick]}")
        ok(all(r < n / 2 for _, _, n, r in quick),
           "each reads only what changed, far fewer than all processes: "
           f"{[(r, n) for _, _, n, r in quick]}")
    else:
        ok(True, f"# SKIP the rescans took {inside:.1f} s, longer than the period")
    time.sleep(PERIOD_S + 0.5)
    before = user_processes()
    before.pop(dm.pid, None)  # a pass never reads the daemon itself
    ok(dm.rescan(), "a rescan after the period")
    last = passes(dm.log())[-1]
    users = steady(before, user_processes())
    ok(last[1] == "full" and last[3] >= users, f"the first pass after {PERIOD_S} s is full "
       f"and reads every process ({users} lived through it): {last}")
    ok(dm.rescan(), "one more")
    ok(passes(dm.log())[-1][1] == "quick", "the next one is quick again")
    dm.reload()
    ok(passes(dm.log())[-1][1] == "full", "a reload forces a full pass")
    ok(dm.stop() == 0, "SIGTERM exits 0")
    dm = None
finally:
    cleanup(d, dm)
    for sp in sleepers:
        sp.kill()
        sp.wait()
done()
