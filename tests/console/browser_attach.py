#!/usr/bin/env python3
"""browser_attach.py - attachments in the console's pages, in a real
headless chromium (as browser_test.py) against the hotline's and the
police's consoles and a real casenetd:

  - the hotline attaches two files in the referral form (one named like
    HTML: x"<img src=x onerror=...>.html) and sends it;
  - the police's case view lists both (name, type, size) with the hostile
    name shown as text, nothing of it run; a download arrives identical;
  - the sent view of the hotline lists what it attached;
  - a file whose hash is in the hotline's hash bank is refused in
    Vietnamese, naming what to do, at the file field.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402
import browser_test  # noqa: E402  (skips with 77 without chromium/selenium)
from browser_test import browser, watch_hazards, SHOTS  # noqa: E402
from selenium.common.exceptions import (NoSuchElementException,  # noqa: E402
                                        StaleElementReferenceException)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

HOSTILE = 'x"<img src=x onerror=alert(1)>.html'


class AttachBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.files = tempfile.mkdtemp(prefix="casenet-attach-files.")
        cls.downloads = tempfile.mkdtemp(prefix="casenet-attach-dl.")
        cls.net = consolenet.Network()
        cls.hl_url = cls.net.urls["vn.hotline111"]
        cls.po_url = cls.net.urls["vn.police.a05"]
        cls.hl = cls.po = None
        try:
            cls.hl = browser("hotline-attach")
            cls.po = browser("police-attach")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for d in (cls.hl, cls.po):
            if d:
                d.quit()
                shutil.rmtree(d.casenet_profile, ignore_errors=True)
        cls.net.close()
        shutil.rmtree(cls.files, ignore_errors=True)
        shutil.rmtree(cls.downloads, ignore_errors=True)

    def wait(self, drv, cond, timeout=30):
        return WebDriverWait(drv, timeout, ignored_exceptions=(
            StaleElementReferenceException, NoSuchElementException)).until(cond)

    def login(self, drv, url, user):
        drv.get(url)
        self.wait(drv, EC.presence_of_element_located((By.ID, "username")))
        drv.find_element(By.ID, "username").send_keys(user)
        drv.find_element(By.ID, "password").send_keys(consolenet.PASSWORD)
        drv.find_element(By.ID, "login-submit").click()
        self.wait(drv, EC.presence_of_element_located((By.ID, "nav-inbox")))

    def fill(self, paths, summary):
        hl = self.hl
        hl.get(self.hl_url + "#/new")
        self.wait(hl, EC.presence_of_element_located((By.ID, "to-vn.police.a05")))
        hl.find_element(By.ID, "u-emergency").click()
        hl.find_element(By.ID, "h-SEXTORTION").click()
        hl.find_element(By.ID, "to-vn.police.a05").click()
        hl.find_element(By.ID, "f-summary").send_keys(summary)
        hl.find_element(By.ID, "f-attachments").send_keys("\n".join(paths))
        self.wait(hl, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#attach-list li")) == len(paths))
        hl.find_element(By.ID, "send").click()

    def test_attach_flow(self):
        hl, po = self.hl, self.po
        evidence = os.urandom(700 * 1024)  # two upload chunks
        ev_path = os.path.join(self.files, "tin-nhan.txt")
        with open(ev_path, "wb") as f:
            f.write(evidence)
        hostile_path = os.path.join(self.files, HOSTILE)
        with open(hostile_path, "w") as f:
            f.write("<script>window.__pwned=1</script>")

        self.login(hl, self.hl_url, "lan")
        self.login(po, self.po_url, "minh")
        watch_hazards(po)
        self.fill([ev_path, hostile_path], "Bằng chứng: bản xuất cuộc trò chuyện.")
        self.wait(hl, EC.visibility_of_element_located((By.ID, "sent-receipt")))

        # the police opens it: the attachment rows, the hostile name as text
        po.get(self.po_url + "#/inbox")
        rid = self.wait(po, lambda d: d.find_element(By.CSS_SELECTOR, "#inbox-table tr.row").get_attribute("data-id"))
        po.get(self.po_url + "#/message/" + rid)
        self.wait(po, EC.presence_of_element_located((By.ID, "attach-table")))
        names = [e.text for e in po.find_elements(By.CSS_SELECTOR, "#attach-table .att-name")]
        self.assertEqual(names, ["tin-nhan.txt", HOSTILE])
        self.assertEqual(po.find_elements(By.CSS_SELECTOR, "#attachments img"), [])
        types = [e.text for e in po.find_elements(By.CSS_SELECTOR, "#attach-table .att-type")]
        self.assertEqual(types, ["text/plain", "text/html"])
        self.assertIn("KiB", po.find_element(By.CSS_SELECTOR, "#attach-table .att-size").text)
        self.assertEqual(po.execute_script("return window.__hazards"), [])
        self.assertIsNone(po.execute_script("return window.__pwned"))
        browser_test.ConsoleBrowser.shot(self, po, "20-attachments")

        # download: decrypted and checked by the console, saved by the browser
        po.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": self.downloads})
        po.find_elements(By.CSS_SELECTOR, "#attach-table .att-download")[0].click()
        self.wait(po, lambda d: "Đã kiểm tra" in d.find_element(By.ID, "attach-status").text)
        got = os.path.join(self.downloads, "tin-nhan.txt")
        self.wait(po, lambda d: os.path.exists(got) and os.path.getsize(got) == len(evidence))
        with open(got, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(evidence).digest())

        # the hotline's sent view lists what it attached
        hl.get(self.hl_url + "#/sent/" + rid)
        self.wait(hl, EC.presence_of_element_located((By.ID, "attach-table")))
        self.assertEqual([e.text for e in hl.find_elements(By.CSS_SELECTOR, "#attach-table .att-name")],
                         ["tin-nhan.txt", HOSTILE])

        # a file in the hash bank: refused in Vietnamese at the file field
        bad_path = os.path.join(self.files, "chat.txt")
        with open(bad_path, "wb") as f:
            f.write(b"stand-in for a known file " + os.urandom(8))
        with open(bad_path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        csv = os.path.join(self.files, "bank.csv")
        with open(csv, "w") as f:
            f.write(f"signal_type,signal_value,category\nsha256,{digest},baseline\n")
        subprocess.run([consolenet.CASENET, "hashes", "import", "--home",
                        self.net.home("vn.hotline111"), "--csv", csv, "--source", "test-list",
                        "--category", "baseline"], check=True, capture_output=True)
        self.fill([bad_path], "Tệp trùng ngân hàng mã băm.")
        err = self.wait(hl, lambda d: d.find_element(By.ID, "e-attachments").text)
        self.assertIn("ngân hàng mã băm", err)
        self.assertIn("chat.txt", err)
        self.assertEqual(hl.find_element(By.ID, "f-attachments").get_attribute("aria-invalid"), "true")
        browser_test.ConsoleBrowser.shot(self, hl, "21-attachment-refused")


if __name__ == "__main__":
    unittest.main(verbosity=2)
