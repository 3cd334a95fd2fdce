#!/usr/bin/env python3
"""What a user of bdrctl relies on (proto/control.md, bdrctl(8)): help and
usage errors, exit statuses, the socket it talks to, its tables and --json
output, against tests/integration/fake_bdrd (the real control server with
canned answers) and against small scripted servers of this test.

    test_bdrctl_usage.py BDRCTL FAKE_BDRD

Python 3 standard library only. Temporary files go under $BDR_TEST_TMP (or
the system's temporary directory). Exit status 0 when every check passed, 1
otherwise; every check runs and reports, a failing one does not stop the
others.
"""
import base64
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BDRCTL = FAKE = None
TMP = None
DEFAULT_SOCKET = "/run/bdr/control.sock"
COMMANDS = ["keygen", "pubkey", "push", "status", "packages", "peers", "schedule", "reload",
            "cancel", "retry", "metrics"]
NOBODY = 65534

# The canned answers of fake_bdrd.c.
STATUS = {
 "transfers": [
  {
   "transfer": 7,
   "package": "app",
   "to": "branch1",
   "version": 4,
   "priority": "medium",
   "state": "sending",
   "bytes_sent": 1048576,
   "bytes_total": 4194304,
   "bytes_saved": 7000000,
   "rate_bps": 250000,
   "last_error": None
  },
  {
   "transfer": 9,
   "package": "app10",
   "to": "dp2",
   "version": 2,
   "priority": "medium",
   "state": "activated",
   "bytes_sent": 900,
   "bytes_total": 1024,
   "bytes_saved": 124,
   "rate_bps": 0,
   "last_error": None,
   "queued_at": "2026-11-24T09:00:00+01:00",
   "updated_at": "2026-11-24T09:30:00+01:00",
   "activated_at": "2026-11-24T09:30:00+01:00"
  },
  {
   "transfer": 11,
   "package": "app10",
   "to": "dp10",
   "version": 3,
   "priority": "medium",
   "state": "queued",
   "bytes_sent": 0,
   "bytes_total": 1024,
   "bytes_saved": 0,
   "rate_bps": 0,
   "last_error": None,
   "waiting": "window closed to medium priority; opens Sat 00:00",
   "queued_at": "2026-11-25T12:00:00+01:00",
   "updated_at": None,
   "activated_at": None
  },
  {
   "transfer": 10,
   "package": "app10",
   "to": "dp2",
   "version": 3,
   "priority": "medium",
   "state": "queued",
   "bytes_sent": 0,
   "bytes_total": 1024,
   "bytes_saved": 0,
   "rate_bps": 0,
   "last_error": None,
   "waiting": "window closed to medium priority; opens Sat 00:00",
   "queued_at": "2026-11-25T12:00:00+01:00",
   "updated_at": None,
   "activated_at": None
  }
 ],
 "received": [
  {
   "package": "tools",
   "from": "hq",
   "version": 12,
   "state": "failed",
   "bytes_received": 123,
   "bytes_total": 4567,
   "last_error": "hash mismatch in bin/tool"
  }
 ]
}
PACKAGES = {"packages": [{"name": "app", "versions": [2, 3, 4], "active": 4},
                         {"name": "empty", "versions": [], "active": None}]}
PEER_KEY = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
PEERS = {"peers": [{"name": "branch1", "public_key": PEER_KEY,
                    "addresses": ["10.0.0.7:7743", "branch1.example:7743"],
                    "connected": True, "last_error": None}]}


def _grid(*days):
    return [[int(c) for c in d] for d in days]


SCHEDULE = {
    "site": "branch", "timezone": "Europe/Paris", "now": "2026-11-25T12:00:00+01:00",
    "addresses": [
        {"index": 0, "name": "mpls", "address": "10.0.0.7:7411",
         "schedule": "all all high; fri 18-24 closed; weekend all medium",
         "grid": _grid(*["1" * 24] * 4, "1" * 18 + "0" * 6, *["2" * 24] * 2),
         "rate": "08-18 256K", "rates_bps": [0] * 8 + [262144] * 10 + [0] * 6, "pulse": None,
         "open_now": {"high": True, "medium": False, "low": False},
         "until": {"high": "2026-11-27T18:00:00+01:00", "medium": None, "low": None},
         "next_open": {"high": None, "medium": "2026-11-28T00:00:00+01:00", "low": None}},
        {"index": 1, "name": None, "address": "[2001:db8::7]:7411", "schedule": "all all all",
         "grid": _grid(*["3" * 24] * 7), "rate": "pulse 1M 30s", "rates_bps": None,
         "pulse": {"block_bytes": 1048576, "gap_ms": 30000},
         "open_now": {"high": True, "medium": True, "low": True},
         "until": {"high": None, "medium": None, "low": None},
         "next_open": {"high": None, "medium": None, "low": None}},
        {"index": 2, "name": "dsl", "address": "dsl.example:7411", "schedule": "all 07-20 closed",
         "grid": _grid(*["3" * 7 + "0" * 13 + "3" * 4] * 7), "rate": "08-09 2Mbit, 09-18 256K",
         "rates_bps": [0] * 8 + [250000] + [262144] * 9 + [0] * 6, "pulse": None,
         "open_now": {"high": False, "medium": False, "low": False},
         "until": {"high": None, "medium": None, "low": None},
         "next_open": {"high": "2026-11-25T20:00:00+01:00",
                       "medium": "2026-11-25T20:00:00+01:00",
                       "low": "2026-11-25T20:00:00+01:00"}},
    ]}
