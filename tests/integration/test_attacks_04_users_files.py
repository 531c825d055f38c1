#!/usr/bin/env python3
"""Attack, issue 12 case 4: users' own files.

The include rules match paths as the mapping process sees them. An unprivileged user (uid 65534,
setpriv) enters a user and mount namespace of their own (unshare --user --map-root-user
--mount), mounts a tmpfs over /opt, copies a file there and maps it from 200 processes
(forker). With the shipped include rule (^/(usr|bin|sbin|lib[^/]*|opt)/) the file is a
candidate.

Also, with include = ^DIR/ (a directory of the test): a file owned by uid 65534 (0644), a file of
root's that group and others may write (0666), and, for contrast, a file of root's, 0644. Each
is mapped by one process.

What the fix must achieve (issue: "by default lock only files owned by root (or by owners the
config names) that group and others cannot write"), checked in the daemon's smaps by inode:
- nothing of the user's file on their tmpfs /opt is locked, nor of the uid-65534 file, nor of
  the 0666 file; the root-owned 0644 file is locked (the daemon still works);
- a budget of 10 MiB goes to system files, not to the user's 8 MiB file.

Observed on main (b0bfd14): with a budget that holds everything, the user's /opt file is
locked (8.0 MiB), and so are the uid-65534 file and the 0666 file (1 MiB each). With a 10 MiB
budget the user's file was not locked: its 200 forked processes map libc and ld.so too, which
rank with them (the ranking half of the issue's case needs a static binary; not shown here).
Not yet executable: the fix belongs to the selection rules, being restructured."""
import json
import os
import time

from hostile import Helper, helper
from lib import (MiB, Daemon, Mapper, cleanup, done, eq, locked_by_inode, make_file, ok, run,
                 workdir)

NPROCS = 200
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

d = workdir()
os.chmod(d, 0o755)
dm = None
helpers = []


def note(msg):
    print(f"# {msg}", flush=True)


