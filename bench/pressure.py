"""Pressure benchmark: does a locker keep an interactive program responsive while a memory hog
drives its memory cgroup into the OOM killer, and how much does it lock to do so?

Two programs stand in for the interactive one. "synthetic" (bench/standin.c) maps a generated
file as code and as read-only data and touches a working set of both every round. "python" is a
real program: the Debian Python interpreter running bench/realprog.py, whose working set is the
code and the read-only data (unicodedata, codec tables, libcrypto's tables) of the interpreter
and its extension modules and libraries. Both live under BENCH_PROGRAM_DIR (/opt/prelockd-bench),
where the shipped `include` rule matches them, and prelockd runs on its shipped config, as its
shipped unit runs it.

One run: the program's files are evicted from the page cache; the program starts in a fresh
memory cgroup and faults its working set in there (so those pages are charged to the cgroup, as
a desktop program's are charged to its session); once it is warm, the locker under test starts
outside the cgroup and locks; then the hog starts in the cgroup and grows past the limit. Rounds
are measured in a fixed window from the hog's start (growth, OOM kill, recovery). Without a
locker the hog's growth evicts the working set, which is refaulted from disk each round: that is
the thrashing the lockers are there to prevent.

Scenario "prelockd-late" is the other order, the common one on a desktop: prelockd starts first
(default interval, 60 s) and has done its passes; the program starts after the last one, runs
alone for a few seconds, and then the hog starts. Nothing but a pass the daemon makes by itself
(on pressure) can protect the program there.
"""
import os
import re
import shutil
import subprocess
import threading
import time

import benchlib as B

P = {
    "limit_mib": 64,                  # the cgroup's hard limit
    "period_ms": 20,                  # one round every 20 ms
    "hog_step_mib": 2,                # the hog grows 2 MiB every 100 ms...
    "hog_period_ms": 100,
    "hog_max_mib": 512,               # ...up to far past the limit
    "window_s": 6.0,                  # rounds measured from the hog's start
    "settle_s": 0.5,                  # warm program runs alone this long before the locker starts
    "late_gap_s": 3.0,                # prelockd-late: the program runs alone this long before the hog
    "reps": 3,                        # medians of 3; the targets look at the worst run
    "programs": ["synthetic", "python"],
}

SYNTHETIC = {
    "file_mib": 80,                   # 64 MiB of code (over the older prelockd's 50 MiB cap)...
    "code_mib": 64,
    "code_ws": "4:4,20:4,36:4,52:4",  # ...of which it calls into 16 MiB each round,
    "data_ws": "4:4,12:4",            # and 16 MiB of read-only data, of which it reads 8 MiB
    "ws_mib": 24,
}

WARM_ROUNDS = 5  # the program is "ready" after these: its working set is then in memory

SCENARIOS = ["baseline", "none", "vmtouch", "memlockd",
             "prelockd-whole", "prelockd-mapped", "prelockd-resident", "prelockd-late"]
LOCKERS = {"none": "no locker", "baseline": "unpressured (no hog)",
           "vmtouch": "vmtouch -l", "memlockd": "memlockd",
           "prelockd-whole": "prelockd whole", "prelockd-mapped": "prelockd mapped",
           "prelockd-resident": "prelockd (shipped defaults)",
           "prelockd-late": "prelockd, program started after its last pass"}
DAEMON_MODES = {"prelockd-whole": "whole", "prelockd-mapped": "mapped",
                "prelockd-resident": None, "prelockd-late": None}  # None: the shipped `what`


def ere_escape(s):
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", s)


# --- the programs ------------------------------------------------------------------------------

