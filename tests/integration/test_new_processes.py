#!/usr/bin/env python3
"""Programs started since the last pass (issue 11): the daemon looks for new processes every
new_process_check (default 1 s) between passes, reads each once it has run half a second, and
locks its files at once: no pass, no SIGUSR1, no pressure needed. Checked in the daemon's own
smaps (what the kernel holds locked), with the interval far away (60 s).

- A program started after READY has its used pages locked within a few checks, and no pass ran.
- A process that lives less than half a second is never read (a busy machine's compilers).
- A young process (under 10 s) that maps another file as it starts up gets that file locked
  too; one older than that waits for the next pass (SIGUSR1 here).
- 150 processes started at once are read 64 at most per check, all within a few checks.
- Without /proc/loadavg (which tells whether anything forked since the last check) every check
  lists /proc instead, and still finds new programs.
- The status file counts what the checks read; interval = 0 or new_process_check = 0: none."""
import os
import re
import subprocess
import sys
import time

from lib import (MiB, PAGE, PRELOCKD, Daemon, Mapper, cleanup, done, eq, locked_by_inode, make_file, ok,
                 workdir)

CHILD = r"""
import mmap, os, sys, time
def use(path):
    fd = os.open(path, os.O_RDONLY)
    m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    os.close(fd)
    for i in range(0, len(m), 4096):
        m[i]
    return m
a = use(sys.argv[1])
print("a", flush=True)
time.sleep(float(sys.argv[3]))
b = use(sys.argv[2])
print("b", flush=True)
time.sleep(600)
"""


