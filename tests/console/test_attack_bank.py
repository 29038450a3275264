#!/usr/bin/env python3
"""test_attack_bank.py - the console's hash-bank page against what it did
not write itself, over real HTTP against a real casenetd and the police's
console: a match recorded by `casenet hashes match --record-name` keeps
the file's name as its label, and a name is bytes, not text (a file from
an archive made elsewhere, or a long name cut at 256 bytes inside a
character). Such a label must not take the page down for every staff user
of the agency: the page answers 200 with the label made valid UTF-8, the
other rows as they are.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402

POLICE = "vn.police.a05"


class AttackBank(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = consolenet.Network()
        cls.tmp = tempfile.mkdtemp(prefix="casenet-attack-bank.")
        cls.pol = consolenet.Client(cls.net.urls[POLICE])
        assert cls.pol.login("minh")[0] == 200

    @classmethod
    def tearDownClass(cls):
        cls.net.close()
        subprocess.run(["rm", "-rf", cls.tmp], check=False)

    def cli(self, *args):
        return subprocess.run([consolenet.CASENET, *args], capture_output=True)

    def test_labels_not_utf8(self):
        data = os.urandom(64)
        csv = os.path.join(self.tmp, "list.csv")
        with open(csv, "w") as f:
            f.write("signal_type,signal_value,category\n")
            f.write(f"sha256,{hashlib.sha256(data).hexdigest()},baseline\n")
        p = self.cli("hashes", "import", "--home", self.net.home(POLICE), "--csv", csv,
                     "--source", "test-list", "--category", "baseline")
        self.assertEqual(p.returncode, 0, p.stderr)
        # a name that is not UTF-8, and one whose 256th byte is inside a character
        tmpb = os.fsencode(self.tmp)
        names = [b"bang-chung-\xff\xfe.bin", ("a" + "\u00e9" * 127).encode()]
        deep = os.path.join(tmpb, b"d" * 40)
        os.mkdir(deep)
        paths = [os.path.join(tmpb, names[0]), os.path.join(deep, names[1])]
        for path in paths:
            with open(path, "wb") as f:
                f.write(data)
            p = self.cli("hashes", "match", "--home", self.net.home(POLICE), "--record-name",
                         path)
            self.assertIn(p.returncode, (0, 1), p.stderr)
        status, js, _ = self.pol.call("GET", "/bank")
        self.assertEqual(status, 200, js)
        labels = [r["label"] for r in js["matches"]["rows"]]
        self.assertEqual(len(labels), 2, js["matches"])
        self.assertTrue(labels[1].startswith(self.tmp) and "bang-chung-" in labels[1], labels)
        self.assertTrue(labels[0].startswith(self.tmp + "/ddd"), labels)
        for label in labels:
            label.encode("utf-8")  # valid text
        # a viewer's page (counts only) answers too
        view = consolenet.Client(self.net.urls[POLICE])
        self.assertEqual(view.login("xem")[0], 200)
        status, js, _ = view.call("GET", "/bank")
        self.assertEqual(status, 200, js)


if __name__ == "__main__":
    unittest.main(verbosity=2)