class Rounds:
    """A running program that prints "r START_NS LATENCY_NS MAJFLT MINFLT" per round and "ready"
    after its warm rounds; a thread collects them as they come."""

    def __init__(self, args, env=None):
        self.proc = B.Child(args, env=env, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.rounds = []           # (start_ns, latency_ns, majflt, minflt)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if f and f[0] == "r":
                self.rounds.append(tuple(int(x) for x in f[1:5]))
            elif f and f[0] == "ready":
                self.ready.set()
        self.ready.set()


class Synthetic:
    """bench/standin.c on a generated file: SYNTHETIC["code_mib"] of code, every page starting
    with `ret`, then read-only data; both mapped as an ELF object's text and rodata are."""
    name = "synthetic"

    def prepare(self):
        d = os.path.join(B.PROGRAMS, "synthetic")
        os.makedirs(d, exist_ok=True)
        os.chmod(B.PROGRAMS, 0o755)
        path = os.path.join(d, "standin.bin")
        size, code = SYNTHETIC["file_mib"] * B.MiB, SYNTHETIC["code_mib"] * B.MiB
        if not (os.path.exists(path) and os.path.getsize(path) == size
                and open(path, "rb").read(1) == b"\xc3"):
            data = bytearray(os.urandom(size))
            data[0:code:B.PAGE] = b"\xc3" * (code // B.PAGE)
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o755)
            os.rename(tmp, path)
        self.files = [path]
        self.path = path

    def describe(self):
        S = SYNTHETIC
        return (f"synthetic: bench/standin.c on a {S['file_mib']} MiB file, its first "
                f"{S['code_mib']} MiB mapped r-x (calls into {S['code_ws']} MiB chunks each round), "
                f"the rest r-- (reads a word of each page of {S['data_ws']} MiB chunks of it): "
                f"a {S['ws_mib']} MiB working set")

    def start(self, cg):
        S = SYNTHETIC
        return Rounds([os.path.join(B.HELPERS, "standin"), "-g", cg.procs,
                       "-p", str(P["period_ms"]), "-d", "120", "-w", str(WARM_ROUNDS),
                       "-c", str(S["code_mib"]), self.path, S["code_ws"], S["data_ws"]])


class Python:
    """The Debian Python interpreter (BENCH_PYTHON, /usr/bin/python3) running bench/realprog.py.
    The interpreter, the extension modules it loads and the libraries they need (all but glibc's,
    which every process shares) are copied under BENCH_PROGRAM_DIR: the copies are inodes that
    no other process maps, so the bench can evict them and the hog can take them, as for a
    program nothing else on the machine runs. Same bytes, same mappings, same work."""
    name = "python"
    # glibc's objects are mapped by every process: they are never cold, and not this program's.
    SHARED = re.compile(r"/(ld-linux[^/]*|libc\.so[^/]*|libm\.so[^/]*|gconv/[^/]*|locale/.*)$")

    def __init__(self):
        self.system = os.path.realpath(os.environ.get("BENCH_PYTHON", "/usr/bin/python3"))
        self.script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "realprog.py")
        self.dir = os.path.join(B.PROGRAMS, "python")

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LD_"))}
        env.update(PYTHONHOME="/usr", PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPATH=os.path.join(self.dir, "lib-dynload"),
                   LD_LIBRARY_PATH=os.path.join(self.dir, "lib"), LC_ALL="C.UTF-8")
        return env

    def _probe(self, python, env=None):
        out = subprocess.run([python, "-S", self.script, "--probe"], env=env,
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"{python} {self.script} --probe failed: {out.stderr.strip()}")
        return [line[4:] for line in out.stdout.splitlines() if line.startswith("map ")]

    def prepare(self):
        """Copies what the system interpreter maps for realprog.py (once; again when a source
        changed), then checks that the copy maps only copies and glibc."""
        bindir, dyn, lib = (os.path.join(self.dir, x) for x in ("bin", "lib-dynload", "lib"))
        for d in (bindir, dyn, lib):
            os.makedirs(d, exist_ok=True)
        for d in (B.PROGRAMS, self.dir, bindir, dyn, lib):
            os.chmod(d, 0o755)
        self.python = os.path.join(bindir, os.path.basename(self.system))
        for src in self._probe(self.system, env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}):
            if self.SHARED.search(src):
                continue
            if os.path.realpath(src) == self.system:
                dst = self.python
            elif "/lib-dynload/" in src:
                dst = os.path.join(dyn, os.path.basename(src))
            else:
                dst = os.path.join(lib, os.path.basename(src))
                # The loader looks the library up by its soname (libz.so.1), not its file name.
                soname = soname_of(src)
                if soname and soname != os.path.basename(src):
                    link = os.path.join(lib, soname)
                    if not os.path.islink(link):
                        if os.path.lexists(link):
                            os.unlink(link)
                        os.symlink(os.path.basename(src), link)
            st = os.stat(src)
            if not (os.path.exists(dst) and os.path.getsize(dst) == st.st_size
                    and os.stat(dst).st_mtime == st.st_mtime):
                shutil.copy2(src, dst + ".tmp")
                with open(dst + ".tmp", "rb") as f:
                    os.fsync(f.fileno())
                os.rename(dst + ".tmp", dst)
            os.chmod(dst, 0o755)
        mapped = self._probe(self.python, env=self._env())
        foreign = [m for m in mapped if not m.startswith(self.dir + "/") and not self.SHARED.search(m)]
        if foreign:
            raise RuntimeError(f"the copied interpreter still maps files outside {self.dir}: "
                               f"{', '.join(foreign)}")
        self.files = [m for m in mapped if m.startswith(self.dir + "/")]

    def describe(self):
        return (f"python: {self.system} (copied to {self.dir} with the {len(self.files) - 1} "
                f"extension modules and libraries it maps) running bench/realprog.py: Unicode "
                f"database look-ups, normalization and case mapping, CJK and other codecs, re, "
                f"json, zlib/bz2/lzma, hashlib (libcrypto), decimal every round")

    def start(self, cg):
        # The shell joins the cgroup and then becomes the interpreter, so that everything the
        # interpreter faults in is charged to the cgroup.
        return Rounds(["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cg.procs, self.python,
                       "-S", self.script, "-p", str(P["period_ms"]), "-d", "120",
                       "-w", str(WARM_ROUNDS)], env=self._env())


def soname_of(path):
    out = subprocess.run(["objdump", "-p", path], capture_output=True, text=True).stdout
    m = re.search(r"^\s*SONAME\s+(\S+)", out, re.M)
    return m.group(1) if m else None


PROGRAMS = {"synthetic": Synthetic, "python": Python}


