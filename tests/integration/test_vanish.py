#!/usr/bin/env python3
"""Processes that vanish mid-scan (SPEC: "ESRCH/ENOENT are normal and never fatal"): a shell
keeps starting short-lived processes (sleep, and helpers that map one of the test files for a
few ms under `timeout`), at least 200 of them, while 30 SIGUSR1 rescans run. The daemon answers
every rescan, stays alive, exits 0 at SIGTERM; its descriptors stay bounded (< 100 + the files it
holds locked, besides one /proc/PID/stat per live process) and come back to where they started
when the churn is over (no leak; no stat of a process that is gone stays open), and it
treats the vanishing processes as normal (no "unreadable process data" warning)."""
import os
import shutil
import subprocess
import time

from lib import (MAPPER, MiB, Daemon, done, eq, fd_targets, locked_mappings, make_file, ok,
                 smaps_locked, stale_stat_fds, stat_fd_pids, workdir)


def other_fds(pid):
    """Descriptors but the /proc/PID/stat kept open, which follow the processes alive."""
    targets = fd_targets(pid)
    return len(targets) - len(stat_fd_pids(pid, targets))


CHURN = r"""
n=0
while [ ! -e "$STOP" ] || [ $n -lt 200 ]; do
    case $((n % 3)) in
    0|1) f=$(( (n / 3) % 5 ))
         timeout 0.0$((n % 7 + 2)) "$MAPPER" "$DIR/lib$f.so" >/dev/null 2>&1 & ;;
    2) sleep 0.0$((n % 5 + 1)) & ;;
    esac
    n=$((n + 1))
    sleep 0.002
done
wait
echo $n >"$DIR/count"
"""

d = workdir()
churn = dm = None
try:
    for i in range(5):
        make_file(os.path.join(d, f"lib{i}.so"), (i + 1) * 256 * 1024, seed=i)
    dm = Daemon(d, f"interval = 0\nlog_level = info\n[lock]\ninclude = ^{d}/\nwhat = resident\n"
                   f"keep = 0\n")
    ok(dm.wait_ready(), "READY=1", dm.log())
    time.sleep(0.3)  # sd_notify()'s socket lives a moment after READY=1 arrives
    fds_before = other_fds(dm.pid)
    stop = os.path.join(d, "stop")
    churn = subprocess.Popen(["bash", "-c", CHURN],
                             env=dict(os.environ, STOP=stop, MAPPER=MAPPER, DIR=d))
    time.sleep(0.1)
    answered = 0
    max_fds = 0
    fd_excess = []
    locked_seen = 0
    t0 = time.monotonic()
    for k in range(30):
        if dm.rescan(10):
            answered += 1
        if not dm.alive():
            break
        fds = other_fds(dm.pid)
        nlocked = len({x["inode"] for x in locked_mappings(dm.pid) if x["path"].startswith(d)})
        locked_seen = max(locked_seen, nlocked)
        max_fds = max(max_fds, fds)
        if fds >= 100 + nlocked:
            fd_excess.append((k, fds, nlocked))
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    open(stop, "w").close()
    churn.wait(30)
    with open(os.path.join(d, "count")) as f:
        spawned = int(f.read())
    ok(spawned >= 200, f"{spawned} short-lived processes started during the rescans")
    eq(answered, 30, f"every rescan was answered ({elapsed:.1f}s for 30)")
    ok(dm.alive(), "the daemon is alive", dm.log())
    ok(locked_seen > 0, f"the churning helpers' files were locked at times (up to {locked_seen})")
    eq(fd_excess, [], f"descriptors stayed below 100 + locked files (peak {max_fds})")

    ok(dm.rescan(10), "a rescan after the churn")
    eq(smaps_locked(dm.pid, d + "/"), (0, 0), "keep = 0: nothing of the gone helpers stays locked")
    time.sleep(0.3)
    eq(other_fds(dm.pid), fds_before, "descriptors are back to where they started (no leak)")
    eq(stale_stat_fds(dm), [], "no /proc/PID/stat of a process that is gone stays open")
    log = dm.log()
    ok("unreadable process data" not in log, "vanishing processes are not reported as bad data",
       log)
    ok("scan incomplete" not in log, "no pass was reported incomplete", log)
    eq(dm.stop(), 0, "SIGTERM exits 0")
    ok("accounting mismatch" not in dm.log(), "the debug build's accounting checks held")
finally:
    if churn and churn.poll() is None:
        open(os.path.join(d, "stop"), "w").close()
        try:
            churn.wait(30)
        except subprocess.TimeoutExpired:
            churn.kill()
    if dm:
        dm.stop()
    shutil.rmtree(d, ignore_errors=True)
done()
