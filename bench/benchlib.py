"""Shared parts of prelockd's benchmarks: paths, prerequisites, machine facts, memory cgroups (v1
and v2), prelockd under a fake service manager, process facts from /proc, and statistics."""
import datetime
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = os.environ.get("BENCH_HELPERS", os.path.join(ROOT, "build", "bench"))
PRELOCKD = os.environ.get("PRELOCKD", os.path.join(ROOT, "prelockd"))
# Generated files live on a disk filesystem: page cache on tmpfs cannot be reclaimed without swap.
DATA = os.environ.get("BENCH_DIR", "/var/tmp/prelockd-bench")
RESULTS = os.path.join(ROOT, "bench", "results")
DOCS = os.path.join(ROOT, "docs")
MiB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
PEERS_APT = "apt-get install -y vmtouch memlockd gnuplot-nox"


def log(msg):
    print(msg, flush=True)


# --- prerequisites -----------------------------------------------------------------------------

def missing_prerequisites():
    """What this machine lacks to run the benchmarks, each with how to get it. Installs nothing."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root: the benchmarks create memory cgroups and lock memory (run as root)")
    for tool, how in (("vmtouch", PEERS_APT), ("memlockd", PEERS_APT), ("gnuplot", PEERS_APT),
                      ("as", "apt-get install -y binutils"), ("ld", "apt-get install -y binutils"),
                      ("setpriv", "apt-get install -y util-linux"),
                      ("unshare", "apt-get install -y util-linux"),
                      ("nsenter", "apt-get install -y util-linux")):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            missing.append(f"{tool}: {how}")
    if not os.access(PRELOCKD, os.X_OK):
        missing.append(f"{PRELOCKD}: build it with `make`")
    for h in ("standin", "hog", "population", "readmaps"):
        if not os.access(os.path.join(HELPERS, h), os.X_OK):
            missing.append(f"{HELPERS}/{h}: build the helpers with `make bench`")
    try:
        Cgroup.detect()
    except RuntimeError as e:
        missing.append(str(e))
    # Each population process needs ~330 mappings and prelockd one per locked range; a lowered
    # limit (some test may have left one) makes dlopen() and mlock fail in odd ways.
    with open("/proc/sys/vm/max_map_count") as f:
        max_maps = int(f.read())
    if max_maps < 65530:
        missing.append(f"vm.max_map_count is {max_maps}, below the kernel's default 65530: "
                       f"restore it (sysctl -w vm.max_map_count=65530)")
    return missing


def tool_path(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def lock_bench():
    """One bench at a time: two would measure each other. Returns the held lock file, or None
    (after saying who holds it)."""
    os.makedirs(DATA, exist_ok=True)
    f = open(os.path.join(DATA, "bench.lock"), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        log(f"another benchmark run holds {f.name} (pid {f.read().strip() or '?'}): wait for it")
        return None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def foreign_lockers(own_pids=()):
    """Lockers already running (not started by the bench): they skew both benchmarks."""
    found = []
    for pid in pids():
        if pid in own_pids or pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("prelockd", "vmtouch", "memlockd"):
            try:
                with open(f"/proc/{pid}/cmdline") as f:
                    cmd = f.read().replace("\0", " ").strip()
            except OSError:
                cmd = comm
            found.append(f"pid {pid}: {cmd}")
    return found


# --- machine -----------------------------------------------------------------------------------

def meminfo(key):
    """A /proc/meminfo value in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def device_readahead_kib(path):
    """read_ahead_kb of the block device holding path: it sets how much one major fault of a file
    mapping reads (the mmap read-around window), so it shapes how thrashing looks."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    try:
        real = os.path.realpath(f"/sys/dev/block/{dev}")
        for cand in (real, os.path.dirname(real)):
            p = os.path.join(cand, "queue", "read_ahead_kb")
            if os.path.exists(p):
                with open(p) as f:
                    return int(f.read())
        with open(os.path.join(real, "bdi", "read_ahead_kb")) as f:
            return int(f.read())
    except OSError:
        return None


def git_describe():
    """The prelockd under test: BENCH_PRELOCKD_VERSION when PRELOCKD= points at a build from
    elsewhere, else this tree's commit, "+changes" when src/ or include/ differ from it."""
    if os.environ.get("BENCH_PRELOCKD_VERSION"):
        return os.environ["BENCH_PRELOCKD_VERSION"]
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "include"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+changes" if dirty else "")
    except OSError:
        return "unknown"


