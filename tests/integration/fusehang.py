#!/usr/bin/env python3
"""A FUSE server that stops answering: for the attack tests (issue 12 case 3). It speaks the
kernel's FUSE protocol on /dev/fuse itself (no libfuse), mounted with mount(2), so it runs as
root or as the root of a user namespace alike.

    fusehang.py MOUNTPOINT SIZE [DEVICE]

Serves a read-only root directory with one file, libfuse.so, of SIZE bytes (root's, mode 0755). Prints "ready"
once mounted, then answers until it gets SIGUSR1: from then on it reads every request and
answers none, as a server that hangs. Killing it closes /dev/fuse, which aborts the connection:
every request still waiting fails with ENOTCONN. DEVICE (default /dev/fuse): another node of
the FUSE device (char 10,229), for a user when /dev/fuse is root's only (no fuse package).
Only the root of the user namespace that mounts can mount FUSE there, and the device must be
opened in that namespace: the kernel refuses a descriptor opened outside it."""
import ctypes
import os
import signal
import struct
import sys

FILE_NAME = b"libfuse.so"
ROOT, FILE = 1, 2
LOOKUP, FORGET, GETATTR, OPEN, READ, STATFS, RELEASE, FLUSH, INIT = 1, 2, 3, 14, 15, 17, 18, 25, 26
OPENDIR, READDIR, RELEASEDIR, ACCESS, INTERRUPT, BATCH_FORGET = 27, 28, 29, 34, 36, 42
ENOENT, ENOSYS = 2, 38
# Entries and attributes stay valid an hour: overlayfs calls a lower dentry that must be looked
# up again stale (ESTALE) rather than asking; the daemon's open() still asks (FUSE_OPEN).
VALID = 3600
IN_HEADER = struct.Struct("<IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, extlen, pad

hanging = False


def on_usr1(*_):
    global hanging
    hanging = True


def attr(ino, size):
    """struct fuse_attr: ino, size, blocks, atime, mtime, ctime, their nsecs, mode, nlink, uid,
    gid, rdev, blksize, flags."""
    mode = 0o040755 if ino == ROOT else 0o100755
    return struct.pack("<QQQQQQIIIIIIIIII", ino, size, (size + 511) // 512, 0, 0, 0, 0, 0, 0,
                       mode, 2 if ino == ROOT else 1, 0, 0, 0, 4096, 0)


def content(off, n, size):
    n = max(0, min(n, size - off))
    return bytes(((off + i) * 31 + 7) & 0xFF for i in range(n))


def main():
    mnt, size = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGUSR1, on_usr1)
    fd = os.open(sys.argv[3] if len(sys.argv) > 3 else "/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
    if libc.mount(b"fusehang", mnt.encode(), b"fuse", 0, opts) != 0:
        e = ctypes.get_errno()
        print(f"mount: {os.strerror(e)}", flush=True)
        return 1

    def reply(unique, error=0, data=b""):
        os.write(fd, struct.pack("<IiQ", 16 + len(data), -error, unique) + data)

    ready = False
    while True:
        try:
            buf = os.read(fd, 1 << 20)
        except InterruptedError:
            continue
        except OSError:
            return 0  # unmounted or aborted
        _, op, unique, node, _, _, _, _, _ = IN_HEADER.unpack_from(buf)
        body = buf[IN_HEADER.size:]
        if op in (FORGET, BATCH_FORGET, INTERRUPT):
            continue
        if hanging:
            continue  # read, never answered
        if op == INIT:
            major, minor, readahead, _ = struct.unpack_from("<IIII", body)
            # struct fuse_init_out: major, minor, max_readahead, flags, max_background,
            # congestion_threshold, max_write, time_gran, max_pages, map_alignment, flags2,
            # then unused space up to 64 bytes.
            out = struct.pack("<IIIIHHIIHHI", 7, 31, readahead, 0, 16, 12, 128 * 1024, 1, 32, 0, 0)
            reply(unique, 0, out + bytes(64 - len(out)))
            if not ready:
                ready = True
        elif op == LOOKUP:
            name = body.split(b"\0", 1)[0]
            if node == ROOT and name == FILE_NAME:
                reply(unique, 0, struct.pack("<QQQQII", FILE, 0, VALID, VALID, 0, 0) +
                      attr(FILE, size))
            else:
                reply(unique, ENOENT)
        elif op == GETATTR:
            reply(unique, 0, struct.pack("<QII", VALID, 0, 0) +
                  attr(node, size if node == FILE else 0))
        elif op in (OPEN, OPENDIR):
            reply(unique, 0, struct.pack("<QIi", 0, 0, 0))
        elif op == READ:
            off, n = struct.unpack_from("<QQI", body)[1:]
            reply(unique, 0, content(off, n, size) if node == FILE else b"")
        elif op == READDIR:
            off = struct.unpack_from("<QQ", body)[1]
            ents = b""
            if off == 0:
                name = FILE_NAME
                ent = struct.pack("<QQII", FILE, 1, len(name), 8) + name
                ents = ent + bytes(-len(ent) % 8)
            reply(unique, 0, ents)
        elif op == STATFS:
            reply(unique, 0, struct.pack("<QQQQQIIII", 1024, 0, 0, 2, 0, 4096, 255, 4096, 0) +
                  bytes(24))
        elif op in (RELEASE, RELEASEDIR, FLUSH, ACCESS):
            reply(unique)
        else:
            reply(unique, ENOSYS)
        if ready and op == INIT:
            print("ready", flush=True)


if __name__ == "__main__":
    sys.exit(main())