HOURS_ROW = "    " + "".join(" %02d" % h for h in range(24))
WIDE_HOURS_ROW = "    " + "".join("   %02d" % h for h in range(24))
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SCHEDULE_TEXT = "\n".join(
    ["schedule of branch in Europe/Paris time, now Wed 2026-11-25 12:00",
     "",
     "address 0 mpls 10.0.0.7:7411 (rate: 08-18 256K)",
     HOURS_ROW]
    + ["%s  %s" % (d, "  ".join("H" * 24)) for d in DAYS[:4]]
    + ["Fri  " + "  ".join("H" * 18 + "." * 6)]
    + ["%s  %s" % (d, "  ".join("M" * 24)) for d in DAYS[5:]]
    + ["rate -" + " " * 23 + "256K" + " " * 26 + "-",
       "now: high open until Fri 18:00; medium closed, opens Sat 00:00; "
       "low closed, never opens",
       "",
       "address 1 [2001:db8::7]:7411 (rate: pulse 1M 30s)",
       HOURS_ROW]
    + ["%s  %s" % (d, "  ".join("A" * 24)) for d in DAYS]
    + ["pulse: blocks of 1M, each followed by 30s of quiet",
       "now: high open, never closes; medium open, never closes; low open, never closes",
       "",
       "address 2 dsl dsl.example:7411 (rate: 08-09 2Mbit, 09-18 256K)",
       WIDE_HOURS_ROW]
    + ["%-4s%s" % (d, "".join("%5s" % c for c in "A" * 7 + "." * 13 + "A" * 4)) for d in DAYS]
    + ["rate" + "".join("%5s" % r for r in ["-"] * 8 + ["244K"] + ["256K"] * 9 + ["-"] * 6),
       "now: high closed, opens Wed 20:00; medium closed, opens Wed 20:00; "
       "low closed, opens Wed 20:00"]) + "\n"
RELOAD_ERRORS = ["/etc/bdr/bdr.conf:3: unknown key 'lisen'",
                 "/etc/bdr/bdr.conf:9: peer 'x': no address"]


# ---- running things ----

def env_without_socket(**extra):
    env = dict(os.environ)
    env.pop("BDR_CONTROL", None)
    env.update(extra)
    return env


def bdrctl(*args, env=None, cwd=None, preexec_fn=None, timeout=30):
    """Runs bdrctl ARGS (BDR_CONTROL unset unless env sets it)."""
    return subprocess.run([BDRCTL] + list(args), capture_output=True, text=True,
                          env=env if env is not None else env_without_socket(), cwd=cwd,
                          preexec_fn=preexec_fn, timeout=timeout, stdin=subprocess.DEVNULL)


def show(p):
    return "exit %d\n--- stdout:\n%s--- stderr:\n%s" % (p.returncode, p.stdout, p.stderr)


def expect(p, status, stdout_empty=None, stderr_has=()):
    """Checks p's exit status (and that stderr says something on errors)."""
    assert p.returncode == status, "expected exit %d, got %s" % (status, show(p))
    if status != 0:
        assert p.stderr.strip(), "exit %d without a message on stderr\n%s" % (status, show(p))
        assert p.stderr.startswith("bdrctl: "), "message not prefixed 'bdrctl: '\n%s" % show(p)
    if stdout_empty and "--json" in p.args and status not in (0, 2):
        # --json: the error is one JSON document on stdout too, the same
        # message as stderr's line (usage errors stay text: bdrctl may not
        # know yet that --json was asked for)
        doc = json.loads(p.stdout)
        assert doc["error"]["exit"] == status and \
            "bdrctl: " + doc["error"]["message"] == p.stderr.strip(), show(p)
    elif stdout_empty:
        assert p.stdout == "", "expected nothing on stdout\n%s" % show(p)
    for s in stderr_has:
        assert s in p.stderr, "stderr lacks %r\n%s" % (s, show(p))


def json_stream(text):
    """Every JSON value of text, in order (compact lines or indented)."""
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return out
        v, i = dec.raw_decode(text, i)
        out.append(v)


def json_one(p):
    vals = json_stream(p.stdout)
    assert len(vals) == 1, "expected one JSON value, got %d\n%s" % (len(vals), show(p))
    return vals[0]


def rows(text):
    """A table as lists of cells (columns are separated by 2+ spaces)."""
    return [re.split(r" {2,}", line.rstrip()) for line in text.splitlines() if line.strip()]


