#!/usr/bin/env python3
"""`make bench`: prelockd's efficacy and cost benchmarks, side by side with vmtouch and memlockd.

Runs the pressure benchmark (bench/pressure.py) and the cost benchmark (bench/cost.py), prints
markdown tables with medians and ratios, writes raw results to bench/results/ and the latency plot
to docs/bench-latency.png, and ends with the targets met and not met. Needs root; installs nothing.

    bench/run.py [--only pressure|cost] [--reps N] [--quick]

--quick: one repetition of each, for trying the bench out (not for publishing numbers).
"""
import argparse
import glob
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import cost  # noqa: E402
import pressure  # noqa: E402


def machine_busy(seconds=1.0):
    """Share of all CPUs in use (by anyone) over a short sample: a busy machine makes noise."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def cleanup_stale_cgroups():
    """Removes memory cgroups left by an interrupted earlier run."""
    try:
        _, root = B.Cgroup.detect()
    except RuntimeError:
        return
    for path in glob.glob(os.path.join(root, "prelockd-bench-*")):
        pid = path.rsplit("-", 1)[-1]
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            continue
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                if f.read().strip():
                    continue
            os.rmdir(path)
        except OSError:
            pass


def pressure_targets(s):
    res, base = s.get("prelockd-resident"), s.get("baseline")
    if not res or not base:
        return []
    t = []
    lim = 1.5 * base["p99_ms"]
    t.append((res["p99_ms"] <= lim,
              f"pressure, default config (what = resident): p99 {res['p99_ms']:.2f} ms <= 1.5 x "
              f"unpressured p99 ({base['p99_ms']:.2f} ms -> {lim:.2f} ms) "
              f"[medians of {res['reps']} runs]"))
    t.append((res["worst_ms"] <= 50,
              f"pressure, default config: no round over 50 ms: slowest round of all runs "
              f"{res['worst_ms']:.1f} ms"))
    lim = base["majflt"] + 10
    t.append((res["majflt_max"] <= lim,
              f"pressure, default config: major faults <= unpressured + 10 ({base['majflt']:.0f} + 10): "
              f"worst run {res['majflt_max']} (median {res['majflt']:.0f})"))
    t.append((res["hog_killed"] == res["reps"] and res["standin_killed"] == 0,
              f"pressure, default config: hog OOM-killed in {res['hog_killed']}/{res['reps']} runs, "
              f"stand-in killed in {res['standin_killed']}"))
    protected = all(ok for ok, _ in t)
    for peer in ("vmtouch", "memlockd"):
        if peer in s:
            p = s[peer]
            ok = protected and res["locked_mib"] <= 0.5 * p["locked_mib"]
            t.append((ok, f"pressure: resident locks at most half of what {peer} locks for the "
                          f"same protection: {res['locked_mib']:.1f} MiB vs {p['locked_mib']:.1f} MiB "
                          f"({res['locked_mib'] / p['locked_mib']:.2f}x)"
                          + ("" if protected else " [protection targets not met]")))
    return t


def cost_targets(s):
    m = s["modes"].get("resident")
    if not m:
        return []
    return [
        (m["first_pass_cpu_ms"] <= 100,
         f"cost, default config: first pass {m['first_pass_cpu_ms']:.0f} ms CPU <= 100 ms "
         f"[median of {m['reps']} starts; {m['processes']:.0f} processes, "
         f"{m['mappings']:.0f} executable mappings; scanning {B.fmt(m['first_pass_scan_ms'], 0)} ms "
         f"+ locking {m['locked_mib']:.0f} MiB {B.fmt(m['first_pass_lock_ms'], 0)} ms]"),
        (m["idle_mean_ms"] <= 10,
         f"cost, default config: steady rescan {m['idle_mean_ms']:.1f} ms CPU <= 10 ms [mean of a "
         f"10-pass cycle incl. its full pass; quick passes {m['idle_median_ms']:.1f} ms, full pass "
         f"{m['idle_max_ms']:.0f} ms]"),
        (m["rss_anon_kib_max"] <= 1024,
         f"cost, default config: RssAnon {m['rss_anon_kib_max']:.0f} KiB <= 1024 KiB [largest of "
         f"{m['reps']} starts, after 21 passes]"),
    ]


def readme_results(summary, report):
    """The README's "Latest results" text: the report's tables under the machine they came from."""
    m = summary["machine"]
    body = "\n".join(report[2:]).replace("### ", "#### ")
    body = body.replace(
        "Plot: docs/bench-latency.png (one representative run per locker).",
        "![Round latency over time per locker](docs/bench-latency.png)\n\n"
        "*One representative run per locker (the one with the median p99). Blue: each round's "
        "latency (left axis, log scale). Grey: what the hog holds (right axis). Red: the hog's OOM "
        "kill.*")
    body = body.rsplit("\nTotal bench time:", 1)[0]
    others = "; ".join(m["foreign_lockers"]) or "none"
    head = (f"Measured on {m['date']}: Linux {m['kernel']}, {m['cores']} cores ({m['cpu']}), "
            f"{m['ram_gib']} GiB RAM, swap {m['swap_mib']} MiB. The disk has read_ahead_kb "
            f"{m['readahead_kib']}: one major fault of a file mapping reads up to that much around "
            f"it. Memory cgroup {m['cgroup']}. prelockd {m['prelockd']}, vmtouch {m['vmtouch']}, "
            f"memlockd {m['memlockd']}. `make bench` took {summary['total_s'] / 60:.1f} min. "
            f"{m['busy_at_start'] * 100:.0f}% of the CPUs were busy when it started; other lockers "
            f"running: {others}.")
    return head + "\n\n" + body.strip() + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("pressure", "cost"))
    ap.add_argument("--reps", type=int)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    t_start = time.monotonic()

    missing = B.missing_prerequisites()
    if missing:
        print("make bench cannot run; missing:", file=sys.stderr)
        for m in missing:
            print(f"  - {m}", file=sys.stderr)
        print("Nothing was installed. Install what is missing, then run `make bench` again.",
              file=sys.stderr)
        return 2
    lock = B.lock_bench()
    if not lock:
        return 1
    cleanup_stale_cgroups()
    m = B.machine()
    B.log("# prelockd benchmarks\n")
    B.log(f"Machine: {B.machine_line(m)}")
    for line in B.Cgroup.describe():
        B.log(f"  {line}")
    B.log(f"  using the memory cgroup {m['cgroup']}")
    m["busy_at_start"] = round(machine_busy(), 3)
    m["processes_at_start"] = len(B.pids())
    foreign = B.foreign_lockers()
    m["foreign_lockers"] = foreign
    if m["busy_at_start"] > 0.1:
        B.log(f"WARNING: the machine is busy ({m['busy_at_start'] * 100:.0f}% of all CPUs in use "
              f"before the bench started, {m['processes_at_start']} processes): expect noise.")
    for f in foreign:
        B.log(f"WARNING: a locker not started by the bench is running ({f}): it skews results.")
    reps = 1 if a.quick else a.reps
    if reps:
        pressure.P["reps"] = cost.P["reps"] = reps
    work = os.path.join(B.DATA, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.makedirs(B.RESULTS, exist_ok=True)
    summary = {"machine": m, "pressure_params": pressure.P, "cost_params": cost.P}
    report = [f"Machine: {B.machine_line(m)}", ""]
    targets = []

    if a.only in (None, "pressure"):
        B.log(f"\n## Pressure benchmark ({pressure.P['reps']} runs per locker, "
              f"{len(pressure.SCENARIOS)} lockers)\n")
        t = time.monotonic()
        runs = pressure.run_all(work)
        pressure.write_results(runs)
        s = pressure.by_scenario(runs)
        summary["pressure"] = s
        summary["pressure_s"] = round(time.monotonic() - t, 1)
        png = os.path.join(B.DOCS, "bench-latency.png")
        pressure.plot(runs, png)
        t1, t2 = pressure.tables(s)
        P = pressure.P
        report += [
            "### Pressure: the stand-in's round latency while a hog drives its cgroup into OOM",
            "",
            f"Stand-in: {P['file_mib']} MiB executable, calls into a {P['working_set_mib']} MiB "
            f"working set ({P['working_set']} MiB chunks) every {P['period_ms']} ms. Cgroup limit "
            f"{P['limit_mib']} MiB; hog +{P['hog_step_mib']} MiB every {P['hog_period_ms']} ms. "
            f"Window: {P['window_s']:.0f} s from the hog's start. Medians of {P['reps']} runs "
            f"(\"worst max\": slowest round of all runs).",
            "", t1, "", "Ratios of medians, prelockd against each peer:", "", t2, "",
            "Plot: docs/bench-latency.png (one representative run per locker).", ""]
        if "none" in s and s["none"]["majflt"] < 20:
            B.log("WARNING: without a locker the stand-in hardly faulted: the cgroup limit does not "
                  "put its working set under pressure here, so the comparison means little.")
        targets += pressure_targets(s)
        B.log("\n" + t1 + "\n\n" + t2)

    if a.only in (None, "cost"):
        B.log("\n## Cost benchmark\n")
        t = time.monotonic()
        res = cost.run_all(work)
        B.write_json(os.path.join(B.RESULTS, "cost-runs.json"), res)
        s = cost.summary(res)
        summary["cost"] = s
        summary["cost_s"] = round(time.monotonic() - t, 1)
        t1, t2 = cost.tables(s)
        C = cost.P
        report += [
            "### Cost: prelockd on a population of processes and generated libraries",
            "",
            f"{C['procs']} processes, each with {C['libs_per_proc']} of {C['nlibs']} generated "
            f"shared libraries ({res['libs_mib']:.0f} MiB) dlopen()ed, in a PID namespace of their "
            f"own with prelockd: {res['machine_processes']} processes, "
            f"{res['machine_mappings']} mappings, {res['machine_exec_mappings']} of them "
            f"executable file mappings. CPU from "
            f"the daemon's pass log line (first pass) and /proc/PID/schedstat (rescans, CPU to "
            f"READY). Text floor: reading every /proc/PID/maps once "
            f"({s['readmaps_lines']:.0f} lines, {s['readmaps_bytes'] / B.MiB:.1f} MiB), "
            f"{s['readmaps_cpu_ms']:.0f} ms CPU. For scale, the kernel's price of locking: "
            f"`vmtouch -l` of every library whole. Medians of {C['reps']} daemon starts per mode.",
            "", t1, "",
            f"CPU per rescan (SIGUSR1), {C['rescans']} passes per phase; each phase holds one full "
            f"pass. Idle: every process sleeps; busy: every {C['busy_every']}th process faults in "
            f"a page every 200 ms.", "", t2, ""]
        targets += cost_targets(s)
        B.log("\n" + t1 + "\n\n" + t2)

    with open("/proc/sys/vm/max_map_count") as f:
        if int(f.read()) < 65530:
            B.log("WARNING: vm.max_map_count was lowered during the run (by another program): "
                  "lockers and the population may have failed to map; run the bench again.")
    total = time.monotonic() - t_start
    summary["total_s"] = round(total, 1)
    summary["targets"] = [{"met": ok, "target": text} for ok, text in targets]
    lines = [f"- [{'x' if ok else ' '}] {'met' if ok else 'NOT MET'}: {text}" for ok, text in targets]
    report += ["### Targets", ""] + lines + ["", f"Total bench time: {total / 60:.1f} min."]
    B.write_json(os.path.join(B.RESULTS, "summary.json"), summary)
    with open(os.path.join(B.RESULTS, "report.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    if a.only is None:
        with open(os.path.join(B.RESULTS, "readme-results.md"), "w") as f:
            f.write(readme_results(summary, report))
    B.log("\n## Targets\n\n" + "\n".join(lines))
    B.log(f"\nRaw results in {os.path.relpath(B.RESULTS, B.ROOT)}/ (report.md, summary.json, "
          f"pressure-runs.csv, pressure-rounds.csv, cost-runs.json; readme-results.md for the "
          f"README); plot in docs/bench-latency.png. Total: {total / 60:.1f} min.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