def working_set(pid, files):
    """Resident bytes of the program's own files in its mappings: code (r-x), read-only data
    (r--) and the rest (private writable)."""
    m = B.smaps_by_file(pid, files) or {}
    out = {"code": 0, "rodata": 0, "other": 0}
    for (_, perms), v in m.items():
        kind = "code" if "x" in perms else "rodata" if perms.startswith("r-") else "other"
        out[kind] += v["rss"]
    return out


# --- the hog and the lockers -------------------------------------------------------------------

class Hog:
    def __init__(self, cg):
        self.proc = B.Child(
            [os.path.join(B.HELPERS, "hog"), "-g", cg.procs, "-o", "1000", str(P["hog_step_mib"]),
             str(P["hog_period_ms"]), str(P["hog_max_mib"])], stdout=subprocess.PIPE, text=True)
        self.start_ns = None
        self.held_mib = 0
        self.steps = []            # (monotonic ns, MiB held)
        self.end = None            # monotonic time it was reaped
        self.started = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if f[0] == "start":
                self.start_ns = int(f[1])
                self.started.set()
            else:
                self.held_mib = int(f[1])
                self.steps.append((int(f[0]), self.held_mib))
        self.proc.wait()
        self.end = time.monotonic()
        self.started.set()


class Locker:
    """A peer or prelockd, started outside the cgroup under test. The peers lock the program's
    own files whole, as their users would list them; prelockd runs on the shipped config."""

    def __init__(self, scenario, files, workdir):
        self.scenario, self.files, self.proc, self.daemon = scenario, files, None, None
        self.size = sum(os.path.getsize(f) for f in files)
        if scenario == "vmtouch":
            self.log = open(os.path.join(workdir, "vmtouch.log"), "w")
            self.proc = B.Child([B.tool_path("vmtouch"), "-l"] + files,
                                stdout=self.log, stderr=subprocess.STDOUT)
        elif scenario == "memlockd":
            cfg = os.path.join(workdir, "memlockd.cfg")
            with open(cfg, "w") as f:
                f.writelines(p + "\n" for p in files)
            self.log = open(os.path.join(workdir, "memlockd.log"), "w")
            self.proc = B.Child([B.tool_path("memlockd"), "-d", "-c", cfg],
                                stdout=self.log, stderr=subprocess.STDOUT)
        elif scenario.startswith("prelockd-"):
            what = DAEMON_MODES[scenario]
            self.daemon = B.Prelockd(os.path.join(workdir, scenario),
                                     {"what": what} if what else None)
            self.proc = self.daemon.proc

    def wait_locked(self, timeout=30):
        """Waits until the program's files are locked; returns a note on failure, else None."""
        if self.daemon:
            if self.daemon.wait_ready(timeout) is None:
                return "prelockd never sent READY=1"
            # The first pass saw the warm program; one more, as a periodic rescan would do.
            if not self.daemon.rescan(timeout):
                return "prelockd did not finish the SIGUSR1 pass"
            if self.daemon.locked_bytes(self.files) <= 0:
                return "prelockd did not lock the program's files"
            return None
        ok = B.wait_for(lambda: (B.proc_status(self.proc.pid, "VmLck") or 0) >= self.size, timeout)
        if not ok:
            return f"{self.scenario} did not lock the files (VmLck " \
                   f"{(B.proc_status(self.proc.pid, 'VmLck') or 0) // B.MiB} MiB)"
        return None

    def notes(self):
        """What the daemon said it could not do (a fallback), once per kind."""
        if not self.daemon:
            return []
        out = []
        if self.daemon.log_lines(r"cannot read \S*pagemap"):
            out.append("pagemap unreadable: resident fell back to what processes map")
        return out

    def stop(self):
        if self.daemon:
            self.daemon.stop()
        elif self.proc:
            B.stop(self.proc)
            self.log.close()


# --- one run -----------------------------------------------------------------------------------

def summarize_rounds(rounds, t0_ns, window_s):
    w = [r for r in rounds if t0_ns <= r[0] < t0_ns + window_s * 1e9]
    lat = [r[1] / 1e6 for r in w]
    return {
        "rounds": len(w),
        "p50_ms": B.percentile(lat, 50), "p99_ms": B.percentile(lat, 99),
        "max_ms": max(lat) if lat else None,
        "majflt_rounds": sum(r[2] for r in w),
        "rounds_over_50ms": sum(1 for x in lat if x > 50),
        "rounds_over_100ms": sum(1 for x in lat if x > 100),
    }


def daemon_pass(locker):
    return ((locker.daemon.status() or {}).get("pass", 0)) if locker and locker.daemon else None


def locked_numbers(locker, files, cg, mlocked0):
    """How much is locked, seen four ways: what the locker holds locked of the program's own files
    (its smaps; comparable between lockers whatever else prelockd locks on the machine with its
    shipped include), what prelockd's status file says of them, the machine's Mlocked delta, and
    what counts against the cgroup."""
    out = {"machine_mlocked_mib": round((B.meminfo("Mlocked") - mlocked0) / B.MiB, 1),
           "locked_mib": round((B.locked_rss_of(locker.proc.pid, files) or 0) / B.MiB, 1)
           if locker else 0.0,
           "cgroup_unevictable_mib": round(cg.unevictable() / B.MiB, 1)}
    if locker and locker.daemon:
        out["status_locked_mib"] = round(locker.daemon.locked_bytes(files) / B.MiB, 1)
    return out


