#!/usr/bin/env python3
"""Floods and memory (bdr.conf(5): max_unauth_connections,
max_unauth_per_address, handshake_timeout_s, max_connections_per_peer,
peer_memory; proto/wire.md, "Refusal").

1. A push of 20 MiB completes bit-exact while 300 silent TCP connections,
   each reopened as soon as the daemon closes it, hammer the receiver: from
   one other address (127.0.0.2), then from ten; the daemon logs the flood
   in counted lines, not a line per connection.
2. A pinned peer that opens more connections than max_connections_per_peer
   and parks offers with large manifests is refused past its memory budget
   with an error that says so, the daemon's RSS stays within the budget
   (plus a margin), and a real push from another peer still completes.
3. A destination that presents a key other than the pinned one fails the
   transfer at its first attempt, naming both keys; a connection reset
   during the handshake is retried and its error blames no key.

Usage: test_flood.py BDRD BDRCTL FAKE_PEER [TEST...]
"""
import os
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB, hq_and_branch  # noqa: E402

FAKE_PEER = None
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def stop_all(*sites):
    for s in sites:
        s.stop()


class Flood:
    """n silent TCP connections to port, from the addresses srcs (round
    robin), each reopened as soon as it is closed, by one thread."""

    def __init__(self, port, srcs, n=300):
        self.port, self.srcs, self.n = port, srcs, n
        self.sel = selectors.DefaultSelector()
        self.stopping = False
        self.opened = 0      # connections made, in all
        self.failed = 0      # connects that failed (refused, no port left)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((self.srcs[i % len(self.srcs)], 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", self.port))
            s.setblocking(False)
        except OSError:
            s.close()
            self.failed += 1
            return False
        self.sel.register(s, selectors.EVENT_READ, i)
        self.opened += 1
        return True

    def _run(self):
        down = list(range(self.n))
        while not self.stopping:
            while down and not self.stopping:
                if self._open(down[-1]):
                    down.pop()
                else:
                    time.sleep(0.01)
                    break
            for key, _ in self.sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    gone = not s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    self.sel.unregister(s)
                    s.close()
                    down.append(key.data)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def stop(self):
        self.stopping = True
        self.thread.join(30)


def _flood_push(root, srcs):
    hq, branch = hq_and_branch(root)
    branch.start()
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=13, total=20 * MiB)
    flood = Flood(branch.port, srcs)
    try:
        # the flood is up before the push starts
        T.wait_until(lambda: flood.opened >= 300, 60, what="300 flood connections")
        t0 = time.monotonic()
        res = hq.push("app", src, to="branch", timeout=400)
        dt = time.monotonic() - t0
        t = hq.transfer(res.transfer())
        T.log("push of 20 MiB during the flood: %.1f s, %d failed attempts before; flood "
              "opened %d connections (%d connects failed)"
              % (dt, t["attempts"], flood.opened, flood.failed))
        T.assert_same_tree(src, branch.current_tree("app"))
        # Never locked out: the flood only ever pushes out its own
        # connections (the busiest address's), never the peer's fresh one,
        # whatever the load, so not one attempt failed.
        assert t["attempts"] == 0, t
        # The flood was real (the daemon kept closing its connections to
        # make room), and was told in counted lines, not one per connection.
        T.wait_until(lambda: re.search(r" flood: .* ([1-9][0-9]*) of them to make room",
                                       branch.log_text()), 60,
                     what="the flood's summary line")
    finally:
        flood.stop()
    lines = branch.log_text().splitlines()
    summary = [x for x in lines if " flood: " in x]
    T.log("branch logged %d lines in all for %d flood connections; e.g. %s"
          % (len(lines), flood.opened, summary[-1]))
    assert len(lines) < 100 + flood.opened / 20, "about a line per connection: %d for %d" % (
        len(lines), flood.opened)
    stop_all(hq, branch)


def test_flood_from_one_address(root):
    """300 silent connections from 127.0.0.2, reopened as soon as closed:
    they hold at most max_unauth_per_address places; the pinned peer on
    127.0.0.1 pushes 20 MiB bit-exact."""
    _flood_push(root, ["127.0.0.2"])


def test_flood_from_many_addresses(root):
    """The same from ten addresses (30 each): more than the whole pool of
    64; the busiest addresses give way, the peer's fresh connection stays."""
    _flood_push(root, ["127.0.0.%d" % i for i in range(2, 12)])


def test_stranger_deadline(root):
    """A connection that never says HELLO is closed after
    handshake_timeout_s (1 here), not after connect_timeout_s (600 here,
    the deadline of connections the site opens itself)."""
    branch = T.Site(root, "branch")
    branch.limits.update(handshake_timeout_s="1", connect_timeout_s="600")
    branch.start()
    s = socket.create_connection(("127.0.0.1", branch.port), timeout=60)
    t0 = time.monotonic()
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        data = b""
    finally:
        s.close()
    dt = time.monotonic() - t0
    T.log("the silent connection was closed after %.1f s" % dt)
    assert data == b"", "the daemon sent %r to a silent stranger" % data[:32]
    assert dt < 60, dt
    assert "handshake timed out" in branch.log_text(), branch.log_tail()
    stop_all(branch)


