"""Cost benchmark: what prelockd costs on a busy machine. A population of PROCS processes maps
NLIBS generated shared libraries (real ELF objects, dlopen()ed); prelockd starts on it cold and is
measured: time to READY, CPU of its first pass, of a quiet pass (SIGUSR1: only what changed is
read again), of a full pass (SIGHUP: a reload re-reads every process), RssAnon, fds held.
Beside it, in the same run, the floor for a scanner that reads /proc/PID/maps as text: the CPU of
just reading every maps file once (bench/readmaps.c).

Configs and ways of reading mappings (P["runs"]):
- default: the shipped config (read_only_data = yes), in each `what` mode. With read-only data
  counted the daemon reads /proc/PID/maps as text on every kernel (PROCMAP_QUERY has no filter
  for "not writable": it would answer four of a library's five mappings, one call each, which
  cost more than the text; commit 86409b2), so this is the text way, run as shipped, without any
  wrapper. Issue 11's cost targets apply to this config (what = resident).
- code-only: read_only_data = no, in which the daemon uses the PROCMAP_QUERY ioctl (Linux 6.11+)
  where the kernel has it; measured both with it ("query") and under tests/helpers/noquery,
  which makes the ioctl fail as on kernels before 6.11 such as Debian 12's 6.1 ("text"). Shown in
  the tables, beside the default, so that both readers stay measured; not targets.

Full passes are asked for with SIGHUP, not counted on: the daemon decides by itself when a pass
re-reads everything (every Nth pass, or by wall time), and SIGUSR1 must not make that more
frequent. Each pass is classed by its log line ("N processes (R read)"): full when it read
(nearly) every process."""
import concurrent.futures
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import time

import benchlib as B

P = {
    "nlibs": 1000,
    "procs": 400,
    "libs_per_proc": 50,     # ~6 mappings each (5 of the file, bss) + the process's own: ~125k
    "busy_every": 10,        # in the busy phase every 10th process faults in new pages
    "seed": 4242,
    "text_min_kib": 4,       # text sizes are log-uniform in [4 KiB, 2 MiB]: mostly small libraries,
    "text_max_kib": 2048,    # a few big ones, as in /usr/lib
    "rescans": 10,           # SIGUSR1 passes measured per phase (idle, busy)
    "full_passes": 3,        # SIGHUP passes measured (each re-reads every process)
    "reps": 5,               # daemon starts per mode (CPU times vary by +-20% on a small VM)
    "readmaps_reps": 5,
    # (config, way of reading mappings, what) per daemon start; see the module's docstring.
    "runs": [["default", "text", "resident"], ["default", "text", "mapped"],
             ["default", "text", "whole"],
             ["code-only", "query", "resident"], ["code-only", "text", "resident"]],
}

WAYS = {"query": "PROCMAP_QUERY", "text": "text of /proc/PID/maps"}
# Each config: the [lock] keys it sets over the shipped config, and what the report calls it.
CONFIGS = {"default": ({}, "shipped (read_only_data = yes)"),
           "code-only": ({"read_only_data": "no"}, "read_only_data = no")}


def run_key(config, way, mode):
    return f"{config}/{way}/{mode}"


def wrapped(config, way):
    """Whether a run needs tests/helpers/noquery: only to make the code-only config read text
    (the default config reads text by itself)."""
    return config != "default" and way == "text"


def noquery_path():
    """tests/helpers/noquery of the same build as the bench helpers (BUILD/bench -> BUILD/helpers)."""
    return os.environ.get("BENCH_NOQUERY",
                          os.path.join(os.path.dirname(B.HELPERS), "helpers", "noquery"))


def missing():
    if any(wrapped(c, w) for c, w, _ in P["runs"]) and not os.access(noquery_path(), os.X_OK):
        return [f"{noquery_path()}: the cost benchmark's text way needs it: "
                f"make BUILD={os.path.relpath(os.path.dirname(B.HELPERS), B.ROOT)} "
                f"{os.path.relpath(noquery_path(), B.ROOT)}"]
    return []


def lib_dir():
    return os.path.join(B.DATA, "libs")


