#!/usr/bin/env python3
"""`make bench`: prelockd's efficacy and cost benchmarks, side by side with vmtouch and memlockd.

Runs the pressure benchmark (bench/pressure.py) and the cost benchmark (bench/cost.py), prints
markdown tables with medians and ratios, writes raw results to bench/results/ and the latency plots
to docs/bench-latency*.png, and ends with a table of the targets, MET or NOT MET. prelockd runs as
its shipped unit runs it (BENCH_RUN_AS=root: as root instead). Needs root; installs nothing.

    bench/run.py [--only pressure|cost] [--programs synthetic,python] [--scenarios a,b]
                 [--reps N] [--quick] [--results DIR]

--quick: one repetition of each, for trying the bench out (not for publishing numbers); its
results and plots go to BENCH_DIR/results-quick, not bench/results/ and docs/, unless --results
says otherwise. --scenarios: only these lockers of the pressure benchmark (baseline, which the
targets compare with, is always run); for trials, not for publishing (--results is then needed
unless --quick).
"""
import argparse
import glob
import json
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


def targets_table(targets):
    """The targets as a markdown table: what, measured, limit, MET or NOT MET."""
    return B.md_table(["benchmark", "target", "measured", "limit", "result"],
                      [[t["group"], t["target"], t["measured"], t["limit"],
                        "MET" if t["met"] else "**NOT MET**"] for t in targets], left=5)


