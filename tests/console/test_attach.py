#!/usr/bin/env python3
"""test_attach.py - attachments in the console (issue 18 item 3) over real
HTTP against a real casenetd and two running consoles (hotline, police):

  1. the hotline's caseworker uploads two files in chunks (one with a hostile
     name), sends a referral with them; the uploads are gone afterwards, and
     its sent view lists them;
  2. the police's case view lists them (name, type, size, SHA-256) and never
     the manifests' keys; each download is byte-identical, served as
     application/octet-stream with nosniff and a safe Content-Disposition,
     and written to the disclosure ledger;
  3. a non-recipient (the sender itself) gets NOT_FOUND, a viewer FORBIDDEN;
  4. a file whose sha256 is in the hotline's hash bank, and an image from a
     member the media policy does not permit, are refused (422, with the
     reason), nothing sent;
  5. an upload chunk out of place is a 409 naming where to resume, a file
     beyond 256 MiB a 413, a removed upload a 404;
  6. a chunk altered at the broker: the download is a 502, nothing served.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402

HOTLINE, POLICE = "vn.hotline111", "vn.police.a05"
HOSTILE = '../../x"<img src=x onerror=alert(1)>.html'
HOSTILE_SAFE = '_._.._x"<img src=x onerror=alert(1)>.html'


def referral():
    return {"referral": {
        "caseId": "HL111-2026-000042", "summary": "Bằng chứng kèm theo (evidence attached)",
        "harmCategories": ["HARM_CATEGORY_SEXTORTION"],
        "legalBasis": {"kind": "LEGAL_BASIS_KIND_VITAL_INTEREST"}}}


def upload(client, name, data, chunk=512 * 1024):
    status, js, _ = client.call("POST", "/uploads", {"name": name, "size": len(data)})
    assert status == 200, (status, js)
    uid = js["id"]
    for off in range(0, max(len(data), 1), chunk):
        part = data[off:off + chunk]
        status, js, _ = client.call("POST", f"/uploads/{uid}",
                                    {"offset": off, "data": base64.b64encode(part).decode()})
        assert status == 200, (status, js)
    assert js["complete"] if data else True
    return uid


def raw_get(client, path):
    req = urllib.request.Request(client.base + "api/v1" + path)
    req.add_header("Cookie", client.cookie)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Attachments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = consolenet.Network()
        cls.hot = consolenet.Client(cls.net.urls[HOTLINE])
        cls.pol = consolenet.Client(cls.net.urls[POLICE])
        cls.view = consolenet.Client(cls.net.urls[POLICE])
        assert cls.hot.login("lan")[0] == 200
        assert cls.pol.login("minh")[0] == 200
        assert cls.view.login("xem")[0] == 200
        # 1.5 MiB: two secretstream chunks, three upload chunks
        cls.evidence = os.urandom(1536 * 1024 + 7)
        cls.chat = "Tin nhắn đe dọa: <script>alert(1)</script>\n".encode()

    @classmethod
    def tearDownClass(cls):
        cls.net.close()

    def send(self, uploads):
        return self.hot.call("POST", "/messages", {
            "kind": "referral", "to": [POLICE], "urgency": "emergency", "payload": referral(),
            "attachments": uploads})

    def test_1_send_view_download(self):
        u1 = upload(self.hot, "evidence.bin", self.evidence)
        u2 = upload(self.hot, HOSTILE, self.chat)
        status, js, _ = self.send([u1, u2])
        self.assertEqual(status, 200, js)
        mid = js["id"]
        # the uploads are deleted once sent
        status, js, _ = self.hot.call("POST", f"/uploads/{u1}", {"offset": 0, "data": ""})
        self.assertEqual(status, 404, js)
        area = os.path.join(self.net.home(HOTLINE), "console-uploads")
        self.assertEqual([n for n in os.listdir(area) if not n.startswith("dl-")], [])

        # the sender's view of its sent message lists them too (kept at sending)
        status, st, _ = self.hot.call("GET", f"/messages/{mid}/status")
        self.assertEqual(status, 200, st)
        self.assertEqual([a["file_name"] for a in st["attachments"]],
                         ["evidence.bin", HOSTILE_SAFE])

        status, msg, _ = self.pol.call("GET", f"/messages/{mid}")
        self.assertEqual(status, 200, msg)
        self.assertNotIn("attachments", msg["payload"])  # the manifests hold the keys
        self.assertNotIn("key", json.dumps(msg["attachments"]))
        rows = msg["attachments"]
        self.assertEqual([r["file_name"] for r in rows], ["evidence.bin", HOSTILE_SAFE])
        self.assertEqual(rows[0]["size"], len(self.evidence))
        self.assertEqual(rows[0]["media_type"], "application/octet-stream")
        self.assertEqual(rows[1]["media_type"], "text/html")
        self.assertEqual(rows[0]["sha256"], hashlib.sha256(self.evidence).hexdigest())

        for i, want in enumerate([self.evidence, self.chat]):
            status, hdrs, body = raw_get(self.pol, f"/messages/{mid}/attachments/{i}")
            self.assertEqual(status, 200, body[:200])
            self.assertEqual(body, want)
            self.assertEqual(hdrs["Content-Type"], "application/octet-stream")
            self.assertEqual(hdrs["X-Content-Type-Options"], "nosniff")
            disp = hdrs["Content-Disposition"]
            self.assertTrue(disp.startswith("attachment; filename=\""), disp)
        self.assertEqual(
            disp, 'attachment; filename="_._.._x\\"<img src=x onerror=alert(1)>.html"; '
            "filename*=UTF-8''_._.._x%22%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.html")
        self.assertNotIn("/", disp)

        status, led, _ = self.pol.call("GET", "/ledger")
        self.assertEqual(status, 200, led)
        acts = [(r["user"], r["action"], r.get("message_id")) for r in led["rows"]]
        for i in range(2):
            self.assertIn(("minh", f"download:attachments[{i}]", mid), acts, acts[:6])

        # no such attachment; the sender is no recipient; a viewer reads no content
        status, _, body = raw_get(self.pol, f"/messages/{mid}/attachments/2")
        self.assertEqual(status, 404, body)
        status, _, body = raw_get(self.hot, f"/messages/{mid}/attachments/0")
        self.assertEqual(status, 404, body)
        self.assertEqual(json.loads(body)["error"], "NOT_FOUND")
        status, _, body = raw_get(self.view, f"/messages/{mid}/attachments/0")
        self.assertEqual(status, 403, body)
        type(self).mid = mid

    def test_2_refused_by_bank_and_policy(self):
        bad = b"known abusive file stand-in " + os.urandom(16)
        csv = os.path.join(self.net.root, "bank.csv")
        with open(csv, "w") as f:
            f.write("signal_type,signal_value,category\n")
            f.write(f"sha256,{hashlib.sha256(bad).hexdigest()},baseline\n")
        subprocess.run([consolenet.CASENET, "hashes", "import", "--home",
                        self.net.home(HOTLINE), "--csv", csv, "--source", "test-list",
                        "--category", "baseline"], check=True, capture_output=True)
        before = self.pol.call("GET", "/inbox")[1]["total"]
        status, js, _ = self.send([upload(self.hot, "chat.txt", bad)])
        self.assertEqual(status, 422, js)
        self.assertEqual((js["reason"], js["field"], js["file"]),
                         ("hash_bank", "attachments", "chat.txt"))
        self.assertIn("hash bank", js["message"])
        status, js, _ = self.send([upload(self.hot, "photo.png", b"\x89PNG not really")])
        self.assertEqual(status, 422, js)
        self.assertEqual(js["reason"], "media_policy")
        self.assertEqual(self.pol.call("GET", "/inbox")[1]["total"], before)

    def test_3_upload_errors(self):
        status, js, _ = self.hot.call("POST", "/uploads", {"name": "big.bin",
                                                          "size": 256 * 1024 * 1024 + 1})
        self.assertEqual(status, 413, js)
        uid = upload(self.hot, "part.bin", b"")
        status, js, _ = self.hot.call("POST", "/uploads", {"name": "p.bin", "size": 10})
        uid = js["id"]
        status, js, _ = self.hot.call("POST", f"/uploads/{uid}",
                                      {"offset": 5, "data": base64.b64encode(b"abc").decode()})
        self.assertEqual((status, js["received"]), (409, 0), js)
        status, js, _ = self.hot.call("POST", f"/uploads/{uid}", {"offset": 0, "data": "!!"})
        self.assertEqual((status, js["field"]), (400, "data"), js)
        status, js, _ = self.send([uid])  # not complete
        self.assertEqual(status, 409, js)
        self.assertEqual(self.hot.call("DELETE", f"/uploads/{uid}")[0], 200)
        self.assertEqual(self.hot.call("DELETE", f"/uploads/{uid}")[0], 404)
        # without the CSRF token: refused like every state change
        status, js, _ = self.hot.call("POST", "/uploads", {"name": "a", "size": 1}, csrf=False)
        self.assertEqual(status, 403, js)
        # another user's upload is not found (the police console's minh)
        status, js, _ = self.pol.call("POST", f"/uploads/{uid}", {"offset": 0, "data": ""})
        self.assertEqual(status, 404, js)

    def test_4_altered_at_broker(self):
        data = os.urandom(4096)
        status, js, _ = self.send([upload(self.hot, "report.pdf", data)])
        self.assertEqual(status, 200, js)
        mid = js["id"]
        status, msg, _ = self.pol.call("GET", f"/messages/{mid}")
        self.assertEqual(status, 200, msg)
        blobs = os.path.join(self.net.root, "data", "blobs")
        # the newest blob directory is this message's
        newest = max((os.path.join(blobs, b) for b in os.listdir(blobs)), key=os.path.getmtime)
        chunk = os.path.join(newest, "0")
        with open(chunk, "r+b") as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 1]))
        status, hdrs, body = raw_get(self.pol, f"/messages/{mid}/attachments/0")
        self.assertEqual(status, 502, body)
        js = json.loads(body)
        self.assertEqual(js["field"], "attachment")
        self.assertIn("does not match the signed manifest", js["message"])
        self.assertEqual(hdrs["Content-Type"].split(";")[0], "application/json")


if __name__ == "__main__":
    unittest.main(verbosity=2)