try:
    src = make_file(os.path.join(d, "payload"), 8 * MiB, seed=4)
    os.chmod(src, 0o644)
    # --- the user's tmpfs over /opt, in a namespace of their own ------------------------------
    script = (f"mount -t tmpfs -o size=64m tmpfs /opt && cp {src} /opt/libuser.so && "
              f"exec {helper('forker')} {NPROCS} /opt/libuser.so")
    ns = Helper(NOBODY + ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script])
    helpers.append(ns)
    ust = os.stat(f"/proc/{ns.pid}/root/opt/libuser.so")
    note(f"the user's /opt/libuser.so: uid {ust.st_uid}, dev {ust.st_dev:#x}, inode {ust.st_ino}")
    ok(ust.st_uid == 65534, "the user's file belongs to uid 65534 (seen from outside)")

    # --- files under DIR ----------------------------------------------------------------------
    own = make_file(os.path.join(d, "libown.so"), MiB, seed=5)
    os.chown(own, 65534, 65534)
    os.chmod(own, 0o644)
    ww = make_file(os.path.join(d, "libww.so"), MiB, seed=6)
    os.chmod(ww, 0o666)
    good = make_file(os.path.join(d, "libgood.so"), MiB, seed=7)
    os.chmod(good, 0o644)
    helpers.append(Helper(NOBODY + [helper("mapmany"), own]))
    helpers.append(Helper(NOBODY + [helper("mapmany"), ww]))
    m = Mapper(good)

    # The shipped include rule plus DIR; a budget that holds everything.
    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^/(usr|bin|sbin|lib[^/]*|opt)/\n"
                   f"include = ^{d}/lib\nwhat = whole\nmax_total = 256M\nmax_total_percent = 0\n"
                   f"keep = 0\n")
    ok(dm.wait_ready(60), "READY=1", dm.log())
    rss, size = locked_by_inode(dm.pid, ust)
    note(f"the user's /opt file: {size / MiB:.1f} MiB locked")
    eq(size, 0, "nothing of the user's file on their own tmpfs /opt is locked")
    eq(locked_by_inode(dm.pid, os.stat(own))[1], 0, "nothing of the file owned by uid 65534")
    eq(locked_by_inode(dm.pid, os.stat(ww))[1], 0, "nothing of root's file of mode 0666")
    st = dm.status_json()
    ok(st["locked_bytes"] > 0, f"{st['locked_bytes'] / MiB:.1f} MiB locked in all (the daemon works)")
    eq(dm.stop(), 0, "SIGTERM exits 0")
    dm = None

    # --dry-run says why each is skipped.
    conf = os.path.join(d, "prelockd.conf")
    r = run(["-c", conf, "--dry-run", "--json"], timeout=60)
    files = {x["path"]: x for x in json.loads(r.stdout)["files"]} if r.returncode == 0 else {}
    eq(files.get(own, {}).get("reason"), "not owned by root", "--dry-run: uid 65534's file")
    eq(files.get(ww, {}).get("reason"), "writable by others", "--dry-run: root's 0666 file")
    eq(files.get(good, {}).get("reason"), "selected", "--dry-run: root's 0644 file")
    r = run(["-c", conf, "--dry-run"], timeout=60)
    rows = [ln for ln in r.stdout.splitlines() if ln.endswith(own) or ln.endswith(ww)]
    ok(len(rows) == 2 and all(ln.startswith("skip") for ln in rows) and
       "not owned by root" in rows[0] + rows[1] and "writable by others" in rows[0] + rows[1],
       "--dry-run's table: skip, with the reasons", r.stdout[-1500:])

    # owners = nobody lets uid 65534's file in; a file others may write stays out.
    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/lib\nwhat = whole\nmax_total = 64M\n"
                   f"max_total_percent = 0\nkeep = 0\nowners = nobody\n")
    ok(dm.wait_ready(60), "owners = nobody: READY=1", dm.log())
    eq(locked_by_inode(dm.pid, os.stat(own)), (MiB, MiB),
       "owners = nobody: the file of uid 65534 is locked")
    eq(locked_by_inode(dm.pid, os.stat(ww))[1], 0, "owners = nobody: root's 0666 file is not")
    # A reload that drops the owner unlocks the file it no longer lets in.
    dm.write_config(f"interval = 0\n[lock]\ninclude = ^{d}/lib\nwhat = whole\nmax_total = 64M\n"
                    f"max_total_percent = 0\nkeep = 0\n")
    i, j = dm.reload(60)
    ok(j is not None, "owners dropped: the reload is answered")
    eq(locked_by_inode(dm.pid, os.stat(own))[1], 0, "owners dropped: uid 65534's file unlocked")
    eq(locked_by_inode(dm.pid, os.stat(good)), (MiB, MiB), "owners dropped: root's file stays")
    eq(dm.stop(), 0, "owners = nobody: SIGTERM exits 0")
    dm = None

    # A budget smaller than the user's file: it goes to system files, not to the user's.
    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^/(usr|bin|sbin|lib[^/]*|opt)/\n"
                   f"what = whole\nmax_total = 10M\nmax_total_percent = 0\nkeep = 0\n")
    ok(dm.wait_ready(60), "small budget: READY=1", dm.log())
    size = locked_by_inode(dm.pid, ust)[1]
    eq(size, 0, f"small budget: nothing of the user's file ({size / MiB:.1f} MiB locked)")
    st = dm.status_json()
    top = st["locked"][0]["path"] if st["locked"] else None
    ok(top is not None and "/opt/libuser.so" not in top,
       f"small budget: the first file in the status file is a system file ({top})")
    eq(dm.stop(), 0, "small budget: SIGTERM exits 0")
    dm = None

    # The root-owned 0644 file is locked when the budget allows (a control).
    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/lib\nwhat = whole\nmax_total = 64M\n"
                   f"max_total_percent = 0\nkeep = 0\n")
    ok(dm.wait_ready(60), "control: READY=1", dm.log())
    eq(locked_by_inode(dm.pid, os.stat(good)), (MiB, MiB), "control: root's 0644 file is locked")
    eq(dm.stop(), 0, "control: SIGTERM exits 0")
    dm = None
    m.stop()
finally:
    for h in helpers:
        h.stop()
    cleanup(d, dm)
done()
