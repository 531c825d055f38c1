"""Shared parts of prelockd's benchmarks: paths, prerequisites, machine facts, memory cgroups (v1
and v2), prelockd run as its shipped unit runs it (uid, capabilities, limits) under a fake service
manager, process facts from /proc, and statistics."""
import datetime
import fcntl
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = os.environ.get("BENCH_HELPERS", os.path.join(ROOT, "build", "bench"))
PRELOCKD = os.environ.get("PRELOCKD", os.path.join(ROOT, "prelockd"))
# Generated files live on a disk filesystem: page cache on tmpfs cannot be reclaimed without swap.
DATA = os.environ.get("BENCH_DIR", "/var/tmp/prelockd-bench")
# The programs the lockers protect live where the shipped `include` rule matches them
# (^/(usr|bin|sbin|lib[^/]*|opt)/), so that prelockd runs on its shipped config; also a disk
# filesystem.
PROGRAMS = os.environ.get("BENCH_PROGRAM_DIR", "/opt/prelockd-bench")
RESULTS = os.path.join(ROOT, "bench", "results")
DOCS = os.path.join(ROOT, "docs")
SHIPPED_CONF = os.path.join(ROOT, "prelockd.conf")
# The unit prelockd is shipped with: the template, or the unit itself where the tree keeps one.
UNIT_FILES = (os.path.join(ROOT, "prelockd.service.in"), os.path.join(ROOT, "prelockd.service"))
# The uid prelockd runs as, standing in for the unit's DynamicUser= (any uid no one else uses).
DAEMON_UID = int(os.environ.get("BENCH_DAEMON_UID", "61234"))
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
                      ("prlimit", "apt-get install -y util-linux"),
                      ("choom", "apt-get install -y util-linux"),
                      ("fincore", "apt-get install -y util-linux"),
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
    try:
        Unit.load()
    except (OSError, ValueError) as e:
        missing.append(f"the shipped unit's privileges: {e}")
    for d in (DATA, PROGRAMS):
        fs = fs_type(d)
        if fs in ("tmpfs", "ramfs", "overlay"):
            missing.append(f"{d} is on {fs}: page cache there cannot be reclaimed like a disk's; "
                           f"set BENCH_DIR= / BENCH_PROGRAM_DIR= to a disk filesystem")
    if not shipped_include_matches(PROGRAMS + "/x"):
        missing.append(f"{PROGRAMS} is not matched by the shipped `include` rule: set "
                       f"BENCH_PROGRAM_DIR= to a directory under /usr, /opt or /lib")
    # Each population process needs ~330 mappings and prelockd one per locked range; a lowered
    # limit (some test may have left one) makes dlopen() and mlock fail in odd ways.
    with open("/proc/sys/vm/max_map_count") as f:
        max_maps = int(f.read())
    if max_maps < 65530:
        missing.append(f"vm.max_map_count is {max_maps}, below the kernel's default 65530: "
                       f"restore it (sysctl -w vm.max_map_count=65530)")
    return missing


def fs_type(path):
    """Filesystem type of the mount holding path (or its nearest existing parent)."""
    path = os.path.realpath(path)
    best, kind = "", "?"
    with open("/proc/self/mounts") as f:
        for line in f:
            mnt, fs = line.split()[1:3]
            mnt = mnt.replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, fs
    return kind


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


