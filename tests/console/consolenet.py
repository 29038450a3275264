"""consolenet.py - a loopback casenet network for the console tests: an
authority, a broker (real casenetd), the hotline and the police with a member
home each (built with the real casenet CLI), one staff account per home and a
running `casenet console` per home on 127.0.0.1 (port picked by the console).

Environment: CASENET (the casenet binary), CASENET_BINARY_DIR (for casenetd),
CASENET_SOURCE_DIR (for the pages)."""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

SRC = os.environ.get("CASENET_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CASENET_BINARY_DIR", os.path.join(SRC, "build"))
CASENET = os.environ.get("CASENET", os.path.join(BIN, "clients", "cli", "casenet"))
CASENETD = os.path.join(BIN, "broker", "casenetd")
ASSETS = os.path.join(SRC, "clients", "console", "www")
PASSWORD = "mật khẩu đủ dài 2026"

MEMBERS = [
    ("vn.broker", ["--role", "broker", "--name", "Network broker"]),
    ("vn.hotline111", ["--role", "intake", "--group", "hotline", "--name",
                       "Tổng đài điện thoại quốc gia bảo vệ trẻ em 111"]),
    ("vn.police.a05", ["--role", "responder", "--role", "takedown-requester", "--group", "police",
                       "--name", "Cục An ninh mạng (A05), Bộ Công an"]),
    ("vn.molisa.hanoi", ["--role", "responder", "--group", "social-services", "--name",
                         "Social services Ha Noi"]),
]
# with coordinator=True: a platform and the network's coordinator, each with a home
COORD_MEMBERS = [
    ("vn.platform.x", ["--role", "platform", "--group", "platforms", "--name", "Example platform"]),
    ("vn.coord", ["--role", "coordinator", "--name", "Cơ quan điều phối mạng lưới"]),
]
# the coordinator network's deadlines: short enough to breach in a test
COORD_POLICY = ("[standard]\ndeliver_within = 4s\naccept_within = 8s\n"
                "[emergency]\ndeliver_within = 5s\naccept_within = 10s\n")


def run(*args, stdin=None):
    return subprocess.run(list(args), input=stdin, capture_output=True, text=True, check=True).stdout


class Network:
    def __init__(self, coordinator=False):
        self.coordinator = coordinator
        self.members = MEMBERS + (COORD_MEMBERS if coordinator else [])
        self.root = tempfile.mkdtemp(prefix="casenet-console-test.")
        self.procs = []
        self.urls = {}
        try:
            self._build()
        except BaseException:
            self.close()  # no broker or console left behind
            raise

    def _build(self):
        d = self.root
        run(CASENET, "admin", "init", "--out", f"{d}/authority")
        for mid, opts in self.members:
            run(CASENET, "keygen", mid, "--out", f"{d}/keys")
            run(CASENET, "admin", "add", "--authority", f"{d}/authority/authority.key",
                "--directory", f"{d}/directory", "--member", f"{d}/keys/{mid}.pub", *opts)
        self.start_broker()
        homes = [m for m, _ in self.members if m != "vn.broker"] if self.coordinator else \
            ["vn.hotline111", "vn.police.a05"]
        for mid in homes:
            run(CASENET, "init", "--home", self.home(mid), "--key", f"{d}/keys/{mid}.key",
                "--authority", f"{d}/authority/authority.pub", "--directory", f"{d}/directory",
                "--broker", self.endpoint)
        run(CASENET, "console", "user", "add", "lan", "--role", "caseworker", "--home",
            self.home("vn.hotline111"), stdin=PASSWORD + "\n")
        run(CASENET, "console", "user", "add", "minh", "--role", "supervisor", "--home",
            self.home("vn.police.a05"), stdin=PASSWORD + "\n")
        run(CASENET, "console", "user", "add", "xem", "--role", "viewer", "--home",
            self.home("vn.police.a05"), stdin=PASSWORD + "\n")
        consoles = ["vn.hotline111", "vn.police.a05"]
        if self.coordinator:
            run(CASENET, "console", "user", "add", "hoa", "--role", "supervisor", "--home",
                self.home("vn.coord"), stdin=PASSWORD + "\n")
            consoles.append("vn.coord")
        for mid in consoles:
            self.urls[mid] = self.start_console(mid)

    def home(self, mid):
        return f"{self.root}/home/{mid}"

    def start_broker(self, endpoint=None):
        """Starts casenetd (on endpoint, e.g. the same one after a stop)."""
        d = self.root
        # standard messages escalate within seconds, so a test sees a notice
        with open(f"{d}/policy.ini", "w") as f:
            f.write(COORD_POLICY if self.coordinator else
                    "[standard]\ndeliver_within = 2s\naccept_within = 4s\n")
        for _ in range(8):
            port = random.randint(20000, 60000)
            self.endpoint = endpoint or f"tcp://127.0.0.1:{port}"
            with open(f"{d}/broker.log", "ab") as log:
                p = subprocess.Popen([CASENETD, "--data", f"{d}/data", "--listen", self.endpoint,
                                      "--key", f"{d}/keys/vn.broker.key", "--directory",
                                      f"{d}/directory", "--authority",
                                      f"{d}/authority/authority.pub", "--policy",
                                      f"{d}/policy.ini"], stdout=log, stderr=log)
            deadline = time.time() + 10
            while time.time() < deadline and p.poll() is None:
                with open(f"{d}/broker.log") as f:
                    if "event=listening" in f.read():
                        self.procs.append(p)
                        return
                time.sleep(0.05)
            if p.poll() is None:
                p.kill()
            p.wait()
        raise RuntimeError("casenetd did not start: " + open(f"{d}/broker.log").read())

    def start_console(self, mid):
        outp, errp = f"{self.root}/{mid}.console.out", f"{self.root}/{mid}.console.err"
        with open(outp, "w") as out, open(errp, "w") as err:
            p = subprocess.Popen([CASENET, "console", "--home", self.home(mid), "--listen",
                                  "127.0.0.1:0", "--assets", ASSETS], stdout=out, stderr=err)
        self.procs.append(p)
        deadline = time.time() + 20
        while time.time() < deadline:
            with open(outp) as out:
                line = out.read()
            if "listening on " in line:
                return line.split("listening on ", 1)[1].strip()
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("console did not start: " + open(f"{self.root}/{mid}.console.err").read())

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class Client:
    """A minimal API client with a cookie jar and the CSRF token."""

    def __init__(self, base):
        self.base = base
        self.cookie = None
        self.csrf = None

    def call(self, method, path, body=None, headers=None, csrf=True):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + "api/v1" + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.cookie:
            req.add_header("Cookie", self.cookie)
        if csrf and self.csrf and method != "GET":
            req.add_header("X-CSRF-Token", self.csrf)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, hdrs, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        try:
            js = json.loads(raw)
        except ValueError:
            js = None
        if hdrs.get("Set-Cookie", "").startswith("cn_session_"):
            self.cookie = hdrs["Set-Cookie"].split(";", 1)[0]
        return status, js, hdrs

    def login(self, user, password=PASSWORD):
        status, js, _ = self.call("POST", "/session", {"username": user, "password": password})
        if status == 200:
            self.csrf = js["csrf"]
        return status, js
