"""Shared by the hostile-input, resource-limit and privilege tests: C helpers that print "ready",
the daemon's resource use as the kernel reports it, and allowances for sanitizer builds."""
import os
import re
import signal
import subprocess
import time

from lib import BUILD, MiB

# make check-asan / check-valgrind set this: the daemon then uses several times the memory and
# time of a plain build, and limits are scaled accordingly.
SANITIZER = os.environ.get("PRELOCKD_SANITIZER", "")
SLOW = {"": 1, "asan": 3, "valgrind": 30}.get(SANITIZER, 3)
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
    st["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
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
