#!/usr/bin/env python3
"""Least privilege (issue 5): the release daemon runs as an unprivileged user (created for the
test, removed after) with exactly CAP_IPC_LOCK and CAP_SYS_PTRACE (setpriv: reuid/regid, no
groups, inheritable + ambient + bounding set of those two), its state and status files in a
directory that user owns:

- the kernel shows it has those two capabilities and nothing else, and the user's ids;
- it works fully (what = whole): a root-owned file mapped by a root process is locked (its
  smaps), rescans and a reload are answered, the status file is written, the state is saved at
  SIGTERM, exit 0; in `what = resident`, the default, too, where other users' pagemap is closed
  to it (mode 0400) and it locks what their processes map, saying so once;
- a file of mode 0600 (root) mapped by a root process is skipped: --dry-run (same user and
  capabilities) says "cannot open: Permission denied", nothing of it is locked, no crash;
- without CAP_SYS_PTRACE it cannot read root's processes: it says so once, locks the file of a
  process of its own user, and runs on;
- without CAP_IPC_LOCK (RLIMIT_MEMLOCK 8 MiB, or 0) it exits 77 with the remedy."""
import json
import os
import pwd
import re
import shutil
import subprocess

from lib import (PRELOCKD, MiB, Daemon, Mapper, done, eq, locked_by_inode, make_file, ok, run,
                 workdir)

RELEASE = os.environ.get("PRELOCKD_RELEASE", PRELOCKD)
USER = "prelockd-t"
CAP_IPC_LOCK, CAP_SYS_PTRACE = 14, 19

d = workdir()
mappers = []
dm = None
created = False


def setpriv(uid, gid, caps):
    c = ",".join(f"+{x}" for x in caps)
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            f"--inh-caps=-all{',' + c if c else ''}", f"--ambient-caps=-all{',' + c if c else ''}",
            f"--bounding-set=-all{',' + c if c else ''}"]


