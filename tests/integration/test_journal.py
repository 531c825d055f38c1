#!/usr/bin/env python3
"""Logging to the journal: a private journald in a mount namespace (tmpfs over /run and
/var/log/journal), the daemon's stderr connected to it as systemd would (JOURNAL_STREAM naming
stderr), and the structured fields read back with journalctl: PRIORITY, the PRELOCKD_* fields,
CODE_FILE/CODE_LINE/CODE_FUNC naming the caller (not the logging wrapper), and a config error at
start at err priority with its FILE:LINE, as `journalctl -p err` must show why a start failed."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from lib import PRELOCKD, ROOT, SLOW, MiB, Mapper, done, eq, make_file, ok, workdir

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


# systemd-cat connects stdout and stderr to journald's stream socket, as a unit's
# StandardError=journal does; systemd would also set JOURNAL_STREAM, so the wrapper does.
AS_SERVICE = ["systemd-cat", "-t", "prelockd-stream", "sh", "-c",
              'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"', PRELOCKD]


def stream_text():
    """What reached journald as plain lines on the stream, not as entries of the daemon's own."""
    return subprocess.run(["journalctl", "-D", "/run/log/journal", "-o", "cat", "--no-pager",
                           "SYSLOG_IDENTIFIER=prelockd-stream"], capture_output=True, text=True).stdout


def check_site(e, want_text, name):
    """The entry's CODE_FILE is a source file other than src/log.c, CODE_FUNC is defined there,
    and the source near CODE_LINE holds want_text (the message's format string)."""
    cf, cl, fn = e.get("CODE_FILE", ""), e.get("CODE_LINE", ""), e.get("CODE_FUNC", "")
    path = os.path.join(ROOT, cf)
    if not ok(cf.startswith("src/") and cf != "src/log.c" and os.path.isfile(path) and cl.isdigit(),
              f"{name}: CODE_FILE/CODE_LINE name the caller", f"CODE_FILE={cf!r} CODE_LINE={cl!r}"):
        return
    with open(path) as f:
        src = f.read()
    lines = src.splitlines()
    line = int(cl)
    near = "\n".join(lines[max(0, line - 9):line + 8])
    ok(want_text in near, f"{name}: {cf}:{cl} is where the message is logged", near)
    ok(fn != "" and f"{fn}(" in src, f"{name}: CODE_FUNC={fn} is a function of {cf}")


def run_daemon(d, level):
    conf = os.path.join(d, "prelockd.conf")
    status = os.path.join(d, "status")
    with open(conf, "w") as f:
        f.write(f"[daemon]\ninterval = 0\nstate_file =\nstatus_file = {status}\nlog_level = {level}\n"
                f"[lock]\ninclude = ^{d}/\nwhat = whole\n")
    # The status file is written after the first pass: the previous run's must not count.
    if os.path.exists(status):
        os.unlink(status)
    p = subprocess.Popen(AS_SERVICE + ["-c", conf])
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
            check_site(e, '"pass %u%s: ', "summary")
        per_file = [e for e in es if e.get("PRELOCKD_PATH") == path]
        ok(len(per_file) >= 1, "a per-file event carries PRELOCKD_PATH with the exact path",
           "\n".join(str(e.get("MESSAGE")) for e in es))
        if per_file:
            eq(per_file[0].get("PRIORITY"), "7", "per-file events at debug priority")
            eq(per_file[0].get("PRELOCKD_BYTES"), str(1 * MiB), "per-file PRELOCKD_BYTES")
        eq(stream_text().strip(), "", "nothing went to the plain stderr stream")
        ok(not any(e.get("CODE_FILE") == "src/log.c" for e in es), "no entry points at src/log.c",
           "\n".join(f"{e.get('CODE_FILE')}:{e.get('CODE_LINE')} {e.get('MESSAGE')}" for e in es
                     if e.get("CODE_FILE") == "src/log.c"))

        n_before = len(entries())
        eq(run_daemon(d, "info"), 0, "second run, log_level = info")
        time.sleep(0.5)
        new = entries()[n_before:]
        ok(any(e.get("MESSAGE", "").startswith("pass 1:") for e in new), "info run logs its summary")
        eq([e["MESSAGE"] for e in new if e.get("PRIORITY") == "7"], [],
           "log_level = info: no debug entries")

    # A config error at start: exit 78, and every error in the journal at err priority with its
    # FILE:LINE, as on reload; nothing about it on the plain stream (which journald files at info).
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write("[daemon]\ninterval = 0\nstate_file =\n[lock]\nwhat = bogus\nincldue = ^/x/\n")
    n_before = len(entries())
    p = subprocess.run(AS_SERVICE + ["-c", bad], timeout=30 * SLOW)
    eq(p.returncode, 78, "a start with a bad config exits 78")
    time.sleep(0.5)
    new = entries()[n_before:]
    errs = [e for e in new if e.get("PRIORITY") == "3"]
    ok(any(e["MESSAGE"].startswith(f"{bad}:5: ") for e in errs)
       and any(e["MESSAGE"].startswith(f"{bad}:6: ") for e in errs),
       "both config errors are in the journal at err priority, as FILE:LINE: message",
       "\n".join(f"{e.get('PRIORITY')} {e.get('MESSAGE')}" for e in new))
    if errs:
        ok(errs[0].get("CODE_FILE", "src/log.c") != "src/log.c",
           "the config error's CODE_FILE is not src/log.c", errs[0].get("CODE_FILE"))
    eq(stream_text().strip(), "", "a failed start writes nothing to the plain stream")
finally:
    shutil.rmtree(d, ignore_errors=True)
    journald.terminate()
    journald.wait()
done()