def hog_outcome(hog, t0_ns):
    if not hog:
        return {"hog_fate": "no hog"}
    out = {"hog_mib_at_end": hog.held_mib}
    if hog.end is not None and hog.proc.returncode == -9:
        out.update(hog_fate="OOM-killed", oom_after_s=round(hog.end - t0_ns / 1e9, 2))
    elif hog.end is not None:
        out["hog_fate"] = f"exited {hog.proc.returncode}"
    else:
        out["hog_fate"] = "alive at window end"
    return out


class Sampler:
    """While the window runs: every 20 ms the cgroup's usage and its count of refaulted file pages
    (memory.stat workingset_refault_file: pages evicted and read back), to set the daemon's
    pressure passes against when the cgroup reached its limit and when its file pages began to be
    evicted and read back. Not the pressure file: reading /proc/pressure/memory folds the stall
    totals into the averages without checking triggers (psi_show), which delays or swallows an
    unprivileged trigger's event (bench/psidelay.py measures it); BENCH_SAMPLE_PSI=1 reads it
    all the same, for a look at the totals."""

    def __init__(self, cg, period=0.02):
        self.cg, self.period, self.samples = cg, period, []
        self.psi_too = os.environ.get("BENCH_SAMPLE_PSI") == "1"
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def psi():
        try:
            with open("/proc/pressure/memory") as f:
                v = {}
                for line in f:
                    k, *kv = line.split()
                    v[k] = int(dict(x.split("=") for x in kv)["total"])
                return v.get("some")
        except (OSError, ValueError, KeyError):
            return None

    def _run(self):
        while not self.stop_ev.is_set():
            some = self.psi() if self.psi_too else None
            try:
                usage = self.cg.usage()
                refault = self.cg.stat().get("workingset_refault_file")
            except (OSError, ValueError):
                usage = refault = None
            self.samples.append((time.monotonic_ns(), some, refault, usage))
            self.stop_ev.wait(self.period)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(1)


def pressure_timing(samples, t0_ns, limit_bytes, window_us=2000000, threshold_us=50000):
    """From the sampler: seconds from t0 until the cgroup first came within 1 MiB of its limit,
    and until its file pages were first refaulted (evicted, then read back). With
    BENCH_SAMPLE_PSI=1 also when stalls (PSI some) first grew, and first grew by the daemon's
    trigger threshold within its window."""
    out = {"limit_reached_s": None, "refaults_began_s": None}
    before = [x for x in samples if x[0] <= t0_ns] or samples[:1]
    some0 = before[-1][1] if before else None
    ref0 = before[-1][2] if before else None
    if some0 is not None:
        out.update(stall_began_s=None, stall_threshold_s=None)
    for i, (t, some, refault, usage) in enumerate(samples):
        if t < t0_ns:
            continue
        rel = round((t - t0_ns) / 1e9, 3)
        if out["limit_reached_s"] is None and usage is not None and \
                usage >= limit_bytes - B.MiB:
            out["limit_reached_s"] = rel
        if out["refaults_began_s"] is None and refault is not None and ref0 is not None and \
                refault > ref0:
            out["refaults_began_s"] = rel
        if some is None or some0 is None:
            continue
        if out["stall_began_s"] is None and some > some0:
            out["stall_began_s"] = rel
        if out["stall_threshold_s"] is None:
            back = [x for x in samples[:i + 1] if x[0] >= t - window_us * 1000 and x[1] is not None]
            if back and some - back[0][1] >= threshold_us:
                out["stall_threshold_s"] = rel
    return out


STAMP = re.compile(r"^\[(\d+\.\d+)\] ")


def daemon_timing(daemon, t0_ns, t_end_ns):
    """From the daemon's timestamped log: when (seconds from t0, the line's arrival: the end of
    a pass) it noticed pressure and ran pressure passes, and what those passes did."""
    out = {"pressure_notice_s": None, "pressure_passes": []}
    try:
        with open(daemon.log_path) as f:
            lines = f.readlines()
    except OSError:
        return out
    for line in lines:
        m = STAMP.match(line)
        if not m:
            continue
        t = float(m.group(1)) * 1e9
        if t < t0_ns or t > t_end_ns:
            continue
        rel = round((t - t0_ns) / 1e9, 3)
        if "memory pressure: stalls began" in line and out["pressure_notice_s"] is None:
            out["pressure_notice_s"] = rel
        pm = B.PASS_LINE.search(line)
        if pm and "(pressure)" in line:
            out["pressure_passes"].append({"end_s": rel, "cpu_ms": int(pm.group(8)),
                                           "wall_ms": int(pm.group(11)),
                                           "processes": int(pm.group(5)),
                                           "read": int(pm.group(6))})
    return out


def first_fault_s(rounds, t0_ns, window_s):
    """Start of the first round in the window with a major fault (seconds from t0)."""
    for r in rounds:
        if t0_ns <= r[0] < t0_ns + window_s * 1e9 and r[2] > 0:
            return round((r[0] - t0_ns) / 1e9, 3)
    return None


