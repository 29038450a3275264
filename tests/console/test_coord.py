#!/usr/bin/env python3
"""test_coord.py - the coordinator's view (issue 14) over real HTTP against a
real casenetd, four member homes and three running consoles (hotline, police,
the coordinator):

  1. every coordinator endpoint answers FORBIDDEN (the documented error
     shape) in a console whose member is not a coordinator, whoever logs in;
  2. a scripted month of traffic (several agencies, kinds and urgencies,
     breached deadlines, declines, takedowns, exercise and test messages),
     sent through the real CLI: the figures of `casenet report --csv` equal
     the ones this test computes from what it sent, the console's report
     page gives the same CSV, and --public hides small counts;
  3. a broker whose store is rewritten under it: an event not yet pulled
     makes the next `casenet report` fail (exit 3, no figures); an event
     already cached is caught by the console's Verify now, after which the
     network, report and audit pages answer VERIFY_FAILED, not a number;
  4. (its own network) a broker restored from a backup that declared a new
     epoch (LOG_RESTORED): the console's cache holds events the new epoch
     lost, so Verify now answers VERIFY_FAILED naming the backup's size and
     the last head before it, and so do the figure pages.
"""
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import unittest
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402

HOTLINE, POLICE, MOLISA, PLATFORM, COORD = ("vn.hotline111", "vn.police.a05", "vn.molisa.hanoi",
                                            "vn.platform.x", "vn.coord")
ENDPOINTS = [("GET", "/coord/overdue"), ("GET", "/coord/network"),
             ("GET", "/coord/report?month=2026-01"), ("GET", "/coord/audit"),
             ("POST", "/coord/audit/verify"), ("GET", "/coord/audit/prove?index=0")]


def referral(urgency):
    return json.dumps({"referral": {
        "caseId": "HL111-2026-000001", "intakeChannel": "INTAKE_CHANNEL_PHONE",
        "intakeReceivedAtMs": str(int(time.time() * 1000) - 60000),
        "harmCategories": ["HARM_CATEGORY_SEXTORTION"], "urgency": urgency,
        "children": [{"ageYears": 14, "sex": "SEX_FEMALE"}], "numberOfChildren": 1,
        "place": {"provinceCode": "01", "communeCode": "00070"},
        "currentCondition": "Safe at home.", "summary": "Threatened with publication.",
        "legalBasis": {"kind": "LEGAL_BASIS_KIND_VITAL_INTEREST", "reference": "Luật Trẻ em 2016"},
    }})


TAKEDOWN = json.dumps({"takedownRequest": {
    "caseId": "HL111-2026-000001",
    "items": [{"itemId": "1", "category": "HARM_CATEGORY_SEXTORTION",
               "locator": {"platform": "example-social", "url": "https://social.example/p/77"}}],
    "legalBasis": {"kind": "LEGAL_BASIS_KIND_CRIME_PREVENTION", "reference": "Decree 147/2024"}}})


