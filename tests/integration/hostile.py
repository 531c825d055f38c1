"""Shared by the hostile-input, resource-limit and privilege tests: C helpers that print "ready",
the daemon's resource use as the kernel reports it, and allowances for sanitizer builds."""
import os
import re
import signal
import subprocess
import time

from lib import BUILD, SANITIZER, SLOW, MiB, fd_targets, stat_fd_pids  # noqa: F401 (SANITIZER, SLOW: for the tests)

# RssAnon of the daemon that counts as "bounded" when run on thousands of processes: measured
# 1-3 MiB for the plain debug build; ASan adds its shadow and quarantine (~256 MiB quarantine at
# most by default), valgrind its own heap.
RSS_ALLOWANCE = {"": 32 * MiB, "asan": 512 * MiB, "valgrind": 512 * MiB}.get(SANITIZER, 512 * MiB)


def helper(name):
    return os.path.join(BUILD, "helpers", name)


class Helper:
    """A C helper from tests/helpers that prints "ready ..." once set up, then waits to be
    killed. `words` is what followed "ready"."""

    def __init__(self, args, prefix=(), timeout=None, **kw):
        # A session of its own: stop() kills the helper and every child it made, at once.
        self.proc = subprocess.Popen(list(prefix) + list(args), stdout=subprocess.PIPE, text=True,
                                     start_new_session=True, **kw)
        self.pid = self.proc.pid
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"{args[0]} did not start: {line!r}")
        self.words = line.split()[1:]

    def stop(self, timeout=30):
        """Kills the helper and its children and waits until all of them are gone."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def proc_status(pid):
    """Selected fields of /proc/PID/status, in bytes (kB fields) or as numbers."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if k in ("VmLck", "VmRSS", "RssAnon", "RssFile", "VmHWM") and v:
                out[k] = int(v[0]) * 1024
            elif k in ("Threads",) and v:
                out[k] = int(v[0])
    return out


def usage(pid):
    """What the daemon holds now: descriptors, RssAnon, VmLck, VMAs."""
    st = proc_status(pid)
    targets = fd_targets(pid)
    st["fds"] = len(targets)
    # Of them, /proc/PID/stat kept open from pass to pass (one per process, at most 1024):
    # bounded apart, and counted apart from the rest.
    st["stat_fds"] = len(stat_fd_pids(pid, targets))
    st["other_fds"] = st["fds"] - st["stat_fds"]
    with open(f"/proc/{pid}/maps") as f:
        st["vmas"] = sum(1 for _ in f)
    return st


def count_processes():
    return sum(1 for x in os.listdir("/proc") if x.isdigit())


def read_int(path, default=None):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def warnings(log, pattern):
    """Lines of the daemon's log that match pattern (a regex)."""
    return [x for x in log.splitlines() if re.search(pattern, x)]


def heap_in_use(pid):
    """Under make check-valgrind: the bytes the daemon has allocated and not yet freed, from a
    memcheck leak search asked for through vgdb (every loss record, reachable or not, summed).
    Valgrind's own memory (its queue of freed blocks, shadow memory, translations) is in RssAnon
    and keeps growing for minutes; this is the daemon's heap alone. Returns (bytes, None), or
    (None, why) when vgdb gave no answer."""
    cmd = ["vgdb", f"--pid={pid}", "leak_check", "full", "kinds", "all", "any", "unlimited"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    total = records = 0
    # "==P== 1,024 bytes in 2 blocks are still reachable in loss record 3 of 9", or for a
    # definite leak "==P== 96 (32 direct, 64 indirect) bytes in 1 blocks are definitely lost ...",
    # whose indirect blocks have records of their own.
    for m in re.finditer(r"^==\d+== ([\d,]+)(?: \(([\d,]+) direct, [\d,]+ indirect\))? bytes in "
                         r"[\d,]+ blocks are ", r.stdout, re.M):
        total += int((m.group(2) or m.group(1)).replace(",", ""))
        records += 1
    if r.returncode != 0 or records == 0:
        return None, f"vgdb exit status {r.returncode}\n{r.stdout[-1000:]}{r.stderr[-1000:]}"
    return total, None
