#!/usr/bin/env python3
"""attach_progress.py - `casenet send --attach` draws its progress bar on a
terminal only: run through a pseudo-terminal (python's pty module) stderr
shows one line redrawn with \\r (bytes, percent, MB/s) up to 100%; with
--quiet, or with stderr not a terminal, there is none.

usage: attach_progress.py CASENET HOME REFERRAL.json FILE"""
import os
import pty
import subprocess
import sys

casenet, home, referral, path = sys.argv[1:5]


def send(tty, *extra):
    args = [casenet, "send", "--home", home, "--to", "vn.police.a05", "--kind", "referral",
            "--attach", path, "--timeout", "60", *extra]
    with open(referral, "rb") as stdin:
        if not tty:
            p = subprocess.run(args, stdin=stdin, capture_output=True)
            return p.returncode, p.stderr.decode()
        master, slave = pty.openpty()
        p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            err += chunk
        p.stdout.read()
        os.close(master)
        # the terminal turns \n into \r\n (onlcr): keep only the redraws' \r
        return p.wait(), err.decode().replace("\r\n", "\n")


def check(ok, what, err):
    if not ok:
        sys.exit(f"FAIL: {what}\n--- stderr ---\n{err!r}")


rc, err = send(True)
check(rc == 0, "send on a terminal failed", err)
check("\r" in err and "MB/s" in err and "100%" in err and "MiB" in err,
      "no progress bar (\\r, MiB, percent, MB/s) on a terminal", err)
bar = [line for line in err.split("\r") if "MB/s" in line]
check(bar and bar[-1].split("\n")[0].rstrip().endswith("MB/s") and "100%" in bar[-1],
      "the last redraw is not 100%", err)
rc, err = send(True, "--quiet")
check(rc == 0 and "MB/s" not in err and "\r" not in err, "--quiet still drew a bar", err)
rc, err = send(False)
check(rc == 0 and "MB/s" not in err and "\r" not in err, "a bar on a stderr that is no terminal",
      err)
print("ok: progress bar on a terminal only")