def package_version(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    os.makedirs(DATA, exist_ok=True)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(meminfo("MemTotal") / (1 << 30), 1),
        "swap_mib": meminfo("SwapTotal") // MiB,
        "readahead_kib": device_readahead_kib(DATA),
        "cgroup": Cgroup.detect()[0],
        "prelockd": git_describe(),
        "vmtouch": package_version("vmtouch"),
        "memlockd": package_version("memlockd"),
    }


def machine_line(m):
    return (f"{m['date']}; Linux {m['kernel']}, {m['cores']} cores ({m['cpu']}), "
            f"{m['ram_gib']} GiB RAM, swap {m['swap_mib']} MiB, read_ahead_kb {m['readahead_kib']}, "
            f"memory cgroup {m['cgroup']}; prelockd {m['prelockd']}, vmtouch {m['vmtouch']}, "
            f"memlockd {m['memlockd']}")


# --- memory cgroups ----------------------------------------------------------------------------

class Cgroup:
    """A memory cgroup with a hard limit, on whichever hierarchy offers the memory controller:
    cgroup2 (memory.max, memory.events oom_kill) where it does, else v1 (memory.limit_in_bytes,
    memory.oom_control oom_kill). In hybrid mode the memory controller usually sits on v1 only.
    BENCH_CGROUP=v1|v2 forces one."""

    V2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
    V1_ROOT = "/sys/fs/cgroup/memory"

    @staticmethod
    def detect():
        want = os.environ.get("BENCH_CGROUP")
        notes = []
        if want in (None, "", "v2"):
            for root in Cgroup.V2_ROOTS:
                p = os.path.join(root, "cgroup.controllers")
                if os.path.exists(p):
                    with open(p) as f:
                        ctl = f.read().split()
                    if "memory" in ctl:
                        return "v2", root
                    notes.append(f"cgroup2 at {root} offers [{' '.join(ctl)}], no memory")
        if want in (None, "", "v1"):
            if os.path.exists(os.path.join(Cgroup.V1_ROOT, "memory.limit_in_bytes")):
                return "v1", Cgroup.V1_ROOT
            notes.append(f"no cgroup v1 memory controller at {Cgroup.V1_ROOT}")
        raise RuntimeError("no memory cgroup controller available (" + "; ".join(notes) + ")")

    @staticmethod
    def describe():
        """Which hierarchies offer which controllers, for the report."""
        out = []
        for root in Cgroup.V2_ROOTS:
            p = os.path.join(root, "cgroup.controllers")
            if os.path.exists(p):
                with open(p) as f:
                    out.append(f"cgroup2 at {root}: controllers [{' '.join(f.read().split())}]")
        if os.path.exists(os.path.join(Cgroup.V1_ROOT, "memory.limit_in_bytes")):
            out.append(f"cgroup v1 memory controller at {Cgroup.V1_ROOT}")
        return out

    def __init__(self, name, limit_bytes):
        self.mode, root = Cgroup.detect()
        if self.mode == "v2":
            self._enable_memory(root)
        self.path = os.path.join(root, name)
        if os.path.isdir(self.path):
            self._remove()
        os.mkdir(self.path)
        if self.mode == "v2":
            self._write("memory.max", str(limit_bytes))
            if os.path.exists(os.path.join(self.path, "memory.swap.max")):
                self._write("memory.swap.max", "0")
        else:
            self._write("memory.limit_in_bytes", str(limit_bytes))
            self._write("memory.swappiness", "0")
        self.procs = os.path.join(self.path, "cgroup.procs")
        self.oom_kills0 = self.oom_kills()

    @staticmethod
    def _enable_memory(root):
        p = os.path.join(root, "cgroup.subtree_control")
        with open(p) as f:
            if "memory" in f.read().split():
                return
        with open(p, "w") as f:
            f.write("+memory")

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def _read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def oom_kills(self):
        """OOM kills in this cgroup so far (0 where the kernel does not count them)."""
        text = self._read("memory.events" if self.mode == "v2" else "memory.oom_control")
        m = re.search(r"^oom_kill (\d+)$", text, re.M)
        return int(m.group(1)) if m else 0

    def usage(self):
        return int(self._read("memory.current" if self.mode == "v2" else "memory.usage_in_bytes"))

    def peak(self):
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            if os.path.exists(os.path.join(self.path, name)):
                return int(self._read(name))
        return None

    def stat(self):
        out = {}
        for line in self._read("memory.stat").splitlines():
            k, v = line.split()
            out[k] = int(v)
        return out

    def unevictable(self):
        s = self.stat()
        return s.get("unevictable", s.get("total_unevictable", 0))

    def tasks(self):
        return [int(x) for x in self._read("cgroup.procs").split()]

    def _remove(self):
        for pid in [int(x) for x in open(os.path.join(self.path, "cgroup.procs")).read().split()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.path.exists(os.path.join(self.path, "memory.force_empty")):
                    with open(os.path.join(self.path, "memory.force_empty"), "w") as f:
                        f.write("0")
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.05)
        os.rmdir(self.path)

    def remove(self):
        if os.path.isdir(self.path):
            self._remove()


