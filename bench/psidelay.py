#!/usr/bin/env python3
"""When does the daemon's memory pressure trigger fire, against when the program's pages are
evicted? Not part of `make bench`; bench/psi_latency.py and docs/pressure.md compare the ways of
watching system-wide, this sets the trigger against the program's faults.

Each trial runs the pressure benchmark's synthetic stand-in in its 64 MiB memory cgroup (the
benchmark's shape), starts watchers with the daemon's trigger ("some 50 ms in 2 s", src/psi.c,
through tests/helpers/psiwatch), then the hog in the cgroup, and records from the hog's start:
when the cgroup reached its limit, the stand-in's first major fault (its pages evicted and read
back), when each trigger fired, and when the hog was OOM-killed. Watchers: "unprivileged", as the
shipped unit runs prelockd (its uid and capabilities: on Linux 6.5+ a trigger checked only by the
kernel's 2-s averaging work), and "privileged", as root: that is a privileged trigger (the psimon
thread, every window/10) only where root has CAP_SYS_RESOURCE, which the output says ("root has
CAP_SYS_RESOURCE: no" on a VM that withholds it: then both are unprivileged).

--group: the stand-in and the hog also join a cgroup2 group of their own, and the watchers
watch that group's memory.pressure: only their stalls, none of a shared machine's other work
(which on /proc/pressure/memory starts episodes at random).

--reader-ms N: meanwhile, something else reads /proc/pressure/memory every N ms (as top, htop,
monitoring agents or prelockd's own episode reads do). Reading the file folds the totals into the
averages (psi_show -> update_averages) without looking at the triggers, which may delay or
swallow an unprivileged trigger's event. Cgroup usage is read from the memory cgroup (v1 or v2),
never from a pressure file.

    make BUILD=B B/bench/standin B/bench/hog B/helpers/psiwatch
    sudo BENCH_HELPERS=$PWD/B/bench python3 bench/psidelay.py [--group] [--reps 5]
        [--reader-ms 0,1000,20] [--watchers unprivileged,privileged] [--json FILE]

Measured on the project's VM (kernel 6.18, root without CAP_SYS_RESOURCE), --group, 5 trials
each, medians in seconds from the hog's start: cgroup at its limit 0.72, the stand-in's first
major fault 1.95, trigger 2.85 with no other reader and 2.84 with one every 1 s, the OOM kill
3.3. With a reader every 20 ms: trigger 4.86 (after the OOM kill), and missed in 1 of 4. With
--threshold-us 1000 (1 ms per 2 s): trigger 0.91 (0.85-0.96, 5 of 5 before the first fault).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import pressure  # noqa: E402


def psiwatch_path():
    return os.environ.get("BENCH_PSIWATCH",
                          os.path.join(os.path.dirname(B.HELPERS), "helpers", "psiwatch"))


V2_ROOT = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"


class PsiGroup:
    """A cgroup2 group of its own (the memory controller need not be on cgroup2: every cgroup2
    group has a memory.pressure of its own): the stand-in and the hog join it too, so that its
    triggers see their stalls and nothing else of a shared machine's."""

    def __init__(self):
        self.path = os.path.join(V2_ROOT, f"prelockd-psidelay-{os.getpid()}")
        os.makedirs(self.path, exist_ok=True)
        self.pressure = os.path.join(self.path, "memory.pressure")
        os.chown(self.pressure, B.DAEMON_UID, B.DAEMON_UID)   # the unprivileged watcher writes it

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def remove(self):
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.05)