def majflt(pid):
    """Major faults of a process so far, from /proc/PID/stat (field 12), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[9])
    except (OSError, IndexError, ValueError):
        return None


def smaps_by_file(pid, paths):
    """{(path, perms): {"rss": bytes, "locked": bytes}} for the mappings of `paths` in a process;
    "locked" is the Rss of VMAs with VmFlags "lo" (what the process holds locked itself)."""
    want, out, cur, rss = set(paths), {}, None, 0
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(maxsplit=5)
                if len(first) >= 5 and "-" in first[0] and not first[0].endswith(":"):
                    path = first[5].rstrip("\n") if len(first) == 6 else ""
                    cur = (path, first[1]) if path in want else None
                elif cur and line.startswith("Rss:"):
                    rss = int(first[1]) * 1024
                    e = out.setdefault(cur, {"rss": 0, "locked": 0})
                    e["rss"] += rss
                elif cur and line.startswith("VmFlags:") and " lo" in line:
                    out[cur]["locked"] += rss
    except OSError:
        return None
    return out


def locked_rss_of(pid, paths):
    """Bytes a process holds locked in its mappings of `paths`."""
    m = smaps_by_file(pid, paths)
    return None if m is None else sum(v["locked"] for v in m.values())


def cached_bytes(paths):
    """Bytes of these files in the page cache (fincore; exact for root, whom mincore does not
    mislead)."""
    paths = list(paths)
    if not paths:
        return 0
    out = subprocess.run([tool_path("fincore"), "--bytes", "--noheadings", "--raw",
                          "--output", "RES"] + paths, capture_output=True, text=True)
    return sum(int(x) for x in out.stdout.split() if x.isdigit())


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


# The daemon's summary line of a pass. Words between "pass N" and the colon (a kind of pass, say)
# are allowed.
PASS_LINE = re.compile(r"pass (\d+)\b[^:]*: (\d+) files, (.*?) locked of (.*?) budget; (\d+) "
                       r"processes \((\d+) read\), (\d+) mappings, (\d+) ms CPU"
                       r"(?: \((\d+) scanning, (\d+) locking\))?, (\d+) ms wall")


class Unit:
    """The privileges and limits the shipped unit gives prelockd, read from the unit file, and
    the command prefix that gives the same to a process started by hand: choom (OOMScoreAdjust=),
    prlimit (LimitMEMLOCK=, LimitNOFILE=), then setpriv to an unprivileged uid (DynamicUser=)
    with exactly the unit's ambient and bounding capabilities, no supplementary groups and
    NoNewPrivileges=. The sandbox (Protect*=, SystemCallFilter=, ...) is not reproduced."""

    KEYS = ("AmbientCapabilities", "CapabilityBoundingSet", "LimitMEMLOCK", "LimitNOFILE",
            "NoNewPrivileges", "OOMScoreAdjust", "DynamicUser", "User")

    def __init__(self, path, values):
        self.path = path
        self.ambient = self._caps(values.get("AmbientCapabilities"))
        self.bounding = self._caps(values.get("CapabilityBoundingSet"))
        if self.bounding is None:
            self.bounding = self.ambient
        self.memlock = self._limit(values.get("LimitMEMLOCK", [None])[-1])
        self.nofile = self._limit(values.get("LimitNOFILE", [None])[-1])
        self.no_new_privs = values.get("NoNewPrivileges", ["no"])[-1] in ("yes", "true", "1", "on")
        adj = values.get("OOMScoreAdjust", [None])[-1]
        self.oom_score_adj = int(adj) if adj not in (None, "") else None

    @staticmethod
    def _caps(lines):
        """A capability list as systemd reads it: each assignment adds, an empty one resets."""
        if lines is None:
            return None
        caps = []
        for v in lines:
            if not v:
                caps = []
            elif v.startswith("~"):
                raise ValueError(f"inverted capability list {v!r} is not supported by the bench")
            else:
                caps += [c.lower().removeprefix("cap_") for c in v.split()]
        return sorted(set(caps))

    @staticmethod
    def _limit(v):
        """A Limit*= value as "SOFT:HARD" for prlimit, or None when not set."""
        if v is None or v == "":
            return None
        parts = [("unlimited" if p == "infinity" else p) for p in v.split(":")]
        return f"{parts[0]}:{parts[-1]}"

    @classmethod
    def load(cls):
        path = next((p for p in UNIT_FILES if os.path.exists(p)), None)
        if path is None:
            raise OSError(f"no unit file ({' or '.join(UNIT_FILES)})")
        values, section = {}, None
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("["):
                    section = line
                elif section == "[Service]" and "=" in line:
                    k, v = (x.strip() for x in line.split("=", 1))
                    if k in cls.KEYS:
                        values.setdefault(k, []).append(v)
        if "AmbientCapabilities" not in values:
            raise ValueError(f"{path}: no AmbientCapabilities= in [Service]")
        return cls(path, values)

    def _limit_here(self, name, want):
        """(value prlimit can set here, note or None): without CAP_SYS_RESOURCE (some containers
        and VMs deny it even to root) a hard limit cannot be raised, so the unit's value is
        clamped to the current hard limit, and the note says so."""
        if want is None:
            return None, None
        res = {"memlock": resource.RLIMIT_MEMLOCK, "nofile": resource.RLIMIT_NOFILE}[name]
        hard = resource.getrlimit(res)[1]
        soft_s, hard_s = want.split(":")
        want_hard = resource.RLIM_INFINITY if hard_s == "unlimited" else int(hard_s)
        if has_cap(CAP_SYS_RESOURCE) or hard == resource.RLIM_INFINITY or \
                (want_hard != resource.RLIM_INFINITY and want_hard <= hard):
            return want, None
        return f"{hard}:{hard}", (f"Limit{name.upper()}={want} not applied (no CAP_SYS_RESOURCE "
                                  f"here to raise the hard limit): {hard} instead")

    def prefix(self, uid=None):
        """(command prefix, notes on what of the unit could not be applied on this machine)."""
        uid = DAEMON_UID if uid is None else uid
        out, notes = [], []
        if self.oom_score_adj is not None and self.oom_score_adj < 0 and \
                not has_cap(CAP_SYS_RESOURCE):
            notes.append(f"OOMScoreAdjust={self.oom_score_adj} not applied (no CAP_SYS_RESOURCE "
                         f"here); the daemon runs outside the cgroups under pressure anyway")
        elif self.oom_score_adj is not None:
            out += [tool_path("choom"), "-n", str(self.oom_score_adj), "--"]
        limits = []
        for name, want in (("memlock", self.memlock), ("nofile", self.nofile)):
            v, note = self._limit_here(name, want)
            if v:
                limits.append(f"--{name}={v}")
            if note:
                notes.append(note)
        if limits:
            out += [tool_path("prlimit")] + limits + ["--"]
        caps = ",".join(["-all"] + [f"+{c}" for c in self.ambient])
        out += [tool_path("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                f"--inh-caps={caps}", f"--ambient-caps={caps}",
                "--bounding-set=" + ",".join(["-all"] + [f"+{c}" for c in self.bounding])]
        if self.no_new_privs:
            out.append("--no-new-privs")
        return out + ["--"], notes

    def describe(self, uid=None):
        notes = self.prefix(uid)[1]
        return (f"uid {DAEMON_UID if uid is None else uid}, ambient capabilities "
                f"{' '.join(self.ambient) or 'none'}, bounding set {' '.join(self.bounding)}, "
                f"LimitMEMLOCK {self.memlock or 'unset'}, LimitNOFILE {self.nofile or 'unset'}, "
                f"OOMScoreAdjust {self.oom_score_adj}, NoNewPrivileges "
                f"{'yes' if self.no_new_privs else 'no'} (from {os.path.relpath(self.path, ROOT)})"
                + "".join(f"; {n}" for n in notes))


CAP_SYS_RESOURCE = 24


def has_cap(bit):
    """Whether this process has a capability in its effective set."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    return False


