"""Helpers for prelockd's integration tests: TAP output, a fake service manager (NOTIFY_SOCKET
listener), the daemon under test, helper processes that map files, and what the kernel says the
daemon holds locked (smaps VmFlags "lo" + Rss, status VmLck)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
PRELOCKD = os.environ.get("PRELOCKD", os.path.join(ROOT, "prelockd"))
MAPPER = os.path.join(BUILD, "helpers", "mapper")
PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20
# make check-asan / check-valgrind set PRELOCKD_SANITIZER: the daemon then takes several times the
# time (and memory) of a plain build, and tests scale their time limits by SLOW.
SANITIZER = os.environ.get("PRELOCKD_SANITIZER", "")
SLOW = {"": 1, "asan": 3, "valgrind": 30}.get(SANITIZER, 3)

_count = 0
_failed = 0


def ok(cond, name, detail=""):
    global _count, _failed
    _count += 1
    if cond:
        print(f"ok {_count} - {name}", flush=True)
    else:
        _failed += 1
        print(f"not ok {_count} - {name}", flush=True)
        if detail:
            for line in str(detail).splitlines():
                print(f"#   {line}", flush=True)
    return cond


def eq(got, want, name):
    return ok(got == want, f"{name}: got {got!r}, want {want!r}", f"got:  {got!r}\nwant: {want!r}")


def done():
    print(f"1..{_count}", flush=True)
    sys.exit(1 if _failed else 0)


def workdir(prefix="prelockd-test-"):
    """A fresh directory under /var/tmp (a real disk filesystem, unlike a tmpfs /tmp)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
    return d


def cleanup(d, daemon=None, mappers=()):
    """The end of a test, whatever happened: the daemon stopped, the helpers that map files
    stopped, the work directory removed."""
    if daemon:
        daemon.stop()
    for m in mappers:
        m.stop()
    shutil.rmtree(d, ignore_errors=True)


def make_file(path, size, seed=1):
    """A file of `size` bytes with no holes (every block written)."""
    block = bytes((i * 131 + seed) & 0xFF for i in range(65536))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())
    return path


class Mapper:
    """A process that maps [map_first%, map_last%) of `path` read+exec and touches the pages in
    [touch_first%, touch_last%) of the file (default: all that it maps)."""

    def __init__(self, path, map_first=0, map_last=100, touch_first=None, touch_last=None,
                 cwd=None, prefix=(), binary=None, prot="rx"):
        # binary: a copy of the mapper under another name gives the process another comm.
        # prot: "rx" code, "r" read-only data, "rwp"/"rws" writable private/shared.
        args = [binary or MAPPER, path, str(map_first), str(map_last)]
        if touch_first is not None:
            args += [str(touch_first), str(touch_last)]
        self.proc = subprocess.Popen(list(prefix) + args, stdout=subprocess.PIPE, text=True,
                                     cwd=cwd, env=dict(os.environ, MAPPER_PROT=prot))
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"mapper did not start: {line!r}")
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def smaps_locked(pid, path_prefix=None):
    """Bytes of the process's mappings with VmFlags 'lo': (sum of Rss, sum of Size), for mappings
    whose path starts with path_prefix (all when None). smaps' Locked: is PSS-weighted, so it is
    not used."""
    rss = size = 0
    cur_path = None
    cur_size = cur_rss = 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                cur_path = m.group(3)
                cur_size = int(m.group(2), 16) - int(m.group(1), 16)
                cur_rss = 0
            elif line.startswith("Rss:"):
                cur_rss = int(line.split()[1]) * 1024
            elif line.startswith("VmFlags:"):
                if " lo" in line and (path_prefix is None or (cur_path or "").startswith(path_prefix)):
                    rss += cur_rss
                    size += cur_size
    return rss, size


def locked_mappings(pid):
    """The process's mappings with VmFlags 'lo', as dicts: start, end, size, offset (in the file),
    dev ((major, minor)), inode, path (as smaps shows it, maybe with " (deleted)") and rss."""
    out = []
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$",
                         line)
            if m:
                cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16),
                       "offset": int(m.group(3), 16),
                       "dev": (int(m.group(4), 16), int(m.group(5), 16)),
                       "inode": int(m.group(6)), "path": m.group(7), "rss": 0}
                cur["size"] = cur["end"] - cur["start"]
            elif line.startswith("Rss:") and cur is not None:
                cur["rss"] = int(line.split()[1]) * 1024
            elif line.startswith("VmFlags:") and cur is not None:
                if " lo" in line:
                    out.append(cur)
                cur = None
    return out