def _vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def test_peer_memory_budget(root):
    """fl, a pinned peer, opens 8 connections (max_connections_per_peer 4)
    and on each parks 4 offers of 8 MiB manifests (all but the last byte
    sent). Past 4 connections and past its 128 MiB budget it is refused,
    with errors that say so; branch's RSS grows by less than the budget
    plus 64 MiB; hq's push meanwhile completes."""
    hq, branch = hq_and_branch(root)
    fl = T.Site(root, "fl")   # never started: only its key is used
    branch.add_peer(fl, address=False)
    budget = 128 * MiB
    branch.limits.update(peer_memory="128M", max_connections_per_peer="4")
    branch.start()
    hq.start()
    base = _vmrss(branch.proc.pid)
    p = subprocess.Popen([FAKE_PEER, "127.0.0.1", str(branch.port), "fl", fl.key, "branch",
                          branch.public_key, "8", "4", str(8 * MiB)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    events = []
    try:
        for line in p.stdout:
            ev = json.loads(line)
            events.append(ev)
            if ev["event"] == "holding":
                break
        rss = _vmrss(branch.proc.pid)
        ready = [e for e in events if e["event"] == "ready"]
        refused = [e for e in events if e["event"] == "error" and
                   "max_connections_per_peer" in e["message"]]
        over = [e for e in events if e["event"] == "done" and e["status"] == 2 and
                "memory budget" in e["message"]]
        T.log("fl: %d connections let in, %d refused; %d offers refused past the budget, "
              "e.g. %r" % (len(ready), len(refused), len(over), over[0]["message"] if over else None))
        T.log("branch VmRSS: %.1f MiB before, %.1f MiB with fl held (budget %d MiB)"
              % (base / MiB, rss / MiB, budget // MiB))
        assert len(ready) == 4, events
        assert len(refused) == 4, events
        assert "site 'fl' already has 4 connections here" in refused[0]["message"], refused
        assert over, "no offer was refused past the budget: %r" % events
        assert "site 'fl' is at its memory budget here" in over[0]["message"], over[0]
        assert "peer_memory 128.0 MiB" in over[0]["message"], over[0]
        assert over[0]["error"] == -105, over[0]   # -ENOBUFS
        parked = 4 * 4 - len(over)
        assert 1 <= parked <= 2, "%d offers parked under a 128 MiB budget" % parked
        assert rss - base < budget + 64 * MiB, "RSS grew by %.1f MiB" % ((rss - base) / MiB)
        log = branch.log_text()
        assert "warn site=branch peer=fl package=flood version=2 failed: site 'fl' is at its memory budget here" in log, branch.log_tail()
        # another peer's work goes on
        src = os.path.join(root, "src")
        T.make_tree(src, seed=14, total=4 * MiB)
        hq.push("app", src, to="branch", timeout=240)
        T.assert_same_tree(src, branch.current_tree("app"))
        assert branch.alive()
    finally:
        p.stdin.close()
        p.wait(30)
    stop_all(hq, branch)


def test_key_mismatch_fails_at_once(root):
    """hq pins for branch a key branch does not hold: the first attempt
    fails the transfer (no retry), naming the pinned and the presented key."""
    hq, branch = hq_and_branch(root)
    other = T.Site(root, "other")
    hq.peers = []
    hq.add_peer(branch, public_key=other.public_key)
    branch.start()
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=15, total=1 * MiB)
    res = hq.push_start("app", src, to="branch").wait(120)
    t = hq.transfer(res.transfer())
    T.log("transfer %s, attempts %d: %s" % (t["state"], t["attempts"], t["last_error"]))
    assert res.rc != 0, res
    assert t["state"] == "failed" and t["attempts"] == 1, t
    want = "site 'branch' presented key %s which is not the pinned key %s" % (
        branch.public_key, other.public_key)
    assert want in t["last_error"], t
    assert "not retried" in hq.log_text()
    stop_all(hq, branch)


class Slammer:
    """Accepts every connection, waits for the first bytes of the
    initiator's HELLO (so the connect itself has completed) and resets it:
    a network fault during the handshake."""

    def __init__(self):
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.address = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            self.accepted += 1
            a.settimeout(10)
            try:
                a.recv(4)
            except OSError:
                pass
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            a.close()

    def close(self):
        self.srv.close()


def test_reset_during_handshake_is_retried(root):
    """Connections reset during the handshake: retried, and the error is
    the network's ("connection reset by peer" or an EOF), never a key."""
    hq, branch = hq_and_branch(root)
    slam = Slammer()
    hq.peers = []
    hq.add_peer(branch, address=slam.address)
    hq.limits.update(retries="3", retry_delay_s="1")
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=16, total=1 * MiB)
    p = hq.push_start("app", src, to="branch")
    try:
        tid = T.wait_until(lambda: [e for e in p.lines if e.get("event") == "queued"], 30,
                           what="the push to be queued")[0]["transfer"]
        t = T.wait_until(lambda: (lambda t: t if t["attempts"] >= 2 else None)(hq.transfer(tid)),
                         60, what="two failed attempts")
        T.log("after %d attempts (%d connections reset): %s, %s"
              % (t["attempts"], slam.accepted, t["state"], t["last_error"]))
        assert t["state"] in ("queued", "sending"), t
        err = t["last_error"].lower()
        assert "handshake" in err, t
        assert "key" not in err and "pin" not in err, t
        assert "reset" in err or "end of file" in err, t
    finally:
        if p.running():
            p.kill()
        slam.close()
    stop_all(hq)


TESTS = [
    test_stranger_deadline,
    test_key_mismatch_fails_at_once,
    test_reset_during_handshake_is_retried,
    test_peer_memory_budget,
    test_flood_from_one_address,
    test_flood_from_many_addresses,
]

if __name__ == "__main__":
    if len(sys.argv) < 4:
        print("usage: %s BDRD BDRCTL FAKE_PEER [TEST...]" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    FAKE_PEER = os.path.abspath(sys.argv[3])
    sys.exit(T.main(TESTS, sys.argv[1:3] + sys.argv[4:]))