class Fake:
    """fake_bdrd SOCKET [--open], running until stop()."""

    def __init__(self, path, open_mode=False):
        self.path = path
        args = [FAKE, path] + (["--open"] if open_mode else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        end = time.monotonic() + 20
        line = b""
        while not line.endswith(b"\n"):
            left = end - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not r:
                self.stop()
                raise AssertionError("fake_bdrd did not print 'ready' within 20 s")
            c = os.read(self.proc.stdout.fileno(), 1)
            if not c:
                err = self.proc.stderr.read().decode(errors="replace")
                self.proc.wait()
                raise AssertionError("fake_bdrd exited %s before 'ready': %s"
                                     % (self.proc.returncode, err))
            line += c
        assert line == b"ready\n", "fake_bdrd said %r, not 'ready'" % line

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("fake_bdrd did not stop on SIGTERM")
            finally:
                self.proc.stdout.close()
                self.proc.stderr.close()
            assert self.proc.returncode == 0, "fake_bdrd exited %d" % self.proc.returncode
            assert not os.path.exists(self.path), "fake_bdrd left %s behind" % self.path


class Recorder:
    """A listening socket nobody answers on: did bdrctl connect to it?"""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.sock.setblocking(False)

    def connections(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except BlockingIOError:
                return n
            c.close()
            n += 1

    def close(self):
        self.sock.close()
        os.unlink(self.path)


class Scripted:
    """A one-connection server: reads the request line, records it (and the
    path of the descriptor that came with it, in self.fds), then writes
    `answer` lines (None: closes without answering)."""

    def __init__(self, path, answer):
        self.path = path
        self.answer = answer
        self.request = None
        self.fds = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.error = None
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        try:
            c, _ = self.sock.accept()
            with c:
                c.settimeout(30)
                buf = b""
                while b"\n" not in buf:
                    d, fds, _, _ = socket.recv_fds(c, 65536, 4)
                    for fd in fds:
                        self.fds.append(os.readlink("/proc/self/fd/%d" % fd))
                        os.close(fd)
                    if not d:
                        break
                    buf += d
                self.request = json.loads(buf.split(b"\n")[0])
                for line in self.answer or []:
                    c.sendall(line.encode() + b"\n")
        except Exception as e:  # reported by close()
            self.error = e

    def close(self):
        self.t.join(30)
        self.sock.close()
        os.unlink(self.path)
        if self.error:
            raise AssertionError("scripted server: %r" % self.error)


# ---- the checks ----

def check_help():
    """bdrctl --help, -h and COMMAND --help: usage on stdout, exit 0."""
    for args in (["--help"], ["-h"]):
        p = bdrctl(*args)
        expect(p, 0)
        assert p.stdout.startswith("usage: bdrctl"), show(p)
        for c in COMMANDS:
            assert re.search(r"^\s+%s\s" % c, p.stdout, re.M), "%s not listed\n%s" % (c, show(p))
    rec = Recorder(os.path.join(TMP, "help.sock"))
    try:
        for c in COMMANDS:
            for h in ("--help", "-h"):
                p = bdrctl("-s", rec.path, c, h)
                expect(p, 0)
                assert p.stdout.startswith("usage: bdrctl %s" % c), show(p)
                assert "--help" in p.stdout, show(p)
        # push's usage names what it needs
        p = bdrctl("push", "--help")
        for s in ("PACKAGE", "DIR", "--to", "--priority", "--wait", "--json"):
            assert s in p.stdout, "push --help lacks %r\n%s" % (s, show(p))
        # a command's help shows its own options only, and no other's defaults
        p = bdrctl("bundle", "--help")
        assert "site.key" not in p.stdout and "--to" not in p.stdout, show(p)
        p = bdrctl("keygen", "--help")
        assert "/etc/bdr/site.key" in p.stdout and "--json" not in p.stdout, show(p)
        assert rec.connections() == 0, "a --help connected to the socket"
    finally:
        rec.close()


USAGE_ERRORS = [
    # (args after "-s SOCKET", what stderr names)
    ([], "no command"),
    (["frobnicate"], "frobnicate"),
    (["--bogus", "status"], "--bogus"),
    (["status", "--bogus"], "--bogus"),
    (["status", "-x"], "-x"),
    (["packages", "--to", "branch1"], "--to"),
    (["peers", "--wait"], "--wait"),
    (["reload", "extra"], "extra"),
    (["status", "app", "extra"], "extra"),
    (["schedule"], "missing"),
    (["schedule", "branch", "extra"], "extra"),
    (["schedule", "branch", "--wait"], "--wait"),
    (["schedule", "branch", "--to", "x"], "--to"),
    (["keygen", "--to", "x"], "--to"),
    (["status", "--socket"], "--socket"),
    (["push"], "missing"),
    (["push", "app"], "missing"),
    (["push", "app", "DIR", "extra", "--to", "branch1"], "extra"),
    (["push", "app", "DIR"], "--to"),                              # no --to
    (["push", "app", "DIR", "--to"], "--to"),                      # --to without SITE
    (["push", "app", "DIR", "--to", "branch1", "--priority", "urgent"], "urgent"),
    (["push", "app", "DIR", "--to", "branch1", "-p", "HIGH"], "HIGH"),
    (["push", "app", "DIR", "--to", "branch1", "--priority", ""], "priority"),
]


def check_usage_errors():
    """Bad commands, options and arguments: exit 2, message and usage on
    stderr, nothing on stdout, nothing sent."""
    rec = Recorder(os.path.join(TMP, "usage.sock"))
    src = os.path.join(TMP, "src")
    try:
        for args, named in USAGE_ERRORS:
            args = [src if a == "DIR" else a for a in args]
            p = bdrctl("-s", rec.path, *args)
            try:
                expect(p, 2, stdout_empty=True, stderr_has=[named, "usage: bdrctl"])
            except AssertionError as e:
                raise AssertionError("bdrctl %s: %s" % (" ".join(args), e))
            n = rec.connections()
            assert n == 0, "bdrctl %s connected to the socket" % " ".join(args)
        # Same without -s: nothing tries the default socket either.
        p = bdrctl("frobnicate", env=env_without_socket(BDR_CONTROL=rec.path))
        expect(p, 2, stdout_empty=True, stderr_has=["frobnicate"])
        assert rec.connections() == 0
    finally:
        rec.close()


def check_push_local_errors():
    """push of a file or of a missing path: exit 1 before anything is sent."""
    rec = Recorder(os.path.join(TMP, "local.sock"))
    f = os.path.join(TMP, "a-file")
    with open(f, "w") as fh:
        fh.write("x\n")
    try:
        for d, says in ((f, "not a directory"), (os.path.join(TMP, "missing"), "No such file")):
            p = bdrctl("-s", rec.path, "push", "app", d, "--to", "branch1")
            expect(p, 1, stdout_empty=True, stderr_has=[d, says])
            assert rec.connections() == 0, "push of %s connected" % d
    finally:
        rec.close()


def check_unreachable():
    """No daemon: exit 3 and a message naming the socket."""
    missing = os.path.join(TMP, "nobody-here.sock")
    p = bdrctl("-s", missing, "status")
    expect(p, 3, stdout_empty=True, stderr_has=[missing])
    # A socket file nobody listens on (connection refused).
    stale = os.path.join(TMP, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    for cmd in (["status"], ["packages"], ["peers"], ["reload"],
                ["push", "app", os.path.join(TMP, "src"), "--to", "branch1"]):
        p = bdrctl("-s", stale, *cmd)
        expect(p, 3, stdout_empty=True, stderr_has=[stale])
    os.unlink(stale)
    # Through the environment.
    p = bdrctl("packages", env=env_without_socket(BDR_CONTROL=missing))
    expect(p, 3, stderr_has=[missing])
    # The default, when nothing names a socket and none is there.
    if not os.path.exists(DEFAULT_SOCKET):
        p = bdrctl("peers")
        expect(p, 3, stderr_has=[DEFAULT_SOCKET])
        p = bdrctl("peers", env=env_without_socket(BDR_CONTROL=""))  # empty: unset
        expect(p, 3, stderr_has=[DEFAULT_SOCKET])
    else:
        print("    (%s exists: the default-socket check is skipped)" % DEFAULT_SOCKET)


def check_socket_choice(fake):
    """-s PATH and $BDR_CONTROL choose the socket; -s wins over the env."""
    missing = os.path.join(TMP, "nobody-here.sock")
    cases = [
        (["-s", fake.path, "packages"], {}, 0, None),
        (["--socket", fake.path, "packages"], {}, 0, None),
        (["packages", "-s", fake.path], {}, 0, None),
        (["packages", "--socket=" + fake.path], {}, 0, None),
        (["packages"], {"BDR_CONTROL": fake.path}, 0, None),
        (["-s", fake.path, "packages"], {"BDR_CONTROL": missing}, 0, None),
        (["-s", missing, "packages"], {"BDR_CONTROL": fake.path}, 3, missing),
        (["packages", "-s", missing], {"BDR_CONTROL": fake.path}, 3, missing),
    ]
    for args, env, status, named in cases:
        p = bdrctl(*args, env=env_without_socket(**env))
        try:
            expect(p, status, stderr_has=[named] if named else [])
        except AssertionError as e:
            raise AssertionError("bdrctl %s (env %s): %s" % (" ".join(args), env, e))
        if status == 0:
            assert "app" in p.stdout, show(p)


def check_status(fake):
    """The canned status has a failed received version: tables as people
    read them, and exit status 5 (failed transfers shown), with --json too."""
    p = bdrctl("-s", fake.path, "status")
    expect(p, 5)
    blocks = [b for b in p.stdout.split("\n\n") if b.strip()]
    assert len(blocks) == 2, "expected a transfers and a received table\n%s" % show(p)
    out, inn = rows(blocks[0]), rows(blocks[1])
    assert out == [["PACKAGE", "DESTINATION", "VERSION", "STATE", "WIRE", "SIZE", "SAVED", "TIME",
                    "NOTE"],
                   ["app", "branch1", "4", "sending", "1.0 MiB", "4.0 MiB", "6.7 MiB", "-", "-"],
                   ["app10", "dp2", "3", "queued", "0 B", "1.0 KiB", "0 B", "11-25 12:00",
                    "waits: window closed to medium priority; opens Sat 00:00"],
                   ["app10", "dp10", "3", "queued", "0 B", "1.0 KiB", "0 B", "11-25 12:00",
                    "waits: window closed to medium priority; opens Sat 00:00"],
                   ["app10", "dp2", "2", "activated", "900 B", "1.0 KiB", "124 B",
                    "11-24 09:30", "-"]], \
        "transfers table: %r\n%s" % (out, show(p))
    assert inn == [["PACKAGE", "FROM", "VERSION", "STATE", "WIRE", "TIME", "NOTE"],
                   ["tools", "hq", "12", "failed", "123 B", "-", "hash mismatch in bin/tool"]], \
        "received table: %r\n%s" % (inn, show(p))
    # Columns are aligned: each header starts where its cells start.
    lines = blocks[0].splitlines()
    for h in ("VERSION", "STATE", "WIRE"):
        col = lines[0].index(h)
        assert lines[1][col - 2:col] == "  " and lines[1][col] != " ", \
            "column %s not aligned\n%s" % (h, blocks[0])
    # --json, before or after the command: the daemon's result.
    for args in (["--json", "status"], ["status", "--json"]):
        p = bdrctl("-s", fake.path, *args)
        expect(p, 5)
        assert json_one(p) == STATUS, "status --json: %s" % show(p)
    # The package argument is sent (the fake knows nothing of "none").
    p = bdrctl("-s", fake.path, "status", "none")
    expect(p, 0)
    assert p.stdout.strip() == "no transfers", show(p)
    p = bdrctl("-s", fake.path, "--json", "status", "none")
    expect(p, 0)
    assert json_one(p) == {"transfers": [], "received": []}, show(p)


def check_packages(fake):
    p = bdrctl("-s", fake.path, "packages")
    expect(p, 0)
    t = rows(p.stdout)
    assert t[:2] == [["PACKAGE", "ACTIVE", "VERSIONS"], ["app", "4", "2,3,4"]], \
        "packages table: %r\n%s" % (t, show(p))
    assert len(t) == 3 and t[2] in (["empty", "-"], ["empty", "-", "-"]), \
        "packages table, 'empty': %r\n%s" % (t, show(p))
    p = bdrctl("-s", fake.path, "--json", "packages")
    expect(p, 0)
    v = json_one(p)
    assert v == PACKAGES, "packages --json: %s" % show(p)
    assert v["packages"][1]["active"] is None


def check_peers(fake):
    p = bdrctl("-s", fake.path, "peers")
    expect(p, 0)
    t = rows(p.stdout)
    assert t == [["SITE", "CONNECTED", "ADDRESSES", "PUBLIC KEY", "LAST ERROR"],
                 ["branch1", "yes", "10.0.0.7:7743,branch1.example:7743", PEER_KEY, "-"]], \
        "peers table: %r\n%s" % (t, show(p))
    p = bdrctl("-s", fake.path, "peers", "--json")
    expect(p, 0)
    v = json_one(p)
    assert v == PEERS, "peers --json: %s" % show(p)
    assert len(v["peers"][0]["public_key"]) == 44


def check_schedule(fake):
    """schedule SITE: per address a header, the 7x24 grid of levels, the
    rate row (narrow, rates where they change; wide, every hour, when one
    does not fit) or the pulse, and what is open now; --json is the
    daemon's result; an unknown site is exit 4."""
    p = bdrctl("-s", fake.path, "schedule", "branch")
    expect(p, 0)
    if p.stdout != SCHEDULE_TEXT:
        import difflib
        raise AssertionError("schedule output differs:\n" + "".join(difflib.unified_diff(
            SCHEDULE_TEXT.splitlines(True), p.stdout.splitlines(True), "expected", "got")))
    # The narrow grid fits 80 columns.
    narrow = p.stdout.split("\n\naddress 2")[0].splitlines()
    assert max(len(x) for x in narrow if not x.startswith("now: ")) <= 80, show(p)
    for args in (["--json", "schedule", "branch"], ["schedule", "--json", "branch"],
                 ["schedule", "branch", "--json"]):
        p = bdrctl("-s", fake.path, *args)
        expect(p, 0)
        assert json_one(p) == SCHEDULE, "schedule --json: %s" % show(p)
    # A peer without addresses, in bdrd's own time zone.
    p = bdrctl("-s", fake.path, "schedule", "hermit")
    expect(p, 0)
    assert p.stdout == ("schedule of hermit in bdrd's local time, now Wed 2026-11-25 11:00\n"
                        "hermit has no address: it connects to this site\n"), show(p)
    for extra in ([], ["--json"]):
        p = bdrctl("-s", fake.path, "schedule", "branch9", *extra)
        expect(p, 4, stdout_empty=True, stderr_has=["no site named 'branch9'", "unknown_site"])
    p = bdrctl("-s", fake.path, "schedule")
    expect(p, 2, stdout_empty=True, stderr_has=["missing", "usage: bdrctl schedule SITE"])


def check_push(fake):
    src = os.path.join(TMP, "src")
    link = os.path.join(TMP, "src-link")
    real = os.path.realpath(src)
    # Human output: the imported and queued lines, nothing else.
    p = bdrctl("-s", fake.path, "push", "app", "src", "--to", "branch1", cwd=TMP)
    expect(p, 0)
    lines = p.stdout.splitlines()
    assert len(lines) == 2, "expected 2 lines\n%s" % show(p)
    assert lines[0] == "imported version 4: 120 files, 7.0 MiB (3 files read)", show(p)
    assert lines[1] == "queued transfer 7 of version 4 to branch1", show(p)
    # Options may come before the arguments.
    p = bdrctl("-s", fake.path, "push", "--to", "branch1", "-p", "low", "app", src)
    expect(p, 0)
    assert p.stdout.splitlines()[1:] == ["queued transfer 7 of version 4 to branch1"], show(p)
    # --json: one compact object per event line, then the result; dir is
    # DIR's realpath whatever form it was given in.
    for d, cwd in (("src", TMP), ("./src/", TMP), (link, None), (src + "/../src", None)):
        for extra, prio in (([], "medium"), (["--priority", "high"], "high"),
                            (["-p", "low"], "low"), (["--priority=medium"], "medium")):
            p = bdrctl("-s", fake.path, "--json", "push", "app", d, "-t", "branch1", *extra,
                       cwd=cwd)
            expect(p, 0)
            first = p.stdout.splitlines()[:2]
            evs = [json.loads(x) for x in first]
            assert [e.get("event") for e in evs] == ["imported", "queued"], show(p)
            assert evs[0] == {"id": 1, "event": "imported", "version": 4, "files": 120,
                              "bytes": 7340032, "files_read": 3}, show(p)
            assert evs[1] == {"id": 1, "event": "queued", "transfer": 7, "version": 4}, show(p)
            vals = json_stream(p.stdout)
            assert len(vals) == 3, "expected 2 events and the result\n%s" % show(p)
            assert vals[2] == {"package": "app", "version": 4, "to": "branch1", "transfer": 7,
                               "state": "queued", "dir": real, "priority": prio}, \
                "push %s %s: result %r, expected dir %s\n%s" % (d, extra, vals[2], real, show(p))


def check_push_wait(fake):
    """push --wait: progress is the share of the version current at the
    destination (held chunks count at once; it reaches 100%), each line
    names the site, each site's end is printed; --json gives one JSON
    document per line."""
    src = os.path.join(TMP, "src")
    p = bdrctl("-s", fake.path, "push", "app", src, "--to", "branch1", "--wait")
    expect(p, 0)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("imported version 4:"), show(p)
    assert lines[1] == "queued transfer 7 of version 4 to branch1", show(p)
    progress = [x for x in lines if x.startswith("branch1: ") and "current" in x]
    assert [x.split("%")[0].split()[-1] for x in progress] == ["83", "91", "100"], \
        "progress lines\n%s" % show(p)
    assert all("of 11.7 KiB current" in x and "ETA" in x for x in progress), show(p)
    assert "\r" not in p.stdout and "\033" not in p.stdout, \
        "terminal codes in output to a pipe\n%s" % show(p)
    assert lines[-1] == "branch1: activated app version 4: sent 2.9 KiB, saved 8.8 KiB", show(p)
    assert len([x for x in lines if "activated app" in x]) == 1, show(p)
    # --json --wait: events (progress included), then the activated result.
    p = bdrctl("-s", fake.path, "push", "app", src, "--to", "branch1", "--wait", "--json")
    expect(p, 0)
    vals = json_stream(p.stdout)
    names = [v.get("event") for v in vals[:-1]]
    assert names[:2] == ["imported", "queued"] and names[-1] == "ended" \
        and set(names[2:-1]) == {"progress"}, "events %r\n%s" % (names, show(p))
    for v in vals[:-1]:
        assert v.get("id") == 1
    prog = [v for v in vals if v.get("event") == "progress"]
    assert prog[-1]["bytes_done"] == prog[-1]["bytes_size"] == 12000, show(p)
    assert vals[-1] == {"package": "app", "version": 4, "to": "branch1", "transfer": 7,
                        "state": "activated", "bytes_sent": 3000, "bytes_saved": 9000}, show(p)
    # On a terminal the site's line is redrawn in place (cursor up, erase).
    out, status = run_on_pty(["-s", fake.path, "push", "app", src, "--to", "branch1", "-w"])
    assert status == 0, "on a pty: exit %d\n%r" % (status, out)
    assert "\x1b[1A\rbranch1: " in out, "no in-place progress on a terminal: %r" % out
    last = out.replace("\r\n", "\n").rstrip("\n").split("\n")[-1]
    assert last.endswith("branch1: activated app version 4: sent 2.9 KiB, saved 8.8 KiB\x1b[K"), \
        "last line on a pty: %r" % last


def run_on_pty(args):
    """bdrctl ARGS with stdout on a pseudo-terminal; (output, exit status)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([BDRCTL] + args, stdout=slave, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env_without_socket())
    finally:
        os.close(slave)
    out = b""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 1)
        if not r:
            if proc.poll() is not None:
                break
            continue
        try:
            d = os.read(master, 65536)
        except OSError:  # EIO: the slave side is closed
            break
        if not d:
            break
        out += d
    os.close(master)
    try:
        status = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("bdrctl on a pty did not end: %r" % out)
    proc.stderr.close()
    return out.decode(errors="replace"), status


def check_daemon_errors(fake):
    src = os.path.join(TMP, "src")
    # unknown_site: exit 4, the daemon's message on stderr, nothing on stdout.
    for extra in ([], ["--json"], ["--wait"]):
        p = bdrctl("-s", fake.path, "push", "app", src, "--to", "branch9", *extra)
        expect(p, 4, stdout_empty=True, stderr_has=["no site named 'branch9'", "unknown_site"])
    # reload: invalid_config, exit 1, every error on a line of its own.
    for args in (["reload"], ["--json", "reload"]):
        p = bdrctl("-s", fake.path, *args)
        expect(p, 1, stdout_empty=True, stderr_has=["invalid_config"])
        errlines = p.stderr.splitlines()
        for e in RELOAD_ERRORS:
            assert any(line == e or line.endswith(": " + e) or line.startswith(e)
                       for line in errlines), "error %r not on a line of its own\n%s" \
                % (e, show(p))


def check_permission_denied():
    """A peer whose credentials are refused: exit 4 (permission_denied);
    without --open the socket's mode stops it first: exit 3."""
    if os.geteuid() != 0:
        print("    (not root: the refused-peer check is skipped)")
        return
    os.chmod(TMP, 0o755)
    t = TMP
    while t != "/":  # every directory up to TMP must be traversable
        st = os.stat(t)
        assert st.st_mode & stat.S_IXOTH, "%s is not traversable by others" % t
        t = os.path.dirname(t)

    def as_nobody():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    path = os.path.join(TMP, "open.sock")
    fake = Fake(path, open_mode=True)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        for cmd in (["status"], ["--json", "packages"], ["reload"]):
            p = bdrctl("-s", path, *cmd, preexec_fn=as_nobody)
            expect(p, 4, stdout_empty=True, stderr_has=["permission_denied"])
        # root still gets in
        expect(bdrctl("-s", path, "peers"), 0)
    finally:
        fake.stop()
    path = os.path.join(TMP, "closed.sock")
    fake = Fake(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        p = bdrctl("-s", path, "status", preexec_fn=as_nobody)
        expect(p, 3, stdout_empty=True, stderr_has=[path])
    finally:
        fake.stop()


def check_protocol():
    """The request bdrctl sends and how it maps answers it does not get from
    the fake: lost connections, codes it does not know, null ids."""
    path = os.path.join(TMP, "scripted.sock")
    src = os.path.join(TMP, "src")
    cases = [
        # (args, answer lines, exit, stderr has)
        (["status", "app"], None, 3, [path]),
        (["push", "app", src, "--to", "branch1"],
         ['{"id":1,"event":"imported","version":1,"files":1,"bytes":1,"files_read":1}'],
         3, [path]),
        (["packages"], ['{"id":1,"ok":false,"error":{"code":"frobbed","message":"odd"}}'],
         1, ["odd"]),
        (["peers"], ['{"id":null,"ok":false,"error":{"code":"busy","message":"too many"}}'],
         4, ["too many", "busy"]),
        (["peers"], ['{"id":1,"ok":false,"error":{"code":"bad_request","message":"no"}}'],
         4, ["bad_request"]),
        (["reload"], ['{"id":1,"ok":false,"error":{"code":"internal","message":"boom"}}'],
         1, ["boom"]),
        (["reload"], ['', '  ', '{"id":1,"ok":true,"result":{}}'], 0, []),
        (["schedule", "branch"],
         ['{"id":1,"ok":false,"error":{"code":"unknown_site","message":"no site"}}'],
         4, ["no site"]),
        (["push", "app", src, "--to", "branch1"],
         ['{"id":1,"ok":false,"error":{"code":"import_failed","message":"cannot read x"}}'],
         1, ["cannot read x"]),
        (["push", "app", src, "--to", "branch1", "--wait"],
         ['{"id":1,"ok":false,"error":{"code":"transfer_failed","message":"refused"}}'],
         1, ["refused"]),
        (["push", "app", src, "--to", "branch1"],
         ['{"id":1,"ok":false,"error":{"code":"invalid_package","message":"bad name"}}'],
         4, ["bad name"]),
    ]
    for args, answer, status, has in cases:
        srv = Scripted(path, answer)
        try:
            p = bdrctl("-s", path, *args)
        finally:
            srv.t.join(30)
        try:
            srv.close()
            expect(p, status, stderr_has=has)
        except AssertionError as e:
            raise AssertionError("bdrctl %s answered %r: %s" % (" ".join(args), answer, e))
        req = srv.request
        assert isinstance(req, dict) and isinstance(req.get("id"), int) and req["id"] >= 0 \
            and req.get("v") == 1 and req.get("cmd") == args[0], "request %r" % req
        if args[0] == "status":
            assert req.get("package") == "app", "request %r" % req
        if args[0] == "schedule":
            assert req.get("site") == "branch", "request %r" % req
        if args[0] == "push":
            assert req["package"] == "app" and req["to"] == "branch1" \
                and "dir" not in req and srv.fds == [os.path.realpath(src)] \
                and req["priority"] == "medium" \
                and req["wait"] is ("--wait" in args), "request %r" % req
        if args == ["reload"] and status == 0:
            assert p.stdout.strip() == "configuration reloaded", show(p)


def check_keys():
    kdir = os.path.join(TMP, "keys")
    os.mkdir(kdir)
    key = os.path.join(kdir, "site.key")
    p = bdrctl("keygen", "-o", key)
    expect(p, 0)
    pub = p.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", pub) and len(base64.b64decode(pub)) == 32, \
        "keygen printed %r" % p.stdout
    st = os.stat(key)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, \
        "key file mode %o" % st.st_mode
    with open(key, "rb") as f:
        content = f.read()
    # never overwrites
    for args in (["keygen", "-o", key], ["keygen", "--output", key], ["keygen", "--output=" + key]):
        p = bdrctl(*args)
        expect(p, 1, stdout_empty=True, stderr_has=[key])
    with open(key, "rb") as f:
        assert f.read() == content, "keygen changed an existing key file"
    # pubkey prints the same key
    for args in (["pubkey", "-k", key], ["pubkey", "--key", key]):
        p = bdrctl(*args)
        expect(p, 0)
        assert p.stdout == pub + "\n" and len(pub) == 44, show(p)
    p = bdrctl("--json", "pubkey", "-k", key)
    expect(p, 0)
    assert json_one(p) == {"public_key": pub}, show(p)
    # local file errors: exit 1
    p = bdrctl("pubkey", "-k", os.path.join(kdir, "none.key"))
    expect(p, 1, stdout_empty=True, stderr_has=["none.key"])
    p = bdrctl("keygen", "-o", os.path.join(kdir, "no-dir", "site.key"))
    expect(p, 1, stdout_empty=True, stderr_has=["no-dir"])
    junk = os.path.join(kdir, "junk.key")
    with open(junk, "w") as f:
        f.write("not a key\n")
    os.chmod(junk, 0o600)
    p = bdrctl("pubkey", "-k", junk)
    expect(p, 1, stdout_empty=True)
    # a second keygen makes a different key
    key2 = os.path.join(kdir, "other.key")
    p = bdrctl("keygen", "-o", key2)
    expect(p, 0)
    assert p.stdout.strip() != pub


def project_version():
    """The version meson's project() declares in the source tree."""
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "meson.build")
    with open(top) as f:
        return re.search(r"\bversion\s*:\s*'([^']+)'", f.read()).group(1)


def check_version():
    """bdrctl --version and -V print "bdrctl VERSION" (the project's) and
    exit 0 without a socket; before a command only (distribute's --version
    N is that command's)."""
    want = "bdrctl %s\n" % project_version()
    for args in (["--version"], ["-V"], ["-s", "/nonexistent/sock", "--version"]):
        p = bdrctl(*args)
        expect(p, 0)
        assert p.stdout == want and p.stderr == "", show(p)
    p = bdrctl("--help")
    assert "--version" in p.stdout, show(p)


# ---- main ----

def main():
    global BDRCTL, FAKE, TMP
    if len(sys.argv) != 3:
        print("usage: %s BDRCTL FAKE_BDRD" % sys.argv[0], file=sys.stderr)
        return 2
    BDRCTL, FAKE = (os.path.abspath(a) for a in sys.argv[1:])
    base = os.environ.get("BDR_TEST_TMP") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    TMP = tempfile.mkdtemp(prefix="bdrctl_usage-", dir=base)
    if len(os.path.join(TMP, "scripted.sock")) >= 100:  # sun_path is 108 bytes
        shutil.rmtree(TMP)
        TMP = tempfile.mkdtemp(prefix="bdrctl_usage-")
    os.mkdir(os.path.join(TMP, "src"))
    with open(os.path.join(TMP, "src", "f"), "w") as f:
        f.write("hello\n")
    os.symlink(os.path.join(TMP, "src"), os.path.join(TMP, "src-link"))

    failed = []

    def run(fn, *args):
        name = fn.__name__[len("check_"):]
        try:
            fn(*args)
            print("ok   %s" % name, flush=True)
        except Exception as e:
            failed.append(name)
            print("FAIL %s: %s" % (name, e), flush=True)
            if not isinstance(e, AssertionError):
                traceback.print_exc()

    try:
        for fn in (check_help, check_version, check_usage_errors, check_push_local_errors,
                   check_unreachable, check_protocol, check_keys):
            run(fn)
        fake = Fake(os.path.join(TMP, "fake.sock"))
        try:
            for fn in (check_socket_choice, check_status, check_packages, check_peers,
                       check_schedule, check_push, check_push_wait, check_daemon_errors):
                run(fn, fake)
        finally:
            fake.stop()
        run(check_permission_denied)
    finally:
        if failed:
            print("kept %s for inspection" % TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    if failed:
        print("%d check(s) failed: %s" % (len(failed), ", ".join(failed)))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
