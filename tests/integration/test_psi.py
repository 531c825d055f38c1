#!/usr/bin/env python3
"""Memory pressure (src/psi.c) on the real kernel, through tests/helpers/psiwatch.

(a) How psi_open() goes: a trigger on a kernel from 6.5 (or with CAP_SYS_RESOURCE); an
    unprivileged window that is not a multiple of 2 s refused with EINVAL and read instead; under
    tests/helpers/nopsi the open for writing fails with EPERM as on 6.1 without CAP_SYS_RESOURCE,
    and the file is read instead; with /proc/pressure hidden (as ProcSubset=pid hides it) the root
    cgroup's memory.pressure is used, and with that hidden too there is none, said as ENOENT.
(b) nopsi itself: it refuses O_RDWR opens of existing files and nothing else.
(c) Real pressure: a memory cgroup with a 64 MiB limit, a process re-reading a 40 MiB file in it
    and a hog growing to 40 MiB of anonymous memory beside it, so the file's pages are evicted and
    refaulted without end. Watched on the pressure file of the test's own cgroup2 group (other
    work on the machine cannot touch it; where the memory controller is on v1, a cgroup2 group
    made beside the memory cgroup): the trigger, and under nopsi the fallback's reads, must see
    the episode start within a few seconds of the hog reaching its size; passes must come while
    it lasts and never closer than 1 s; the episode must end, once, after the hog is gone.
(d) The same with the trigger on /proc/pressure/memory, the file the daemon watches: the start
    and the passes are judged, not the end (other work may stall on after the hog is gone).
"""
import os
import re
import subprocess
import threading
import time

from lib import BUILD, MiB, SLOW, done, eq, ok, workdir
from pressurelib import HOG, READER, memory_cgroup, remove_cgroup

PSIWATCH = os.path.join(BUILD, "helpers", "psiwatch")
NOPSI = os.path.join(BUILD, "helpers", "nopsi")
PAGE = os.sysconf("SC_PAGE_SIZE")

FILE_SIZE = 40 * MiB
HOG_SIZE = 40 * MiB
START_WITHIN_S = 6 * SLOW  # from the hog at its size to the episode's start
QUIET_S = 10               # PSI_QUIET_USEC


def note(s):
    print(f"# {s}", flush=True)


def kernel_at_least(major, minor):
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) >= (major, minor)


def has_sys_resource():
    with open("/proc/self/status") as f:
        eff = int(re.search(r"^CapEff:\s*([0-9a-f]+)", f.read(), re.M).group(1), 16)
    return bool(eff & (1 << 24))  # CAP_SYS_RESOURCE


def psi_open(args=(), prefix=()):
    """psiwatch open: its one line as a dict."""
    out = subprocess.run(list(prefix) + [PSIWATCH] + list(args) + ["open"], capture_output=True,
                         text=True, timeout=30)
    return dict(kv.split("=", 1) for kv in out.stdout.split()), out


