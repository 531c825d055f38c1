#!/usr/bin/env python3
"""What the daemon may open and lock (SPEC "Safety rules"), checked in its smaps by dev+inode:

- a process in another mount namespace maps a file on a tmpfs that only that namespace sees: the
  daemon locks it through /proc/PID/root (the path in its own namespace leads nowhere), and does
  not save it in the state file (the path means nothing after a restart);
- executable mappings of /dev/zero (private and shared), of a memfd, and of a character device
  node named like a library inside the included directory are never locked, although the include
  regexes match their names;
- FIFOs named like libraries never hang the daemon: one listed in `always`, one named in the
  saved state, and one bind-mounted (inside a private mount namespace) over a library a process
  maps. READY=1 comes, rescans and a reload are answered, nothing of them is locked."""
import json
import os
import shutil
import stat
import subprocess
import time

from lib import (MiB, Daemon, Mapper, done, eq, locked_mappings, make_file, ok, run, workdir)

HELPER = r"""
import mmap, os, signal, sys
n = 1 << 20
rx = mmap.PROT_READ | mmap.PROT_EXEC
maps = []
z = os.open("/dev/zero", os.O_RDONLY)
maps.append(mmap.mmap(z, n, flags=mmap.MAP_PRIVATE, prot=rx))
maps.append(mmap.mmap(z, n, flags=mmap.MAP_SHARED, prot=rx))
m = os.memfd_create("libmemfd.so", 0)
os.write(m, b"\x90" * n)
maps.append(mmap.mmap(m, n, flags=mmap.MAP_SHARED, prot=rx))
dev = os.open(sys.argv[1], os.O_RDONLY)
maps.append(mmap.mmap(dev, n, flags=mmap.MAP_PRIVATE, prot=rx))
for mm in maps:
    for off in range(0, n, 4096):
        mm[off]
print("ready", flush=True)
signal.pause()
"""

d = workdir()
procs = []
mappers = []
dm = None


