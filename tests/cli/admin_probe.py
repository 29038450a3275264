#!/usr/bin/python3
"""admin_probe.py - the admin listener's test client (tests/cli/admin.sh).

  admin_probe.py scrape URL
      GETs URL/metrics, parses it with prometheus_client's text parser (the
      exposition format 0.0.4), checks every histogram, prints one line
      per sample: NAME{LABELS} VALUE, labels sorted.
  admin_probe.py status URL PATH
      prints the HTTP status and the body of GET URL/PATH.
  admin_probe.py method URL PATH METHOD
      prints the HTTP status of METHOD URL/PATH.
  admin_probe.py notify SOCKET WATCHDOG_USEC -- CASENETD ARGS...
      runs casenetd with NOTIFY_SOCKET=SOCKET, checks READY=1, then two
      WATCHDOG=1; SIGSTOPs it: no WATCHDOG=1 for three intervals; SIGCONT:
      WATCHDOG=1 again; SIGTERM: STOPPING=1 and exit 0.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(url):
    status, body = get(url + "/metrics")
    assert status == 200, status
    for fam in text_string_to_metric_families(body):
        if fam.type == "histogram":
            buckets = [s for s in fam.samples if s.name.endswith("_bucket")]
            counts = [s.value for s in buckets]
            assert counts == sorted(counts), f"{fam.name}: buckets not cumulative"
            assert buckets[-1].labels["le"] == "+Inf", f"{fam.name}: no +Inf bucket"
            count = [s for s in fam.samples if s.name.endswith("_count")][0].value
            assert buckets[-1].value == count, f"{fam.name}: +Inf bucket != count"
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            print(f"{s.name}{{{labels}}} {s.value:g}")


def recv_until(sock, want, timeout):
    """Datagrams until one holds the line want; returns all received."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg.split("\n"):
            return got
    raise AssertionError(f"no {want} within {timeout}s; got {got}")


def notify(path, usec, cmd):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(usec))
    env.pop("WATCHDOG_PID", None)
    p = subprocess.Popen(cmd, env=env)
    ival = usec / 1e6
    try:
        recv_until(sock, "READY=1", 30)
        print("READY=1")
        recv_until(sock, "WATCHDOG=1", 3 * ival)
        recv_until(sock, "WATCHDOG=1", 3 * ival)
        print("WATCHDOG=1 twice")
        os.kill(p.pid, signal.SIGSTOP)
        # drain a kick already in flight, then nothing for three intervals
        sock.settimeout(0.2)
        try:
            while True:
                sock.recv(4096)
        except socket.timeout:
            pass
        sock.settimeout(3 * ival)
        try:
            msg = sock.recv(4096).decode()
            raise AssertionError(f"a stopped loop sent {msg!r}")
        except socket.timeout:
            print("no WATCHDOG=1 while stopped")
        os.kill(p.pid, signal.SIGCONT)
        recv_until(sock, "WATCHDOG=1", 3 * ival)
        print("WATCHDOG=1 after SIGCONT")
        os.kill(p.pid, signal.SIGTERM)
        recv_until(sock, "STOPPING=1", 10)
        print("STOPPING=1")
        assert p.wait(timeout=30) == 0, "casenetd exited non-zero"
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait()


def main(argv):
    if argv[1] == "scrape":
        scrape(argv[2])
    elif argv[1] == "status":
        status, body = get(argv[2] + argv[3])
        print(status)
        print(body)
    elif argv[1] == "method":
        print(get(argv[2] + argv[3], argv[4])[0])
    elif argv[1] == "notify":
        assert argv[4] == "--"
        notify(argv[2], int(argv[3]), argv[5:])
    else:
        sys.exit(f"unknown command {argv[1]}")


if __name__ == "__main__":
    main(sys.argv)
