#!/usr/bin/env python3
"""`what = resident` under the shipped unit's privileges (issue 11 item 4). The release daemon runs
as an unprivileged user with exactly the capabilities prelockd.service grants (read from its
AmbientCapabilities=, so the test follows the unit), against a file a root process maps whole
and uses a quarter of:

- with the unit's capabilities it reads the root process's pagemap: it locks about the quarter
  in use, not the whole mapping (the daemon's smaps), and reports no fallback (status file,
  --status, STATUS=, the log);
- with only CAP_IPC_LOCK + CAP_SYS_PTRACE (the unit before CAP_DAC_READ_SEARCH) it must fall
  back to what the process maps, and says so everywhere an administrator looks: the log once,
  STATUS=, the status file ("resident_fallback_processes"), --status and --dry-run."""
import json
import os
import pwd
import re
import subprocess

from lib import (PRELOCKD, ROOT, MiB, PAGE, Daemon, Mapper, cleanup, done, eq, locked_by_inode,
                 make_file, ok, workdir)

RELEASE = os.environ.get("PRELOCKD_RELEASE", PRELOCKD)
USER = "prelockd-r"
SIZE = 8 * MiB


def unit_caps():
    """The capabilities prelockd.service hands the daemon (the last AmbientCapabilities=)."""
    caps = []
    with open(os.path.join(ROOT, "prelockd.service")) as f:
        for line in f:
            m = re.match(r"\s*AmbientCapabilities=(.*)", line)
            if m:
                caps = [c.lower().removeprefix("cap_") for c in m.group(1).split()]
    return caps


def setpriv(uid, gid, caps):
    c = "".join(f",+{x}" for x in caps)
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            f"--inh-caps=-all{c}", f"--ambient-caps=-all{c}", f"--bounding-set=-all{c}"]


d = workdir()
dm = None
mappers = []
created = False
try:
    subprocess.run(["userdel", USER], capture_output=True)
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell",
                        "/usr/sbin/nologin", USER], capture_output=True, text=True)
    created = r.returncode == 0
    eq(r.returncode, 0, f"useradd {USER} {r.stderr.strip()}")
    pw = pwd.getpwnam(USER)
    uid, gid = pw.pw_uid, pw.pw_gid
    os.chown(d, uid, gid)
    os.chmod(d, 0o755)
    caps = unit_caps()
    ok("dac_read_search" in caps and "sys_ptrace" in caps and "ipc_lock" in caps,
       f"the unit grants {caps}")
    lib = make_file(os.path.join(d, "libquarter.so"), SIZE)
    st = os.stat(lib)
    mappers.append(Mapper(lib, 0, 100, 0, 25))  # a root process: maps all, uses a quarter
    used = int(SIZE // PAGE * 25 / 100) * PAGE
    conf = f"interval = 0\n[lock]\ninclude = ^{d}/\nkeep = 0\n"  # what = resident: the default

    def start(caps):
        old = os.umask(0)  # its notify socket must be writable by that user
        try:
            return Daemon(d, conf, binary=RELEASE, prefix=setpriv(uid, gid, caps))
        finally:
            os.umask(old)

    # --- the unit's capabilities -------------------------------------------------------------
    dm = start(caps)
    ok(dm.wait_ready(60), "unit's capabilities: READY=1", dm.log())
    rss, size = locked_by_inode(dm.pid, st)
    ok(used <= rss <= used + 64 * PAGE and rss == size,
       f"unit's capabilities: {rss // 1024} KiB locked, the {used // 1024} KiB in use, not the "
       f"{SIZE // 1024} KiB mapped", dm.log())
    eq(dm.status_json().get("resident_fallback_processes"), 0,
       "unit's capabilities: the status file reports no fallback")
    ok("pagemap" not in dm.log(), "unit's capabilities: no word of pagemap in the log", dm.log())
    ok(not any("falls back" in m for m in dm.notify.messages),
       "unit's capabilities: STATUS= reports no fallback", dm.notify.messages)
    eq(dm.stop(), 0, "unit's capabilities: SIGTERM exits 0")
    dm = None
    os.unlink(os.path.join(d, "state"))

    # --- without CAP_DAC_READ_SEARCH: the fallback, said everywhere ---------------------------
    dm = start(["ipc_lock", "sys_ptrace"])
    ok(dm.wait_ready(60), "without CAP_DAC_READ_SEARCH: READY=1", dm.log())
    rss, _ = locked_by_inode(dm.pid, st)
    eq(rss, SIZE, "without CAP_DAC_READ_SEARCH: all that the process maps is locked (mapped)")
    n = dm.status_json().get("resident_fallback_processes", 0)
    ok(n >= 1, f"without CAP_DAC_READ_SEARCH: the status file says {n} processes fell back")
    ok(any("resident falls back to mapped" in m for m in dm.notify.messages),
       "without CAP_DAC_READ_SEARCH: STATUS= says so", dm.notify.messages)
    said = [x for x in dm.log().splitlines() if "pagemap" in x]
    ok(len(said) == 1 and "CAP_DAC_READ_SEARCH" in said[0],
       "without CAP_DAC_READ_SEARCH: the log says so once, naming the capability", dm.log())
    r = subprocess.run([RELEASE, "-c", dm.conf, "--status"], capture_output=True, text=True,
                       timeout=30)
    ok(r.returncode == 0 and "fell back to mapped" in r.stdout,
       "without CAP_DAC_READ_SEARCH: --status says so", r.stdout + r.stderr)
    eq(dm.stop(), 0, "without CAP_DAC_READ_SEARCH: SIGTERM exits 0")
    dm = None
    old = os.umask(0)
    try:
        r = subprocess.run(setpriv(uid, gid, ["ipc_lock", "sys_ptrace"]) +
                           [RELEASE, "-c", os.path.join(d, "prelockd.conf"), "--dry-run"],
                           capture_output=True, text=True, timeout=60)
        ok(r.returncode == 0 and "fell back to mapped" in r.stdout,
           "without CAP_DAC_READ_SEARCH: --dry-run says so", r.stdout[-400:] + r.stderr)
        r = subprocess.run(setpriv(uid, gid, ["ipc_lock", "sys_ptrace"]) +
                           [RELEASE, "-c", os.path.join(d, "prelockd.conf"), "--dry-run",
                            "--json"], capture_output=True, text=True, timeout=60)
        try:
            n = json.loads(r.stdout).get("resident_fallback_processes", 0)
        except ValueError:
            n = 0
        ok(n >= 1, f"without CAP_DAC_READ_SEARCH: --dry-run --json says {n} processes")
    finally:
        os.umask(old)
finally:
    cleanup(d, dm, mappers)
    if created:
        subprocess.run(["userdel", USER], capture_output=True)
done()