class Watch:
    """psiwatch watch: its lines as they come, with the time they came."""

    def __init__(self, prefix=(), args=()):
        self.proc = subprocess.Popen(list(prefix) + [PSIWATCH] + list(args) + ["watch", "120000"],
                                     stdout=subprocess.PIPE, text=True)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.split())
                self.cond.notify_all()

    def wait_for(self, pred, timeout):
        with self.cond:
            self.cond.wait_for(lambda: any(pred(f) for f in self.lines), timeout)
            return next((f for f in self.lines if pred(f)), None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def own_pressure(cg, name):
    """The pressure file of the test's own cgroup2 group: the memory cgroup's own where it is on
    cgroup2, else a cgroup2 group made beside it (PSI is kept per cgroup2 group whatever the
    controllers). Returns (file, the cgroup2 group made for it or None); file None: none."""
    if os.path.exists(os.path.join(cg, "memory.pressure")):
        return os.path.join(cg, "memory.pressure"), None
    unified = "/sys/fs/cgroup/unified"
    if not os.path.exists(os.path.join(unified, "cgroup.procs")):
        return None, None
    group = os.path.join(unified, name)
    os.mkdir(group)
    return os.path.join(group, "memory.pressure"), group


def pressure_run(label, d, prefix=(), system_wide=False):
    """system_wide: watch /proc/pressure/memory, which other work on the machine stalls too, so
    the end of the episode is not judged; else the test's own cgroup's file, judged in full."""
    name = f"prelockd-psi-{os.getpid()}"
    cg = memory_cgroup(name)
    if not cg:
        ok(True, f"{label}: pressure # SKIP no memory cgroup controller")
        return
    psi_file, group = own_pressure(cg, name)
    if not system_wide and not psi_file:
        ok(True, f"{label}: pressure # SKIP no cgroup2 group for a pressure file of its own")
        remove_cgroup(cg)
        return
    env = dict(os.environ, CG=cg)
    # Into the cgroup2 group first; the programs then join the memory cgroup themselves.
    enter = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group] if group else []
    reader = hog = w = None
    try:
        reader = subprocess.Popen(enter + ["python3", "-c", READER, os.path.join(d, "data")],
                                  env=env, stdout=subprocess.PIPE, text=True)
        ok(reader.stdout.readline().strip() == "warm", f"{label}: the reader's file is in memory")
        w = Watch(prefix, [] if system_wide else ["-f", psi_file])
        mode = w.wait_for(lambda f: f[0].startswith("mode="), 10)
        ready = w.wait_for(lambda f: f == ["ready"], 10)
        ok(ready is not None, f"{label}: psiwatch is watching ({' '.join(mode or [])})")
        # Other work stalls too (system-wide file), or a moment of this cgroup's. Said, not judged.
        time.sleep(2)
        before = sum(1 for f in w.lines if f[0] == "pressure")
        if before:
            note(f"{label}: {before} signs of pressure before the hog (other work on the machine)")

        hog_ns = time.monotonic_ns()
        hog = subprocess.Popen(enter + ["python3", "-c", HOG, str(HOG_SIZE)], env=env,
                               stdout=subprocess.PIPE, text=True)
        full = hog.stdout.readline().split()
        ok(len(full) == 2 and full[0] == "full", f"{label}: the hog holds its {HOG_SIZE // MiB} MiB")
        full_ns = int(full[1]) if len(full) == 2 else time.monotonic_ns()
        # The first sign after the hog is at its size (the start of the episode, unless other
        # work had started one already).
        seen = w.wait_for(lambda f: f[0] == "pressure" and int(f[1]) >= full_ns,
                          START_WITHIN_S + 3)
        late = (int(seen[1]) - full_ns) / 1e9 if seen else None
        ok(seen is not None and late < START_WITHIN_S,
           f"{label}: pressure seen within {START_WITHIN_S} s of the hog at its size"
           + (f" ({late:+.2f} s, by {seen[2]}, {seen[3]})" if seen else " (never)"), w.lines)
        started = next((f for f in w.lines if f[0] == "pressure" and f[3] == "started"), None)
        ok(started is not None, f"{label}: an episode started", w.lines)
        # Who told: the trigger's POLLPRI where there is one, else a read. (An episode that
        # other work started before the hog proves nothing here: said, not judged.)
        want = "trigger" if mode and "mode=trigger" in mode else "poll"
        if started and int(started[1]) >= hog_ns:
            ok(started[2] == want, f"{label}: the start came from the {want} "
               f"({(int(started[1]) - hog_ns) / 1e9:.2f} s after the hog began)", w.lines)
        elif started:
            note(f"{label}: an episode had started before the hog")

        time.sleep(5)  # pressure goes on: passes must follow, at most one a second
        passes = [int(f[1]) for f in w.lines
                  if f[0] == "pressure" and f[3] in ("started", "pass")]
        gaps = [(b - a) / 1e9 for a, b in zip(passes, passes[1:])]
        ok(len(passes) >= 3, f"{label}: passes keep coming while the pressure lasts "
           f"({len(passes)} in about 5 s)", w.lines)
        ok(all(g >= 0.999 for g in gaps), f"{label}: never two passes within 1 s "
           f"(shortest gap {min(gaps) if gaps else 0:.3f} s)", gaps)
        ok(not any(f[0] == "ended" and int(f[1]) >= full_ns for f in w.lines),
           f"{label}: no end while the pressure lasts", w.lines)
        if system_wide:
            return

        hog.kill()
        hog.wait()
        kill_ns = time.monotonic_ns()  # CLOCK_MONOTONIC, as psiwatch's times
        ended = w.wait_for(lambda f: f[0] == "ended" and int(f[1]) >= kill_ns, QUIET_S + 20)
        ok(ended is not None, f"{label}: the episode ends once the hog is gone "
           f"({(int(ended[1]) - kill_ns) / 1e9:.1f} s after)" if ended else
           f"{label}: the episode ends once the hog is gone (not within {QUIET_S + 20} s)",
           w.lines)
        starts = sum(1 for f in w.lines if f[0] == "pressure" and f[3] == "started")
        ends = sum(1 for f in w.lines if f[0] == "ended")
        eq(ends, starts, f"{label}: every episode that started ended, once")
    finally:
        for p in (hog, reader):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if w:
            w.stop()
        remove_cgroup(cg)
        if group:
            remove_cgroup(group)


