#!/usr/bin/env python3
"""The command line (SPEC "Command line"): exit codes 0/64/77/78, config errors as FILE:LINE,
--test-config, --version, --help, the missing-privilege message, --dry-run (text and JSON; it
locks nothing and writes nothing), --reset-state and --status (text and JSON, checked against
what the kernel says the daemon holds; as a normal user --status says it needs root; with a broken
config both warn and use the paths it names; --reset-state refuses while a daemon runs)."""
import json
import os
import re
import subprocess

from lib import (Daemon, Mapper, MiB, PRELOCKD, cleanup, done, eq, make_file, ok, run, smaps_locked,
                 workdir)

RELEASE = os.environ.get("PRELOCKD_RELEASE", PRELOCKD)

d = workdir()
mappers = []
dm = None


def cli(args, binary=None, prefix=()):
    """run() with a time limit: a mode that should exit at once but runs the daemon instead
    must fail the test, not hang it. prefix: a command to run it under (setpriv)."""
    try:
        if prefix:
            return subprocess.run(list(prefix) + [binary or PRELOCKD] + list(args), capture_output=True,
                                  text=True, timeout=20)
        return run(args, binary=binary, timeout=20)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, "timeout (still running after 20s)",
                                           e.stdout or "", e.stderr or "")


def conf(name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


try:
    state = os.path.join(d, "state")
    status = os.path.join(d, "status")
    files = f"[daemon]\nstate_file = {state}\nstatus_file = {status}\ninterval = 0\n"
    good = conf("good.conf", files + f"[lock]\ninclude = ^{d}/\nwhat = whole\n"
                                      f"exclude = ^{d}/skip\n")

    # --- usage errors: 64 -------------------------------------------------------------------
    for args, what in ((["--bogus"], "unknown long option"), (["-x"], "unknown short option"),
                       (["-c", good, "extra"], "an extra argument"),
                       (["-c", good, "--json"], "--json without --dry-run or --status"),
                       (["-c", good, "-n", "-t"], "two modes at once"),
                       (["-c"], "-c without its argument")):
        r = cli(args)
        eq(r.returncode, 64, f"{what} exits 64")
        ok(r.stderr.strip() != "" and r.stdout == "", f"{what}: says why on stderr", r.stderr)

    # --- config errors: 78 ------------------------------------------------------------------
    bad = conf("bad.conf", "[daemon]\ninterval = 0\n[lock]\nincldue = ^/x/\nwhat = bogus\n")
    r = cli(["-c", bad])
    eq(r.returncode, 78, "a config with an unknown key exits 78")
    ok(re.search(rf"^{re.escape(bad)}:4: .*incldue", r.stderr, re.M),
       "the unknown key is reported as FILE:LINE: message", r.stderr)
    ok(re.search(rf"^{re.escape(bad)}:5: .*bogus", r.stderr, re.M),
       "every error is reported, not only the first (line 5 too)", r.stderr)
    ok("include" in r.stderr, "the unknown key gets a suggestion", r.stderr)
    r = cli(["-c", bad, "-t"])
    eq(r.returncode, 78, "-t on a bad config exits 78")
    ok("configuration OK" not in r.stdout and f"{bad}:4:" in r.stderr,
       "-t on a bad config prints the errors, not OK", r.stdout + r.stderr)
    r = cli(["-c", os.path.join(d, "missing.conf")])
    eq(r.returncode, 78, "a missing config file exits 78")
    ok("missing.conf" in r.stderr, "and names the file", r.stderr)

    # --- -t, -V, -h: 0 ----------------------------------------------------------------------
    r = cli(["-c", good, "-t"])
    eq(r.returncode, 0, "-t on a good config exits 0")
    eq(r.stdout.strip(), "configuration OK", "-t prints configuration OK")
    r = cli(["-V"])
    eq(r.returncode, 0, "-V exits 0")
    ok(re.match(r"^prelockd \d+\.\d+(\.\d+)?", r.stdout), f"-V prints a version: {r.stdout!r}")
    r = cli(["--version"])
    ok(r.returncode == 0 and re.match(r"^prelockd \d", r.stdout), "--version too")
    r = cli(["-h"])
    eq(r.returncode, 0, "-h exits 0")
    ok("Usage" in r.stdout and "--dry-run" in r.stdout, "-h prints the usage", r.stdout)
    ok(not os.path.exists(state) and not os.path.exists(status),
       "none of these wrote a state or status file")

    # --- 77: no CAP_IPC_LOCK and a small RLIMIT_MEMLOCK -------------------------------------
    nocap = ["prlimit", "--memlock=65536:65536", "setpriv", "--inh-caps=-all",
             "--bounding-set=-ipc_lock"]
    try:
        r = subprocess.run(nocap + [RELEASE, "-c", good], capture_output=True, text=True,
                           timeout=20)
    except subprocess.TimeoutExpired as e:
        r = subprocess.CompletedProcess(e.cmd, "timeout (still running after 20s)", "", "")
    eq(r.returncode, 77, "without CAP_IPC_LOCK and with RLIMIT_MEMLOCK 64K the daemon exits 77")
    for word in ("CAP_IPC_LOCK", "LimitMEMLOCK", "ulimit -l"):
        ok(word in r.stderr, f"the message names {word}", r.stderr)
    ok(not os.path.exists(state), "it saved no state")
    # With a limit that covers the budget plus the daemon itself, no capability is needed. The
    # daemon asks for the budget + 64 MiB; raising the hard limit needs CAP_SYS_RESOURCE, which
    # a container may lack: then skip.
    lib1 = make_file(os.path.join(d, "lib1.so"), 3 * MiB)
    mappers.append(Mapper(lib1))
    mappers.append(Mapper(lib1))
    want_limit = 256 * MiB
    if subprocess.run(["prlimit", f"--memlock={want_limit}:{want_limit}", "true"],
                      capture_output=True).returncode != 0:
        ok(True, "runs without CAP_IPC_LOCK under a large LimitMEMLOCK # SKIP cannot raise "
                 "RLIMIT_MEMLOCK here (no CAP_SYS_RESOURCE)")
    else:
        small = files + f"[lock]\ninclude = ^{d}/\nwhat = whole\nmax_total = 4M\nmax_total_percent = 0\n"
        nocap_ok = ["prlimit", f"--memlock={want_limit}:{want_limit}", "setpriv", "--inh-caps=-all",
                    "--bounding-set=-ipc_lock"]
        dm = Daemon(d, small, binary=RELEASE, prefix=nocap_ok)
        ok(dm.wait_ready(30), "with LimitMEMLOCK large enough it runs without CAP_IPC_LOCK",
           dm.log())
        if dm.alive():
            with open(f"/proc/{dm.pid}/status") as f:
                capeff = int(re.search(r"CapEff:\s*([0-9a-f]+)", f.read()).group(1), 16)
            ok(not capeff & (1 << 14), "the daemon really lacks CAP_IPC_LOCK (bit 14)")
            eq(smaps_locked(dm.pid, lib1), (3 * MiB, 3 * MiB), "and it locks the mapped file")
        eq(dm.stop(), 0, "SIGTERM exits 0")
        dm = None
        for p in (state, status):
            if os.path.exists(p):
                os.unlink(p)

    # --- --dry-run ----------------------------------------------------------------------------
    skip = make_file(os.path.join(d, "skip.so"), 2 * MiB, seed=2)
    mappers.append(Mapper(skip))
    trace = os.path.join(d, "strace.out")
    # LeakSanitizer cannot run under ptrace (make check-asan): no leak check in this one run.
    no_lsan = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=mlock,mlock2,mlockall,munlock",
                        "-o", trace, PRELOCKD, "-c", good, "--dry-run"],
                       capture_output=True, text=True, timeout=60, env=no_lsan)
    eq(r.returncode, 0, "--dry-run exits 0")
    rows = [line.split() for line in r.stdout.splitlines() if line.endswith(" " + lib1)]
    eq(len(rows), 1, "--dry-run lists the mapped test file once")
    if rows:
        row = rows[0]
        # DECISION SIZE(2 words) WOULD-LOCK(2 words) PROCS WHY PATH
        eq(row[0], "lock", "its decision is lock")
        eq(" ".join(row[1:3]), "3.0 MiB", "its size is shown")
        eq(" ".join(row[3:5]), "3.0 MiB", "the bytes it would lock are shown")
        eq(row[5], "2", "the number of processes mapping it is shown")
    rows = [line.split() for line in r.stdout.splitlines() if line.endswith(" " + skip)]
    ok(len(rows) == 1 and rows[0][0] == "skip" and "excluded" in rows[0],
       "the excluded file is listed as skip, excluded", r.stdout)
    with open(trace) as f:
        calls = [x for x in f.read().splitlines() if "mlock" in x]
    eq(calls, [], "--dry-run makes no mlock/mlockall call (strace)")
    ok(not os.path.exists(state) and not os.path.exists(status),
       "--dry-run writes no state and no status file")

    r = cli(["-c", good, "--dry-run", "--json"])
    eq(r.returncode, 0, "--dry-run --json exits 0")
    try:
        plan = json.loads(r.stdout)
    except ValueError as e:
        plan = None
        ok(False, "--dry-run --json parses", f"{e}\n{r.stdout[:2000]}")
    if plan is not None:
        ok(True, "--dry-run --json parses")
        byp = {f["path"]: f for f in plan["files"]}
        f = byp.get(lib1, {})
        ok(f.get("lock_bytes") == 3 * MiB and f.get("selected") is True and f.get("processes") == 2
           and f.get("size") == 3 * MiB, "the mapped file: selected, lock_bytes = its size", f)
        f = byp.get(skip, {})
        ok(f.get("reason") == "excluded" and f.get("selected") is False and not f.get("lock_bytes"),
           "the excluded file: reason excluded, not selected", f)
    ok(not os.path.exists(state) and not os.path.exists(status),
       "--dry-run --json writes no state and no status file")

    # --- --status -------------------------------------------------------------------------------
    r = cli(["-c", good, "--status"])
    eq(r.returncode, 1, "--status with no daemon (no status file) exits 1")
    ok("running" in r.stderr, "and asks whether the daemon runs", r.stderr)
    dm = Daemon(d, open(good).read())
    ok(dm.wait_ready(), "daemon READY", dm.log())
    r = cli(["-c", good, "--status"])
    eq(r.returncode, 0, "--status exits 0")
    rows = [line.split() for line in r.stdout.splitlines() if line.endswith(" " + lib1)]
    ok(len(rows) == 1 and " ".join(rows[0][:2]) == "3.0 MiB" and rows[0][4] == "2",
       "--status lists the locked file: 3.0 MiB locked, 2 processes", r.stdout)
    ok(not any(line.endswith(skip) for line in r.stdout.splitlines()),
       "--status does not list the excluded file", r.stdout)
    ok(f"pid {dm.pid}" in r.stdout, "--status names the daemon's pid", r.stdout)
    r = cli(["-c", good, "--status", "--json"])
    eq(r.returncode, 0, "--status --json exits 0")
    try:
        st = json.loads(r.stdout)
        ok(True, "--status --json parses")
        ent = {e["path"]: e for e in st["locked"]}
        rss, size = smaps_locked(dm.pid, lib1)
        eq(ent.get(lib1, {}).get("bytes"), size, "--status --json bytes = the kernel's locked size")
        eq(rss, size, "all of it resident")
        _, total = smaps_locked(dm.pid, d + "/")
        eq(st["locked_bytes"], total, "--status --json locked_bytes = the kernel's total")
        eq(st["pid"], dm.pid, "--status --json pid")
    except ValueError as e:
        ok(False, "--status --json parses", f"{e}\n{r.stdout[:2000]}")

    # A normal user: the status file is root's alone (0600), and the message says so.
    os.chmod(status, 0o600)
    os.chmod(d, 0o711)
    r = cli(["-c", good, "--status"], prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
    eq(r.returncode, 1, "--status as a normal user exits 1")
    ok("root" in r.stderr and "is the daemon running" not in r.stderr,
       "--status as a normal user: says that it needs root, not whether the daemon runs", r.stderr)
    os.chmod(d, 0o700)

    # A broken config (a reload that failed): --status warns and reads the status file it names.
    broken = conf("broken.conf", files + "[lock]\nwhat = bogus\n")
    r = cli(["-c", broken, "--status"])
    eq(r.returncode, 0, "--status with a broken config exits 0")
    ok(f"pid {dm.pid}" in r.stdout, "--status with a broken config shows the running daemon", r.stdout)
    ok(re.search(rf"^{re.escape(broken)}:6: ", r.stderr, re.M) and status in r.stderr,
       "--status with a broken config: the error as FILE:LINE, and the status file it uses", r.stderr)
    nofile = conf("broken-nofile.conf", "[lock]\nwhat = bogus\n")
    r = cli(["-c", nofile, "--status"])
    ok("/run/prelockd/status" in r.stderr,
       "--status with a broken config that names no status file: uses the default", r.stderr)

    # --reset-state while the daemon runs: refused, the state left alone (the daemon would save it
    # again at exit anyway), with the good config and with the broken one.
    had_state = os.path.exists(state)
    for c, what in ((good, "the config"), (broken, "a broken config")):
        r = cli(["-c", c, "--reset-state"])
        eq(r.returncode, 1, f"--reset-state with {what} while the daemon runs exits 1")
        ok(str(dm.pid) in r.stderr and "removed" not in r.stdout,
           f"--reset-state with {what}: names the running daemon, removes nothing", r.stdout + r.stderr)
    eq(os.path.exists(state), had_state, "--reset-state while the daemon runs left the state file")
    eq(dm.stop(), 0, "daemon SIGTERM exits 0")
    dm = None

    # --- --reset-state ----------------------------------------------------------------------------
    ok(os.path.exists(state), "the daemon saved its state")
    r = cli(["-c", good, "--reset-state"])
    eq(r.returncode, 0, "--reset-state exits 0")
    ok(not os.path.exists(state), "--reset-state removed the state file")
    ok(state in r.stdout, "and says which file", r.stdout)
    r = cli(["-c", good, "-r"])
    eq(r.returncode, 0, "-r with no state file exits 0 too")
    ok(os.path.exists(status), "the stopped daemon's status file is still there (naming a dead pid)")
    with open(state, "w") as f:
        f.write("stand-in state\n")
    r = cli(["-c", broken, "-r"])
    eq(r.returncode, 0, "-r with a broken config exits 0 once the daemon stopped")
    ok(not os.path.exists(state), "-r with a broken config removed the state file it names")
    ok(re.search(rf"^{re.escape(broken)}:6: ", r.stderr, re.M) and state in r.stderr,
       "-r with a broken config: the error as FILE:LINE, and the state file it uses", r.stderr)
finally:
    cleanup(d, dm, mappers)
done()
