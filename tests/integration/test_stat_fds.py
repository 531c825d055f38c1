#!/usr/bin/env python3
"""The daemon keeps each process's /proc/PID/stat open from pass to pass (issue 11: opening and
closing it was two thirds of a quiet pass), within a cap, and never mistakes a reused pid for the
process it had open. Checked in the daemon's own descriptor table and smaps.

- After the first pass every process that lived through it has its stat open in the daemon.
- Processes that exit give their descriptors back at the next pass: none is left behind.
- A pid given to a new process (forced with /proc/sys/kernel/ns_last_pid) is read as the new
  process: the file it maps gets locked.
- With a small RLIMIT_NOFILE the daemon keeps at most an eighth of it (200: 17), kernel threads
  at most half of that, and processes past the cap are still read.
- RLIMIT_NOFILE lowered under the running daemon (prlimit --pid) with more processes than the
  new limit: the next pass gives back what is past the new cap, and goes on reading and locking
  (found by an audit: the kept descriptors took every number, the listing of /proc failed with
  EMFILE at every pass, and nothing was ever read again)."""
import os
import signal
import subprocess
import time

from lib import (SANITIZER, MiB, Daemon, Mapper, cleanup, done, eq, locked_by_inode, make_file, ok,
                 stale_stat_fds, stat_fd_pids, workdir)


def wait_locked(pid, st, want, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if locked_by_inode(pid, st)[0] >= want:
            return True
        time.sleep(0.05)
    return False


def start_at(pid, path):
    """A mapper of path given pid `pid`, or None when another fork took it first."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid - 1))
    m = Mapper(path)
    if m.pid == pid:
        return m
    m.stop()
    return None


def is_kthread(pid):
    """PF_KTHREAD in the flags of /proc/PID/stat (field 9)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[6]) & 0x00200000 != 0
    except (OSError, IndexError, ValueError):
        return False


d = workdir()
d2 = d3 = None
dm = dm2 = dm3 = None
mappers, sleepers = [], []
try:
    files = {n: make_file(os.path.join(d, f"lib{n}.so"), MiB, seed=i + 1)
             for i, n in enumerate(["first", "reused", "capped", "lowered"])}
    st = {n: os.stat(p) for n, p in files.items()}
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(20)]
    conf = f"interval = 60s\nnew_process_check = 200ms\nlog_level = debug\n[lock]\ninclude = ^{d}/\n"
    dm = Daemon(d, conf)
    ok(dm.wait_ready(), "READY=1", dm.log())
    held = stat_fd_pids(dm.pid)
    mine = {p.pid for p in sleepers}
    ok(mine <= held, f"every process that lived through the first pass has its stat kept open "
       f"({len(mine & held)} of {len(mine)} sleepers; {len(held)} in all)")
    ok(dm.pid not in held, "not its own")

    for p in sleepers:
        p.kill()
        p.wait()
    eq(stale_stat_fds(dm), [], "after the next pass no descriptor of a process that is gone")
    eq(sorted(mine & stat_fd_pids(dm.pid)), [], "the sleepers' descriptors among them")

    # A pid reused: the daemon had the old process's stat open.
    a = Mapper(files["first"])
    mappers.append(a)
    ok(wait_locked(dm.pid, st["first"], MiB), "the first process's file is locked by a check")
    t0 = time.monotonic()
    while a.pid not in stat_fd_pids(dm.pid) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    ok(a.pid in stat_fd_pids(dm.pid), f"the daemon keeps pid {a.pid}'s stat open")
    old = a.pid
    b = None
    for _ in range(5):
        a.stop()
        b = start_at(old, files["reused"])
        if b:
            break
        a = Mapper(files["first"])  # try again with a pid of its own
        old = a.pid
        time.sleep(1)
    ok(b is not None, f"a new process got pid {old} (ns_last_pid)")
    if b:
        mappers.append(b)
        ok(wait_locked(dm.pid, st["reused"], MiB), "the new process under the old pid is read: "
           "its file is locked", dm.log()[-3000:])
        ok(b.pid in stat_fd_pids(dm.pid), "and its stat is kept open in turn")
    ok(dm.stop() == 0, "SIGTERM exits 0")
    dm = None

    # The cap: RLIMIT_NOFILE 200 leaves 136 past the reserve; an eighth of it is 17.
    d2 = workdir()
    dm2 = Daemon(d2, conf, prefix=["prlimit", "--nofile=200:200"])
    ok(dm2.wait_ready(), "READY=1 with RLIMIT_NOFILE 200", dm2.log())
    n = len(stat_fd_pids(dm2.pid))
    nprocs = len([x for x in os.listdir("/proc") if x.isdigit()])
    ok(0 < n <= 17, f"at most 17 stat descriptors kept ({n}; {nprocs} processes)")
    c = Mapper(files["capped"])
    mappers.append(c)
    ok(wait_locked(dm2.pid, st["capped"], MiB), "a process past the cap is still read: its file "
       "is locked", dm2.log()[-3000:])
    ok(dm2.rescan(), "a pass past the cap")
    ok(len(stat_fd_pids(dm2.pid)) <= 17, "still at most 17")
    kthreads = [p for p in stat_fd_pids(dm2.pid) if is_kthread(p)]
    ok(len(kthreads) <= 8, f"kernel threads keep at most half of them ({len(kthreads)})")
    ok(dm2.stop() == 0, "SIGTERM exits 0")
    dm2 = None

    # The limit lowered while it runs, with more processes than the new limit. Valgrind answers
    # getrlimit() with the limit it saw at start: one lowered from outside never reaches the
    # daemon there.
    if SANITIZER == "valgrind":
        ok(True, "RLIMIT_NOFILE lowered under the running daemon # SKIP under valgrind: its "
                 "getrlimit() keeps the limit of the start")
        done()  # the plan, then the cleanup below
    d3 = workdir()
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(260)]
    dm3 = Daemon(d3, conf.replace("new_process_check = 200ms", "new_process_check = 0"))
    ok(dm3.wait_ready(), "READY=1 with 260 more processes", dm3.log())
    n0 = len(stat_fd_pids(dm3.pid))
    ok(n0 > 200, f"{n0} stat descriptors kept under the raised limit")
    r = subprocess.run(["prlimit", f"--pid={dm3.pid}", "--nofile=200:200"])
    eq(r.returncode, 0, "RLIMIT_NOFILE of the running daemon lowered to 200")
    ok(dm3.rescan() and dm3.alive(), "a pass under the new limit", dm3.log()[-3000:])
    n1 = len(stat_fd_pids(dm3.pid))
    ok(n1 <= 17, f"it gave back what is past the new cap: {n1} kept (<= 17)")
    c3 = Mapper(files["lowered"])
    mappers.append(c3)
    ok(dm3.rescan(), "a pass after a new process mapped a file")
    ok(wait_locked(dm3.pid, st["lowered"], MiB), "and its file is locked", dm3.log()[-3000:])
    ok("Too many open files" not in dm3.log(), "no pass ran out of descriptors",
       dm3.log()[-3000:])
    ok(dm3.stop() == 0, "SIGTERM exits 0")
    dm3 = None
finally:
    for p in sleepers:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
    if d2:
        cleanup(d2, dm2)
    if d3:
        cleanup(d3, dm3)
    cleanup(d, dm, mappers)
done()