# --- processes ---------------------------------------------------------------------------------

def pids(proc="/proc"):
    return [int(d) for d in os.listdir(proc) if d.isdigit()]


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Child:
    """A program the bench started. It dies with the bench (PR_SET_PDEATHSIG through setpriv),
    so an interrupted run leaves nothing behind. In a PidNamespace it runs behind nsenter: then
    `pid` (the program, for signals and /proc) differs from `proc.pid` (nsenter, which waits for
    it and exits with its status)."""

    def __init__(self, args, ns=None, **kw):
        prefix = [tool_path("setpriv"), "--pdeathsig", "KILL", "--"]
        if ns:
            prefix += [tool_path("nsenter"), "-t", str(ns.init), "-p", "-m", "--"]
        self.proc = subprocess.Popen(prefix + list(args), **kw)
        self.stdout = self.proc.stdout
        self.pid = self.proc.pid
        if ns:
            found = wait_for(lambda: _children(self.proc.pid), 5, 0.001)
            if not found:
                raise RuntimeError(f"{args[0]} did not start in the PID namespace")
            self.pid = found[0]

    @property
    def returncode(self):
        return self.proc.returncode

    def poll(self):
        return self.proc.poll()

    def wait(self, timeout=None):
        return self.proc.wait(timeout)

    def send_signal(self, sig):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)


class PidNamespace:
    """A PID namespace with its own /proc. The cost benchmark's population, readmaps and prelockd
    run in it and see exactly each other, whatever else runs on the machine. Its init dies with
    the bench, and with it everything inside."""

    def __init__(self):
        # unshare complains on stderr when its child is killed, which is how this ends.
        self.holder = Child([tool_path("unshare"), "--pid", "--fork", "--mount-proc",
                             "--kill-child", "--", "sleep", "infinity"], stderr=subprocess.DEVNULL)
        found = wait_for(lambda: _children(self.holder.pid), 5, 0.001)
        if not found:
            raise RuntimeError("cannot create a PID namespace (unshare --pid --mount-proc)")
        self.init = found[0]
        # The namespace's procfs as seen from outside, through its init's mount namespace.
        self.proc_dir = f"/proc/{self.init}/root/proc"

    def close(self):
        try:
            os.kill(self.init, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.holder.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.holder.pid, signal.SIGKILL)
            self.holder.wait()


def proc_status(pid, key):
    """A /proc/PID/status value in bytes (for kB fields), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    parts = line.split()
                    return int(parts[1]) * (1024 if len(parts) > 2 and parts[2] == "kB" else 1)
    except OSError:
        pass
    return None


def cpu_ns(pid):
    """CPU time of a process in ns from /proc/PID/schedstat (exact, unlike stat's clock ticks).
    Read it while the process sleeps: a running task's figure lags."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def locked_rss(pid):
    """Bytes resident in the process's locked mappings (smaps VmFlags "lo"): what it holds locked
    itself, shared or not (smaps' Locked: is PSS-weighted, so it is not used)."""
    total = rss = 0
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmFlags:") and " lo" in line:
                    total += rss
    except OSError:
        return None
    return total


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def wait_sleeping(pid, timeout=2.0):
    """Waits until the process sleeps (state S): its CPU figures are then settled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state in ("S", "D", "Z", "X"):
                return
        except OSError:
            return
        time.sleep(0.002)


def wait_for(pred, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Ends a process the bench started, and returns its exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def evict(path):
    """Drops a file's pages from the page cache (those no process maps or locks)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# --- prelockd under a fake service manager -----------------------------------------------------

class Notify:
    """A NOTIFY_SOCKET listener: collects (monotonic time, message) for each line received."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []
        self.cond = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            t = time.monotonic()
            with self.cond:
                for line in data.decode(errors="replace").split("\n"):
                    if line:
                        self.messages.append((t, line))
                self.cond.notify_all()

    def wait_for(self, pred, timeout, start=0):
        """Index of the first message at or after `start` for which pred(text) holds, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.messages)):
                    if pred(self.messages[i][1]):
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