def lib_regex():
    """The `include` rule that selects exactly the generated libraries."""
    return "^" + re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", lib_dir()) + "/"


def lib_plan():
    """(index, text bytes, rodata bytes, data bytes, bss bytes) of each library, deterministic."""
    rng = random.Random(P["seed"])
    lo, hi = P["text_min_kib"] * 1024, P["text_max_kib"] * 1024
    out = []
    for i in range(P["nlibs"]):
        text = int(lo * (hi / lo) ** rng.random()) // 16 * 16
        out.append((i, text, int(text * rng.uniform(0.1, 0.5)) // 8 * 8,
                    rng.choice((1, 2, 4, 8, 16)) * 4096 - 512, rng.choice((0, 4096, 65536))))
    return out


def lib_source(i, text, rodata, data, bss):
    # A real function at the start of the text (the population calls it), int3 padding after it;
    # bench_text_size tells the population how much text there is to read.
    return f"""	.text
	.globl bench_text
	.type bench_text,@function
bench_text:
	ret
	.fill {text - 1},1,0xcc
	.size bench_text, .-bench_text
	.section .rodata
	.globl bench_text_size
	.type bench_text_size,@object
bench_text_size:
	.quad {text}
	.quad {i}
	.fill {rodata},1,{i % 251}
	.data
	.globl bench_data
bench_data:
	.fill {data},1,{(i * 7) % 251}
{f"	.bss{chr(10)}	.zero {bss}" if bss else ""}
	.section .note.GNU-stack,"",@progbits
"""


def generate_libs():
    """Builds the libraries with binutils (as, ld -shared) once; a stamp of the plan says whether
    what is on disk is current. Returns (seconds spent, total MiB)."""
    d = lib_dir()
    plan = lib_plan()
    stamp = hashlib.sha256("".join(lib_source(*p) for p in plan).encode()).hexdigest()
    stamp_file = os.path.join(d, "STAMP")
    if os.path.exists(stamp_file) and open(stamp_file).read() == stamp:
        return 0.0, sum(os.path.getsize(os.path.join(d, f"lib{p[0]:04d}.so")) for p in plan) / B.MiB
    t = time.monotonic()
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "src"))
    asm, ld = B.tool_path("as"), B.tool_path("ld")

    def build(p):
        i = p[0]
        src, obj = os.path.join(d, "src", f"lib{i:04d}.S"), os.path.join(d, "src", f"lib{i:04d}.o")
        with open(src, "w") as f:
            f.write(lib_source(*p))
        for cmd in ([asm, "-o", obj, src],
                    [ld, "-shared", "-z", "noexecstack", "-soname", f"lib{i:04d}.so",
                     "-o", os.path.join(d, f"lib{i:04d}.so"), obj]):
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
        os.unlink(obj)

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        list(ex.map(build, plan))
    subprocess.run(["sync", "-f", d])
    with open(stamp_file, "w") as f:
        f.write(stamp)
    total = sum(os.path.getsize(os.path.join(d, f"lib{i:04d}.so")) for i, *_ in plan)
    return time.monotonic() - t, total / B.MiB


class Population:
    def __init__(self, ns):
        self.proc = B.Child(
            [os.path.join(B.HELPERS, "population"), "-b", str(P["busy_every"]), lib_dir(),
             str(P["nlibs"]), str(P["procs"]), str(P["libs_per_proc"]), str(P["seed"])],
            ns=ns, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"population did not start: {line!r}")

    def busy(self, on):
        self.proc.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)

    def stop(self):
        B.stop(self.proc, timeout=30)


def count_mappings(proc_dir):
    """(processes, mappings, file-backed executable mappings) in a procfs."""
    procs = maps = exe = 0
    for pid in B.pids(proc_dir):
        try:
            with open(f"{proc_dir}/{pid}/maps") as f:
                lines = f.readlines()
        except OSError:
            continue
        procs += 1
        maps += len(lines)
        exe += sum(1 for l in lines if l.split()[1][2] == "x" and "/" in l)
    return procs, maps, exe


