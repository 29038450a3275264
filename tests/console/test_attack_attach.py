#!/usr/bin/env python3
"""test_attack_attach.py - the console's attachment endpoints against hostile
staff and hostile senders, over real HTTP against a real casenetd and two
running consoles (hotline, police):

  1. an upload belongs to the staff user who started it: another caseworker
     of the same console can neither add to it, remove it nor send it; a
     chunk or a removal without the CSRF token is refused; a viewer uploads
     nothing;
  2. chunks are checked against the declared size and the chunk limit (more
     than declared, more than 524288 bytes, a negative or wrong offset);
  3. upload names cannot leave the upload area (.., /, \\, NUL, empty), and
     lose what would make the page or a saved file lie about the name:
     bidirectional overrides and isolates, C1 controls;
  4. a file a sender outside the console named `cv<RLO>fdp"x.exe` (the
     library lets bidi characters through) is listed and served by the
     police's console without the override: the page and the saved file
     show the name the bytes really have.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402
from test_attach import raw_get, referral  # noqa: E402

HOTLINE, POLICE = "vn.hotline111", "vn.police.a05"
# What may not survive in a name shown or saved: bidi embeddings, overrides,
# isolates and marks, C1 controls, line and paragraph separators.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
UNSAFE = BIDI + "\u0080\u0085\u009f\u2028\u2029"


def b64(data):
    return base64.b64encode(data).decode()


class AttackAttach(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = consolenet.Network()
        # a second caseworker at the hotline
        subprocess.run([consolenet.CASENET, "console", "user", "add", "hai", "--role",
                        "caseworker", "--home", cls.net.home(HOTLINE)],
                       input=consolenet.PASSWORD + "\n", text=True, check=True,
                       capture_output=True)
        cls.lan = consolenet.Client(cls.net.urls[HOTLINE])
        cls.hai = consolenet.Client(cls.net.urls[HOTLINE])
        cls.pol = consolenet.Client(cls.net.urls[POLICE])
        cls.view = consolenet.Client(cls.net.urls[POLICE])
        assert cls.lan.login("lan")[0] == 200
        assert cls.hai.login("hai")[0] == 200
        assert cls.pol.login("minh")[0] == 200
        assert cls.view.login("xem")[0] == 200

    @classmethod
    def tearDownClass(cls):
        cls.net.close()

    def start(self, client, name, size):
        status, js, _ = client.call("POST", "/uploads", {"name": name, "size": size})
        self.assertEqual(status, 200, js)
        return js

    def send(self, client, uploads):
        return client.call("POST", "/messages", {
            "kind": "referral", "to": [POLICE], "urgency": "emergency", "payload": referral(),
            "attachments": uploads})

    def test_1_owner_csrf_role(self):
        uid = self.start(self.lan, "owned.txt", 8)["id"]
        # another caseworker of the same console: not found, not sent
        status, js, _ = self.hai.call("POST", f"/uploads/{uid}", {"offset": 0,
                                                                   "data": b64(b"stolen!!")})
        self.assertEqual((status, js["error"]), (404, "NOT_FOUND"), js)
        status, js, _ = self.hai.call("DELETE", f"/uploads/{uid}")
        self.assertEqual(status, 404, js)
        # without the CSRF token: neither a chunk nor a removal
        status, js, _ = self.lan.call("POST", f"/uploads/{uid}",
                                      {"offset": 0, "data": b64(b"12345678")}, csrf=False)
        self.assertEqual(status, 403, js)
        status, js, _ = self.lan.call("DELETE", f"/uploads/{uid}", csrf=False)
        self.assertEqual(status, 403, js)
        # the owner's upload is intact: complete it; the other still cannot send it
        status, js, _ = self.lan.call("POST", f"/uploads/{uid}",
                                      {"offset": 0, "data": b64(b"12345678")})
        self.assertEqual((status, js["received"], js["complete"]), (200, 8, True), js)
        before = self.pol.call("GET", "/inbox")[1]["total"]
        status, js, _ = self.send(self.hai, [uid])
        self.assertEqual((status, js["field"]), (409, "attachments"), js)
        self.assertEqual(self.pol.call("GET", "/inbox")[1]["total"], before)
        self.assertEqual(self.lan.call("DELETE", f"/uploads/{uid}")[0], 200)
        # a viewer uploads nothing
        status, js, _ = self.view.call("POST", "/uploads", {"name": "v.txt", "size": 1})
        self.assertEqual(status, 403, js)

    def test_2_chunks(self):
        uid = self.start(self.lan, "ragged.bin", 10)["id"]
        path = f"/uploads/{uid}"
        # more than declared, in one chunk or across two
        status, js, _ = self.lan.call("POST", path, {"offset": 0, "data": b64(b"x" * 11)})
        self.assertEqual((status, js["received"]), (409, 0), js)
        self.assertEqual(self.lan.call("POST", path, {"offset": 0, "data": b64(b"x" * 6)})[0],
                         200)
        status, js, _ = self.lan.call("POST", path, {"offset": 6, "data": b64(b"y" * 5)})
        self.assertEqual((status, js["received"]), (409, 6), js)
        # behind, ahead, negative, not a number
        for off in (0, 7, -1, "6", 2 ** 62):
            status, js, _ = self.lan.call("POST", path, {"offset": off, "data": b64(b"z")})
            self.assertIn(status, (400, 409), (off, js))
            self.assertEqual(js["field"], "offset", (off, js))
        # a chunk over 524288 bytes, in a body under 1 MiB
        big = self.start(self.lan, "big.bin", 1 << 20)["id"]
        status, js, _ = self.lan.call("POST", f"/uploads/{big}",
                                      {"offset": 0, "data": b64(b"\0" * 524289)})
        self.assertEqual((status, js["field"]), (400, "data"), js)
        # sizes that are not a count of bytes
        for size in (-1, "10", 1.5, None):
            status, js, _ = self.lan.call("POST", "/uploads", {"name": "s.bin", "size": size})
            self.assertEqual(status, 400, (size, js))
        # the file on disk never grew past what was declared
        area = os.path.join(self.net.home(HOTLINE), "console-uploads", uid)
        self.assertEqual(os.path.getsize(os.path.join(area, "ragged.bin")), 6)
        for u in (uid, big):
            self.assertEqual(self.lan.call("DELETE", f"/uploads/{u}")[0], 200)

    def test_3_names(self):
        area = os.path.join(self.net.home(HOTLINE), "console-uploads")
        names = ["..", ".", "", "/", "a/../../../../etc/passwd", "\\..\\..\\x.txt", "...",
                 ".bashrc", "x" * 1000, "é" * 300, "cv\u202efdp.exe", "a\u0085b\u009fc.txt",
                 "\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u2028\u2029.txt",
                 "\u202a\u202b\u202c\u202d.txt"]
        ids = []
        for name in names:
            js = self.start(self.lan, name, 1)
            got = js["name"]
            ids.append(js["id"])
            self.assertTrue(got and not got.startswith("."), (name, got))
            self.assertNotIn("/", got)
            self.assertNotIn("\\", got)
            self.assertLessEqual(len(got.encode()), 255, name)
            for ch in UNSAFE:
                self.assertNotIn(ch, got, (name, got, hex(ord(ch))))
            self.assertEqual(os.listdir(os.path.join(area, js["id"])), [got])
        self.assertEqual(sorted(os.listdir(area)), sorted(ids))
        # nothing was created outside the area (the names' targets)
        for top, _, files in os.walk(self.net.root):
            for f in files:
                if f in ("passwd", "x.txt") or f.endswith("x.txt"):
                    self.assertTrue(top.startswith(area), os.path.join(top, f))
        # a NUL in the name is not JSON the console takes
        status, js, _ = self.lan.call("POST", "/uploads", {"name": "a\u0000.txt", "size": 1})
        self.assertEqual(status, 400, js)
        for u in ids:
            self.assertEqual(self.lan.call("DELETE", f"/uploads/{u}")[0], 200)

    def test_4_hostile_sender_name(self):
        tmp = tempfile.mkdtemp(prefix="casenet-attack-attach.")
        name = "cv\u202efdp\"x.exe"
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(b"MZ not really a program")
        ref = os.path.join(tmp, "referral.json")
        payload = referral()
        payload["referral"]["urgency"] = "URGENCY_EMERGENCY"
        with open(ref, "w") as f:
            json.dump(payload, f)
        with open(ref) as stdin:
            p = subprocess.run([consolenet.CASENET, "send", "--home", self.net.home(HOTLINE),
                                "--to", POLICE, "--kind", "referral", "--attach", path],
                               stdin=stdin, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        mid = p.stdout.split()[0]
        status, msg, _ = self.pol.call("GET", f"/messages/{mid}")
        self.assertEqual(status, 200, msg)
        shown = msg["attachments"][0]["file_name"]
        self.assertNotIn("\u202e", shown)
        self.assertIn("fdp", shown)
        status, hdrs, body = raw_get(self.pol, f"/messages/{mid}/attachments/0")
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(body, b"MZ not really a program")
        disp = hdrs["Content-Disposition"]
        self.assertNotIn("%E2%80%AE", disp)
        self.assertNotIn("\r", disp)
        self.assertNotIn("\n", disp)
        self.assertEqual(disp, 'attachment; filename="cv_fdp\\"x.exe"; '
                         "filename*=UTF-8''cv_fdp%22x.exe")
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
