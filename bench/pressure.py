"""Pressure benchmark: does a locker keep an interactive program responsive while a memory hog
drives its memory cgroup into the OOM killer, and how much does it lock to do so?

One run: the file is evicted from the page cache; the stand-in starts in a fresh memory cgroup
and faults its working set in there (so those pages are charged to the cgroup, as a desktop
program's code is charged to its session); once it is warm, the locker under test starts outside
the cgroup and locks; then the hog starts in the cgroup and grows past the limit. Rounds of the
stand-in are measured in a fixed window from the hog's start (growth, OOM kill, recovery).
Without a locker the hog's growth evicts the working set, which is refaulted from disk each round:
that is the thrashing the lockers are there to prevent.
"""
import os
import re
import subprocess
import threading
import time

import benchlib as B

P = {
    "file_mib": 64,                   # the stand-in's executable: over the older prelockd's cap
    "working_set": "4:4,20:4,36:4,52:4",  # OFFSET:LENGTH MiB chunks each round calls into
    "working_set_mib": 16,
    "limit_mib": 48,                  # the cgroup's hard limit
    "period_ms": 20,                  # one stand-in round every 20 ms
    "hog_step_mib": 2,                # the hog grows 2 MiB every 100 ms...
    "hog_period_ms": 100,
    "hog_max_mib": 512,               # ...up to far past the limit
    "window_s": 6.0,                  # rounds measured from the hog's start
    "settle_s": 0.5,                  # warm stand-in runs alone this long before the locker starts
    "reps": 5,                        # round latency is noisy on a small VM: medians of 5
}

WARM_ROUNDS = 5  # the stand-in is "ready" after these: its working set is then in memory

SCENARIOS = ["baseline", "none", "vmtouch", "memlockd",
             "prelockd-whole", "prelockd-mapped", "prelockd-resident"]
LOCKERS = {"none": "no locker", "baseline": "unpressured (no hog)",
           "vmtouch": "vmtouch -l", "memlockd": "memlockd",
           "prelockd-whole": "prelockd whole", "prelockd-mapped": "prelockd mapped",
           "prelockd-resident": "prelockd resident (default)"}


def stand_in_dir():
    return os.path.join(B.DATA, "pressure")