def readme_results(summary, report):
    """The README's "Latest results" text: the report's tables under the machine they came from."""
    m = summary["machine"]
    body = "\n".join(report[2:]).replace("### ", "#### ")
    for prog in ("synthetic", "python"):
        png = "docs/bench-latency.png" if prog == "synthetic" else f"docs/bench-latency-{prog}.png"
        body = body.replace(
            f"Plot: {png} (one representative run per locker).",
            f"![{prog}: round latency over time per locker]({png})\n\n"
            "*One representative run per locker (the one with the median p99). Blue: each "
            "round's latency (left axis, log scale). Grey: what the hog holds (right axis). Red: "
            "the hog's OOM kill.*")
    body = body.rsplit("\nTotal bench time:", 1)[0]
    others = "; ".join(m["foreign_lockers"]) or "none"
    head = (f"Measured on {m['date']}: Linux {m['kernel']}, {m['cores']} cores ({m['cpu']}), "
            f"{m['ram_gib']} GiB RAM, swap {m['swap_mib']} MiB. The disk has read_ahead_kb "
            f"{m['readahead_kib']}: one major fault of a file mapping reads up to that much around "
            f"it. Memory cgroup {m['cgroup']}. prelockd {m['prelockd']}, vmtouch {m['vmtouch']}, "
            f"memlockd {m['memlockd']}. prelockd ran as {m['prelockd_as']}. "
            f"`make bench` took {summary['total_s'] / 60:.1f} min. "
            f"{m['busy_at_start'] * 100:.0f}% of the CPUs were busy when it started; other lockers "
            f"running: {others}.")
    return head + "\n\n" + body.strip() + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("pressure", "cost"))
    ap.add_argument("--programs", help="comma-separated: synthetic,python (default both)")
    ap.add_argument("--scenarios", help="comma-separated lockers of the pressure benchmark "
                    "(baseline is always run): trials only")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results", help="directory for the results and plots")
    a = ap.parse_args()
    t_start = time.monotonic()
    if a.programs:
        pressure.P["programs"] = [p for p in a.programs.split(",") if p]
        bad = [p for p in pressure.P["programs"] if p not in pressure.PROGRAMS]
        if bad:
            ap.error(f"unknown program(s): {', '.join(bad)}")
    if a.scenarios:
        want = {x for x in a.scenarios.split(",") if x} | {"baseline"}
        bad = want - set(pressure.SCENARIOS)
        if bad:
            ap.error(f"unknown scenario(s): {', '.join(sorted(bad))}")
        if not (a.quick or a.results):
            ap.error("--scenarios is for trials: give --quick or --results")
        pressure.SCENARIOS[:] = [x for x in pressure.SCENARIOS if x in want]

    missing = B.missing_prerequisites()
    if a.only in (None, "cost"):
        missing += cost.missing()
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
    results = a.results or (os.path.join(B.DATA, "results-quick") if a.quick else B.RESULTS)
    plots = results if (a.quick or a.results) else B.DOCS
    m = B.machine()
    B.log("# prelockd benchmarks\n")
    B.log(f"Machine: {B.machine_line(m)}")
    for line in B.Cgroup.describe():
        B.log(f"  {line}")
    B.log(f"  using the memory cgroup {m['cgroup']}")
    m["prelockd_as"] = (B.Unit.load().describe() if B.RUN_AS == "unit"
                        else "root, with every capability (BENCH_RUN_AS=root)")
    B.log(f"prelockd runs as: {m['prelockd_as']}")
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
    os.makedirs(results, exist_ok=True)
    summary = {"machine": m, "pressure_params": pressure.P, "synthetic_params": pressure.SYNTHETIC,
               "cost_params": cost.P}
    report = [f"Machine: {B.machine_line(m)}", "", f"prelockd ran as: {m['prelockd_as']}", ""]
    targets = []

    if a.only in (None, "pressure"):
        progs = pressure.prepare_programs()
        B.log(f"\n## Pressure benchmark ({pressure.P['reps']} runs per locker and program, "
              f"{len(pressure.SCENARIOS)} lockers, programs: "
              f"{', '.join(p.name for p in progs)})\n")
        for p in progs:
            B.log(f"  {p.describe()}")
        t = time.monotonic()
        runs = pressure.run_all(work, progs)
        pressure.write_results(runs, results)
        s = pressure.by_scenario(runs)
        summary["pressure"] = s
        summary["pressure_s"] = round(time.monotonic() - t, 1)
        P = pressure.P
        report += [
            "### Pressure: a program's round latency while a hog drives its cgroup into OOM", "",
            f"Cgroup limit {P['limit_mib']} MiB; hog +{P['hog_step_mib']} MiB every "
            f"{P['hog_period_ms']} ms. A round every {P['period_ms']} ms. Window: "
            f"{P['window_s']:.0f} s from the hog's start. Medians of {P['reps']} runs (\"worst\": "
            f"of all runs). Major faults: the program's, from /proc/PID/stat, in the window. "
            f"Locked: what the locker holds locked of the program's own files (its smaps). "
            f"prelockd-late: prelockd started first, the program {P['late_gap_s']:.0f} s before "
            f"the hog, after the daemon's last pass. \"prelockd passes during the run\": passes "
            f"the daemon made by itself after the hog started (prelockd-late: after the program "
            f"started).", ""]
        for p in progs:
            png = os.path.join(plots, "bench-latency.png" if p.name == "synthetic"
                               else f"bench-latency-{p.name}.png")
            pressure.plot(runs, p.name, png, os.path.join(results, "plot"))
            t1, t2 = pressure.tables(s, p.name)
            sp = s.get(p.name, {})
            ws = sp.get("baseline", {})
            report += [f"#### {p.name}", "", p.describe() + ". Working set resident after warm-up: "
                       f"{B.fmt(ws.get('ws_code_mib'), 1)} MiB code, "
                       f"{B.fmt(ws.get('ws_rodata_mib'), 1)} MiB read-only data.", "", t1, "",
                       "Ratios of medians, prelockd against each peer:", "", t2, "",
                       f"Plot: {os.path.relpath(png, B.ROOT) if png.startswith(B.ROOT) else png} "
                       f"(one representative run per locker).", ""]
            notes = sorted({n for sc in sp.values() for n in sc["notes"]})
            if notes:
                report += ["Notes: " + "; ".join(notes), ""]
            B.log(f"\n### {p.name}\n\n" + t1 + "\n\n" + t2)
            if "none" in sp and sp["none"]["majflt"] < 20:
                B.log(f"WARNING: without a locker {p.name} hardly faulted: the cgroup limit does "
                      f"not put its working set under pressure here, so the comparison means little.")
            if ws and not ws.get("ws_rodata_mib"):
                B.log(f"WARNING: {p.name} has no read-only data resident in its own files: its "
                      f"working set is code only.")
        targets += pressure.targets(s)

    if a.only in (None, "cost"):
        B.log("\n## Cost benchmark\n")
        t = time.monotonic()
        res = cost.run_all(work)
        B.write_json(os.path.join(results, "cost-runs.json"), res)
        s = cost.summary(res)
        summary["cost"] = s
        summary["cost_s"] = round(time.monotonic() - t, 1)
        t1, t2 = cost.tables(s)
        C = cost.P
        fallback = any(m_["pagemap_fallback"] for m_ in s["runs"].values())
        report += [
            "### Cost: prelockd on a population of processes and generated libraries",
            "",
            f"{C['procs']} processes, each with {C['libs_per_proc']} of {C['nlibs']} generated "
            f"shared libraries ({res['libs_mib']:.0f} MiB) dlopen()ed, in a PID namespace of their "
            f"own with prelockd: {res['machine_processes']} processes, "
            f"{res['machine_mappings']} mappings, {res['machine_exec_mappings']} of them "
            f"executable file mappings. prelockd on the shipped config but for `include` (the "
            f"libraries) and `what`: with read_only_data = yes (the default) it reads every "
            f"/proc/PID/maps as text, on every kernel. So that both readers stay measured, "
            f"read_only_data = no (code only) too, with PROCMAP_QUERY and with the ioctl refused "
            f"(tests/helpers/noquery: text, as before Linux 6.11); the targets below are the "
            f"shipped config's (what = resident). CPU from the daemon's pass log "
            f"line (first pass) and /proc/PID/schedstat (quiet passes after SIGUSR1, full passes "
            f"after SIGHUP, CPU to READY). Text floor: reading every /proc/PID/maps once "
            f"({s['readmaps_lines']:.0f} lines, {s['readmaps_bytes'] / B.MiB:.1f} MiB), "
            f"{s['readmaps_cpu_ms']:.0f} ms CPU, in the same run. For scale, the kernel's price "
            f"of locking: `vmtouch -l` of every library whole. Medians of {C['reps']} daemon "
            f"starts per row.",
            "", t1, "",
            f"CPU per pass: {C['rescans']} SIGUSR1 passes with every process idle, "
            f"{C['rescans']} with every {C['busy_every']}th process faulting in a page every "
            f"200 ms, then {C['full_passes']} SIGHUP passes (a reload re-reads every process). "
            f"Passes are classed quiet or full by the daemon's log line (processes read again).",
            "", t2, ""]
        if fallback:
            report += ["¹ The daemon could not read other users' /proc/PID/pagemap and locked "
                       "what processes map instead of what they use (it said so in its log).", ""]
        targets += cost.targets(s)
        B.log("\n" + t1 + "\n\n" + t2)

    with open("/proc/sys/vm/max_map_count") as f:
        if int(f.read()) < 65530:
            B.log("WARNING: vm.max_map_count was lowered during the run (by another program): "
                  "lockers and the population may have failed to map; run the bench again.")
    total = time.monotonic() - t_start
    summary["total_s"] = round(total, 1)
    summary["targets"] = targets
    ttable = targets_table(targets)
    met = sum(1 for t in targets if t["met"])
    report += ["### Targets", "", f"{met} of {len(targets)} met.", "", ttable, "",
               f"Total bench time: {total / 60:.1f} min."]
    B.write_json(os.path.join(results, "summary.json"), summary)
    with open(os.path.join(results, "targets.json"), "w") as f:
        json.dump(targets, f, indent=1)
        f.write("\n")
    with open(os.path.join(results, "report.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    if a.only is None:
        with open(os.path.join(results, "readme-results.md"), "w") as f:
            f.write(readme_results(summary, report))
    B.log(f"\n## Targets ({met} of {len(targets)} met)\n\n" + ttable)
    B.log(f"\nRaw results in {results}/ (report.md, summary.json, targets.json, "
          f"pressure-runs.csv, pressure-rounds.csv, cost-runs.json; readme-results.md for the "
          f"README); plots in {plots}/bench-latency*.png. Total: {total / 60:.1f} min.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