def readmaps(reps, ns):
    c = B.Child([os.path.join(B.HELPERS, "readmaps"), str(reps)], ns=ns, stdout=subprocess.PIPE,
                text=True)
    out, _ = c.proc.communicate()
    if c.returncode:
        raise RuntimeError(f"readmaps failed ({c.returncode})")
    runs = []
    for line in out.splitlines():
        runs.append({k: int(v) for k, v in (kv.split("=") for kv in line.split())})
    return runs


def rescans(d, n):
    """CPU ms of each of n SIGUSR1 passes, from schedstat around each: [(pass number, ms)]."""
    out = []
    for _ in range(n):
        c0 = B.cpu_ns(d.pid)
        if not d.rescan(60):
            raise RuntimeError(f"prelockd did not finish a rescan; see {d.log_path}")
        out.append(((d.status() or {}).get("pass"), (B.cpu_ns(d.pid) - c0) / 1e6))
    return out


def reloads(d, n):
    """CPU ms of each of n SIGHUP passes (a reload re-reads every process): [(pass, ms)]."""
    out = []
    for _ in range(n):
        c0 = B.cpu_ns(d.pid)
        if not d.reload(60):
            raise RuntimeError(f"prelockd did not finish a reload; see {d.log_path}")
        out.append(((d.status() or {}).get("pass"), (B.cpu_ns(d.pid) - c0) / 1e6))
    return out


def is_full(log_pass):
    """A pass that read (nearly) every process again: a few may have come or gone meanwhile."""
    return log_pass is not None and log_pass["read"] >= 0.9 * log_pass["processes"]


def split_passes(measured, log):
    """Splits [(pass, ms)] into quiet and full ones by the daemon's log lines."""
    quiet = [ms for n, ms in measured if not is_full(log.get(n))]
    full = [ms for n, ms in measured if is_full(log.get(n))]
    return quiet, full


