#!/usr/bin/env python3
"""Attack, issue 12 case 9: files on overlayfs (containers).

A program's library on overlayfs, as in a container: the lower layer a directory on the host's
disk (root's files, 0644), the upper layer and work directory on a tmpfs (another filesystem,
as a container's writable layer often is). Three mounts, each mapped by a process:

(a) root mounts it in the daemon's own mount namespace, upper on tmpfs;
(b) an unprivileged user (uid 65534) mounts it in a user+mount namespace of their own, upper on
    their tmpfs (what rootless containers do): the daemon reaches it through /proc/PID/root;
(c) for contrast, root mounts one with upper on the same disk as lower.

Measured on this kernel (6.18): /proc/PID/maps shows the overlay's own device (for (b) 00:39,
the overlay's 0:57 in mountinfo), while stat() of the path gives another device for a file
of a lower layer on another filesystem than the upper (overlayfs then reports a per-layer
anonymous device, 0:59 here); with upper and lower on one filesystem (c) the two agree. The
inode number is the same in both. So the daemon's dev+inode check calls the file replaced.

What the fix must achieve (issue: "handle it"): each of the three files is locked, 1 MiB, as
the kernel shows in the daemon's smaps (a locked mapping of that inode number and name).

Observed on main (b0bfd14): (a) maps 00:39, stat() 00:3b; (b) maps 00:3f, stat() 00:41; (c) both
00:3c; (a) and (b) not locked (0 bytes; "replaced on disk" in --dry-run), (c) locked (1 MiB).
Not yet executable: the fix belongs to the file opening core, being restructured.
(Debian 12's 6.1: to be documented with the fix.)"""
import os
import subprocess

from hostile import Helper
from lib import MAPPER, MiB, Daemon, cleanup, done, eq, locked_mappings, make_file, ok, run, workdir

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

d = workdir()
os.chmod(d, 0o755)
dm = None
helpers = []
mounted = []


def note(msg):
    print(f"# {msg}", flush=True)


def maps_dev_ino(pid, path):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if line.rstrip("\n").endswith(path):
                x = line.split()
                return x[3], int(x[4])
    return None, None


def locked_named(pid, name, ino):
    return sum(m["size"] for m in locked_mappings(pid) if m["inode"] == ino and
               m["path"].endswith(name))


try:
    lower = os.path.join(d, "lower")
    os.mkdir(lower, 0o755)
    for k in "abc":
        make_file(os.path.join(lower, f"lib{k}.so"), MiB, seed=ord(k))
        os.chmod(os.path.join(lower, f"lib{k}.so"), 0o644)
    lower_ino = {k: os.stat(os.path.join(lower, f"lib{k}.so")).st_ino for k in "abc"}

    # (a) root, the daemon's namespace, upper on tmpfs
    ta, oa = os.path.join(d, "ta"), os.path.join(d, "oa")
    os.mkdir(ta)
    os.mkdir(oa)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", ta], check=True)
    mounted.append(ta)
    os.mkdir(f"{ta}/up")
    os.mkdir(f"{ta}/wk")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={ta}/up,workdir={ta}/wk", oa], check=True)
    mounted.insert(0, oa)
    pa = Helper([MAPPER, f"{oa}/liba.so", "0", "100"])
    helpers.append(pa)

    # (c) root, upper on the same disk
    tc, oc = os.path.join(d, "tc"), os.path.join(d, "oc")
    for x in (tc, f"{tc}/up", f"{tc}/wk", oc):
        os.mkdir(x)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={tc}/up,workdir={tc}/wk", oc], check=True)
    mounted.insert(0, oc)
    pc = Helper([MAPPER, f"{oc}/libc.so", "0", "100"])
    helpers.append(pc)

    # (b) uid 65534 in a user+mount namespace, upper on their tmpfs
    tb, ob = os.path.join(d, "tb"), os.path.join(d, "ob")
    for x in (tb, ob):
        os.mkdir(x)
        os.chown(x, 65534, 65534)
    script = (f"set -e; mount -t tmpfs tmpfs {tb}; mkdir {tb}/up {tb}/wk; mount -t overlay overlay "
              f"-o lowerdir={lower},upperdir={tb}/up,workdir={tb}/wk {ob}; "
              f"exec {MAPPER} {ob}/libb.so 0 100")
    pb = Helper(NOBODY + ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script])
    helpers.append(pb)

    for k, h, o, via in (("a", pa, oa, ""), ("b", pb, ob, f"/proc/{pb.pid}/root"),
                         ("c", pc, oc, "")):
        mdev, mino = maps_dev_ino(h.pid, f"{o}/lib{k}.so")
        st = os.stat(f"{via}{o}/lib{k}.so")
        note(f"({k}) maps: dev {mdev} inode {mino}; stat(): dev "
             f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x} inode {st.st_ino}; "
             f"lower inode {lower_ino[k]}")

    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/o\nwhat = whole\nmax_total = 64M\n"
                   f"max_total_percent = 0\nkeep = 0\n")
    ok(dm.wait_ready(30), "READY=1", dm.log())
    ok(dm.rescan(30), "a rescan is answered")
    r = run(["-c", dm.conf, "--dry-run"], timeout=60)
    for k, h, o in (("a", pa, oa), ("b", pb, ob), ("c", pc, oc)):
        _, mino = maps_dev_ino(h.pid, f"{o}/lib{k}.so")
        why = [x for x in r.stdout.splitlines() if x.endswith(f"lib{k}.so")]
        got = locked_named(dm.pid, f"lib{k}.so", mino)
        ok(got == MiB, f"({k}) the overlay file is locked: {got} bytes (want {MiB})",
           f"--dry-run: {' '.join(why[0].split()) if why else '-'}")
    ok(dm.alive(), "the daemon is alive")
    eq(dm.stop(), 0, "SIGTERM exits 0")
    dm = None
finally:
    if dm:
        dm.stop()
    for h in helpers:
        h.stop()
    for x in mounted:
        subprocess.run(["umount", "-l", x], capture_output=True)
    cleanup(d)
done()
