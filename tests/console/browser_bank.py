#!/usr/bin/env python3
"""browser_bank.py - the hash-bank page ("Ngân hàng mã băm") in a real browser
(Debian's chromium through python3-selenium, headless) against a real
casenetd and the hotline's console: the nav entry shows for a member that
holds a bank; the page renders the counts by category and by source (an
imported list); a false-positive note written to be hostile, sent by the
police with the CLI, arrives in the open page without a reload (the console
imports the share and pushes an event) and is shown as text: nothing of it
runs. Screenshot: $CASENET_BINARY_DIR/console-screenshots/bank.png.
"""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import browser_test as bt  # noqa: E402  (exits 77 without chromium)
import consolenet  # noqa: E402

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

HOTLINE, POLICE = "vn.hotline111", "vn.police.a05"
MD5 = "00112233445566778899aabbccddeeff"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & "logo"'


class BankBrowser(unittest.TestCase):
    wait = bt.ConsoleBrowser.wait
    shot = bt.ConsoleBrowser.shot
    login = bt.ConsoleBrowser.login

    @classmethod
    def setUpClass(cls):
        os.makedirs(bt.SHOTS, exist_ok=True)
        cls.net = consolenet.Network()
        try:
            cls.drv = bt.browser("bank")
        except Exception:
            cls.net.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.drv.quit()
        shutil.rmtree(cls.drv.casenet_profile, ignore_errors=True)
        cls.net.close()

    def cli(self, *args, stdin=None):
        return subprocess.run([consolenet.CASENET, *args], input=stdin, capture_output=True,
                              text=True, check=True)

    def test_counts_and_hostile_note(self):
        d, url = self.drv, self.net.urls[HOTLINE]
        lst = os.path.join(self.net.root, "ncmec.csv")
        with open(lst, "w") as f:
            f.write(f"md5,{MD5},baseline\nsha1,00112233445566778899aabbccddeeff00112233\n")
        self.cli("hashes", "import", "--home", self.net.home(HOTLINE), "--csv", lst, "--source",
                 "ncmec-2026-12", "--category", "nationally-illegal")
        self.login(d, url, "lan")
        nav = self.wait(d, EC.presence_of_element_located((By.ID, "nav-bank")))
        self.assertEqual(nav.text, "Ngân hàng mã băm")
        d.get(url + "#/bank")
        row = self.wait(d, EC.presence_of_element_located(
            (By.CSS_SELECTOR, '#bank-sources tr[data-source="list:ncmec-2026-12"]')))
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        self.assertEqual(cells[1:6], ["2", "1", "1", "0", "0"])  # live, by category, retracted
        self.assertEqual(d.find_element(
            By.CSS_SELECTOR, '#bank-totals tr[data-category="live"] td').text, "2")
        self.assertTrue(d.find_element(By.ID, "bank-feedback-received-empty"))
        # a hostile note arrives live and stays text
        bt.watch_hazards(d)
        d.execute_script("document.getElementById('main').dataset.before = '1'")
        self.cli("hashes", "feedback", "--home", self.net.home(POLICE), "--to", HOTLINE,
                 "--false-positive", f"md5:{MD5}", "--note", HOSTILE)
        note = self.wait(d, EC.presence_of_element_located(
            (By.CSS_SELECTOR, "#bank-feedback-received td.note")), timeout=60)
        self.assertEqual(d.execute_script("return document.getElementById('main').dataset.before"),
                         "1")  # the same page, re-rendered: no reload
        self.assertEqual(note.text, HOSTILE)
        self.assertEqual(d.execute_script("return window.__hazards"), [])
        self.assertIsNone(d.execute_script("return window.__pwned || null"))
        self.assertFalse(d.find_elements(By.CSS_SELECTOR, "#main img, #main script"))
        self.shot(d, "bank")


if __name__ == "__main__":
    unittest.main(verbosity=2)