def stand_in_file():
    """The stand-in's executable: FILE_MIB of random bytes, non-sparse, every page starting with
    `ret` so that the stand-in can call into each page. Generated once."""
    os.makedirs(stand_in_dir(), exist_ok=True)
    path = os.path.join(stand_in_dir(), "standin.bin")
    size = P["file_mib"] * B.MiB
    if os.path.exists(path) and os.path.getsize(path) == size:
        with open(path, "rb") as f:
            if f.read(1) == b"\xc3":
                return path
    data = bytearray(os.urandom(size))
    data[::B.PAGE] = b"\xc3" * (size // B.PAGE)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)
    return path


def ere_escape(s):
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", s)


class StandIn:
    """The stand-in process; a thread collects its rounds as they come."""

    def __init__(self, cg, path):
        self.proc = B.Child(
            [os.path.join(B.HELPERS, "standin"), "-g", cg.procs, "-p", str(P["period_ms"]),
             "-d", "120", "-w", str(WARM_ROUNDS), path, P["working_set"]],
            stdout=subprocess.PIPE, text=True)
        self.rounds = []           # (start_ns, latency_ns, majflt, minflt)
        self.resident = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if f[0] == "r":
                self.rounds.append(tuple(int(x) for x in f[1:5]))
            elif f[0] == "resident":
                self.resident = int(f[1])
            elif f[0] == "ready":
                self.ready.set()
        self.ready.set()


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
    """A peer or prelockd, started outside the cgroup under test."""

    def __init__(self, scenario, path, workdir):
        self.scenario, self.path, self.proc, self.daemon = scenario, path, None, None
        self.size = os.path.getsize(path)
        if scenario == "vmtouch":
            self.log = open(os.path.join(workdir, "vmtouch.log"), "w")
            self.proc = B.Child([B.tool_path("vmtouch"), "-l", path],
                                stdout=self.log, stderr=subprocess.STDOUT)
        elif scenario == "memlockd":
            cfg = os.path.join(workdir, "memlockd.cfg")
            with open(cfg, "w") as f:
                f.write(path + "\n")
            self.log = open(os.path.join(workdir, "memlockd.log"), "w")
            self.proc = B.Child([B.tool_path("memlockd"), "-d", "-c", cfg],
                                stdout=self.log, stderr=subprocess.STDOUT)
        elif scenario.startswith("prelockd-"):
            self.daemon = B.Prelockd(os.path.join(workdir, scenario), {
                # Only the stand-in's directory: the cost benchmark's libraries are elsewhere.
                "include": "^" + ere_escape(stand_in_dir()) + "/",
                "what": scenario.split("-", 1)[1]})
            self.proc = self.daemon.proc

    def wait_locked(self, timeout=30):
        """Waits until the file is locked; returns a note on failure, else None."""
        if self.daemon:
            if self.daemon.wait_ready(timeout) is None:
                return "prelockd never sent READY=1"
            # The first pass saw the warm stand-in; one more, as a periodic rescan would do.
            if not self.daemon.rescan(timeout):
                return "prelockd did not finish the SIGUSR1 pass"
            if self.daemon.locked_bytes(self.path) <= 0:
                return "prelockd did not lock the stand-in's file"
            return None
        ok = B.wait_for(lambda: (B.proc_status(self.proc.pid, "VmLck") or 0) >= self.size, timeout)
        if not ok:
            return f"{self.scenario} did not lock the file (VmLck " \
                   f"{(B.proc_status(self.proc.pid, 'VmLck') or 0) // B.MiB} MiB)"
        return None

    def stop(self):
        if self.daemon:
            self.daemon.stop()
        elif self.proc:
            B.stop(self.proc)
            self.log.close()


def summarize_rounds(rounds, t0_ns, window_s):
    w = [r for r in rounds if t0_ns <= r[0] < t0_ns + window_s * 1e9]
    lat = [r[1] / 1e6 for r in w]
    return {
        "rounds": len(w),
        "p50_ms": B.percentile(lat, 50), "p99_ms": B.percentile(lat, 99),
        "max_ms": max(lat) if lat else None,
        "majflt": sum(r[2] for r in w),
        "rounds_over_50ms": sum(1 for x in lat if x > 50),
    }


def one_run(scenario, rep, path, workdir):
    B.evict(path)
    cg = B.Cgroup(f"prelockd-bench-{os.getpid()}", P["limit_mib"] * B.MiB)
    s = StandIn(cg, path)
    locker = hog = None
    run = {"scenario": scenario, "rep": rep, "cgroup": cg.mode, "note": ""}
    try:
        if not s.ready.wait(20) or s.proc.poll() is not None:
            raise RuntimeError(f"stand-in did not get ready (exit {s.proc.poll()})")
        run["resident_at_start_pages"] = s.resident
        time.sleep(P["settle_s"])
        run["cgroup_before_hog_mib"] = round(cg.usage() / B.MiB, 1)
        mlocked0 = B.meminfo("Mlocked")
        if scenario not in ("none", "baseline"):
            locker = Locker(scenario, path, workdir)
            note = locker.wait_locked()
            if note:
                run["note"] = note
            time.sleep(0.2)
        run["locked_mib"] = round((B.meminfo("Mlocked") - mlocked0) / B.MiB, 1)
        # Mlocked is machine-wide; what the locker holds locked itself is the cross-check.
        run["locker_locked_rss_mib"] = round((B.locked_rss(locker.proc.pid) or 0) / B.MiB, 1) \
            if locker else 0.0
        run["cgroup_unevictable_mib"] = round(cg.unevictable() / B.MiB, 1)
        if scenario == "baseline":
            t0 = time.monotonic_ns()
        else:
            hog = Hog(cg)
            hog.started.wait(10)
            t0 = hog.start_ns or time.monotonic_ns()
        end = t0 / 1e9 + P["window_s"]
        while time.monotonic() < end and s.proc.poll() is None:
            time.sleep(0.05)
        if hog:
            if hog.end is not None and hog.proc.returncode == -9:
                run["hog_fate"] = "OOM-killed"
                run["oom_after_s"] = round(hog.end - t0 / 1e9, 2)
            elif hog.end is not None:
                run["hog_fate"] = f"exited {hog.proc.returncode}"
            else:
                run["hog_fate"] = "alive at window end"
                B.stop(hog.proc, timeout=2)
            run["hog_mib_at_end"] = hog.held_mib
        else:
            run["hog_fate"] = "no hog"
        run["standin_fate"] = "OOM-killed" if s.proc.poll() == -9 else "alive"
        run["oom_kills"] = cg.oom_kills() - cg.oom_kills0
        run["cgroup_peak_mib"] = round((cg.peak() or 0) / B.MiB, 1)
    finally:
        if hog:
            B.stop(hog.proc, timeout=2)
        B.stop(s.proc)
        if locker:
            locker.stop()
        cg.remove()
    run.update(summarize_rounds(s.rounds, t0, P["window_s"]))
    # The trace for the plot: from the end of the warm-up (the cold first rounds read the file).
    run["round_trace"] = [((r[0] - t0) / 1e9, r[1] / 1e6, r[2]) for r in s.rounds[WARM_ROUNDS:]]
    run["hog_trace"] = [((ns - t0) / 1e9, mib) for ns, mib in hog.steps] if hog else []
    return run


def run_all(workdir, reps=None):
    path = stand_in_file()
    reps = reps or P["reps"]
    runs = []
    for rep in range(1, reps + 1):
        for sc in SCENARIOS:             # interleaved, so that drift spreads over all scenarios
            t = time.monotonic()
            try:
                r = one_run(sc, rep, path, workdir)
            except (RuntimeError, OSError) as e:
                B.log(f"  pressure {sc:18} rep {rep}: FAILED: {e}")
                runs.append({"scenario": sc, "rep": rep, "note": f"failed: {e}", "round_trace": []})
                continue
            runs.append(r)
            B.log(f"  pressure {sc:18} rep {rep}: p99 {B.fmt(r['p99_ms'], 2)} ms, max "
                  f"{B.fmt(r['max_ms'], 1)} ms, {r['majflt']} major faults, hog {r['hog_fate']}"
                  f"{' after %.2f s' % r['oom_after_s'] if 'oom_after_s' in r else ''}, "
                  f"locked {r['locked_mib']} MiB ({time.monotonic() - t:.1f} s)"
                  f"{'; ' + r['note'] if r['note'] else ''}")
    return runs


# --- summaries ---------------------------------------------------------------------------------

def by_scenario(runs):
    out = {}
    for sc in SCENARIOS:
        rs = [r for r in runs if r["scenario"] == sc and r.get("p99_ms") is not None]
        if not rs:
            continue
        ooms = [r.get("oom_after_s") for r in rs if r.get("oom_after_s") is not None]
        out[sc] = {
            "reps": len(rs),
            "p50_ms": B.median([r["p50_ms"] for r in rs]),
            "p99_ms": B.median([r["p99_ms"] for r in rs]),
            "max_ms": B.median([r["max_ms"] for r in rs]),
            "worst_ms": max(r["max_ms"] for r in rs if r["max_ms"] is not None),
            "majflt": B.median([r["majflt"] for r in rs]),
            "majflt_max": max(r["majflt"] for r in rs),
            "rounds_over_50ms": B.median([r["rounds_over_50ms"] for r in rs]),
            "oom_kills": B.median([r.get("oom_kills", 0) for r in rs]),
            "hog_killed": sum(1 for r in rs if r.get("hog_fate") == "OOM-killed"),
            "standin_killed": sum(1 for r in rs if r.get("standin_fate") == "OOM-killed"),
            "oom_after_s": B.median(ooms),
            "locked_mib": B.median([r["locked_mib"] for r in rs]),
            "locker_locked_rss_mib": B.median([r["locker_locked_rss_mib"] for r in rs]),
            "cgroup_unevictable_mib": B.median([r["cgroup_unevictable_mib"] for r in rs]),
            "notes": sorted({r["note"] for r in rs if r["note"]}),
        }
    return out


def tables(summary):
    base = summary.get("baseline", {})
    rows = []
    for sc, s in summary.items():
        hog = "–" if sc == "baseline" else f"OOM-killed {s['hog_killed']}/{s['reps']}"
        if s["standin_killed"]:
            hog += f"; stand-in killed {s['standin_killed']}/{s['reps']}"
        rows.append([f"{sc}", B.fmt(s["p50_ms"], 2), B.fmt(s["p99_ms"], 2), B.fmt(s["max_ms"], 1),
                     B.fmt(s["worst_ms"], 1), B.fmt(s["majflt"], 0),
                     B.fmt(s["rounds_over_50ms"], 0),
                     B.fmt(s["oom_kills"], 0), hog, B.fmt(s["oom_after_s"], 2),
                     B.fmt(s["locked_mib"], 1), B.fmt(s["locker_locked_rss_mib"], 1),
                     B.fmt(s["cgroup_unevictable_mib"], 1),
                     B.ratio(s["p99_ms"], base.get("p99_ms"))])
    t1 = B.md_table(["locker", "p50 ms", "p99 ms", "max ms", "worst max ms", "major faults",
                     "rounds > 50 ms", "OOM kills", "hog", "hog start → OOM kill s",
                     "locked MiB (Mlocked Δ)", "locker's own locked RSS MiB",
                     "unevictable in cgroup MiB", "p99 vs baseline"],
                    rows)
    rows = []
    for sc in ("prelockd-resident", "prelockd-mapped", "prelockd-whole"):
        if sc not in summary:
            continue
        s = summary[sc]
        for peer in ("baseline", "none", "vmtouch", "memlockd"):
            if peer not in summary:
                continue
            q = summary[peer]
            lockers = peer not in ("none", "baseline")
            rows.append([sc, peer, B.ratio(s["p99_ms"], q["p99_ms"]),
                         B.ratio(s["max_ms"], q["max_ms"]),
                         B.fmt(s["majflt"] - q["majflt"], 0),
                         B.ratio(s["oom_after_s"], q["oom_after_s"]),
                         B.ratio(s["locked_mib"], q["locked_mib"]) if lockers else "–"])
    t2 = B.md_table(["prelockd", "against", "p99 ratio", "max ratio", "major faults Δ",
                     "time to OOM ratio", "locked MiB ratio"], rows)
    return t1, t2


def representative(runs, sc):
    """The repetition whose p99 is the median of its scenario's: the one plotted."""
    rs = sorted((r for r in runs if r["scenario"] == sc and r.get("p99_ms") is not None),
                key=lambda r: r["p99_ms"])
    return rs[len(rs) // 2] if rs else None


def plot(runs, png):
    """Round latency over time, one panel per locker, from each one's representative run."""
    datadir = os.path.join(B.RESULTS, "plot")
    os.makedirs(datadir, exist_ok=True)
    panels = []
    for sc in SCENARIOS:
        r = representative(runs, sc)
        if not r:
            continue
        dat = os.path.join(datadir, f"latency-{sc}.dat")
        with open(dat, "w") as f:
            f.write("# seconds since hog start, round latency ms, major faults\n")
            for t, lat, maj in r["round_trace"]:
                if t <= P["window_s"]:
                    f.write(f"{t:.3f} {lat:.3f} {maj}\n")
        hog_dat = None
        if r.get("hog_trace"):
            hog_dat = os.path.join(datadir, f"hog-{sc}.dat")
            with open(hog_dat, "w") as f:
                f.write("# seconds since hog start, MiB the hog holds\n")
                f.write("0 0\n")
                for t, mib in r["hog_trace"]:
                    f.write(f"{t:.3f} {mib}\n")
                if r.get("oom_after_s") is not None:
                    f.write(f"{r['oom_after_s']:.3f} {r['hog_trace'][-1][1]}\n"
                            f"{r['oom_after_s']:.3f} 0\n{P['window_s']} 0\n")
        panels.append((sc, r, dat, hog_dat))
    rows = (len(panels) + 1) // 2
    gp = [f"set terminal pngcairo size 1400,{300 * rows + 80} font 'DejaVu Sans,11'",
          f"set output '{os.path.relpath(png, datadir)}'",
          f"set multiplot layout {rows},2 title \"Stand-in round latency under memory pressure "
          f"(cgroup limit {P['limit_mib']} MiB, working set {P['working_set_mib']} MiB, hog +"
          f"{P['hog_step_mib']} MiB/{P['hog_period_ms']} ms)\\nblue: round latency (left axis); "
          f"grey: MiB the hog holds (right axis); red: hog OOM-killed; dashed: 50 ms\" font ',13'",
          "set logscale y", "set yrange [0.1:1000]", f"set xrange [-1:{P['window_s']}]",
          "set ytics ('0.1' 0.1, '1' 1, '10' 10, '50' 50, '100' 100, '1000' 1000)",
          "set grid ytics xtics lc rgb '#dddddd'", "set key off",
          "set xlabel 'seconds since the hog started'", "set ylabel 'round latency (ms)'",
          "set lmargin 10", "set rmargin 8",
          f"set y2range [0:{P['limit_mib'] * 1.25:.0f}]", "set y2tics 16 textcolor rgb '#777777'",
          "set y2label 'hog MiB' textcolor rgb '#777777'",
          f"set label 1 'cgroup limit' at graph 0.01, second {P['limit_mib'] + 2} "
          f"textcolor rgb '#999999' font ',9'"]
    for sc, r, dat, hog_dat in panels:
        gp.append("unset arrow")
        if r.get("oom_after_s") is not None:
            gp.append(f"set arrow from {r['oom_after_s']},0.1 to {r['oom_after_s']},1000 nohead "
                      f"lc rgb 'red' lw 2")
        gp.append("set arrow from -1,50 to %s,50 nohead dt 2 lc rgb '#888888'" % P["window_s"])
        gp.append(f"set arrow from graph 0, second {P['limit_mib']} to graph 1, second "
                  f"{P['limit_mib']} nohead dt 3 lc rgb '#bbbbbb'")
        title = (f"{LOCKERS[sc]}: p99 {B.fmt(r['p99_ms'], 1)} ms, max {B.fmt(r['max_ms'], 1)} ms, "
                 f"{r['majflt']} major faults, {r['locked_mib']:.0f} MiB locked")
        gp.append(f"set title \"{title}\"")
        hog = (f"'{os.path.basename(hog_dat)}' using 1:2 axes x1y2 with steps lw 2 "
               f"lc rgb '#bbbbbb', " if hog_dat else "")
        gp.append(f"plot {hog}'{os.path.basename(dat)}' using 1:2 with linespoints pt 7 ps 0.4 "
                  f"lw 1 lc rgb '#1f5fa8'")
    gp.append("unset multiplot")
    script = os.path.join(datadir, "latency.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    os.makedirs(os.path.dirname(png), exist_ok=True)
    subprocess.run([B.tool_path("gnuplot"), "latency.gp"], cwd=datadir, check=True)
    return script


def write_results(runs):
    os.makedirs(B.RESULTS, exist_ok=True)
    cols = ["scenario", "rep", "cgroup", "rounds", "p50_ms", "p99_ms", "max_ms", "majflt",
            "rounds_over_50ms", "oom_kills", "hog_fate", "oom_after_s", "hog_mib_at_end",
            "standin_fate", "locked_mib", "locker_locked_rss_mib", "cgroup_unevictable_mib",
            "cgroup_before_hog_mib", "cgroup_peak_mib", "resident_at_start_pages", "note"]
    with open(os.path.join(B.RESULTS, "pressure-runs.csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for r in runs:
            f.write(",".join(str(r.get(c, "")).replace(",", ";") for c in cols) + "\n")
    with open(os.path.join(B.RESULTS, "pressure-rounds.csv"), "w") as f:
        f.write("scenario,rep,t_s,latency_ms,majflt\n")
        for r in runs:
            for t, lat, maj in r["round_trace"]:
                f.write(f"{r['scenario']},{r['rep']},{t:.4f},{lat:.4f},{maj}\n")