def locked_by_inode(pid, st):
    """(rss, size) of the process's locked mappings of the inode that os.stat result `st` names."""
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    rss = size = 0
    for m in locked_mappings(pid):
        if m["inode"] == st.st_ino and m["dev"] == dev:
            rss += m["rss"]
            size += m["size"]
    return rss, size


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    """What each of the process's descriptors refers to (readlink of /proc/PID/fd/N); one
    closed between the listing and its readlink is left out."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return out


def stat_fd_pids(pid, targets=None):
    """The pids whose /proc/PID/stat the process `pid` keeps open (the daemon keeps one per
    process, within a cap, from pass to pass)."""
    out = set()
    for t in fd_targets(pid) if targets is None else targets:
        m = re.fullmatch(r"/proc/(\d+)/stat", t)
        if m:
            out.add(int(m.group(1)))
    return out


# The daemon keeps at most this many /proc/PID/stat open (SCAN_STAT_FDS_MAX), and past it
# opens one a moment to read it: a sample may see one more.
STAT_FDS_MAX = 1024


def stale_stat_fds(daemon):
    """After a pass (SIGUSR1), the pids of processes already gone before it whose stat the
    daemon still holds: a leak. Processes that end during the pass (anything else on the
    machine) are not counted: they are given back at the next pass."""
    before = live_pids()
    if not daemon.rescan():
        return ["no pass"]
    return sorted(stat_fd_pids(daemon.pid) - before - live_pids())


def live_pids():
    return {int(x) for x in os.listdir("/proc") if x.isdigit()}


def vmlck(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1]) * 1024
    return None


class Notify:
    """A fake service manager: a datagram socket named by NOTIFY_SOCKET, collecting messages."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self.cond = threading.Condition()
        self.proc = None  # the daemon (a Popen), set by Daemon: wait_for() stops when it exits
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.cond:
                for line in data.decode(errors="replace").split("\n"):
                    if line:
                        self.messages.append(line)
                self.cond.notify_all()

    def wait_for(self, pred, timeout=30, start=0):
        """Waits for a message at index >= start satisfying pred; returns its index or None.
        Once the daemon has exited, waits only a moment more for what it sent last: under
        valgrind the time limits are long, and a dead daemon must not hold the suite that long."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.messages)):
                    if pred(self.messages[i]):
                        return i
                if self.proc is not None and self.proc.poll() is not None:
                    deadline = min(deadline, time.monotonic() + 1)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left if self.proc is None else min(left, 0.2))

    def count(self):
        with self.cond:
            return len(self.messages)

    def close(self):
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def _pass_status(m):
    """A pass's STATUS= summary, not a progress report ("STATUS=scanning processes 10/400")."""
    return m.startswith("STATUS=") and not re.search(r" \d+/\d+$", m)


class Daemon:
    """prelockd under test, with its own config, state and status files in `directory`."""

    def __init__(self, directory, config, binary=None, env=None, extra_args=(), prefix=(),
                 pressure=False):
        self.dir = directory
        self.conf = os.path.join(directory, "prelockd.conf")
        self.status_file = os.path.join(directory, "status")
        self.state_file = os.path.join(directory, "state")
        self.write_config(config)
        self.notify = Notify(directory)
        e = dict(os.environ)
        e.pop("JOURNAL_STREAM", None)
        e["NOTIFY_SOCKET"] = self.notify.path
        # Memory pressure is system-wide: passes it would bring (other work on the machine,
        # another test's hog) must not disturb tests that count passes. The debug build heeds
        # this; test_pressure asks for pressure passes.
        if not pressure:
            e["PRELOCKD_DEBUG_NO_PRESSURE"] = "1"
        if env:
            e.update(env)
        self.stderr_path = os.path.join(directory, "stderr")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(list(prefix) + [binary or PRELOCKD, "-c", self.conf] + list(extra_args),
                                     env=e, stdout=self.stderr, stderr=self.stderr)
        self.pid = self.proc.pid
        self.notify.proc = self.proc

    def write_config(self, config):
        """Writes config, adding state_file and status_file in the test directory to [daemon]
        unless the test sets them itself."""
        files = ""
        if "state_file" not in config:
            files += f"state_file = {self.state_file}\n"
        if "status_file" not in config:
            files += f"status_file = {self.status_file}\n"
        if "[daemon]" in config:
            text = config.replace("[daemon]\n", "[daemon]\n" + files, 1)
        else:
            text = "[daemon]\n" + files + config
        with open(self.conf, "w") as f:
            f.write(text)

    def wait_ready(self, timeout=60):
        i = self.notify.wait_for(lambda m: m == "READY=1", timeout)
        if i is None:
            return False
        # The daemon sends STATUS= right after READY=1; wait for it too, so that a rescan() that
        # follows cannot take it for the STATUS= of its own pass.
        self.notify.wait_for(_pass_status, 5, i + 1)
        return True

    def status_pass(self):
        """The pass number in the status file, or 0."""
        try:
            with open(self.status_file) as f:
                m = re.search(r'"pass": (\d+)', f.read())
            return int(m.group(1)) if m else 0
        except OSError:
            return 0

    def _wait_status_file(self, after_pass, timeout=5):
        """The daemon sends STATUS= before it rewrites the status file: wait for the file of a
        pass later than after_pass, so that tests read the pass they asked for."""
        deadline = time.monotonic() + timeout
        while self.status_pass() <= after_pass and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return
            time.sleep(0.002)

    def rescan(self, timeout=60):
        """SIGUSR1, then waits for the pass's STATUS= message (and its status file)."""
        start = self.notify.count()
        before = self.status_pass()
        self.proc.send_signal(signal.SIGUSR1)
        if self.notify.wait_for(_pass_status, timeout, start) is None:
            return False
        self._wait_status_file(before)
        return True

    def reload(self, timeout=60):
        """SIGHUP, then waits for RELOADING=1 and the READY=1 after it. Returns the indexes of
        both messages in notify.messages, None for one that did not come."""
        start = self.notify.count()
        self.proc.send_signal(signal.SIGHUP)
        i = self.notify.wait_for(lambda m: m == "RELOADING=1", timeout, start)
        j = None if i is None else self.notify.wait_for(lambda m: m == "READY=1", timeout, i + 1)
        if j is not None:  # as in wait_ready(): the STATUS= after READY=1
            self.notify.wait_for(_pass_status, 5, j + 1)
        return i, j

    def alive(self):
        return self.proc.poll() is None

    def status_json(self):
        import json
        with open(self.status_file) as f:
            return json.load(f)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.notify.close()
        self.stderr.close()
        return rc

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def run(args, binary=None, **kw):
    return subprocess.run([binary or PRELOCKD] + list(args), capture_output=True, text=True, **kw)