def one_run(program, scenario, rep, workdir):
    # A directory per run: the logs of every run are kept (BENCH_DIR/work/...).
    workdir = os.path.join(workdir, f"{program.name}-{scenario}-{rep}")
    os.makedirs(workdir, exist_ok=True)
    cg = B.Cgroup(f"prelockd-bench-{os.getpid()}", P["limit_mib"] * B.MiB)
    late = scenario == "prelockd-late"
    locker = hog = s = sampler = None
    run = {"program": program.name, "scenario": scenario, "rep": rep, "cgroup": cg.mode,
           "note": ""}
    notes = []
    try:
        mlocked0 = B.meminfo("Mlocked")
        if late:
            # The daemon first: its start-up passes are over before the program exists.
            locker = Locker(scenario, program.files, workdir)
            if locker.daemon.wait_ready(30) is None:
                notes.append("prelockd never sent READY=1")
            B.wait_sleeping(locker.daemon.pid)
        for f in program.files:
            B.evict(f)
        run["cached_at_start_kib"] = B.cached_bytes(program.files) // 1024
        if run["cached_at_start_kib"] > 1024:
            # Eviction drops only pages no one maps or locks: someone else holds these.
            notes.append(f"{run['cached_at_start_kib']} KiB of its files stayed cached after "
                         f"eviction (another process maps or locks them)")
        pass_at_start = daemon_pass(locker)
        s = program.start(cg)
        if not s.ready.wait(30) or s.proc.poll() is not None:
            raise RuntimeError(f"{program.name} did not get ready (exit {s.proc.poll()})")
        ws = working_set(s.pid, program.files)
        run["ws_code_mib"] = round(ws["code"] / B.MiB, 1)
        run["ws_rodata_mib"] = round(ws["rodata"] / B.MiB, 1)
        time.sleep(P["late_gap_s"] if late else P["settle_s"])
        run["cgroup_before_hog_mib"] = round(cg.usage() / B.MiB, 1)
        if scenario not in ("none", "baseline") and not late:
            locker = Locker(scenario, program.files, workdir)
            note = locker.wait_locked()
            if note:
                notes.append(note)
            time.sleep(0.2)
        run.update(locked_numbers(locker, program.files, cg, mlocked0))
        run["daemon_pass_before_hog"] = daemon_pass(locker)
        sampler = Sampler(cg)
        time.sleep(0.05)            # a sample or two before the hog: the base of the totals
        if scenario == "baseline":
            t0 = time.monotonic_ns()
        else:
            hog = Hog(cg)
            hog.started.wait(10)
            t0 = hog.start_ns or time.monotonic_ns()
        flt0 = B.majflt(s.pid)
        end = t0 / 1e9 + P["window_s"]
        while time.monotonic() < end and s.proc.poll() is None:
            time.sleep(0.05)
        flt1 = B.majflt(s.pid)
        sampler.stop()
        if scenario != "baseline":
            run.update(pressure_timing(sampler.samples, t0, P["limit_mib"] * B.MiB))
        if locker and locker.daemon:
            dt = daemon_timing(locker.daemon, t0, t0 + P["window_s"] * 1e9)
            pp = dt["pressure_passes"]
            run["pressure_notice_s"] = dt["pressure_notice_s"]
            run["first_pressure_pass_s"] = pp[0]["end_s"] if pp else None
            run["first_pressure_pass_wall_ms"] = pp[0]["wall_ms"] if pp else None
            run["pressure_passes_in_window"] = len(pp)
            run["pressure_pass_ends_s"] = " ".join(f"{x['end_s']:.2f}" for x in pp)
        # Major faults in the window from /proc/PID/stat: faults outside the timed part of a
        # round (the interpreter's loop, its sleep) count too.
        run["majflt"] = flt1 - flt0 if flt0 is not None and flt1 is not None else None
        run.update(hog_outcome(hog, t0))
        run["program_fate"] = "OOM-killed" if s.proc.poll() == -9 else "alive"
        run["oom_kills"] = cg.oom_kills() - cg.oom_kills0
        run["cgroup_peak_mib"] = round((cg.peak() or 0) / B.MiB, 1)
        if locker and locker.daemon:
            p_end = daemon_pass(locker)
            run["daemon_passes_in_run"] = p_end - (pass_at_start if late else
                                                   run["daemon_pass_before_hog"])
            notes += locker.notes()
    finally:
        if sampler:
            sampler.stop()
        if hog:
            B.stop(hog.proc, timeout=2)
        if s:
            B.stop(s.proc)
        if locker:
            locker.stop()
        cg.remove()
    run["note"] = "; ".join(notes)
    run.update(summarize_rounds(s.rounds, t0, P["window_s"]))
    run["first_majflt_s"] = first_fault_s(s.rounds, t0, P["window_s"])
    if run["majflt"] is None:   # the program died in the window: what its rounds saw
        run["majflt"] = run["majflt_rounds"]
    # The trace for the plot: from the end of the warm-up (the cold first rounds read the files).
    run["round_trace"] = [((r[0] - t0) / 1e9, r[1] / 1e6, r[2]) for r in s.rounds[WARM_ROUNDS:]]
    run["hog_trace"] = [((ns - t0) / 1e9, mib) for ns, mib in hog.steps] if hog else []
    return run


def prepare_programs():
    progs = []
    for name in P["programs"]:
        p = PROGRAMS[name]()
        p.prepare()
        progs.append(p)
    return progs