def caps_of(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    out = {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s*([0-9a-f]+)$", text, re.M)}
    out["Uid"] = [int(x) for x in re.search(r"^Uid:\s*(.*)$", text, re.M).group(1).split()]
    return out


def start(conf, caps, binary=RELEASE):
    """The daemon as USER with caps. Its notify socket must be writable by that user."""
    old = os.umask(0)
    try:
        return Daemon(d, conf, binary=binary, prefix=setpriv(uid, gid, caps))
    finally:
        os.umask(old)


try:
    subprocess.run(["userdel", USER], capture_output=True)  # a leftover of an interrupted run
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                        "--shell", "/usr/sbin/nologin", USER], capture_output=True, text=True)
    eq(r.returncode, 0, f"useradd {USER} {r.stderr.strip()}")
    created = r.returncode == 0
    pw = pwd.getpwnam(USER)
    uid, gid = pw.pw_uid, pw.pw_gid
    os.chown(d, uid, gid)
    os.chmod(d, 0o755)

    okfile = make_file(os.path.join(d, "libok.so"), 3 * MiB, seed=1)
    secret = make_file(os.path.join(d, "libsecret.so"), 2 * MiB, seed=2)
    os.chmod(okfile, 0o644)
    os.chmod(secret, 0o600)
    ost, sst = os.stat(okfile), os.stat(secret)
    ok(ost.st_uid == 0 and sst.st_uid == 0, "both files belong to root")
    mappers += [Mapper(okfile), Mapper(secret)]  # root processes
    conf = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = whole\nkeep = 0\n"

    # --- exactly CAP_IPC_LOCK + CAP_SYS_PTRACE ------------------------------------------------
    dm = start(conf, ["ipc_lock", "sys_ptrace"])
    ok(dm.wait_ready(60), "unprivileged: READY=1", dm.log())
    c = caps_of(dm.pid)
    want = (1 << CAP_IPC_LOCK) | (1 << CAP_SYS_PTRACE)
    eq(c["Uid"], [uid] * 4, "unprivileged: runs with the user's uid (real, effective, saved, fs)")
    eq((c["CapEff"], c["CapPrm"], c["CapBnd"]), (want, want, want),
       "unprivileged: effective, permitted and bounding sets are exactly IPC_LOCK + SYS_PTRACE")
    eq(locked_by_inode(dm.pid, ost), (3 * MiB, 3 * MiB),
       "unprivileged: the root-owned file mapped by a root process is locked, resident")
    eq(locked_by_inode(dm.pid, sst), (0, 0), "unprivileged: nothing of the 0600 file is locked")
    st = dm.status_json()
    eq([e["path"] for e in st["locked"]], [okfile], "unprivileged: the status file lists libok.so")
    eq(os.stat(dm.status_file).st_uid, uid, "unprivileged: it wrote the status file as its user")
    ok(dm.rescan(), "unprivileged: a rescan is answered")
    i, j = dm.reload()
    ok(j is not None, "unprivileged: a reload is answered")
    eq(locked_by_inode(dm.pid, ost), (3 * MiB, 3 * MiB), "unprivileged: still locked")

    r = subprocess.run(setpriv(uid, gid, ["ipc_lock", "sys_ptrace"]) +
                       [RELEASE, "-c", dm.conf, "--dry-run", "--json"],
                       capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, "unprivileged --dry-run --json exits 0")
    try:
        plan = {f["path"]: f for f in json.loads(r.stdout)["files"]}
    except ValueError:
        plan = {}
    ok(plan.get(secret, {}).get("reason") == "cannot open" and not plan[secret].get("selected"),
       "unprivileged --dry-run: the 0600 file is skipped: cannot open", plan.get(secret, r.stdout))
    ok(plan.get(okfile, {}).get("selected") is True, "unprivileged --dry-run: libok.so selected")
    r = subprocess.run(setpriv(uid, gid, ["ipc_lock", "sys_ptrace"]) +
                       [RELEASE, "-c", dm.conf, "--dry-run"], capture_output=True, text=True,
                       timeout=60)
    rows = [x for x in r.stdout.splitlines() if x.endswith(secret)]
    ok(len(rows) == 1 and rows[0].startswith("skip") and "cannot open: Permission denied" in rows[0],
       "unprivileged --dry-run table: skip, cannot open: Permission denied", rows or r.stdout)

    ok(dm.alive(), "unprivileged: alive", dm.log())
    eq(dm.stop(), 0, "unprivileged: SIGTERM exits 0")
    with open(dm.state_file) as f:
        state = f.read()
    ok(state.startswith("prelockd-state 1\n") and okfile in state and secret not in state,
       "unprivileged: the saved state lists libok.so, not the 0600 file", state)
    eq(os.stat(dm.state_file).st_uid, uid, "unprivileged: it wrote the state as its user")
    log = dm.log()
    ok("error" not in log.lower(), "unprivileged: no error in the log", log)
    dm = None
    os.unlink(os.path.join(d, "state"))

    # --- what = resident (the default) --------------------------------------------------------
    # /proc/PID/pagemap is mode 0400, owned by the process's user: opening it for another user's
    # process takes CAP_DAC_READ_SEARCH besides CAP_SYS_PTRACE. (Was a bug: the daemon dropped
    # the whole process, so in the default mode it locked nothing another user runs.) Without
    # it, such a process counts as using all it maps, as in `mapped`, and the daemon says so.
    dm = start(conf.replace("what = whole", "what = resident"), ["ipc_lock", "sys_ptrace"])
    ok(dm.wait_ready(60), "unprivileged, resident: READY=1", dm.log())
    eq(locked_by_inode(dm.pid, ost), (3 * MiB, 3 * MiB),
       "unprivileged, resident: the file a root process maps (and reads) is locked")
    eq(locked_by_inode(dm.pid, sst), (0, 0), "unprivileged, resident: nothing of the 0600 file")
    ok(dm.rescan(), "unprivileged, resident: a rescan is answered")
    said = [x for x in dm.log().splitlines() if "pagemap" in x]
    ok(len(said) == 1 and "CAP_DAC_READ_SEARCH" in said[0],
       "unprivileged, resident: says once that pagemap needs CAP_DAC_READ_SEARCH", dm.log())
    eq(dm.stop(), 0, "unprivileged, resident: SIGTERM exits 0")
    dm = None
    os.unlink(os.path.join(d, "state"))

    # --- without CAP_SYS_PTRACE --------------------------------------------------------------
    own = make_file(os.path.join(d, "libown.so"), MiB, seed=3)
    own_st = os.stat(own)
    mappers.append(Mapper(own, prefix=setpriv(uid, gid, [])))
    dm = start(conf, ["ipc_lock"])
    ok(dm.wait_ready(60), "no CAP_SYS_PTRACE: READY=1", dm.log())
    eq(locked_by_inode(dm.pid, own_st), (MiB, MiB),
       "no CAP_SYS_PTRACE: the file of its own user's process is locked")
    eq(locked_by_inode(dm.pid, ost), (0, 0),
       "no CAP_SYS_PTRACE: root's processes cannot be read, so their file is not locked")
    ok(dm.rescan(), "no CAP_SYS_PTRACE: a rescan is answered")
    said = [x for x in dm.log().splitlines() if "CAP_SYS_PTRACE" in x]
    eq(len(said), 1, "no CAP_SYS_PTRACE: says so once, naming CAP_SYS_PTRACE")
    eq(dm.stop(), 0, "no CAP_SYS_PTRACE: SIGTERM exits 0")
    dm = None
    os.unlink(os.path.join(d, "state"))

    # --- without CAP_IPC_LOCK: 77 ----------------------------------------------------------------
    for memlock in ("8388608", "0"):
        cmd = (["prlimit", f"--memlock={memlock}:{memlock}"] + setpriv(uid, gid, ["sys_ptrace"]) +
               [RELEASE, "-c", os.path.join(d, "prelockd.conf")])
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            r = subprocess.CompletedProcess(cmd, "timeout", "", "")
        eq(r.returncode, 77, f"no CAP_IPC_LOCK, RLIMIT_MEMLOCK {memlock}: exits 77")
        for word in ("CAP_IPC_LOCK", "LimitMEMLOCK", "ulimit -l", "AmbientCapabilities"):
            ok(word in r.stderr, f"no CAP_IPC_LOCK, RLIMIT_MEMLOCK {memlock}: the remedy names {word}",
               r.stderr)
    ok(not os.path.exists(os.path.join(d, "state")), "no CAP_IPC_LOCK: no state written")
finally:
    if dm:
        dm.stop()
    for m in mappers:
        m.stop()
    shutil.rmtree(d, ignore_errors=True)
    if created:
        subprocess.run(["userdel", USER], capture_output=True)
done()