def exec_maps(pid):
    """(perms, path) of the process's executable mappings, from its maps."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and "x" in parts[1]:
                out.append((parts[1], parts[5].strip()))
    return out


def locked_of(pid, st):
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    return [x for x in locked_mappings(pid) if x["inode"] == st.st_ino and x["dev"] == dev]


try:
    # --- another mount namespace ---------------------------------------------------------------
    src = make_file(os.path.join(d, "src.bin"), 4 * MiB, seed=3)  # mapped by nobody
    nsdir = os.path.join(d, "ns")
    os.mkdir(nsdir)
    nspath = os.path.join(nsdir, "libns.so")
    script = 'mount -t tmpfs none "$0" && cp "$1" "$0/libns.so" && shift && exec "$@"'
    ns_mapper = Mapper(nspath, prefix=["unshare", "-m", "--propagation", "private",
                                       "sh", "-c", script, nsdir, src])
    mappers.append(ns_mapper)
    ns_st = os.stat(f"/proc/{ns_mapper.pid}/root{nspath}")
    ok(not os.path.exists(nspath), "the namespaced file is invisible from the host")
    ok(os.readlink(f"/proc/{ns_mapper.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"),
       "the helper runs in another mount namespace")

    # --- /dev/zero, memfd, a device node named like a library ----------------------------------
    devnode = os.path.join(d, "libzero.so.1")
    os.mknod(devnode, stat.S_IFCHR | 0o444, os.makedev(1, 5))
    dev_st = os.stat(devnode)
    helper = subprocess.Popen(["python3", "-c", HELPER, devnode], stdout=subprocess.PIPE, text=True)
    procs.append(helper)
    ok(helper.stdout.readline().startswith("ready"), "the /dev/zero + memfd helper started")
    xm = exec_maps(helper.pid)
    ok(any(p.startswith("/dev/zero") for _, p in xm), "it maps /dev/zero executable", xm)
    ok(any(p.startswith("/memfd:libmemfd.so") for _, p in xm), "it maps a memfd executable", xm)
    ok(any(p == devnode for _, p in xm), "it maps the device node executable", xm)

    # --- FIFOs named like libraries ------------------------------------------------------------
    fifo_always = os.path.join(d, "libalways.so.1")
    fifo_state = os.path.join(d, "libstate.so.2")
    fifo_bind = os.path.join(d, "fifo-for-bind")
    for p in (fifo_always, fifo_state, fifo_bind):
        os.mkfifo(p)
    covered = make_file(os.path.join(d, "libcovered.so.3"), MiB, seed=4)
    covered_st = os.stat(covered)
    bind_mapper = Mapper(covered, prefix=["unshare", "-m", "--propagation", "private"])
    mappers.append(bind_mapper)
    r = subprocess.run(["nsenter", "-t", str(bind_mapper.pid), "-m", "mount", "--bind",
                        fifo_bind, covered], capture_output=True, text=True)
    eq(r.returncode, 0, f"a FIFO is bind-mounted over the mapped library in the helper's namespace "
                        f"{r.stderr.strip()}")
    ok(stat.S_ISFIFO(os.stat(f"/proc/{bind_mapper.pid}/root{covered}").st_mode),
       "in that namespace the library's path now leads to a FIFO")
    ok(stat.S_ISREG(os.stat(covered).st_mode), "the host still sees the regular file")

    with open(os.path.join(d, "state"), "w") as f:
        f.write(f"prelockd-state 1\nF 0 0 4096 0 {fifo_state}\nR 0 4096\nend 1\n")

    conf = (f"interval = 0\n[lock]\ninclude = ^{d}/\n    ^/dev/\n    ^/memfd:\n"
            f"what = resident\nkeep = 0\nalways = {fifo_always}\n")
    t0 = time.monotonic()
    dm = Daemon(d, conf)
    # The plan says why the device node is skipped: it is opened (O_NONBLOCK) but not a regular
    # file. (Its size is 0, so only the plan can tell the check happened.)
    r = run(["-c", dm.conf, "--dry-run", "--json"], timeout=20)
    try:
        plan = {f["path"]: f for f in json.loads(r.stdout)["files"]}
    except ValueError:
        plan = {}
    ok(plan.get(devnode, {}).get("reason") == "not a regular file"
       and plan.get(devnode, {}).get("selected") is False,
       "--dry-run: the device node is skipped as not a regular file", plan.get(devnode, r.stdout))
    ok(plan.get(nspath, {}).get("selected") is True,
       "--dry-run: the namespaced file is selected", plan.get(nspath, r.stdout))
    ok(dm.wait_ready(20), f"READY=1 (no FIFO hung the daemon) in {time.monotonic() - t0:.1f}s",
       dm.log())

    def check(label):
        lm = locked_of(dm.pid, ns_st)
        eq((sum(x["rss"] for x in lm), sum(x["size"] for x in lm)), (4 * MiB, 4 * MiB),
           f"{label}: the file of the other mount namespace is locked (by dev+inode)")
        bad = [x for x in locked_mappings(dm.pid)
               if x["path"].startswith(("/dev/", "/memfd:")) or
               (x["inode"], x["dev"]) in ((dev_st.st_ino, (os.major(dev_st.st_dev), os.minor(dev_st.st_dev))),)]
        eq(bad, [], f"{label}: no locked mapping of /dev/zero, a memfd or the device node")
        fifos = [x for x in locked_mappings(dm.pid)
                 if x["path"] in (fifo_always, fifo_state, fifo_bind)]
        eq(fifos, [], f"{label}: nothing locked under the FIFO names")
        # The daemon looks through its own view first: there the path still leads to the very
        # inode the helper maps (dev+inode checked), so it is locked without touching the FIFO.
        lc = locked_of(dm.pid, covered_st)
        eq(sum(x["rss"] for x in lc), MiB,
           f"{label}: the library covered by a FIFO in the helper's namespace is locked through "
           f"the daemon's own view, where it is the same inode")
        st = dm.status_json()
        paths = sorted(e["path"] for e in st["locked"])
        eq(paths, sorted([nspath, covered]), f"{label}: the status file lists exactly those two")

    check("first pass")
    ok(dm.rescan(10), "a rescan is answered")
    check("after a rescan")
    i, j = dm.reload(10)
    ok(i is not None and j is not None, "a reload is answered")
    check("after a reload")
    ok(dm.alive(), "the daemon is alive", dm.log())
    eq(dm.stop(), 0, "SIGTERM exits 0")
    with open(os.path.join(d, "state")) as f:
        text = f.read()
    ok(text.startswith("prelockd-state 1\n") and nspath not in text and "libstate" not in text,
       "the saved state lists neither the namespaced file nor the FIFO", text)
finally:
    if dm:
        dm.stop()
    for m in mappers:
        m.stop()
    for p in procs:
        p.kill()
        p.wait()
    shutil.rmtree(d, ignore_errors=True)
done()