def vmtouch_lock(reps):
    """The kernel's price of locking, for scale: CPU that `vmtouch -l` spends to lock every library
    whole (what prelockd's whole mode locks), measured once it holds them all."""
    files = sorted(os.path.join(lib_dir(), f) for f in os.listdir(lib_dir()) if f.endswith(".so"))
    want = sum(-(-os.path.getsize(f) // B.PAGE) * B.PAGE for f in files)
    out = []
    for _ in range(reps):
        c = B.Child([B.tool_path("vmtouch"), "-l", "-q"] + files)
        try:
            if not B.wait_for(lambda: (B.proc_status(c.pid, "VmLck") or 0) >= want, 60):
                raise RuntimeError("vmtouch -l did not lock all the libraries")
            B.wait_sleeping(c.pid)
            out.append({"cpu_ms": round(B.cpu_ns(c.pid) / 1e6, 1),
                        "locked_mib": round(B.proc_status(c.pid, "VmLck") / B.MiB, 1)})
        finally:
            B.stop(c)
    return out


def daemon_run(config, way, mode, rep, workdir, lib_re, pop, ns):
    wrap = [noquery_path()] if wrapped(config, way) else []
    lock = dict(CONFIGS[config][0], include=lib_re, what=mode)
    d = B.Prelockd(os.path.join(workdir, f"cost-{config}-{way}-{mode}-{rep}"), lock, ns=ns,
                   wrap=wrap)
    r = {"config": config, "way": way, "mode": mode, "rep": rep,
         "read_only_data": lock.get("read_only_data", "yes"),
         "wrapper": "noquery" if wrap else None}
    try:
        ready_s = d.wait_ready(120)
        if ready_s is None:
            raise RuntimeError(f"prelockd ({way}, {mode}) did not get ready; see {d.log_path}")
        B.wait_sleeping(d.pid)
        r["ready_ms"] = round(ready_s * 1000, 1)
        r["cpu_to_ready_ms"] = round(B.cpu_ns(d.pid) / 1e6, 1)
        first = d.log_passes().get(1)
        if not first:
            raise RuntimeError(f"no pass summary line understood in {d.log_path}: has its format "
                               f"changed? (PASS_LINE in bench/benchlib.py)")
        if first:
            r["first_pass_cpu_ms"], r["first_pass_wall_ms"] = first["cpu_ms"], first["wall_ms"]
            r["processes"], r["mappings"] = first["processes"], first["mappings"]
            # The daemon's own split: finding what to lock, and locking it (mostly the kernel
            # populating and locking pages, as for vmtouch -l).
            r["first_pass_scan_ms"], r["first_pass_lock_ms"] = first["scan_ms"], first["lock_ms"]
        r["rss_anon_kib_ready"] = B.proc_status(d.pid, "RssAnon") // 1024
        # Quiet passes: SIGUSR1 with every process idle, then with a tenth of them busy. A pass
        # the daemon makes full by itself (its own schedule) is counted apart.
        measured = {}
        for phase in ("idle", "busy"):
            pop.busy(phase == "busy")
            if phase == "busy":
                time.sleep(0.5)
            measured[phase] = rescans(d, P["rescans"])
        pop.busy(False)
        # Full passes, asked for: a reload re-reads every process.
        measured["reload"] = reloads(d, P["full_passes"])
        log = d.log_passes()
        for phase in ("idle", "busy"):
            quiet, full = split_passes(measured[phase], log)
            r[f"{phase}_cpu_ms"] = [round(ms, 3) for _, ms in measured[phase]]
            r[f"{phase}_quiet_ms"] = round(B.median(quiet), 3) if quiet else None
            r[f"{phase}_own_full_ms"] = [round(x, 1) for x in full]
        quiet, full = split_passes(measured["reload"], log)
        r["reload_cpu_ms"] = [round(ms, 3) for _, ms in measured["reload"]]
        r["full_ms"] = round(B.median(full), 2) if full else None
        r["full_log_ms"] = B.median([log[n]["cpu_ms"] for n, _ in measured["reload"]
                                     if is_full(log.get(n))])
        if quiet:
            r["note"] = f"{len(quiet)} of {len(measured['reload'])} SIGHUP passes were not full"
            own = r["idle_own_full_ms"] + r["busy_own_full_ms"]
            if not full and own:
                # A daemon whose reload no longer re-reads everything: its own full passes.
                r["full_ms"] = round(B.median(own), 2)
                r["note"] += "; full pass from the daemon's own full passes"
        # The log line's CPU covers the pass up to its summary: not the status file rewrite,
        # the notification or the event loop, which schedstat above includes.
        r["log_cpu_ms"] = {n: v["cpu_ms"] for n, v in log.items()}
        r["rss_anon_kib"] = B.proc_status(d.pid, "RssAnon") // 1024
        r["vm_hwm_kib"] = B.proc_status(d.pid, "VmHWM") // 1024
        r["fds"] = B.fd_count(d.pid)
        st = d.status() or {}
        r["locked_files"] = st.get("files")
        r["locked_mib"] = round(st.get("locked_bytes", 0) / B.MiB, 1)
        r["budget_mib"] = round(st.get("budget_bytes", 0) / B.MiB, 1)
        r["vmlck_mib"] = round((B.proc_status(d.pid, "VmLck") or 0) / B.MiB, 1)
        r["total_cpu_ms"] = round(B.cpu_ns(d.pid) / 1e6, 1)
        if d.log_lines(r"cannot read \S*pagemap"):
            r["pagemap_fallback"] = True
    finally:
        r["exit"] = d.stop()
    return r


def run_all(workdir):
    res = {"params": dict(P)}
    gen_s, total_mib = generate_libs()
    res["generate_s"], res["libs_mib"] = round(gen_s, 1), round(total_mib, 1)
    B.log(f"  cost: {P['nlibs']} libraries, {total_mib:.0f} MiB"
          f"{' (built in %.1f s)' % gen_s if gen_s else ' (already built)'}")
    t = time.monotonic()
    # The population, readmaps and prelockd share a PID namespace of their own: they see exactly
    # each other, not whatever else runs on the machine.
    ns = B.PidNamespace()
    try:
        pop = Population(ns)
        res["population_start_s"] = round(time.monotonic() - t, 1)
        procs, maps, exe = count_mappings(ns.proc_dir)
        res.update(machine_processes=procs, machine_mappings=maps, machine_exec_mappings=exe)
        B.log(f"  cost: population of {P['procs']} processes up in {res['population_start_s']} s; "
              f"in its PID namespace: {procs} processes, {maps} mappings ({exe} executable file "
              f"mappings)")
        res["readmaps_before"] = readmaps(P["readmaps_reps"], ns)
        lib_re = lib_regex()
        res["include"] = lib_re
        runs = []
        for rep in range(1, P["reps"] + 1):
            for config, way, mode in P["runs"]:
                r = daemon_run(config, way, mode, rep, workdir, lib_re, pop, ns)
                runs.append(r)
                B.log(f"  cost {config:9} {way:5} {mode:9} rep {rep}: READY {r['ready_ms']} ms, first pass "
                      f"{r.get('first_pass_cpu_ms')} ms CPU; quiet pass idle {r['idle_quiet_ms']} "
                      f"/ busy {r['busy_quiet_ms']} ms CPU; full pass (SIGHUP) {r['full_ms']} ms "
                      f"CPU; RssAnon {r['rss_anon_kib']} KiB, {r['fds']} fds, "
                      f"{r['locked_files']} files, {r['locked_mib']} MiB locked"
                      f"{'; the daemon made a full pass by itself: %s ms' % (r['idle_own_full_ms'] + r['busy_own_full_ms']) if r['idle_own_full_ms'] or r['busy_own_full_ms'] else ''}"
                      f"{'; ' + r['note'] if r.get('note') else ''}")
        res["runs"] = runs
        res["readmaps_after"] = readmaps(P["readmaps_reps"], ns)
        pop.stop()
        res["vmtouch_lock"] = vmtouch_lock(3)
    finally:
        ns.close()
    return res


def summary(res):
    rm = res["readmaps_before"] + res["readmaps_after"]
    out = {"readmaps_cpu_ms": B.median([r["cpu_us"] / 1000 for r in rm]),
           "readmaps_wall_ms": B.median([r["wall_us"] / 1000 for r in rm]),
           "readmaps_bytes": B.median([r["bytes"] for r in rm]),
           "readmaps_lines": B.median([r["lines"] for r in rm]),
           "readmaps_procs": B.median([r["procs"] for r in rm]),
           "vmtouch_lock_cpu_ms": B.median([r["cpu_ms"] for r in res["vmtouch_lock"]]),
           "vmtouch_lock_mib": B.median([r["locked_mib"] for r in res["vmtouch_lock"]]),
           "runs": {}}
    for config, way, mode in P["runs"]:
        rs = [r for r in res["runs"] if r.get("config", "default") == config and r["way"] == way
              and r["mode"] == mode]
        if not rs:
            continue
        m = {k: B.median([r.get(k) for r in rs]) for k in (
            "ready_ms", "cpu_to_ready_ms", "first_pass_cpu_ms", "first_pass_wall_ms",
            "first_pass_scan_ms", "first_pass_lock_ms", "idle_quiet_ms", "busy_quiet_ms",
            "full_ms", "full_log_ms", "rss_anon_kib", "vm_hwm_kib", "fds", "locked_files",
            "locked_mib", "processes", "mappings")}
        m["own_full_ms"] = B.median([x for r in rs for x in r["idle_own_full_ms"] +
                                     r["busy_own_full_ms"]])
        m["rss_anon_kib_max"] = max(r["rss_anon_kib"] for r in rs)
        m["pagemap_fallback"] = any(r.get("pagemap_fallback") for r in rs)
        m["reps"] = len(rs)
        out["runs"][run_key(config, way, mode)] = dict(
            m, config=config, way=way, mode=mode,
            read_only_data=CONFIGS[config][0].get("read_only_data", "yes"),
            wrapper="noquery" if wrapped(config, way) else None)
    return out


def tables(s):
    floor = s["readmaps_cpu_ms"]
    start, passes = [], []
    for key, m in s["runs"].items():
        name = [CONFIGS[m["config"]][1], WAYS[m["way"]]
                + (" (noquery)" if m["wrapper"] else ""),
                m["mode"] + (" (default)" if m["mode"] == "resident" else "")
                + (" ¹" if m["pagemap_fallback"] else "")]
        start.append(name + [B.fmt(m["ready_ms"], 0), B.fmt(m["cpu_to_ready_ms"], 0),
                             B.fmt(m["first_pass_cpu_ms"], 0),
                             f'{B.fmt(m["first_pass_scan_ms"], 0)} + {B.fmt(m["first_pass_lock_ms"], 0)}',
                             B.ratio(m["first_pass_cpu_ms"], floor),
                             B.fmt(m["rss_anon_kib"], 0), B.fmt(m["fds"], 0),
                             B.fmt(m["locked_files"], 0), B.fmt(m["locked_mib"], 0)])
        passes.append(name + [B.fmt(m["idle_quiet_ms"], 2), B.fmt(m["busy_quiet_ms"], 2),
                              B.ratio(max(x for x in (m["idle_quiet_ms"], m["busy_quiet_ms"], 0)
                                          if x is not None), floor),
                              B.fmt(m["full_ms"], 1), B.ratio(m["full_ms"], floor),
                              B.fmt(m["own_full_ms"], 1)])
    floor_row = ["read every maps file as text (floor)", "–", "–", "–", "–", B.fmt(floor, 0),
                 f"{B.fmt(floor, 0)} + –", "1.00×", "–", "–", "–", "–"]
    lock_row = ["vmtouch -l of every library (locking alone)", "–", "–", "–", "–",
                B.fmt(s["vmtouch_lock_cpu_ms"], 0), f"– + {B.fmt(s['vmtouch_lock_cpu_ms'], 0)}",
                "–", "–", "–", "1000", B.fmt(s["vmtouch_lock_mib"], 0)]
    t1 = B.md_table(["config", "reading mappings by", "what =", "READY ms", "CPU to READY ms",
                     "first pass CPU ms", "of which scanning + locking ms",
                     "first pass vs text floor", "RssAnon KiB", "fds", "files locked",
                     "MiB locked"], start + [floor_row, lock_row], left=3)
    t2 = B.md_table(["config", "reading mappings by", "what =", "quiet pass, idle: median ms",
                     "quiet pass, busy: median ms", "quiet vs floor (the larger)",
                     "full pass (SIGHUP): median ms", "full vs floor",
                     "full passes the daemon made by itself: median ms"], passes, left=3)
    return t1, t2


def targets(s):
    """Issue 11's cost targets, on the shipped config (read_only_data = yes, what = resident,
    which reads mappings as text on every kernel): [{group, target, measured, limit, met}]. The
    code-only runs (read_only_data = no, PROCMAP_QUERY or text) are in the tables, not here."""
    floor, out = s["readmaps_cpu_ms"], []
    for key, m in s["runs"].items():
        if m["config"] != "default" or m["mode"] != "resident":
            continue
        g = f"cost, shipped config ({WAYS[m['way']]})"

        def add(target, value, factor, unit="ms"):
            ok = value is not None and value <= factor * floor
            out.append({"group": g, "target": f"{target} <= {factor} x reading every maps "
                                                f"file as text ({floor:.0f} ms)",
                        "measured": f"{B.fmt(value, 1)} {unit} ({B.ratio(value, floor)})",
                        "limit": f"{factor * floor:.1f} {unit}", "met": ok})

        add("first pass CPU", m["first_pass_cpu_ms"], 1.3)
        quiet = max(x for x in (m["idle_quiet_ms"], m["busy_quiet_ms"], 0) if x is not None)
        add("quiet pass CPU (larger of idle and busy medians)", quiet, 0.1)
        add("full pass CPU (SIGHUP)", m["full_ms"], 1.2)
        out.append({"group": g, "target": "RssAnon <= 1 MiB (largest of all starts)",
                    "measured": f"{m['rss_anon_kib_max']:.0f} KiB", "limit": "1024 KiB",
                    "met": m["rss_anon_kib_max"] <= 1024})
    return out