def wait_locked(pid, st, want, timeout):
    """Seconds until the daemon holds at least `want` bytes of st's inode locked, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if locked_by_inode(pid, st)[0] >= want:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def passes(log):
    """The numbers of the passes the log speaks of, in order."""
    return sorted({int(x) for x in re.findall(r"\bpass (\d+)\b", log)})


def child(a, b, delay):
    p = subprocess.Popen([sys.executable, "-c", CHILD, a, b, str(delay)],
                         stdout=subprocess.PIPE, text=True)
    ok(p.stdout.readline().strip() == "a", "the child mapped its first file")
    return p


d = workdir()
dm = None
mappers, kids = [], []
try:
    files = {n: make_file(os.path.join(d, f"lib{n}.so"), 2 * MiB, seed=i + 1)
             for i, n in enumerate(["late", "brief", "young1", "young2", "old1", "old2", "off"])}
    st = {n: os.stat(p) for n, p in files.items()}
    base = f"log_level = debug\n[lock]\ninclude = ^{d}/\n"
    dm = Daemon(d, "interval = 60s\nnew_process_check = 200ms\n" + base)
    ok(dm.wait_ready(), "READY=1", dm.log())
    eq(locked_by_inode(dm.pid, st["late"])[0], 0, "nothing of the late program's file before it runs")

    # A program started after the last pass.
    mappers.append(Mapper(files["late"], 0, 100, 0, 50))
    took = wait_locked(dm.pid, st["late"], MiB, 10)
    ok(took is not None, f"a program started after READY: its used MiB locked by a check "
       f"{took and round(took, 2)} s after it was ready", dm.log()[-2000:])
    rss = locked_by_inode(dm.pid, st["late"])[0]
    ok(rss <= MiB + 64 * PAGE, f"only the used half is locked ({rss // 1024} KiB)")
    eq(passes(dm.log()), [1], "no pass besides the first ran meanwhile")
    ok(re.search(r"new processes: [1-9]\d* read", dm.log()), "the check says at debug what it read")
    # The status file is written after the locking that smaps showed: wait for it.
    t0 = time.monotonic()
    while dm.status_json()["new_processes"]["read"] < 1 and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    read0 = dm.status_json()["new_processes"]
    ok(read0["read"] >= 1 and read0["check_usec"] == 200000,
       f"the status file: {read0} (check_usec 200000, read >= 1)")

    r = subprocess.run([PRELOCKD, "-c", dm.conf, "--status"], capture_output=True, text=True,
                       timeout=30)
    ok("new processes: looked for every 200 ms" in r.stdout, "--status says how often", r.stdout)

    # A process that lives 0.1 s is never read.
    brief = Mapper(files["brief"])
    time.sleep(0.1)
    brief.stop()
    time.sleep(1.5)
    eq(locked_by_inode(dm.pid, st["brief"])[0], 0, "a process that lived 0.1 s: never read, "
       "nothing of its file locked")

    # A young process maps a second file 2 s after it started: locked too.
    kids.append(child(files["young1"], files["young2"], 2))
    ok(wait_locked(dm.pid, st["young1"], 2 * MiB, 10) is not None, "young: its first file locked")
    ok(kids[-1].stdout.readline().strip() == "b", "young: the child mapped its second file")
    ok(wait_locked(dm.pid, st["young2"], 2 * MiB, 10) is not None,
       "young: the file it mapped at 2 s is locked too")

    # One that maps a file at 11 s is no longer young: the next pass takes it.
    kids.append(child(files["old1"], files["old2"], 11))
    ok(wait_locked(dm.pid, st["old1"], 2 * MiB, 10) is not None, "old: its first file locked")
    ok(kids[-1].stdout.readline().strip() == "b", "old: the child mapped its second file at 11 s")
    time.sleep(1.5)
    eq(locked_by_inode(dm.pid, st["old2"])[0], 0, "old: checks leave a process of 11 s alone")
    ok(dm.rescan(), "SIGUSR1")
    ok(wait_locked(dm.pid, st["old2"], 2 * MiB, 10) is not None, "old: the pass locks its file")
    eq(passes(dm.log())[-1], 2, "that was pass 2: the checks were no passes")

    # 150 processes at once: read at most 64 per check, and all of them within a few checks.
    before = dm.status_json()["new_processes"]["read"]
    nlines = len(re.findall(r"new processes: \d+ read", dm.log()))
    crowd = [subprocess.Popen(["sleep", "600"]) for _ in range(150)]
    try:
        t0 = time.monotonic()
        while (dm.status_json()["new_processes"]["read"] - before < 150 and
               time.monotonic() - t0 < 20):
            time.sleep(0.2)
        got = dm.status_json()["new_processes"]["read"] - before
        ok(got >= 150, f"150 processes started at once: {got} read by the checks")
        per = [int(x) for x in re.findall(r"new processes: (\d+) read", dm.log())[nlines:]]
        ok(per and max(per) <= 64 and len(per) >= 3,
           f"at most 64 a check, the rest at the next ones: {per}")
    finally:
        for c in crowd:
            c.kill()
            c.wait()
    ok(dm.stop() == 0, "SIGTERM exits 0")
    dm = None
    for m in mappers:
        m.stop()
    mappers = []

    # Without /proc/loadavg (the last PID given out), as under ProcSubset=pid: every check
    # lists /proc, and still finds the new program.
    empty = os.path.join(d, "empty")
    open(empty, "w").close()
    os.unlink(os.path.join(d, "state"))
    hide = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"mount --bind {empty} /proc/loadavg && exec \"$@\"", "sh"]
    dm = Daemon(d, "interval = 60s\nnew_process_check = 200ms\n" + base, prefix=hide)
    ok(dm.wait_ready(), "no /proc/loadavg: READY=1", dm.log())
    with Mapper(files["off"]):
        ok(wait_locked(dm.pid, st["off"], 2 * MiB, 10) is not None,
           "no /proc/loadavg: a new program's file is locked all the same", dm.log()[-2000:])
    ok("cannot read the last PID from /proc/loadavg: every check for new processes lists /proc"
       in dm.log(), "no /proc/loadavg: the daemon says (at debug) that every check lists /proc")
    ok(dm.stop() == 0, "no /proc/loadavg: SIGTERM exits 0")
    dm = None

    # Off: interval = 0 (no periodic scans) or new_process_check = 0.
    for conf in ("interval = 0\n", "interval = 60s\nnew_process_check = 0\n"):
        name = conf.strip().replace("\n", ", ")
        os.unlink(os.path.join(d, "state"))
        dm = Daemon(d, conf + base)
        ok(dm.wait_ready(), f"{name}: READY=1", dm.log())
        with Mapper(files["off"]):
            time.sleep(2)
            eq(locked_by_inode(dm.pid, st["off"])[0], 0, f"{name}: a new program waits for a pass")
            s = dm.status_json()["new_processes"]
            ok(s["check_usec"] == 0 and s["read"] == 0, f"{name}: the status file says so: {s}")
            r = subprocess.run([PRELOCKD, "-c", dm.conf, "--status"], capture_output=True,
                               text=True, timeout=30)
            ok("new processes: not looked for" in r.stdout, f"{name}: and --status", r.stdout)
        ok(dm.stop() == 0, f"{name}: SIGTERM exits 0")
        dm = None
finally:
    for k in kids:
        k.kill()
        k.wait()
    cleanup(d, dm, mappers)
done()