class Watcher:
    """psiwatch watch ... once: prints how the trigger was made, "ready", then the first
    "pressure NS trigger started"."""

    def __init__(self, prefix, duration_ms, path=None, threshold_us=None):
        self.proc = B.Child(prefix + [psiwatch_path()] + (["-f", path] if path else [])
                            + (["-t", str(threshold_us)] if threshold_us else [])
                            + ["watch", str(duration_ms), "once"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.mode = None
        self.fired_ns = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if not f:
                continue
            if f[0].startswith("mode="):
                self.mode = line.strip()
            elif f[0] == "ready":
                self.ready.set()
            elif f[0] == "pressure" and self.fired_ns is None:
                self.fired_ns = int(f[1])
        self.ready.set()


def reader(path, period_s, stop):
    while not stop.is_set():
        with open(path) as f:
            f.read()
        stop.wait(period_s)


def trial(prog, reader_ms, kinds=("privileged", "unprivileged"), group=False, threshold_us=None,
          window_s=8.0):
    cg = B.Cgroup(f"prelockd-psidelay-{os.getpid()}", pressure.P["limit_mib"] * B.MiB)
    pg = PsiGroup() if group else None
    path = pg.pressure if pg else "/proc/pressure/memory"
    s = hog = None
    watchers = []
    stop = threading.Event()
    out = {"reader_ms": reader_ms, "watchers": "+".join(kinds), "threshold_us": threshold_us,
           "pressure_file": "own cgroup2 group" if pg else "system-wide"}
    try:
        for f in prog.files:
            B.evict(f)
        s = prog.start(cg)
        if pg:
            pg.add(s.pid)
        if not s.ready.wait(30):
            raise RuntimeError("the stand-in did not get ready")
        time.sleep(0.5)
        unit = B.Unit.load().prefix()[0] if B.RUN_AS == "unit" else []
        watchers = {k: Watcher([] if k == "privileged" else unit, int(window_s * 1000) + 5000,
                               path if pg else None, threshold_us)
                    for k in kinds}
        for w in watchers.values():
            w.ready.wait(10)
        out["modes"] = {k: w.mode for k, w in watchers.items()}
        if reader_ms:
            threading.Thread(target=reader, args=(path, reader_ms / 1000, stop),
                             daemon=True).start()
        time.sleep(0.3)
        hog = pressure.Hog(cg)
        if pg:
            pg.add(hog.proc.pid)
        hog.started.wait(10)
        t0 = hog.start_ns
        limit_ns = None
        end = t0 / 1e9 + window_s
        while time.monotonic() < end:
            if limit_ns is None and cg.usage() >= cg_limit() - B.MiB:
                limit_ns = time.monotonic_ns()
            if all(w.fired_ns for w in watchers.values()) and hog.end is not None:
                break
            time.sleep(0.01)

        def rel(ns):
            return round((ns - t0) / 1e9, 3) if ns is not None else None
        out["limit_reached_s"] = rel(limit_ns)
        out["first_majflt_s"] = pressure.first_fault_s(s.rounds, t0, window_s)
        out["oom_after_s"] = round(hog.end - t0 / 1e9, 3) if hog.end is not None else None
        for k, w in watchers.items():
            out[f"{k}_fired_s"] = rel(w.fired_ns)
    finally:
        stop.set()
        for w in (watchers.values() if isinstance(watchers, dict) else []):
            B.stop(w.proc, timeout=2)
        if hog:
            B.stop(hog.proc, timeout=2)
        if s:
            B.stop(s.proc)
        cg.remove()
        if pg:
            pg.remove()
    return out


def cg_limit():
    return pressure.P["limit_mib"] * B.MiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--reader-ms", default="0,1000",
                    help="comma-separated periods of a concurrent reader (0: none)")
    ap.add_argument("--watchers", default="privileged+unprivileged",
                    help="comma-separated sets of watchers per trial, each privileged, "
                    "unprivileged or both joined by +: privileged,unprivileged measures each alone")
    ap.add_argument("--group", action="store_true",
                    help="watch (and read) a cgroup2 group of the stand-in and the hog alone, not "
                    "the system-wide file that every process on a shared machine feeds")
    ap.add_argument("--threshold-us", type=int,
                    help="the trigger's threshold (default: the daemon's, 50000 per 2 s)")
    ap.add_argument("--json", help="write the trials here")
    a = ap.parse_args()
    if not os.access(psiwatch_path(), os.X_OK):
        print(f"{psiwatch_path()} is missing: make BUILD=... BUILD/helpers/psiwatch",
              file=sys.stderr)
        return 2
    lock = B.lock_bench()
    if not lock:
        return 1
    prog = pressure.PROGRAMS["synthetic"]()
    prog.prepare()
    periods = [int(x) for x in a.reader_ms.split(",")]
    B.log(f"root has CAP_SYS_RESOURCE: {'yes' if B.has_cap(B.CAP_SYS_RESOURCE) else 'no'}")
    trials = []
    sets = [tuple(x.split("+")) for x in a.watchers.split(",")]
    for rep in range(a.reps):
        for ms in periods:      # interleaved
            for kinds in sets:
                t = trial(prog, ms, kinds, a.group, a.threshold_us)
                trials.append(t)
                B.log(json.dumps({k: v for k, v in t.items() if k != "modes"}))
    B.log("\n| watchers | reader every | trials | limit reached s | first major fault s | "
          "privileged fired s | unprivileged fired s | unprivileged - privileged s | "
          "unprivileged never fired | hog OOM-killed s |")
    B.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ms, kinds in [(m, k) for m in periods for k in sets]:
        ts = [t for t in trials if t["reader_ms"] == ms and t["watchers"] == "+".join(kinds)]

        def med(k):
            return B.fmt(B.median([t.get(k) for t in ts]), 2)
        d = B.median([t["unprivileged_fired_s"] - t["privileged_fired_s"] for t in ts
                      if t.get("unprivileged_fired_s") is not None
                      and t.get("privileged_fired_s") is not None])
        never = sum(1 for t in ts if "unprivileged" in kinds
                    and t.get("unprivileged_fired_s") is None)
        B.log(f"| {'+'.join(kinds)} | {'none' if not ms else f'{ms} ms'} | {len(ts)} | {med('limit_reached_s')} | "
              f"{med('first_majflt_s')} | {med('privileged_fired_s')} | "
              f"{med('unprivileged_fired_s')} | {B.fmt(d, 2)} | {never} | {med('oom_after_s')} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(trials, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
