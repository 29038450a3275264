#!/usr/bin/env python3
"""browser_coord.py - the coordinator's pages in a real browser (Debian's
chromium through python3-selenium, headless) against a real casenetd and the
coordinator's console: the overdue board updates live, without a reload,
when an emergency referral's deadline passes (the policy gives it 5 s to be
acknowledged); the network page draws its charts with tables; the monthly
report states its tree head; the audit page verifies and proves an event.
Screenshots go to $CASENET_BINARY_DIR/console-screenshots/coord-*.png.
"""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import browser_test as bt  # noqa: E402  (exits 77 without chromium)
import consolenet  # noqa: E402
import test_coord  # noqa: E402

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402


class CoordinatorBrowser(unittest.TestCase):
    wait = bt.ConsoleBrowser.wait
    shot = bt.ConsoleBrowser.shot
    login = bt.ConsoleBrowser.login

    @classmethod
    def setUpClass(cls):
        os.makedirs(bt.SHOTS, exist_ok=True)
        cls.net = consolenet.Network(coordinator=True)
        try:
            cls.drv = bt.browser("coord")
        except Exception:
            cls.net.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.drv.quit()
        shutil.rmtree(cls.drv.casenet_profile, ignore_errors=True)
        cls.net.close()

    def test_board_network_report_audit(self):
        d, url = self.drv, self.net.urls[test_coord.COORD]
        self.login(d, url, "hoa")
        self.wait(d, EC.presence_of_element_located((By.ID, "nav-overdue")))
        d.get(url + "#/overdue")
        self.wait(d, EC.presence_of_element_located((By.ID, "overdue-count")))
        # an emergency referral nobody acknowledges: overdue after 5 s
        p = subprocess.run([consolenet.CASENET, "send", "--home", self.net.home(test_coord.HOTLINE),
                            "--to", test_coord.POLICE, "--kind", "referral"],
                           input=test_coord.referral("URGENCY_EMERGENCY"), capture_output=True,
                           text=True, check=True)
        mid = p.stdout.split()[0]
        marker = d.execute_script("document.getElementById('main').dataset.before = '1'; return 1;")
        self.assertEqual(marker, 1)
        row = self.wait(d, EC.presence_of_element_located(
            (By.CSS_SELECTOR, f'tr[data-id="{mid}"]')), timeout=60)
        # live: the same page (no reload) re-rendered its board
        self.assertEqual(d.execute_script("return document.getElementById('main').dataset.before"), "1")
        self.assertIn(test_coord.POLICE, d.find_element(
            By.CSS_SELECTOR, f'section[data-recipient="{test_coord.POLICE}"]').text)
        self.assertTrue(row.text)
        self.shot(d, "coord-overdue")
        # network: charts as SVG and the same numbers as tables
        d.get(url + "#/network")
        self.wait(d, EC.presence_of_element_located((By.ID, "fig-flows")))
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, "#fig-flows svg.chart rect"))
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, "#fig-flows-table tbody tr"))
        self.shot(d, "coord-network")
        # the monthly report states the head it was computed from
        d.get(url + "#/report")
        rep = self.wait(d, EC.presence_of_element_located((By.ID, "report")))
        self.assertRegex(rep.text, r"[0-9a-f]{64}")
        self.shot(d, "coord-report")
        # audit: verify now, then prove the first event shown
        d.get(url + "#/audit")
        self.wait(d, EC.element_to_be_clickable((By.ID, "verify-now"))).click()
        self.wait(d, EC.presence_of_element_located((By.ID, "verify-result")), timeout=60)
        d.find_element(By.CSS_SELECTOR, "#audit-table tbody tr button").click()
        self.wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, "details.proof")))
        self.shot(d, "coord-audit")


if __name__ == "__main__":
    unittest.main(verbosity=2)