def pass_status(m):
    """STATUS= of a finished pass, not a progress report ("STATUS=scanning 10/400")."""
    return m.startswith("STATUS=") and not re.search(r" \d+/\d+$", m)


PASS_LINE = re.compile(r"pass (\d+): (\d+) files, (.*?) locked of (.*?) budget; (\d+) processes "
                       r"\((\d+) read\), (\d+) mappings, (\d+) ms CPU"
                       r"(?: \((\d+) scanning, (\d+) locking\))?, (\d+) ms wall")


class Prelockd:
    """prelockd run by hand as systemd would: NOTIFY_SOCKET, stderr log, its own config, state
    and status files in `directory`. `lock` holds the [lock] settings beyond the defaults."""

    def __init__(self, directory, lock, daemon=None, ns=None):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.conf = os.path.join(directory, "prelockd.conf")
        self.status_file = os.path.join(directory, "status")
        state = os.path.join(directory, "state")
        for p in (self.status_file, state):
            if os.path.exists(p):
                os.unlink(p)
        d = {"state_file": state, "status_file": self.status_file}
        d.update(daemon or {})
        with open(self.conf, "w") as f:
            f.write("; written by the benchmark: the shipped defaults but for these keys\n[daemon]\n")
            f.writelines(f"{k} = {v}\n" for k, v in d.items())
            f.write("[lock]\n")
            f.writelines(f"{k} = {v}\n" for k, v in lock.items())
        self.notify = Notify(os.path.join(directory, "notify.sock"))
        env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "WATCHDOG_USEC")}
        env["NOTIFY_SOCKET"] = self.notify.path
        self.log_path = os.path.join(directory, "log")
        self._log = open(self.log_path, "w")
        self.t_start = time.monotonic()
        self.proc = Child([PRELOCKD, "-c", self.conf], ns=ns, env=env, stdout=self._log,
                          stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.t_ready = None

    def wait_ready(self, timeout=60):
        """Seconds from exec to READY=1, or None."""
        i = self.notify.wait_for(lambda m: m == "READY=1", timeout)
        if i is None:
            return None
        self.t_ready = self.notify.messages[i][0]
        # READY=1 and STATUS= come in one datagram; the status file follows the pass.
        self.notify.wait_for(pass_status, 5, i)
        self._wait_status_pass(0)
        return self.t_ready - self.t_start

    def status(self):
        try:
            with open(self.status_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _wait_status_pass(self, after):
        wait_for(lambda: (self.status() or {}).get("pass", 0) > after, 5, 0.002)

    def rescan(self, timeout=60):
        """SIGUSR1; returns once the pass has reported (STATUS=) and the daemon sleeps again."""
        start = self.notify.count()
        before = (self.status() or {}).get("pass", 0)
        self.proc.send_signal(signal.SIGUSR1)
        if self.notify.wait_for(pass_status, timeout, start) is None:
            return False
        self._wait_status_pass(before)
        wait_sleeping(self.pid)
        return True

    def locked_bytes(self, path=None):
        s = self.status() or {}
        if path is None:
            return s.get("locked_bytes", 0)
        return sum(f["bytes"] for f in s.get("locked", []) if f["path"] == path)

    def log_passes(self):
        """{pass number: (cpu_ms, wall_ms, processes, mappings, scan_cpu_ms, lock_cpu_ms)} from
        the daemon's log lines (the last two None from a daemon that does not split them)."""
        out = {}
        self._log.flush()
        with open(self.log_path) as f:
            for line in f:
                m = PASS_LINE.search(line)
                if m:
                    split = [int(x) if x else None for x in (m.group(9), m.group(10))]
                    out[int(m.group(1))] = (int(m.group(8)), int(m.group(11)), int(m.group(5)),
                                            int(m.group(7)), *split)
        return out

    def stop(self):
        rc = stop(self.proc)
        self.notify.close()
        self._log.close()
        return rc


# --- statistics --------------------------------------------------------------------------------

def percentile(values, p):
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))
    return v[int(k)]


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def fmt(x, digits=1):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.{digits}f}×"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