def run_all(workdir, progs):
    runs = []
    for rep in range(1, P["reps"] + 1):
        for prog in progs:
            for sc in SCENARIOS:      # interleaved, so that drift spreads over all scenarios
                t = time.monotonic()
                try:
                    r = one_run(prog, sc, rep, workdir)
                except (RuntimeError, OSError) as e:
                    B.log(f"  pressure {prog.name:9} {sc:18} rep {rep}: FAILED: {e}")
                    runs.append({"program": prog.name, "scenario": sc, "rep": rep,
                                 "note": f"failed: {e}", "round_trace": []})
                    continue
                runs.append(r)
                B.log(f"  pressure {prog.name:9} {sc:18} rep {rep}: p99 {B.fmt(r['p99_ms'], 2)} ms, "
                      f"max {B.fmt(r['max_ms'], 1)} ms, {r['majflt']} major faults, hog "
                      f"{r['hog_fate']}"
                      f"{' after %.2f s' % r['oom_after_s'] if 'oom_after_s' in r else ''}, "
                      f"locked {r['locked_mib']} MiB of its files; working set "
                      f"{r['ws_code_mib']} MiB code + {r['ws_rodata_mib']} MiB read-only data "
                      f"({time.monotonic() - t:.1f} s){'; ' + r['note'] if r['note'] else ''}"
                      + (f"\n      timing from the hog's start (s): cgroup at its limit "
                         f"{B.fmt(r.get('limit_reached_s'), 2)}, its file pages refaulted "
                         f"from {B.fmt(r.get('refaults_began_s'), 2)}, first major fault "
                         f"{B.fmt(r.get('first_majflt_s'), 2)}, daemon's pressure notice "
                         f"{B.fmt(r.get('pressure_notice_s'), 2)}, pressure passes ended at "
                         f"[{r.get('pressure_pass_ends_s') or ''}]"
                         if r["scenario"].startswith("prelockd") else ""))
    return runs


# --- summaries ---------------------------------------------------------------------------------

def by_scenario(runs):
    """{program: {scenario: medians and worst cases}}."""
    out = {}
    for prog in P["programs"]:
        for sc in SCENARIOS:
            rs = [r for r in runs if r["program"] == prog and r["scenario"] == sc
                  and r.get("p99_ms") is not None]
            if not rs:
                continue
            ooms = [r.get("oom_after_s") for r in rs if r.get("oom_after_s") is not None]
            out.setdefault(prog, {})[sc] = {
                "reps": len(rs),
                "p50_ms": B.median([r["p50_ms"] for r in rs]),
                "p99_ms": B.median([r["p99_ms"] for r in rs]),
                "p99_worst_ms": max(r["p99_ms"] for r in rs),
                "max_ms": B.median([r["max_ms"] for r in rs]),
                "worst_ms": max(r["max_ms"] for r in rs if r["max_ms"] is not None),
                "majflt": B.median([r["majflt"] for r in rs]),
                "majflt_max": max(r["majflt"] for r in rs),
                "rounds_over_50ms": B.median([r["rounds_over_50ms"] for r in rs]),
                "oom_kills": B.median([r.get("oom_kills", 0) for r in rs]),
                "hog_killed": sum(1 for r in rs if r.get("hog_fate") == "OOM-killed"),
                "program_killed": sum(1 for r in rs if r.get("program_fate") == "OOM-killed"),
                "oom_after_s": B.median(ooms),
                "locked_mib": B.median([r["locked_mib"] for r in rs]),
                "machine_mlocked_mib": B.median([r["machine_mlocked_mib"] for r in rs]),
                "cgroup_unevictable_mib": B.median([r["cgroup_unevictable_mib"] for r in rs]),
                "ws_code_mib": B.median([r["ws_code_mib"] for r in rs]),
                "ws_rodata_mib": B.median([r["ws_rodata_mib"] for r in rs]),
                "daemon_passes_in_run": B.median([r.get("daemon_passes_in_run") for r in rs]),
                "notes": sorted({r["note"] for r in rs if r["note"]}),
            }
    return out


