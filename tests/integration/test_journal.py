#!/usr/bin/env python3
"""Logging to the journal: a private journald in a mount namespace (tmpfs over /run and
/var/log/journal), the daemon's stderr connected to it as systemd would (JOURNAL_STREAM naming
stderr), and the structured fields read back with journalctl."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from lib import PRELOCKD, SLOW, MiB, Mapper, done, eq, make_file, ok, workdir

if os.environ.get("PRELOCKD_IN_NS") != "1":
    # Re-run inside a private mount namespace; its TAP output is ours.
    env = dict(os.environ, PRELOCKD_IN_NS="1")
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable,
                           os.path.abspath(__file__)], env)

for target in ("/run", "/var/log/journal"):
    os.makedirs(target, exist_ok=True)
    subprocess.run(["mount", "-n", "-t", "tmpfs", "tmpfs", target], check=True)
os.makedirs("/run/systemd/journal", exist_ok=True)
journald = subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
for _ in range(100):
    if os.path.exists("/run/systemd/journal/socket") and os.path.exists("/run/systemd/journal/stdout"):
        break
    time.sleep(0.05)


def entries():
    out = subprocess.run(["journalctl", "-D", "/run/log/journal", "-o", "json", "--no-pager",
                          "SYSLOG_IDENTIFIER=prelockd"], capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def run_daemon(d, level):
    conf = os.path.join(d, "prelockd.conf")
    status = os.path.join(d, "status")
    with open(conf, "w") as f:
        f.write(f"[daemon]\ninterval = 0\nstate_file =\nstatus_file = {status}\nlog_level = {level}\n"
                f"[lock]\ninclude = ^{d}/\nwhat = whole\n")
    # systemd-cat connects stdout and stderr to journald's stream socket, as a unit's
    # StandardError=journal does; systemd would also set JOURNAL_STREAM, so the wrapper does.
    script = 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"'
    # The status file is written after the first pass: the previous run's must not count.
    if os.path.exists(status):
        os.unlink(status)
    p = subprocess.Popen(["systemd-cat", "-t", "prelockd-stream", "sh", "-c", script, PRELOCKD,
                          "-c", conf])
    for _ in range(200 * SLOW):
        if os.path.exists(status):
            break
        time.sleep(0.05)
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    return p.wait(30 * SLOW)


d = workdir()
try:
    path = make_file(os.path.join(d, "lib with space.so"), 1 * MiB)
    with Mapper(path):
        eq(run_daemon(d, "debug"), 0, "daemon under systemd-cat exits 0 on SIGTERM")
        time.sleep(0.5)
        es = entries()
        ok(len(es) > 0, f"{len(es)} journal entries from prelockd", "no entries")
        passes = [e for e in es if e.get("MESSAGE", "").startswith("pass 1:")]
        ok(len(passes) == 1, "the pass summary is in the journal")
        if passes:
            e = passes[0]
            eq(e.get("PRIORITY"), "6", "summary at info priority")
            eq(e.get("PRELOCKD_FILES"), "1", "PRELOCKD_FILES field")
            eq(e.get("PRELOCKD_BYTES"), str(1 * MiB), "PRELOCKD_BYTES field")
        per_file = [e for e in es if e.get("PRELOCKD_PATH") == path]
        ok(len(per_file) >= 1, "a per-file event carries PRELOCKD_PATH with the exact path",
           "\n".join(str(e.get("MESSAGE")) for e in es))
        if per_file:
            eq(per_file[0].get("PRIORITY"), "7", "per-file events at debug priority")
            eq(per_file[0].get("PRELOCKD_BYTES"), str(1 * MiB), "per-file PRELOCKD_BYTES")
        stream = subprocess.run(["journalctl", "-D", "/run/log/journal", "-o", "cat", "--no-pager",
                                 "SYSLOG_IDENTIFIER=prelockd-stream"], capture_output=True,
                                text=True).stdout
        eq(stream.strip(), "", "nothing went to the plain stderr stream")

        n_before = len(entries())
        eq(run_daemon(d, "info"), 0, "second run, log_level = info")
        time.sleep(0.5)
        new = entries()[n_before:]
        ok(any(e.get("MESSAGE", "").startswith("pass 1:") for e in new), "info run logs its summary")
        eq([e["MESSAGE"] for e in new if e.get("PRIORITY") == "7"], [],
           "log_level = info: no debug entries")
finally:
    shutil.rmtree(d, ignore_errors=True)
    journald.terminate()
    journald.wait()
done()