class Coordinator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = consolenet.Network(coordinator=True)
        cls.month = datetime.now(timezone.utc).strftime("%Y-%m")

    @classmethod
    def tearDownClass(cls):
        cls.net.close()

    def cli(self, *args, stdin=None, check=True):
        p = subprocess.run([consolenet.CASENET, *args], input=stdin, capture_output=True,
                           text=True)
        if check and p.returncode != 0:
            self.fail(f"casenet {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return p

    def send(self, sender, to, kind, payload, *extra):
        out = self.cli("send", "--home", self.net.home(sender), "--kind", kind, *sum(
            (["--to", t] for t in to), []), *extra, stdin=payload).stdout
        return out.split()[0]

    def ack(self, who, mid, *extra):
        self.cli("ack", mid, "--home", self.net.home(who), *extra)

    def coord(self):
        c = consolenet.Client(self.net.urls[COORD])
        status, js = c.login("hoa")
        self.assertEqual(status, 200)
        self.assertTrue(js["coordinator"])
        return c

    def report(self, *extra, check=True):
        return self.cli("report", "--month", self.month, "--home", self.net.home(COORD), *extra,
                        check=check)

    # ------------------------------------------------------------ 1. the gate

    def test_1_forbidden_for_others(self):
        for user in ("minh", "xem"):  # supervisor and viewer of the police
            c = consolenet.Client(self.net.urls[POLICE])
            status, js = c.login(user)
            self.assertEqual(status, 200)
            self.assertFalse(js["coordinator"])
            for method, path in ENDPOINTS:
                status, js, _ = c.call(method, path, {} if method == "POST" else None)
                self.assertEqual(status, 403, (user, path))
                self.assertEqual(js["error"], "FORBIDDEN", path)
                self.assertTrue(js["message"], path)
        # the CLI refuses too: the broker will not export the log to others
        p = self.cli("report", "--month", self.month, "--home", self.net.home(POLICE),
                     check=False)
        self.assertEqual(p.returncode, 5, p.stderr)
        # and the coordinator's console answers them all
        c = self.coord()
        for method, path in ENDPOINTS[:4]:
            status, js, _ = c.call(method, path)
            self.assertEqual(status, 200, (path, js))

    # ------------------------------------------------------------ 2. a month of traffic

    def traffic(self):
        """Sends the script; returns the figures expected from it."""
        em, st = referral("URGENCY_EMERGENCY"), referral("URGENCY_STANDARD")
        for i in range(6):  # hotline -> police, emergency
            mid = self.send(HOTLINE, [POLICE], "referral", em)
            if i == 5:
                continue  # never taken: both deadlines breach
            self.ack(POLICE, mid)
            if i == 4:
                self.ack(POLICE, mid, "--status", "declined", "--reason", "duplicate")
            else:
                self.ack(POLICE, mid, "--status", "accepted")
        for i in range(3):  # hotline -> social services, standard
            mid = self.send(HOTLINE, [MOLISA], "referral", st)
            self.ack(MOLISA, mid)
            if i == 0:
                self.ack(MOLISA, mid, "--status", "accepted")
            elif i == 1:
                self.ack(MOLISA, mid, "--status", "declined", "--reason", "not-competent")
            # i == 2: delivered, never accepted: the accept deadline breaches
        mid = self.send(HOTLINE, [POLICE, MOLISA], "referral", st)
        self.ack(POLICE, mid)
        self.ack(POLICE, mid, "--status", "accepted")
        self.ack(MOLISA, mid)
        self.ack(MOLISA, mid, "--status", "declined", "--reason", "insufficient-information")
        for _ in range(2):  # exercise and test: counted apart
            self.send(HOTLINE, [POLICE], "referral", em, "--status", "exercise")
        self.send(HOTLINE, [POLICE], "referral", em, "--status", "test")
        tid = self.send(POLICE, [PLATFORM], "takedown-request", TAKEDOWN, "--urgency",
                        "urgent-takedown")
        self.ack(PLATFORM, tid)
        self.ack(PLATFORM, tid, "--status", "accepted")
        self.ack(PLATFORM, tid, "--status", "completed", "--outcome", "resolved")
        tid = self.send(POLICE, [PLATFORM], "takedown-request", TAKEDOWN, "--urgency",
                        "urgent-takedown")
        self.ack(PLATFORM, tid)
        self.ack(PLATFORM, tid, "--status", "declined", "--reason", "redirected")
        return {
            ("totals", "actual", "", "", "count"): 12,
            ("totals", "exercise", "", "", "count"): 2,
            ("totals", "test", "", "", "count"): 1,
            ("flows", HOTLINE, POLICE, "", "count"): 7,
            ("flows", HOTLINE, MOLISA, "", "count"): 4,
            ("flows", POLICE, PLATFORM, "", "count"): 2,
            ("declines", "duplicate", "", "", "count"): 1,
            ("declines", "not-competent", "", "", "count"): 1,
            ("declines", "insufficient-information", "", "", "count"): 1,
            ("declines", "redirected", "", "", "count"): 1,
            ("times", POLICE, "emergency", "", "messages"): 6,
            ("times", POLICE, "emergency", "", "delivered"): 5,
            ("times", POLICE, "emergency", "", "answered"): 5,
            ("times", POLICE, "emergency", "", "delivered_within"): "0.833",
            ("times", POLICE, "emergency", "", "answered_within"): "0.833",
            ("times", POLICE, "standard", "", "messages"): 1,
            ("times", MOLISA, "standard", "", "messages"): 4,
            ("times", MOLISA, "standard", "", "delivered"): 4,
            ("times", MOLISA, "standard", "", "answered"): 3,
            ("times", MOLISA, "standard", "", "delivered_within"): "1.000",
            ("times", MOLISA, "standard", "", "answered_within"): "0.750",
            ("times", PLATFORM, "urgent-takedown", "", "messages"): 2,
            ("times", PLATFORM, "urgent-takedown", "", "answered_within"): "1.000",
            ("takedowns", "", "", "", "requests"): 2,
            ("takedowns_24h", "resolved", "", "", "count"): 1,
            ("takedowns_24h", "declined", "", "", "count"): 1,
        }

    @staticmethod
    def rows(text):
        r = list(csv.reader(io.StringIO(text)))
        assert r[0] == ["section", "key1", "key2", "key3", "metric", "value"], r[0]
        return {tuple(x[:5]): x[5] for x in r[1:]}

    def test_2_month_figures(self):
        want = self.traffic()
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        want[("per_day", today, "referral", "emergency", "count")] = 6
        want[("per_day", today, "referral", "standard", "count")] = 4
        want[("per_day", today, "takedown-request", "urgent-takedown", "count")] = 2
        # the breaches happen 10 s after the last emergency; a head signs them
        got, deadline = {}, time.time() + 60
        while time.time() < deadline:
            got = self.rows(self.report("--csv").stdout)
            if all(got.get(k) == str(v) for k, v in want.items()):
                break
            time.sleep(0.5)
        for k, v in want.items():
            self.assertEqual(got.get(k), str(v), k)
        self.assertEqual(int(got[("head", "", "", "", "size")]) > 0, True)
        self.assertEqual(len(got[("head", "", "", "", "root")]), 64)
        p50 = float(got[("times", POLICE, "emergency", "", "delivered_p50_s")])
        p90 = float(got[("times", POLICE, "emergency", "", "delivered_p90_s")])
        self.assertTrue(0 <= p50 <= p90 < 5, (p50, p90))
        # the console's report page: the same code, the same CSV at the same head
        c = self.coord()
        req = consolenet.urllib.request.Request(
            self.net.urls[COORD] + f"api/v1/coord/report?month={self.month}&format=csv",
            headers={"Cookie": c.cookie})
        with consolenet.urllib.request.urlopen(req, timeout=30) as r:
            self.assertTrue(r.headers["Content-Type"].startswith("text/csv"))
            page = self.rows(r.read().decode())
        cli = self.rows(self.report("--csv", "--offline").stdout)
        if page[("head", "", "", "", "size")] == cli[("head", "", "", "", "size")]:
            self.assertEqual(page, cli)
        for k, v in want.items():
            self.assertEqual(page.get(k), str(v), k)
        # --public: 1 to 4 become "<5", 5 and more stay, no ids anywhere
        pub = self.report("--csv", "--public", "--offline").stdout
        prow = self.rows(pub)
        self.assertEqual(prow[("totals", "actual", "", "", "count")], "12")
        self.assertEqual(prow[("totals", "exercise", "", "", "count")], "<5")
        self.assertEqual(prow[("flows", HOTLINE, POLICE, "", "count")], "7")
        self.assertEqual(prow[("flows", HOTLINE, MOLISA, "", "count")], "<5")
        self.assertEqual(prow[("times", MOLISA, "standard", "", "answered_p50_s")], "")
        js = json.loads(self.report("--json", "--offline").stdout)
        self.assertEqual(js["head"]["root"], got[("head", "", "", "", "root")] if
                         js["head"]["size"] == int(got[("head", "", "", "", "size")]) else
                         js["head"]["root"])
        # the network page and the audit list come from the same cache
        status, js, _ = c.call("GET", "/coord/network")
        self.assertEqual(status, 200, js)
        self.assertFalse(js["stale"])
        status, js, _ = c.call("GET", "/coord/audit?kind=5")  # escalations
        self.assertEqual(status, 200, js)
        self.assertTrue(js["rows"] and all(r["kind"] == "ESCALATED" for r in js["rows"]))
        status, proof, _ = c.call("GET", f"/coord/audit/prove?index={js['rows'][0]['index']}")
        self.assertEqual(status, 200, proof)
        self.assertTrue(proof["verified"])
        # the overdue board: the never-taken emergency and the unaccepted one
        status, board, _ = c.call("GET", "/coord/overdue")
        self.assertEqual(status, 200, board)
        names = [g["recipient"] for g in board["groups"]]
        self.assertIn(POLICE, names)
        self.assertIn(MOLISA, names)
        status, js, _ = c.call("POST", "/coord/audit/verify", {})
        self.assertEqual(status, 200, js)
        self.assertTrue(js["ok"])

    # ------------------------------------------------------------ 3. history rewritten

    def tamper(self, idx):
        db = sqlite3.connect(f"{self.net.root}/data/casenet.db", timeout=10)
        db.execute("UPDATE audit SET event = substr(event, 1, length(event) - 1) || "
                   "x'7a' WHERE idx = ?", (idx,))
        db.commit()
        db.close()

    def test_3_rewritten_store(self):
        # a second home of the coordinator: its own cache, pulled by the CLI
        home2 = f"{self.net.root}/home/coord-2"
        self.cli("init", "--home", home2, "--key", f"{self.net.root}/keys/{COORD}.key",
                 "--authority", f"{self.net.root}/authority/authority.pub", "--directory",
                 f"{self.net.root}/directory", "--broker", self.net.endpoint)
        rows = self.rows(self.cli("report", "--month", self.month, "--csv", "--home",
                                  home2).stdout)
        size = int(rows[("head", "", "", "", "size")])
        # rewrite an event that cache has not pulled yet: its next pull fails
        db = sqlite3.connect(f"{self.net.root}/data/casenet.db", timeout=10)
        idx = db.execute("SELECT MAX(idx) FROM audit").fetchone()[0]
        db.close()
        self.assertGreaterEqual(idx, size)
        self.tamper(idx)
        deadline = time.time() + 20
        while time.time() < deadline:  # until a head covers it
            p = self.cli("report", "--month", self.month, "--csv", "--home", home2, check=False)
            if p.returncode:
                break
            time.sleep(0.5)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("does not verify", p.stderr)
        self.assertEqual(p.stdout, "")  # no figure at all
        # the console's cache already holds event 1: rewriting it is caught by
        # Verify now (everything again from index 0), and then by every page
        c = self.coord()
        self.tamper(1)
        status, js, _ = c.call("POST", "/coord/audit/verify", {})
        self.assertEqual(status, 502, js)
        self.assertEqual(js["error"], "VERIFY_FAILED")
        self.assertRegex(js["message"], r"head of size \d+|index \d+")
        for path in ("/coord/network", f"/coord/report?month={self.month}", "/coord/audit"):
            status, js, _ = c.call("GET", path)
            self.assertEqual(status, 502, path)
            self.assertEqual(js["error"], "VERIFY_FAILED")
            self.assertNotIn("per_day", js)
        p = self.report("--csv", check=False)  # the same home's cache: remembered
        self.assertEqual(p.returncode, 3, p.stderr)


class Restored(unittest.TestCase):
    """4. A declared restore under the coordinator console (its own network:
    the broker is stopped, restored and started again)."""
    cli, send, ack, coord = Coordinator.cli, Coordinator.send, Coordinator.ack, Coordinator.coord

    @classmethod
    def setUpClass(cls):
        cls.net = consolenet.Network(coordinator=True)
        cls.month = datetime.now(timezone.utc).strftime("%Y-%m")

    @classmethod
    def tearDownClass(cls):
        cls.net.close()

    def casenetd(self, *args):
        p = subprocess.run([consolenet.CASENETD, *args], capture_output=True, text=True)
        if p.returncode != 0:
            self.fail(f"casenetd {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return p

    def broker_flags(self):
        d = self.net.root
        return ["--data", f"{d}/data", "--listen", self.net.endpoint, "--key",
                f"{d}/keys/vn.broker.key", "--directory", f"{d}/directory", "--authority",
                f"{d}/authority/authority.pub", "--policy", f"{d}/policy.ini"]

    def exchange(self, n):
        """n standard referrals, each delivered and accepted before its
        deadlines: the log then stops growing."""
        for _ in range(n):
            mid = self.send(HOTLINE, [POLICE], "referral", referral("URGENCY_STANDARD"))
            self.ack(POLICE, mid)
            self.ack(POLICE, mid, "--status", "accepted")

    def signed(self):
        """The log's size once a signed head covers every event."""
        deadline = time.time() + 30
        while time.time() < deadline:
            db = sqlite3.connect(f"{self.net.root}/data/casenet.db", timeout=10)
            head = db.execute("SELECT COALESCE(MAX(size), 0) FROM tree_heads").fetchone()[0]
            size = db.execute("SELECT count(*) FROM audit").fetchone()[0]
            db.close()
            if head == size:
                return size
            time.sleep(0.2)
        self.fail("no signed head covers the log after 30 s")

    def pulled(self, c, size):
        """Verify now until the console's cache is at a head of size."""
        deadline, js = time.time() + 30, None
        while time.time() < deadline:
            status, js, _ = c.call("POST", "/coord/audit/verify", {})
            self.assertEqual(status, 200, js)
            if js["head"]["size"] >= size:
                return js["head"]["size"]
            time.sleep(0.2)
        self.fail(f"the console's cache did not reach size {size}: {js}")

    def test_4_declared_restore(self):
        d, coord_home = self.net.root, self.net.home(COORD)
        c = self.coord()
        self.exchange(2)
        self.pulled(c, self.signed())
        status, js, _ = c.call("GET", f"/coord/report?month={self.month}")
        self.assertEqual(status, 200, js)
        # a backup, then more traffic the console pulls: its head is past the backup
        self.casenetd("backup", "--data", f"{d}/data", "--out", f"{d}/b1.backup")
        db = sqlite3.connect(f"{d}/b1.backup")
        nb = db.execute("SELECT count(*) FROM audit").fetchone()[0]
        db.close()
        self.exchange(2)
        size = self.signed()
        self.assertGreater(size, nb)
        self.pulled(c, size)
        # the coordinator's last head for --last-head, taken after the console's
        self.cli("audit", "verify", "--home", coord_home)
        out = self.cli("audit", "verify", "--home", coord_home).stdout
        last = int(out.split("trusted head: size ", 1)[1].split(",", 1)[0])
        self.assertGreaterEqual(last, size)
        # stop the broker, restore the backup, declare a new epoch, start it again
        broker = next(p for p in self.net.procs
                      if p.args[0] == consolenet.CASENETD and p.poll() is None)
        broker.send_signal(consolenet.signal.SIGTERM)
        broker.wait(timeout=20)
        os.rename(f"{d}/data", f"{d}/data.orig")
        self.casenetd("restore", f"{d}/b1.backup", "--data", f"{d}/data")
        p = self.casenetd("restore", "--new-epoch", "--last-head", f"{coord_home}/audit.state",
                          *self.broker_flags())
        self.assertIn(f"log restored from backup at size {nb}, previous head {last}", p.stdout)
        self.net.start_broker(self.net.endpoint)
        # Verify now: the log verifies, but the cache counted events now lost
        status, js, _ = c.call("POST", "/coord/audit/verify", {})
        self.assertEqual(status, 502, js)
        self.assertEqual(js["error"], "VERIFY_FAILED")
        self.assertIn(f"restored from a backup of {nb} events", js["message"])
        self.assertIn(f"the last head before it had {last}", js["message"])
        self.assertIn("coord.db", js["message"])  # what to do
        for path in ("/coord/network", f"/coord/report?month={self.month}", "/coord/audit"):
            status, js, _ = c.call("GET", path)
            self.assertEqual(status, 502, (path, js))
            self.assertEqual(js["error"], "VERIFY_FAILED", path)
            self.assertIn(f"backup of {nb} events", js["message"], path)
            self.assertNotIn("per_day", js)


if __name__ == "__main__":
    unittest.main(verbosity=2)