def tables(summary, prog):
    s_all = summary.get(prog, {})
    base = s_all.get("baseline", {})
    rows = []
    for sc, s in s_all.items():
        hog = "–" if sc == "baseline" else f"OOM-killed {s['hog_killed']}/{s['reps']}"
        if s["program_killed"]:
            hog += f"; program killed {s['program_killed']}/{s['reps']}"
        rows.append([sc, B.fmt(s["p50_ms"], 2), B.fmt(s["p99_ms"], 2), B.fmt(s["max_ms"], 1),
                     B.fmt(s["worst_ms"], 1), B.fmt(s["majflt"], 0), B.fmt(s["majflt_max"], 0),
                     B.fmt(s["rounds_over_50ms"], 0), B.fmt(s["oom_kills"], 0), hog,
                     B.fmt(s["oom_after_s"], 2), B.fmt(s["locked_mib"], 1),
                     B.fmt(s["cgroup_unevictable_mib"], 1),
                     B.ratio(s["p99_ms"], base.get("p99_ms")),
                     B.fmt(s["daemon_passes_in_run"], 0)])
    t1 = B.md_table(["locker", "p50 ms", "p99 ms", "max ms", "worst max ms", "major faults",
                     "worst major faults", "rounds > 50 ms", "OOM kills", "hog",
                     "hog start → OOM kill s", "locked of its files MiB",
                     "unevictable in cgroup MiB", "p99 vs baseline",
                     "prelockd passes during the run"], rows)
    rows = []
    for sc in ("prelockd-resident", "prelockd-late", "prelockd-mapped", "prelockd-whole"):
        if sc not in s_all:
            continue
        s = s_all[sc]
        for peer in ("baseline", "none", "vmtouch", "memlockd"):
            if peer not in s_all:
                continue
            q = s_all[peer]
            lockers = peer not in ("none", "baseline")
            rows.append([sc, peer, B.ratio(s["p99_ms"], q["p99_ms"]),
                         B.ratio(s["max_ms"], q["max_ms"]),
                         B.fmt(s["majflt"] - q["majflt"], 0),
                         B.ratio(s["oom_after_s"], q["oom_after_s"]),
                         B.ratio(s["locked_mib"], q["locked_mib"]) if lockers else "–"])
    t2 = B.md_table(["prelockd", "against", "p99 ratio", "max ratio", "major faults Δ",
                     "time to OOM ratio", "locked MiB ratio"], rows)
    return t1, t2


def targets(summary):
    """Issue 11's targets for each program: [{group, target, measured, limit, met}]."""
    out = []

    def add(group, target, measured, limit, met):
        out.append({"group": group, "target": target, "measured": measured, "limit": limit,
                    "met": bool(met)})

    for prog, s in summary.items():
        base = s.get("baseline")
        if not base:
            continue
        res = s.get("prelockd-resident")
        if res:
            g = f"pressure, {prog}, running before the last pass"
            add(g, "major faults <= unpressured + 3 (worst run)",
                f"{res['majflt_max']:.0f} (median {res['majflt']:.0f})",
                f"{base['majflt_max']:.0f} + 3", res["majflt_max"] <= base["majflt_max"] + 3)
            add(g, "no round over 50 ms (slowest of all runs)", f"{res['worst_ms']:.1f} ms",
                "50 ms", res["worst_ms"] <= 50)
            add(g, "p99 <= 1.5 x unpressured p99 (medians)", f"{res['p99_ms']:.2f} ms",
                f"{1.5 * base['p99_ms']:.2f} ms", res["p99_ms"] <= 1.5 * base["p99_ms"])
            add(g, "hog OOM-killed in every run, program never",
                f"{res['hog_killed']}/{res['reps']}, program {res['program_killed']}",
                f"{res['reps']}/{res['reps']}, 0",
                res["hog_killed"] == res["reps"] and not res["program_killed"])
            # Locking less counts only with the same protection: locking nothing is not a win.
            protected = all(t["met"] for t in out if t["group"] == g)
            for peer in ("vmtouch", "memlockd"):
                if peer in s and s[peer]["locked_mib"]:
                    add(g, f"locks at most half what {peer} locks for it, with the protection "
                           f"above",
                        f"{res['locked_mib']:.1f} MiB ({res['locked_mib'] / s[peer]['locked_mib']:.2f}x)"
                        + ("" if protected else "; protection NOT MET"),
                        f"{0.5 * s[peer]['locked_mib']:.1f} MiB",
                        protected and res["locked_mib"] <= 0.5 * s[peer]["locked_mib"])
        late = s.get("prelockd-late")
        if late:
            g = f"pressure, {prog}, started after the last pass"
            add(g, "hog OOM-killed in every run, program never",
                f"{late['hog_killed']}/{late['reps']}, program {late['program_killed']}",
                f"{late['reps']}/{late['reps']}, 0",
                late["hog_killed"] == late["reps"] and not late["program_killed"])
            add(g, "no round over 100 ms (slowest of all runs)", f"{late['worst_ms']:.1f} ms",
                "100 ms", late["worst_ms"] <= 100)
            add(g, "major faults <= unpressured + 20 (worst run)",
                f"{late['majflt_max']:.0f} (median {late['majflt']:.0f})",
                f"{base['majflt_max']:.0f} + 20", late["majflt_max"] <= base["majflt_max"] + 20)
    return out


