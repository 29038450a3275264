#!/usr/bin/env python3
"""browser_test.py - the console in a real browser (Debian's chromium and
chromium-driver through python3-selenium, headless) against two consoles
(hotline and police) and a real casenetd on loopback:

  - a wrong password is refused, then rate limited;
  - the hotline logs in and sends an emergency referral with Vietnamese
    diacritics through the form (double click: one message);
  - the police console shows it live, without a reload;
  - the forms offer only the recipients the role matrix allows;
  - the police opens it (readable case, verified sender) and accepts it
    with a note, sealed to the hotline first and named by the receipt;
  - the hotline's sent view shows "accepted" and the verified receipt,
    whose note opens readable; a status update on its own arrives too;
  - a hostile referral's <script>, onerror and terminal escapes do not run
    and are shown as text;
  - a POST without the CSRF token is refused (from the page's own origin).

Screenshots of the main pages go to $CASENET_BINARY_DIR/console-screenshots.
"""
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import consolenet  # noqa: E402

try:
    from selenium import webdriver  # noqa: E402
except ImportError:
    webdriver = None
if webdriver is None or not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
    print("SKIP: needs chromium, chromium-driver and python3-selenium "
          "(deploy/setup-debian.sh installs them)")
    sys.exit(77)

from selenium.common.exceptions import (NoSuchElementException,  # noqa: E402
                                        StaleElementReferenceException)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHOTS = os.path.join(consolenet.BIN, "console-screenshots")
SUMMARY = "Trẻ 14 tuổi bị đe dọa phát tán ảnh nhạy cảm; đang an toàn ở nhà cùng mẹ."
SUMMARY_CASE_PREFIX = "HL-"  # the case number the form proposes
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\x1b[31mđỏ\x1b[0m'


# the browser shows local time: Vietnam's, as the staff see it
os.environ["TZ"] = "Asia/Ho_Chi_Minh"


def browser(tag):
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    profile = tempfile.mkdtemp(prefix=f"casenet-chromium-{tag}.")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              "--window-size=1366,900", "--lang=vi", f"--user-data-dir={profile}"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                           options=opts)
    drv.casenet_profile = profile
    return drv


# Records every node that could run script the moment it enters the page:
# an element with an on* attribute (the page itself only ever uses
# addEventListener), an inline script, a javascript: link or frame. A
# payload can run only through such a node, so "no hazard recorded once the
# page has rendered the item" is a deterministic check, unlike waiting a
# while for a side effect that might come later (an onerror fires when the
# image fails to load).
HAZARD_WATCH = """
if (!window.__hazards) {
  window.__hazards = [];
  const bad = (e) => e.nodeType === 1 && (
    [...e.attributes].some((a) => /^on/i.test(a.name) ||
      (/^(href|src|action|formaction)$/i.test(a.name) && /^\\s*javascript:/i.test(a.value))) ||
    (e.tagName === "SCRIPT" && !e.hasAttribute("src")) ||
    ["IFRAME", "OBJECT", "EMBED"].includes(e.tagName));
  const note = (e) => { if (bad(e)) window.__hazards.push(e.outerHTML.slice(0, 200)); };
  new MutationObserver((ms) => ms.forEach((m) => {
    if (m.type === "attributes") note(m.target);
    m.addedNodes.forEach((n) => {
      if (n.nodeType !== 1) return;
      note(n);
      n.querySelectorAll("*").forEach(note);
    });
  })).observe(document, { subtree: true, childList: true, attributes: true });
}
"""


def watch_hazards(drv):
    """Installs HAZARD_WATCH in this page and every page drv loads next."""
    drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HAZARD_WATCH})
    drv.execute_script(HAZARD_WATCH)


class ConsoleBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.net = consolenet.Network()
        cls.hl_url = cls.net.urls["vn.hotline111"]
        cls.po_url = cls.net.urls["vn.police.a05"]
        try:
            cls.hl = browser("hotline")
            cls.po = browser("police")
        except Exception:
            if getattr(cls, "hl", None):
                cls.hl.quit()
            cls.net.close()  # no broker or console left behind
            raise

    @classmethod
    def tearDownClass(cls):
        for d in (cls.hl, cls.po):
            d.quit()
            shutil.rmtree(d.casenet_profile, ignore_errors=True)
        cls.net.close()

    def wait(self, drv, cond, timeout=30):
        # pages re-render on live events: an element may go stale under us
        return WebDriverWait(drv, timeout, ignored_exceptions=(
            StaleElementReferenceException, NoSuchElementException)).until(cond)

    def shot(self, drv, name):
        drv.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def login(self, drv, url, user, password=consolenet.PASSWORD):
        drv.get(url)
        self.wait(drv, EC.presence_of_element_located((By.ID, "username")))
        drv.find_element(By.ID, "username").clear()
        drv.find_element(By.ID, "username").send_keys(user)
        drv.find_element(By.ID, "password").send_keys(password)
        drv.find_element(By.ID, "login-submit").click()

    def send_referral(self, summary, double=False):
        hl = self.hl
        hl.get(self.hl_url + "#/new")
        self.wait(hl, EC.presence_of_element_located((By.ID, "referral-form")))
        self.wait(hl, EC.presence_of_element_located((By.ID, "to-vn.police.a05")))
        hl.find_element(By.ID, "u-emergency").click()
        hl.find_element(By.ID, "h-SEXTORTION").click()
        hl.find_element(By.ID, "to-vn.police.a05").click()
        hl.find_element(By.ID, "f-summary").send_keys(summary)
        if double:
            # the draft survives a reload, with its draft id
            draft = hl.find_element(By.ID, "referral-form").get_attribute("data-draft")
            hl.refresh()
            self.wait(hl, lambda d: d.find_element(By.ID, "f-summary").get_attribute("value") == summary)
            self.assertTrue(hl.find_element(By.ID, "h-SEXTORTION").is_selected())
            self.assertTrue(hl.find_element(By.ID, "to-vn.police.a05").is_selected())
            self.assertEqual(hl.find_element(By.ID, "referral-form").get_attribute("data-draft"), draft)
            self.shot(hl, "03-new-referral")
            # two submits of the same form: the same draft id, one message
            hl.execute_script("const f = document.getElementById('referral-form');"
                              "f.requestSubmit(); f.requestSubmit();")
        else:
            hl.find_element(By.ID, "send").click()
        done = self.wait(hl, EC.visibility_of_element_located((By.ID, "sent-receipt")))
        return done.text

    def test_flow(self):
        hl, po = self.hl, self.po

        # wrong passwords: refused, then rate limited (per name)
        self.login(hl, self.hl_url, "lan", "wrong password 1")
        err = self.wait(hl, EC.visibility_of_element_located((By.ID, "login-error")))
        self.wait(hl, lambda d: "Sai tên đăng nhập" in err.text)
        self.shot(hl, "01-login-refused")
        c = consolenet.Client(self.hl_url)
        codes = [c.login("lan", f"wrong {i}")[0] for i in range(6)]
        self.assertIn(429, codes, codes)
        self.assertEqual(codes[0], 401)
        self.login(hl, self.hl_url, "lan")
        self.wait(hl, lambda d: "Đăng nhập sai quá nhiều lần" in d.find_element(By.ID, "login-error").text)
        # the lock is per name: the police is not locked out
        self.login(po, self.po_url, "minh")
        self.wait(po, EC.presence_of_element_located((By.ID, "nav-inbox")))
        self.wait(po, lambda d: d.find_elements(By.ID, "inbox-empty") or d.find_elements(By.ID, "inbox-table"))
        self.shot(po, "02-inbox-empty")

        # the hotline's user is locked; a second account would do, but the
        # test restarts nothing: log in through a fresh console user instead
        consolenet.run(consolenet.CASENET, "console", "user", "add", "hoa", "--role", "caseworker",
                       "--home", self.net.home("vn.hotline111"), stdin=consolenet.PASSWORD + "\n")
        self.login(hl, self.hl_url, "hoa")
        self.wait(hl, EC.presence_of_element_located((By.ID, "nav-inbox")))
        self.assertIn("Hộp thư đến", hl.find_element(By.ID, "nav-inbox").text)

        # an empty form: every missing field named in Vietnamese, nothing sent
        hl.get(self.hl_url + "#/new")
        send = self.wait(hl, EC.presence_of_element_located((By.ID, "send")))
        send.click()
        box = self.wait(hl, lambda d: d.find_element(By.ID, "form-status").text)
        self.assertIn("Chọn ít nhất một mục: Loại hành vi xâm hại", box)
        self.assertIn("Hãy điền: Tóm tắt vụ việc", box)
        self.assertEqual(hl.find_element(By.ID, "f-summary").get_attribute("aria-invalid"), "true")

        # the role matrix decides the recipients offered: referrals to the
        # responders, never to the hotline itself or the broker
        offered = {e.get_attribute("value") for e in hl.find_elements(By.CSS_SELECTOR, "input[name=to]")}
        self.assertIn("vn.police.a05", offered)
        self.assertIn("vn.molisa.hanoi", offered)
        self.assertNotIn("vn.hotline111", offered)
        self.assertNotIn("vn.broker", offered)
        # every required field is marked
        for fid in ("f-caseId", "f-summary", "f-legalKind"):
            self.assertEqual(hl.find_element(By.ID, fid).get_attribute("aria-required"), "true", fid)

        # the takedown form names its missing URLs too; the hotline is no
        # takedown requester, so it is offered nobody to send one to
        hl.get(self.hl_url + "#/takedown")
        self.wait(hl, EC.presence_of_element_located((By.ID, "takedown-form")))
        self.assertEqual(hl.find_elements(By.CSS_SELECTOR, "input[name=to]"), [])
        self.assertTrue(hl.find_element(By.ID, "no-recipients").is_displayed())
        hl.find_element(By.ID, "send").click()
        box = self.wait(hl, lambda d: d.find_element(By.ID, "form-status").text)
        self.assertIn("Hãy điền: Đường dẫn cần gỡ bỏ", box)

        # send with diacritics through the form, double submit
        receipt = self.send_referral(SUMMARY, double=True)
        self.assertIn("đã xác minh", receipt)
        self.shot(hl, "04-sent-receipt")

        # the police sees it live, without a reload
        text = self.wait(po, lambda d: d.find_element(By.CSS_SELECTOR, "#inbox-table tr.row").text, 30)
        self.assertIn("khẩn cấp", text)
        self.assertIn("hạn xác nhận đã nhận: còn", text)
        self.assertEqual(len(po.find_elements(By.CSS_SELECTOR, "#inbox-table tr.row")), 1,
                         "a double submit sent two messages")
        self.shot(po, "05-inbox-live")
        rid = self.wait(po, lambda d: d.find_element(By.CSS_SELECTOR, "#inbox-table tr.row").get_attribute("data-id"))
        po.get(self.po_url + "#/message/" + rid)
        self.wait(po, EC.presence_of_element_located((By.ID, "payload")))
        page = po.find_element(By.ID, "main").text
        self.assertIn(SUMMARY, page)
        self.assertIn("tống tiền bằng hình ảnh", page)
        self.assertIn("Tổng đài điện thoại quốc gia", page)
        self.assertIn("đã xác minh", page)
        self.assertIn("(GMT+7)", page)
        self.assertIn("hạn tiếp nhận xử lý", page)
        self.shot(po, "06-message")
        # the outcome is one of five codes, labelled in Vietnamese
        outcomes = [o.text for o in po.find_elements(By.CSS_SELECTOR, "#outcome option")]
        self.assertEqual(len(outcomes), 5, outcomes)
        self.assertIn("đã giải quyết xong", outcomes)
        # accept with a note: the words are sealed to the hotline first
        po.find_element(By.ID, "note").send_keys("Đã tiếp nhận, đang xác minh tài khoản.")
        po.find_element(By.ID, "act-accepted").click()
        self.wait(po, lambda d: "Đã gửi xác nhận" in d.find_element(By.ID, "action-status").text
                  and "Đã gửi ghi chú" in d.find_element(By.ID, "action-status").text)
        # the re-rendered page shows the police's own row accepted
        self.wait(po, lambda d: any("đã tiếp nhận xử lý" in h.text
                                    for h in d.find_elements(By.CSS_SELECTOR, "#main section h3")))
        self.wait(po, lambda d: d.find_element(By.ID, "note").get_attribute("value") == "")
        # a status update on its own, in reply: case id and status filled
        po.find_element(By.ID, "note").send_keys("Đã khóa tài khoản của đối tượng.")
        po.find_element(By.ID, "note-status").send_keys("đã áp dụng biện pháp")
        po.find_element(By.ID, "send-note").click()
        self.wait(po, lambda d: d.find_element(By.ID, "action-status").text.startswith("Đã gửi ghi chú"))

        # the hotline's sent view shows accepted, with the verified receipt
        hl.get(self.hl_url + "#/sent")
        self.wait(hl, lambda d: "đã tiếp nhận xử lý" in d.find_element(
            By.CSS_SELECTOR, "#sent-table [data-recipient='vn.police.a05']").text)
        self.shot(hl, "07-sent")
        hl.find_element(By.CSS_SELECTOR, "#sent-table tr.row").click()
        detail = self.wait(hl, EC.presence_of_element_located((By.ID, "status-detail")))
        self.wait(hl, lambda d: "xác nhận đã xác minh" in detail.text)
        self.shot(hl, "08-sent-detail")

        # the receipt names its note, which opens readable at the hotline
        hl.find_element(By.CSS_SELECTOR, "#status-detail a.note-link").click()
        self.wait(hl, lambda d: "đang xác minh tài khoản" in d.find_element(By.ID, "payload").text)
        self.assertIn("đã tiếp nhận", hl.find_element(By.ID, "payload").text)
        self.assertIn(SUMMARY_CASE_PREFIX, hl.find_element(By.ID, "payload").text)
        # and the status update on its own
        hl.get(self.hl_url + "#/inbox?kind=status")
        self.wait(hl, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#inbox-table tr.row")) == 2)
        rid = hl.find_element(By.CSS_SELECTOR, "#inbox-table tr.row").get_attribute("data-id")
        hl.get(self.hl_url + "#/message/" + rid)
        self.wait(hl, lambda d: "Đã khóa tài khoản của đối tượng" in d.find_element(By.ID, "payload").text)
        self.assertIn("đã áp dụng biện pháp", hl.find_element(By.ID, "payload").text)

        # a standard referral nobody acknowledges: the broker's escalation
        # notice reaches the hotline's notices page live, readable
        api = consolenet.Client(self.hl_url)
        self.assertEqual(api.login("hoa")[0], 200)
        st, sent, _ = api.call("POST", "/messages", {
            "kind": "referral", "to": ["vn.police.a05"], "urgency": "standard",
            "payload": {"referral": {"caseId": "HL-TEST-0002", "summary": "chưa xác nhận",
                                     "harmCategories": ["HARM_CATEGORY_CYBERBULLYING"],
                                     "legalBasis": {"kind": "LEGAL_BASIS_KIND_STATUTORY_DUTY"}}}})
        self.assertEqual(st, 200, sent)
        hl.get(self.hl_url + "#/notices")
        rid = self.wait(hl, lambda d: d.find_element(By.CSS_SELECTOR, "#inbox-table tr.row").get_attribute("data-id"), 40)
        hl.get(self.hl_url + "#/message/" + rid)
        notice = self.wait(hl, lambda d: d.find_element(By.ID, "payload").text)
        self.assertIn("quá hạn xác nhận đã nhận", notice)
        self.assertIn("Cục An ninh mạng (A05), Bộ Công an (vn.police.a05)", notice)
        self.assertIn(sent["id"], notice)
        self.shot(hl, "11-escalation-notice")
        hl.find_element(By.ID, "notice-open").click()
        self.wait(hl, EC.presence_of_element_located((By.ID, "status-detail")))

        # hostile content stays text
        # every text field of the referral hostile, sent through the API
        H = HOSTILE
        st, hostile, _ = api.call("POST", "/messages", {
            "kind": "referral", "to": ["vn.police.a05"], "urgency": "emergency",
            "payload": {"referral": {
                "caseId": H, "parentCaseId": H, "summary": H, "currentCondition": H,
                "actionsTaken": [H, H], "requestedAction": H, "language": H,
                "harmCategories": ["HARM_CATEGORY_OTHER"],
                "children": [{"name": H, "birthDate": H, "ageYears": 9}],
                "place": {"provinceCode": H, "communeCode": H},
                "reporter": {"name": H, "phone": H, "email": H},
                "artefacts": [{"platform": H, "url": "javascript:window.__pwned=3", "accountId": H,
                               "contentHash": H}],
                "legalBasis": {"kind": "LEGAL_BASIS_KIND_CONSENT", "consentedBy": H,
                               "reference": H}}}})
        self.assertEqual(st, 200, hostile)
        rid = hostile["id"]
        po.get(self.po_url + "#/inbox")
        self.wait(po, lambda d: d.find_elements(By.CSS_SELECTOR, f"#inbox-table tr[data-id='{rid}']"))
        watch_hazards(po)
        po.get(self.po_url + "#/message/" + rid)
        self.wait(po, EC.presence_of_element_located((By.ID, "payload")))
        # the message page renders in one go once the message arrived: every
        # hostile field is on the page now, as text
        shown = self.wait(po, lambda d: d.find_element(By.ID, "payload").text)
        self.assertGreaterEqual(shown.count("<script>"), 15, shown)
        self.assertIn("javascript:window.__pwned=3", shown)  # a URL shown as text, not a link
        self.assertEqual(po.execute_script("return window.__hazards"), [])
        self.assertIsNone(po.execute_script("return window.__pwned || null"))
        self.assertEqual(po.find_elements(By.CSS_SELECTOR, "#main img, #main script, #main a[href^=javascript]"), [])
        # identifying fields wait for a click, which the ledger records
        reveal = po.find_element(By.CSS_SELECTOR, "[data-reveal='referral.children[0].name']")
        reveal.click()
        self.wait(po, lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-reveal='referral.children[0].name']"))
        revealed = po.find_element(By.ID, "payload").text
        self.assertEqual(revealed.count("<script>"), shown.count("<script>") + 1, revealed)
        self.assertEqual(po.execute_script("return window.__hazards"), [])
        self.assertIsNone(po.execute_script("return window.__pwned || null"))
        # the watch sees what it must: a handler the test itself injects is
        # recorded (the page's CSP would not let it run either)
        po.execute_script("document.getElementById('main').insertAdjacentHTML('beforeend',"
                          " '<img id=control src=x onerror=\"window.__pwned=4\">')")
        self.wait(po, lambda d: len(d.execute_script("return window.__hazards")) == 1)
        po.execute_script("document.getElementById('control')?.remove()")
        self.shot(po, "09-hostile-as-text")

        # a POST without the CSRF token, from the page itself, is refused
        status = po.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/api/v1/messages', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: '{}'}).then(r => done(r.status));")
        self.assertEqual(status, 403)

        # supervisors see the ledger: the read and the receipt by minh
        po.get(self.po_url + "#/ledger")
        table = self.wait(po, EC.presence_of_element_located((By.ID, "ledger-table")))
        self.assertIn("receipt:accepted", table.text)
        self.assertIn("reveal:referral.children[0].name", table.text)
        self.assertIn("read", table.text)
        self.shot(po, "10-ledger")

        # English is one click away
        po.find_element(By.ID, "lang").click()
        self.wait(po, lambda d: d.find_element(By.ID, "nav-inbox").text == "Inbox")


if __name__ == "__main__":
    unittest.main(verbosity=2)
