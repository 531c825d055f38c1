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
                 cwd=None, prefix=()):
        args = [MAPPER, path, str(map_first), str(map_last)]
        if touch_first is not None:
            args += [str(touch_first), str(touch_last)]
        self.proc = subprocess.Popen(list(prefix) + args,
                                     stdout=subprocess.PIPE, text=True, cwd=cwd)
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
        """Waits for a message at index >= start satisfying pred; returns its index or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.messages)):
                    if pred(self.messages[i]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def count(self):
        with self.cond:
            return len(self.messages)

    def close(self):
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class Daemon:
    """prelockd under test, with its own config, state and status files in `directory`."""

    def __init__(self, directory, config, binary=None, env=None, extra_args=(), prefix=()):
        self.dir = directory
        self.conf = os.path.join(directory, "prelockd.conf")
        self.status_file = os.path.join(directory, "status")
        self.state_file = os.path.join(directory, "state")
        self.write_config(config)
        self.notify = Notify(directory)
        e = dict(os.environ)
        e.pop("JOURNAL_STREAM", None)
        e["NOTIFY_SOCKET"] = self.notify.path
        if env:
            e.update(env)
        self.stderr_path = os.path.join(directory, "stderr")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(list(prefix) + [binary or PRELOCKD, "-c", self.conf] + list(extra_args),
                                     env=e, stdout=self.stderr, stderr=self.stderr)
        self.pid = self.proc.pid

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
        return self.notify.wait_for(lambda m: m == "READY=1", timeout) is not None

    def rescan(self, timeout=60):
        """SIGUSR1, then waits for the pass's STATUS= message."""
        start = self.notify.count()
        self.proc.send_signal(signal.SIGUSR1)
        return self.notify.wait_for(lambda m: m.startswith("STATUS="), timeout, start) is not None

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


def run(args, **kw):
    return subprocess.run([PRELOCKD] + list(args), capture_output=True, text=True, **kw)
