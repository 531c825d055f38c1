"""Memory pressure for tests: a memory cgroup with a limit, a process that keeps reading a file
in it (as a program runs its code) and a hog that grows beside it until the file's pages are
evicted and refaulted without end. Used by test_psi (the module) and test_pressure (the
daemon's pressure passes)."""
import os
import time

from lib import MiB

LIMIT = 64 * MiB


def memory_cgroup(name, limit=LIMIT):
    """A fresh memory cgroup with `limit` bytes: cgroup2 where it has the memory controller, else v1."""
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        ctl = os.path.join(root, "cgroup.controllers")
        if os.path.exists(ctl) and "memory" in open(ctl).read().split():
            with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                f.write("+memory")
            path = os.path.join(root, name)
            os.mkdir(path)
            with open(os.path.join(path, "memory.max"), "w") as f:
                f.write(str(limit))
            return path
    root = "/sys/fs/cgroup/memory"
    if not os.path.exists(os.path.join(root, "memory.limit_in_bytes")):
        return None
    path = os.path.join(root, name)
    os.mkdir(path)
    for k, v in (("memory.limit_in_bytes", limit), ("memory.swappiness", 0)):
        with open(os.path.join(path, k), "w") as f:
            f.write(str(v))
    return path


def remove_cgroup(path):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pid in open(os.path.join(path, "cgroup.procs")).read().split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)


# A process that keeps reading every page of a file through a mapping, as a program runs its
# code: under the limit, each round after the first costs nothing; over it, refaults.
READER = r"""
import mmap, os, sys, time
with open(os.environ["CG"] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
fd = os.open(sys.argv[1], os.O_RDONLY)
# Out of the page cache first: pages cached by whoever wrote the file stay charged to that
# writer's cgroup, and only pages read in here count against this cgroup's limit.
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
page = os.sysconf("SC_PAGE_SIZE")
n = 0
while True:
    s = 0
    for i in range(0, len(m), page):
        s += m[i]
    n += 1
    if n == 2:
        print("warm", flush=True)
    time.sleep(0.05)
"""

# The hog: grows by 4 MiB every 100 ms to its size, then keeps writing every page it holds.
HOG = r"""
import os, sys, time
with open(os.environ["CG"] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
size, step, page = int(sys.argv[1]), 4 << 20, os.sysconf("SC_PAGE_SIZE")
chunks = []
while True:
    if len(chunks) * step < size:
        b = bytearray(step)
        b[::page] = b"\x01" * (step // page)
        chunks.append(b)
        if len(chunks) * step >= size:
            print("full", time.monotonic_ns(), flush=True)
    else:
        for b in chunks:
            b[::page] = b"\x02" * (step // page)
    time.sleep(0.1)
"""