# How the bench runs prelockd: "unit" (the shipped unit's uid, capabilities and limits) or
# "root" (as root with every capability, as earlier versions of the bench did).
RUN_AS = os.environ.get("BENCH_RUN_AS", "unit")


def shipped_config(overrides):
    """The shipped prelockd.conf with `overrides` ({(section, key): value}) applied: a key's line
    is replaced where the file sets it, else added at the end of its section."""
    with open(SHIPPED_CONF) as f:
        lines = f.read().split("\n")
    out, section, done = [], None, set()

    def flush(sec):
        for (s, k), v in overrides.items():
            if s == sec and (s, k) not in done:
                out.append(f"{k} = {v}")
                done.add((s, k))

    replacing = False
    for line in lines:
        # An indented line continues a list key: it goes with the key it follows.
        if replacing and line[:1] in (" ", "\t") and line.strip() and line.strip()[0] not in ";#":
            continue
        replacing = False
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            flush(section)
            section = m.group(1)
        else:
            m = re.match(r"^(\w+)\s*=", line)
            if m and (section, m.group(1)) in overrides:
                key = (section, m.group(1))
                if key not in done:
                    out.append(f"{m.group(1)} = {overrides[key]}")
                    done.add(key)
                replacing = True
                continue
        out.append(line)
    flush(section)
    return "\n".join(out)


