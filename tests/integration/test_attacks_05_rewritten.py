#!/usr/bin/env python3
"""Attack, issue 12 case 5: a locked file truncated and rewritten to the same size in place.

Truncation drops the file's pages from every mapping, the daemon's locked ones too; written
back to the very same size (cp over an existing file does this, and so can the owner of a file
the include rules reach), the file looks unchanged to fstat() (same size, same blocks), so
the daemon keeps counting the range as locked while none of it is resident.

For `whole` and `resident`: a 4 MiB file is mapped and locked (the kernel shows 4 MiB locked and
resident in the daemon's smaps); between two passes it is truncated to 0 and written back to
4 MiB (other bytes, fsync); then SIGUSR1. What the fix must achieve (issue: "any change event
must lead to the pages being locked again, and the debug build's check must catch the
mismatch"):
- after the pass, the daemon's locked mappings of the inode are 4 MiB resident again (smaps
  Rss of the VMAs with VmFlags "lo"), and the status file's bytes agree with the kernel;
- the debug build (the daemon under test here) never leaves a locked range not resident
  without saying "accounting mismatch": checked as "resident == locked, or the log says so".

Observed on main (b0bfd14): in both modes the kernel shows 4096 KiB locked and 0 KiB resident
after the pass, the status file says 4194304 bytes, and the debug build's check is silent (it
compares sizes, not Rss).
Fixed in the commit that made this file executable: in both modes 4096 KiB locked and 4096 KiB
resident after the pass, the status file says 4194304 bytes; the debug build aborts with
"accounting mismatch: ... not resident" when the pages are not locked again."""
import os
import time

from lib import MiB, Daemon, Mapper, cleanup, done, eq, locked_by_inode, make_file, ok, workdir

SIZE = 4 * MiB
d = workdir()
dm = None
mappers = []

try:
    for what in ("whole", "resident"):
        path = make_file(os.path.join(d, f"lib{what}.so"), SIZE, seed=1)
        st = os.stat(path)
        m = Mapper(path)
        mappers.append(m)
        dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/lib{what}\nwhat = {what}\n"
                       f"max_total = 64M\nmax_total_percent = 0\nkeep = 3\n")
        ok(dm.wait_ready(), f"{what}: READY=1", dm.log())
        eq(locked_by_inode(dm.pid, st), (SIZE, SIZE), f"{what}: 4 MiB locked and resident")

        # Truncated and written back to the same size, in place (same inode).
        with open(path, "r+b") as f:
            f.truncate(0)
            f.flush()
            os.fsync(f.fileno())
            block = bytes((i * 7 + 3) & 0xFF for i in range(65536))
            for _ in range(SIZE // len(block)):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        st2 = os.stat(path)
        eq((st2.st_ino, st2.st_size), (st.st_ino, SIZE), f"{what}: same inode, same size")
        time.sleep(0.2)
        ok(dm.rescan(), f"{what}: rescan after the rewrite")
        rss, size = locked_by_inode(dm.pid, st)
        print(f"# {what}: after the rewrite the kernel shows {size // 1024} KiB locked, "
              f"{rss // 1024} KiB resident", flush=True)
        eq((rss, size), (SIZE, SIZE), f"{what}: the rewritten file is locked and resident again")
        ent = {e["path"]: e for e in dm.status_json()["locked"]}.get(path, {})
        eq(ent.get("bytes"), rss, f"{what}: the status file's bytes agree with the kernel's Rss")
        ok(dm.rescan(), f"{what}: one more pass")
        rss, size = locked_by_inode(dm.pid, st)
        log = dm.log()
        ok(rss == size or "accounting mismatch" in log,
           f"{what}: locked {size // 1024} KiB, resident {rss // 1024} KiB: equal, or the debug "
           f"build's check said 'accounting mismatch'", log[-1500:])
        dm.stop()
        dm = None
        m.stop()
        os.unlink(os.path.join(d, "state"))
finally:
    cleanup(d, dm, mappers)
done()