def representative(runs, prog, sc):
    """The repetition whose p99 is the median of its scenario's: the one plotted."""
    rs = sorted((r for r in runs if r["program"] == prog and r["scenario"] == sc
                 and r.get("p99_ms") is not None), key=lambda r: r["p99_ms"])
    return rs[len(rs) // 2] if rs else None


def plot(runs, prog, png, datadir):
    """Round latency over time, one panel per locker, from each one's representative run."""
    os.makedirs(datadir, exist_ok=True)
    panels = []
    for sc in SCENARIOS:
        r = representative(runs, prog, sc)
        if not r:
            continue
        dat = os.path.join(datadir, f"latency-{prog}-{sc}.dat")
        with open(dat, "w") as f:
            f.write("# seconds since hog start, round latency ms, major faults\n")
            for t, lat, maj in r["round_trace"]:
                if t <= P["window_s"]:
                    f.write(f"{t:.3f} {lat:.3f} {maj}\n")
        hog_dat = None
        if r.get("hog_trace"):
            hog_dat = os.path.join(datadir, f"hog-{prog}-{sc}.dat")
            with open(hog_dat, "w") as f:
                f.write("# seconds since hog start, MiB the hog holds\n")
                f.write("0 0\n")
                for t, mib in r["hog_trace"]:
                    f.write(f"{t:.3f} {mib}\n")
                if r.get("oom_after_s") is not None:
                    f.write(f"{r['oom_after_s']:.3f} {r['hog_trace'][-1][1]}\n"
                            f"{r['oom_after_s']:.3f} 0\n{P['window_s']} 0\n")
        panels.append((sc, r, dat, hog_dat))
    if not panels:
        return None
    rows = (len(panels) + 1) // 2
    lim = P["limit_mib"]
    gp = [f"set terminal pngcairo size 1400,{300 * rows + 80} font 'DejaVu Sans,11'",
          f"set output '{os.path.abspath(png)}'",
          f"set multiplot layout {rows},2 title \"{prog}: round latency under memory pressure "
          f"(cgroup limit {lim} MiB, hog +{P['hog_step_mib']} MiB/{P['hog_period_ms']} ms)\\n"
          f"blue: round latency (left axis); grey: MiB the hog holds (right axis); red: hog "
          f"OOM-killed; dashed: 50 ms\" font ',13'",
          "set logscale y", "set yrange [0.1:10000]", f"set xrange [-1:{P['window_s']}]",
          "set ytics ('0.1' 0.1, '1' 1, '10' 10, '50' 50, '100' 100, '1000' 1000, '10000' 10000)",
          "set grid ytics xtics lc rgb '#dddddd'", "set key off",
          "set xlabel 'seconds since the hog started'", "set ylabel 'round latency (ms)'",
          "set lmargin 10", "set rmargin 8",
          f"set y2range [0:{lim * 1.25:.0f}]", "set y2tics 16 textcolor rgb '#777777'",
          "set y2label 'hog MiB' textcolor rgb '#777777'",
          f"set label 1 'cgroup limit' at graph 0.01, second {lim + 2} "
          f"textcolor rgb '#999999' font ',9'"]
    for sc, r, dat, hog_dat in panels:
        gp.append("unset arrow")
        if r.get("oom_after_s") is not None:
            gp.append(f"set arrow from {r['oom_after_s']},0.1 to {r['oom_after_s']},10000 nohead "
                      f"lc rgb 'red' lw 2")
        gp.append("set arrow from -1,50 to %s,50 nohead dt 2 lc rgb '#888888'" % P["window_s"])
        gp.append(f"set arrow from graph 0, second {lim} to graph 1, second {lim} nohead dt 3 "
                  f"lc rgb '#bbbbbb'")
        title = (f"{LOCKERS[sc]}: p99 {B.fmt(r['p99_ms'], 1)} ms, max {B.fmt(r['max_ms'], 1)} ms, "
                 f"{r['majflt']} major faults, {r['locked_mib']:.0f} MiB locked")
        gp.append(f"set title \"{title}\"")
        hog = (f"'{os.path.basename(hog_dat)}' using 1:2 axes x1y2 with steps lw 2 "
               f"lc rgb '#bbbbbb', " if hog_dat else "")
        gp.append(f"plot {hog}'{os.path.basename(dat)}' using 1:2 with linespoints pt 7 ps 0.4 "
                  f"lw 1 lc rgb '#1f5fa8'")
    gp.append("unset multiplot")
    script = os.path.join(datadir, f"latency-{prog}.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    subprocess.run([B.tool_path("gnuplot"), os.path.basename(script)], cwd=datadir, check=True)
    return script


def write_results(runs, results):
    os.makedirs(results, exist_ok=True)
    cols = ["program", "scenario", "rep", "cgroup", "rounds", "p50_ms", "p99_ms", "max_ms",
            "majflt", "majflt_rounds", "rounds_over_50ms", "rounds_over_100ms", "oom_kills",
            "hog_fate", "oom_after_s", "hog_mib_at_end", "program_fate", "locked_mib",
            "status_locked_mib", "machine_mlocked_mib", "cgroup_unevictable_mib",
            "cgroup_before_hog_mib", "cgroup_peak_mib", "cached_at_start_kib", "ws_code_mib",
            "ws_rodata_mib", "daemon_pass_before_hog", "daemon_passes_in_run", "limit_reached_s",
            "refaults_began_s", "stall_began_s", "stall_threshold_s", "pressure_notice_s",
            "first_pressure_pass_s",
            "first_pressure_pass_wall_ms", "pressure_passes_in_window", "pressure_pass_ends_s",
            "first_majflt_s", "note"]
    with open(os.path.join(results, "pressure-runs.csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for r in runs:
            f.write(",".join(str(r.get(c, "")).replace(",", ";") for c in cols) + "\n")
    with open(os.path.join(results, "pressure-rounds.csv"), "w") as f:
        f.write("program,scenario,rep,t_s,latency_ms,majflt\n")
        for r in runs:
            for t, lat, maj in r["round_trace"]:
                f.write(f"{r['program']},{r['scenario']},{r['rep']},{t:.4f},{lat:.4f},{maj}\n")