def shipped_include_matches(path):
    """Whether the shipped config's `include` rule (a POSIX ERE; Python's re agrees on it) takes
    path."""
    pats, section = [], None
    with open(SHIPPED_CONF) as f:
        for line in f:
            m = re.match(r"^\[(\w+)\]", line)
            if m:
                section = m.group(1)
            m = re.match(r"^include\s*=\s*(\S*)", line)
            if section == "lock" and m and m.group(1):
                pats.append(m.group(1))
    return any(re.search(p, path) for p in pats)


class Prelockd:
    """prelockd run as its shipped unit runs it: the shipped prelockd.conf with only the state
    and status paths moved into `directory` (plus the `lock`/`daemon` keys given), the unit's uid,
    capabilities and limits (RUN_AS=unit), a NOTIFY_SOCKET listener and a log file. `wrap` is a
    command the daemon runs under (tests/helpers/noquery)."""

    def __init__(self, directory, lock=None, daemon=None, ns=None, wrap=()):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.conf = os.path.join(directory, "prelockd.conf")
        self.status_file = os.path.join(directory, "status")
        state = os.path.join(directory, "state")
        for p in (self.status_file, state):
            if os.path.exists(p):
                os.unlink(p)
        over = {("daemon", "state_file"): state, ("daemon", "status_file"): self.status_file}
        over.update({("daemon", k): v for k, v in (daemon or {}).items()})
        over.update({("lock", k): v for k, v in (lock or {}).items()})
        with open(self.conf, "w") as f:
            f.write("; written by the benchmark: the shipped prelockd.conf, but for these keys:\n")
            f.writelines(f";   {k} = {v}\n" for (_, k), v in over.items())
            f.write(shipped_config(over))
        os.chmod(self.conf, 0o644)
        self.notify = Notify(os.path.join(directory, "notify.sock"))
        env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "WATCHDOG_USEC")}
        env["NOTIFY_SOCKET"] = self.notify.path
        prefix = []
        if RUN_AS == "unit":
            # The daemon's own directory (StateDirectory=/RuntimeDirectory=) and the socket.
            os.chown(directory, DAEMON_UID, DAEMON_UID)
            os.chmod(directory, 0o755)
            os.chmod(self.notify.path, 0o666)
            prefix = Unit.load().prefix()[0]
        self.log_path = os.path.join(directory, "log")
        self._log = open(self.log_path, "w")
        self.t_start = time.monotonic()
        # The daemon's output goes through a pipe, and each line into the log prefixed with the
        # CLOCK_MONOTONIC second it was read ("[12345.678901] "): the pressure benchmark sets
        # pass lines against the hog's start with it. _sync() makes what the daemon wrote so far
        # visible in the file.
        self._log_lock = threading.Lock()
        self.proc = Child(prefix + list(wrap) + [PRELOCKD, "-c", self.conf], ns=ns, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._log_thread = threading.Thread(target=self._copy_log, daemon=True)
        self._log_thread.start()
        self.pid = self.proc.pid
        self.t_ready = None

    def _copy_log(self):
        """The pipe into the log file, a timestamp on each line. A read happens only under the
        lock, so that _sync() sees the bytes either in the pipe or in the file."""
        fd, tail = self.proc.stdout.fileno(), b""
        os.set_blocking(fd, False)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            poller.poll()
            with self._log_lock:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data or self._log.closed:
                    if tail and not self._log.closed:
                        self._log.write(f"[{time.monotonic():.6f}] "
                                        + tail.decode("utf-8", "replace") + "\n")
                        self._log.flush()
                    return
                t = time.monotonic()
                *lines, tail = (tail + data).split(b"\n")
                self._log.writelines(f"[{t:.6f}] " + x.decode("utf-8", "replace") + "\n"
                                     for x in lines)
                self._log.flush()

    def _sync(self, timeout=1.0):
        """Returns once all the daemon wrote so far is in the log file."""
        deadline = time.monotonic() + timeout
        buf = bytearray(4)
        while True:
            with self._log_lock:
                try:
                    fcntl.ioctl(self.proc.stdout.fileno(), termios.FIONREAD, buf)
                except (OSError, ValueError):
                    return
                if int.from_bytes(buf, sys.byteorder) == 0 or time.monotonic() > deadline:
                    return
            time.sleep(0.001)

    def wait_ready(self, timeout=60):
        """Seconds from exec to READY=1, or None (at once if the daemon exits)."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.notify.wait_for(lambda m: m == "READY=1", 0.2)
            if i is not None:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
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

    def reload(self, timeout=60):
        """SIGHUP (which re-reads every process, as a full pass does); returns once READY=1
        follows RELOADING=1, the pass has reported and the daemon sleeps again."""
        start = self.notify.count()
        before = (self.status() or {}).get("pass", 0)
        self.proc.send_signal(signal.SIGHUP)
        i = self.notify.wait_for(lambda m: m.startswith("RELOADING=1"), timeout, start)
        if i is None or self.notify.wait_for(lambda m: m == "READY=1", timeout, i) is None:
            return False
        self._wait_status_pass(before)
        wait_sleeping(self.pid)
        return True

    def locked_bytes(self, paths=None):
        """Bytes locked in all, or in the files named (a path or a list), from the status file."""
        s = self.status() or {}
        if paths is None:
            return s.get("locked_bytes", 0)
        paths = {paths} if isinstance(paths, str) else set(paths)
        return sum(f["bytes"] for f in s.get("locked", []) if f["path"] in paths)

    def log_lines(self, pattern):
        self._sync()
        with open(self.log_path) as f:
            return [line.rstrip("\n") for line in f if re.search(pattern, line)]

    def log_passes(self):
        """{pass number: {cpu_ms, wall_ms, processes, read, mappings, scan_ms, lock_ms}} from the
        daemon's log lines (scan_ms and lock_ms None from a daemon that does not split them).
        `read` is how many processes the pass read again: all of them on a full pass."""
        out = {}
        self._sync()
        with open(self.log_path) as f:
            for line in f:
                m = PASS_LINE.search(line)
                if m:
                    out[int(m.group(1))] = {
                        "cpu_ms": int(m.group(8)), "wall_ms": int(m.group(11)),
                        "processes": int(m.group(5)), "read": int(m.group(6)),
                        "mappings": int(m.group(7)),
                        "scan_ms": int(m.group(9)) if m.group(9) else None,
                        "lock_ms": int(m.group(10)) if m.group(10) else None}
        return out

    def stop(self):
        rc = stop(self.proc)
        self.notify.close()
        self._log_thread.join(2)     # the daemon's last lines (EOF once it is gone)
        with self._log_lock:
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


def md_table(header, rows, left=1):
    """A markdown table; the first `left` columns are text (left-aligned), the rest numbers."""
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if i >= left else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