d = workdir("prelockd-psi-")
try:
    # --- (a) psi_open() -------------------------------------------------------------------------
    new_kernel, priv = kernel_at_least(6, 5), has_sys_resource()
    note(f"kernel {os.uname().release}, CAP_SYS_RESOURCE {'held' if priv else 'not held'}")
    if not os.path.exists("/proc/pressure/memory"):
        ok(True, "(a) # SKIP no /proc/pressure/memory (CONFIG_PSI off or psi=0)")
    else:
        r, out = psi_open()
        want = "trigger" if new_kernel or priv else "poll"
        eq(r.get("mode"), want, "(a) default window 2 s")
        eq(r.get("path"), "/proc/pressure/memory", "(a) the /proc file first")
        if want == "poll":
            eq(r.get("trigger_error"), "-1", "(a) before 6.5 without CAP_SYS_RESOURCE: EPERM")

        r, _ = psi_open(["-w", "500000"])
        if priv:
            eq(r.get("mode"), "trigger", "(a) 0.5 s window with CAP_SYS_RESOURCE: a trigger")
        elif new_kernel:
            eq((r.get("mode"), r.get("trigger_error")), ("poll", "-22"),
               "(a) unprivileged 0.5 s window: EINVAL, read instead")

        r, _ = psi_open(prefix=[NOPSI])
        eq((r.get("mode"), r.get("trigger_error"), r.get("path")),
           ("poll", "-1", "/proc/pressure/memory"), "(a) under nopsi: EPERM, the file read")

        r, _ = psi_open(["-t", "0"])
        ok(not r, "(a) threshold 0 refused")

        # ProcSubset=pid hides /proc/pressure; an empty tmpfs over it does the same here.
        hide_proc = "mount -n -t tmpfs none /proc/pressure"
        sh = ["unshare", "-m", "--propagation", "private", "sh", "-c"]
        out = subprocess.run(sh + [f'{hide_proc} && exec "$@"', "sh", PSIWATCH, "open"],
                             capture_output=True, text=True, timeout=30)
        r = dict(kv.split("=", 1) for kv in out.stdout.split())
        ok(r.get("open_error") == "-2" and r.get("mode") in ("trigger", "poll")
           and r.get("path", "").endswith("memory.pressure"),
           "(a) /proc/pressure hidden: the root cgroup's memory.pressure instead", out.stdout)
        # The shipped unit's view: another uid (DynamicUser), /proc/pressure hidden
        # (ProcSubset=pid), the cgroup file system read-only (ProtectControlGroups=yes). The
        # root cgroup's file can be read but not written: polled, on every kernel.
        cgroot = next((r for r in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                       if os.path.exists(os.path.join(r, "memory.pressure"))), None)
        if cgroot:
            unit_view = f"{hide_proc} && mount -n -o remount,bind,ro {cgroot}"
            out = subprocess.run(sh + [f'{unit_view} && exec "$@"', "sh", "setpriv",
                                       "--reuid=65534", "--regid=65534", "--clear-groups",
                                       PSIWATCH, "open"],
                                 capture_output=True, text=True, timeout=30)
            r = dict(kv.split("=", 1) for kv in out.stdout.split())
            ok(r.get("mode") == "poll" and r.get("trigger_error") in ("-13", "-30")
               and r.get("path") == os.path.join(cgroot, "memory.pressure"),
               "(a) as the shipped unit runs it: the root cgroup's file, polled (EACCES/EROFS "
               "for the trigger)", out.stdout + out.stderr)
        hide_all = hide_proc + " && mount -n -t tmpfs none /sys/fs/cgroup"
        out = subprocess.run(sh + [f'{hide_all} && exec "$@"', "sh", PSIWATCH, "open"],
                             capture_output=True, text=True, timeout=30)
        r = dict(kv.split("=", 1) for kv in out.stdout.split())
        eq((r.get("mode"), r.get("open_error")), ("none", "-2"),
           "(a) no pressure file anywhere: none, ENOENT")

    # --- (b) nopsi --------------------------------------------------------------------------------
    probe = os.path.join(d, "probe")
    with open(probe, "w") as f:
        f.write("x")
    code = ("import os, sys\n"
            "def t(flags):\n"
            "    try:\n"
            "        os.close(os.open(sys.argv[1], flags, 0o600)); return 'ok'\n"
            "    except OSError as e:\n"
            "        return str(e.errno)\n"
            "print(t(os.O_RDWR), t(os.O_RDWR | os.O_CREAT), t(os.O_WRONLY), t(os.O_RDONLY))\n")
    out = subprocess.run([NOPSI, "python3", "-c", code, probe], capture_output=True, text=True,
                         timeout=30)
    eq(out.stdout.split(), ["1", "ok", "ok", "ok"],
       "(b) nopsi: O_RDWR of an existing file EPERM; O_CREAT, write-only, read-only pass")
    out = subprocess.run([NOPSI], capture_output=True, text=True, timeout=30)
    eq(out.returncode, 64, "(b) nopsi without a command: usage, 64")

    # --- (c) real pressure ------------------------------------------------------------------------
    with open(os.path.join(d, "data"), "wb") as f:
        f.write(os.urandom(FILE_SIZE))
    if not os.path.exists("/proc/pressure/memory"):
        ok(True, "(c) # SKIP no /proc/pressure/memory")
    else:
        first = "trigger" if new_kernel or priv else "default"
        pressure_run(f"(c) own cgroup, {first}", d)
        pressure_run("(c) own cgroup, nopsi, reading every second", d, prefix=[NOPSI])
        pressure_run(f"(d) system-wide, {first}", d, system_wide=True)
finally:
    subprocess.run(["rm", "-rf", d])
done()
