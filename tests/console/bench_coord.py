#!/usr/bin/env python3
"""bench_coord.py - the coordinator's figures at scale (issue 14's closing
note). Builds the coordinator network of test_coord.py, stops its broker,
appends N synthetic referrals (3 audit events each: submitted, delivered,
accepted; bench_coord_fill) to the broker's store, restarts it, then times:

  - `casenet report --csv` on a fresh cache: the first pull (every event
    exported, verified and cached) plus the figures;
  - the same again: the incremental pull (a few new events) plus figures;
  - `--offline`: the figures alone;
  - GET /api/v1/coord/network (the last 28 days) through the coordinator's
    console, R times: p50 and p99 of the page's data load.

Not a test; run by hand after a build:
    tests/console/bench_coord.py [MESSAGES (333334 = 1,000,002 events)] [R]
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402

FILL = os.path.join(consolenet.BIN, "tests", "bench_coord_fill")


def timed(*args):
    t0 = time.monotonic()
    p = subprocess.run([consolenet.CASENET, *args], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"casenet {' '.join(args)}: {p.stderr}")
    return time.monotonic() - t0, p.stdout


def main():
    msgs = int(sys.argv[1]) if len(sys.argv) > 1 else 333334
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    net = consolenet.Network(coordinator=True)
    try:
        broker = net.procs[0]
        broker.terminate()
        broker.wait()
        t0 = time.monotonic()
        print(subprocess.run([FILL, f"{net.root}/data", str(msgs)], check=True,
                             capture_output=True, text=True).stdout.strip(),
              f"in {time.monotonic() - t0:.1f} s")
        net.start_broker(net.endpoint)
        home = net.home("vn.coord")
        month = time.strftime("%Y-%m", time.gmtime())
        # wait for the broker's head over the whole log (signed every 2 s)
        time.sleep(3)
        first, out = timed("report", "--month", month, "--csv", "--home", home)
        size = [ln for ln in out.splitlines() if ln.startswith("head,,,,size,")][0].split(",")[-1]
        again, _ = timed("report", "--month", month, "--csv", "--home", home)
        offline, _ = timed("report", "--month", month, "--csv", "--offline", "--home", home)
        print(f"log size {size}: first pull + figures {first:.1f} s; incremental + figures "
              f"{again:.2f} s; figures alone {offline:.2f} s")
        c = consolenet.Client(net.urls["vn.coord"])
        assert c.login("hoa")[0] == 200
        ms = []
        for _ in range(rounds):
            t = time.monotonic()
            status, _, _ = c.call("GET", "/coord/network")
            ms.append((time.monotonic() - t) * 1000)
            assert status == 200, status
        ms.sort()
        print(f"GET /coord/network x{rounds}: p50 {statistics.median(ms):.0f} ms, "
              f"p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.0f} ms")
    finally:
        net.close()


if __name__ == "__main__":
    main()
