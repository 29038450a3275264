#!/usr/bin/env python3
"""test_bank.py - the console's hash-bank page (issue 19 item 5) over real HTTP
against a real casenetd, the hotline's and the police's homes and consoles:

  1. the session says which member holds a bank; GET /bank answers counts for
     every staff role and the recent lists only to caseworkers and up (each
     such read in the disclosure ledger);
  2. the hotline contributes with the CLI: the police's console imports the
     hash share by itself (its notice thread, through the CLI's import path),
     and `casenet hashes import` afterwards finds nothing left to apply; the
     counts by category and source follow;
  3. a retraction moves the counts from live to retracted;
  4. a match recorded by `casenet hashes match` shows with its entry, category
     and source, and no file name unless --record-name asked for it;
  5. a false-positive note written to be hostile (markup, quotes, control
     characters) reaches the hotline's page byte for byte as a JSON string,
     and the police's page lists it as sent.
"""
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402

HOTLINE, POLICE = "vn.hotline111", "vn.police.a05"
SHA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
MD5 = "0123456789abcdef0123456789abcdef"
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
HOSTILE = "<img src=x onerror=\"alert(1)\">'&amp; </td><script>alert(2)</script>\u202e"
LIST = (f"signal_type,signal_value,category\nsha256,{SHA},baseline\n"
        f"md5,{MD5},nationally-illegal\npdq,{PDQ},not-illegal\n")


class Bank(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = consolenet.Network()
        cls.tmp = tempfile.mkdtemp(prefix="casenet-bank-test.")

    @classmethod
    def tearDownClass(cls):
        cls.net.close()
        subprocess.run(["rm", "-rf", cls.tmp], check=False)

    def cli(self, *args, check=True):
        p = subprocess.run([consolenet.CASENET, *args], capture_output=True, text=True)
        if check and p.returncode != 0:
            self.fail(f"casenet {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return p

    def client(self, who, user):
        c = consolenet.Client(self.net.urls[who])
        status, js = c.login(user)
        self.assertEqual(status, 200, js)
        return c

    def bank(self, c, query=""):
        status, js, hdrs = c.call("GET", "/bank" + query)
        self.assertEqual(status, 200, js)
        self.assertIn("no-store", hdrs.get("Cache-Control", ""))
        return js

    def until(self, c, pred, what, timeout=30):
        """Polls GET /bank until pred holds (the console imports on its own)."""
        deadline = time.time() + timeout
        js = None
        while time.time() < deadline:
            js = self.bank(c)
            if pred(js):
                return js
            time.sleep(0.1)
        self.fail(f"{what}: {js}")

    @staticmethod
    def source(js, name):
        return next((s for s in js["sources"] if s["source"] == name), None)

    def test_1_to_5(self):
        police, viewer, hot = (self.client(POLICE, "minh"), self.client(POLICE, "xem"),
                               self.client(HOTLINE, "lan"))
        # 1. who holds a bank, who sees what
        status, js, _ = police.call("GET", "/session")
        self.assertTrue(js["bank"])
        js = self.bank(viewer)
        self.assertFalse(js["detail"])
        self.assertNotIn("matches", js)
        self.assertEqual(js["totals"]["live"], 0)
        status, js, _ = police.call("POST", "/bank", {})
        self.assertIn(status, (403, 405))

        # 2. a contribution arrives in the police's console and is imported there
        path = os.path.join(self.tmp, "list.csv")
        with open(path, "w") as f:
            f.write(LIST)
        self.cli("hashes", "contribute", "--home", self.net.home(HOTLINE), "--to", POLICE,
                 "--csv", path)
        js = self.until(police, lambda j: j["totals"]["live"] == 3, "the share was not imported")
        self.assertTrue(js["detail"])
        t = js["totals"]
        self.assertEqual((t["baseline"], t["nationally_illegal"], t["not_illegal"]), (1, 1, 1))
        self.assertGreater(t["last_update"], 0)
        s = self.source(js, HOTLINE)
        self.assertEqual((s["live"], s["baseline"], s["retracted"], s["list"]), (3, 1, 0, False))
        self.assertEqual(s["name"], "Tổng đài điện thoại quốc gia bảo vệ trẻ em 111")
        p = self.cli("hashes", "import", "--home", self.net.home(POLICE))
        self.assertIn("0 hash share messages applied", p.stdout)  # idempotent: done already
        p = self.cli("inbox", "--home", self.net.home(POLICE), "--state", "delivered")
        self.assertIn("hash-share", p.stdout)  # acknowledged as `hashes import` does

        # 3. a retraction changes the counts
        with open(path, "w") as f:
            f.write(f"md5,{MD5}\n")
        self.cli("hashes", "contribute", "--home", self.net.home(HOTLINE), "--to", POLICE,
                 "--retract", "--csv", path)
        js = self.until(police, lambda j: j["totals"]["retracted"] == 1, "no retraction")
        self.assertEqual((js["totals"]["live"], js["totals"]["nationally_illegal"]), (2, 0))
        s = self.source(js, HOTLINE)
        self.assertEqual((s["live"], s["retracted"]), (2, 1))

        # 4. a recorded match shows; the file name only when asked
        self.cli("hashes", "match", "--home", self.net.home(POLICE), "--hash", f"sha256:{SHA}")
        flipped = "%064x" % (int(PDQ, 16) ^ 0b111)
        self.cli("hashes", "match", "--home", self.net.home(POLICE), "--hash", f"pdq:{flipped}")
        js = self.bank(police)
        rows = js["matches"]["rows"]
        self.assertEqual(js["matches"]["total"], 2)
        self.assertEqual((rows[0]["signal_type"], rows[0]["value"], rows[0]["distance"],
                          rows[0]["category"], rows[0]["source"]),
                         ("pdq", PDQ, 3, "not-illegal", HOTLINE))
        self.assertEqual((rows[1]["value"], rows[1]["category"], rows[1]["label"]),
                         (SHA, "baseline", ""))
        js = self.bank(police, "?limit=1&matches_offset=1")  # paged
        self.assertEqual([r["value"] for r in js["matches"]["rows"]], [SHA])
        self.assertNotIn("matches", self.bank(viewer))

        # 5. a hostile false-positive note stays the same string, sent and received
        self.cli("hashes", "feedback", "--home", self.net.home(POLICE), "--to", HOTLINE,
                 "--false-positive", f"sha256:{SHA}", "--note", HOSTILE)
        self.cli("hashes", "feedback", "--home", self.net.home(POLICE), "--to", HOTLINE,
                 "--match", f"pdq:{PDQ}", "--count", "4")
        js = self.until(hot, lambda j: j["feedback_received"]["total"] == 2, "no feedback")
        fps = [r for r in js["feedback_received"]["rows"] if r["kind"] == "false-positive"]
        self.assertEqual(fps[0]["note"], HOSTILE)
        self.assertEqual(fps[0]["from"], POLICE)
        self.assertEqual(js["totals"]["matches_reported"], 4)
        sent = self.bank(police)["feedback_sent"]
        self.assertEqual(sent["total"], 2)
        self.assertIn(HOSTILE, [r["note"] for r in sent["rows"]])
        # every detailed read went to the ledger, the viewer's did not
        status, js, _ = police.call("GET", "/ledger")
        actions = [(r["user"], r["action"]) for r in js["rows"]]
        self.assertIn(("minh", "read:bank"), actions)
        self.assertNotIn(("xem", "read:bank"), actions)


if __name__ == "__main__":
    unittest.main(verbosity=2)
