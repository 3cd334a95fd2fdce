#!/usr/bin/env python3
"""bdrd over an emulated WAN: two daemons in network namespaces of their
own, joined by a veth pair whose sender side is an 8 Mbit/s token bucket
filter (tc tbf), measured on that interface's own counters: a configured
rate limit, pulse mode, a schedule window that closes and reopens in the
middle of a transfer, and failover from a dead address to a live one.

    ns S (sender, hq)  10.77.0.1 ==veth [tbf 8mbit]== 10.77.0.2  ns R (receiver)

Both daemons run as `ip netns exec NS bdrd -c CONF`; their control sockets
are filesystem paths, so bdrctl reaches them from here. What the sender
puts on the wire is read from /sys/class/net/IF/statistics/{tx_bytes,
tx_packets} inside S (a sampler started with `ip netns exec`). tx_bytes
counts every frame with its Ethernet, IP and TCP headers; the rate limit
counts the bytes bdrd writes (bdr.conf(5), RATE LIMITS), so the figures
are given both raw and less 66 bytes of headers per frame (14 + 20 + 32:
TCP with timestamps), "payload".

Needs root and `ip netns`; skips with a message otherwise. The namespaces
are removed whatever happens.

usage: test_wan.py BDRD BDRCTL [TEST...]   (TEST: a name below, with or
without its test_ prefix; none runs them all). Data goes under
$BDR_TEST_TMP (meson sets it) or /tmp; BDR_TEST_KEEP=1 keeps it.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402

HDR = 14 + 20 + 32      # Ethernet + IPv4 + TCP with timestamps, per frame
PORT = 7411             # each daemon has a namespace of its own
SENDER_IP, RECEIVER_IP = "10.77.0.1", "10.77.0.2"

_nets = []              # every Wan set up, removed at exit whatever happens


def sh(args, check=True, timeout=30):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(args), p.returncode,
                                                    p.stderr.strip()))
    return p


# ---- the emulated WAN ----

SAMPLER = r"""
import os, sys, time
d = "/sys/class/net/%s/statistics/" % sys.argv[1]
iv = float(sys.argv[2])
def rd(name):
    fd = os.open(d + name, os.O_RDONLY)
    try:
        return os.read(fd, 64).decode().strip()
    finally:
        os.close(fd)
while True:
    t = time.monotonic()
    sys.stdout.write("%.6f %s %s\n" % (t, rd("tx_bytes"), rd("tx_packets")))
    sys.stdout.flush()
    time.sleep(max(0.0, iv - (time.monotonic() - t)))
"""


class Sampler:
    """tx_bytes and tx_packets of an interface of a namespace, every
    interval seconds, read inside it by a process of its own; samples are
    (monotonic time, tx_bytes, tx_packets), CLOCK_MONOTONIC being the same
    in every network namespace."""

    def __init__(self, ns, ifname, interval):
        self.samples = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SAMPLER,
                                      ifname, str(interval)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        T.wait_until(lambda: self.samples, 10, 0.02, "the first tx_bytes sample")

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 3:
                with self.lock:
                    self.samples.append((float(parts[0]), int(parts[1]), int(parts[2])))

    def settle(self, dt):
        """Until a sample taken dt seconds from now is in: the counters
        have caught up with what was sent before."""
        t = time.monotonic() + dt
        T.wait_until(lambda: self.last()[0] >= t, dt + 10, 0.02, "a tx_bytes sample")

    def last(self):
        with self.lock:
            return self.samples[-1]

    def since(self, t0):
        with self.lock:
            return [s for s in self.samples if s[0] >= t0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(5)


class Wan:
    """Two namespaces joined by a veth pair, 10.77.0.1/24 (sender side,
    tbf 8mbit) and 10.77.0.2/24."""

    def __init__(self, tag):
        uid = "%d%s" % (os.getpid() % 100000, tag)
        self.ns_s, self.ns_r = "bdrS" + uid, "bdrR" + uid
        self.if_s, self.if_r = "vs" + uid, "vr" + uid     # at most 15 characters
        self.samplers = []
        self.made = False

    def up(self):
        if os.geteuid() != 0:
            raise T.Skip("needs root for network namespaces (ip netns, veth, tc)")
        if not shutil.which("ip") or not shutil.which("tc"):
            raise T.Skip("needs the ip and tc commands (iproute2)")
        for ns in (self.ns_s, self.ns_r):       # leftovers of a killed run
            sh(["ip", "netns", "del", ns], check=False)
        p = sh(["ip", "netns", "add", self.ns_s], check=False)
        if p.returncode != 0:
            raise T.Skip("ip netns add failed (no network namespaces here?): %s"
                         % p.stderr.strip())
        self.made = True
        _nets.append(self)
        try:
            sh(["ip", "netns", "add", self.ns_r])
            sh(["ip", "link", "add", self.if_s, "type", "veth", "peer", "name", self.if_r])
            sh(["ip", "link", "set", self.if_s, "netns", self.ns_s])
            sh(["ip", "link", "set", self.if_r, "netns", self.ns_r])
            for ns, ifname, ip in ((self.ns_s, self.if_s, SENDER_IP),
                                   (self.ns_r, self.if_r, RECEIVER_IP)):
                sh(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", ifname])
                sh(["ip", "-n", ns, "link", "set", ifname, "up"])
                sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        except AssertionError as e:
            raise T.Skip("cannot build the veth pair between namespaces: %s" % e)
        p = sh(["ip", "netns", "exec", self.ns_s, "tc", "qdisc", "add", "dev", self.if_s, "root",
                "tbf", "rate", "8mbit", "burst", "32kbit", "latency", "400ms"], check=False)
        if p.returncode != 0:
            raise T.Skip("tc tbf is not available: %s" % p.stderr.strip())
        T.log("WAN: %s %s/24 [tbf 8mbit] <-veth-> %s %s/24" % (self.ns_s, SENDER_IP,
                                                                 self.ns_r, RECEIVER_IP))
        return self

    def down(self):
        for s in self.samplers:
            s.stop()
        self.samplers = []
        if self.made:
            for ns in (self.ns_s, self.ns_r):
                sh(["ip", "netns", "del", ns], check=False)
            self.made = False
        if self in _nets:
            _nets.remove(self)

    def wrapper(self, ns):
        return ["ip", "netns", "exec", ns]

    def tx(self):
        """(tx_bytes, tx_packets) of the sender's interface, now."""
        d = "/sys/class/net/%s/statistics/" % self.if_s
        p = sh(["ip", "netns", "exec", self.ns_s, "cat", d + "tx_bytes", d + "tx_packets"])
        b, n = p.stdout.split()
        return int(b), int(n)

    def sampler(self, interval):
        s = Sampler(self.ns_s, self.if_s, interval)
        self.samplers.append(s)
        return s


def wan_sites(root, wan, hq_addresses, extra, limits=None):
    """hq in S pushing to branch in R; hq's peer branch has the address
    lines hq_addresses; extra is the [address] sections of hq."""
    hq = T.Site(root, "hq", host=SENDER_IP, port=PORT, wrapper=wan.wrapper(wan.ns_s),
                extra_config=extra, timezone="UTC")
    branch = T.Site(root, "branch", host=RECEIVER_IP, port=PORT, wrapper=wan.wrapper(wan.ns_r))
    hq.add_peer(branch, address=hq_addresses)
    branch.add_peer(hq, address=False)
    if limits:
        hq.limits.update(limits)
    return hq, branch


def address_section(name, host, **keys):
    lines = ["[address %s]" % name, "host = " + host]
    lines += ["%s = %s" % kv for kv in keys.items()]
    return "\n".join(lines) + "\n"


def run_wan(tag, body):
    wan = Wan(tag).up()
    try:
        body(wan)
    finally:
        T.cleanup()     # daemons first: a namespace goes when its last process does
        wan.down()


# ---- figures from samples ----

def at(samples, t, field=1):
    """Counter at time t, linear between the samples around it."""
    if t <= samples[0][0]:
        return samples[0][field]
    for a, b in zip(samples, samples[1:]):
        if a[0] <= t <= b[0]:
            if b[0] == a[0]:
                return b[field]
            return a[field] + (b[field] - a[field]) * (t - a[0]) / (b[0] - a[0])
    return samples[-1][field]


def payload_at(samples, t):
    return at(samples, t, 1) - HDR * at(samples, t, 2)


def data_size(src):
    return T.tree_size(src)


def wait_state(site, tid, states, timeout, interval=0.05):
    def probe():
        t = site.transfer(tid)
        return t if t["state"] in states else None
    return T.wait_until(probe, timeout, interval, "transfer %d to be %s" % (tid, "/".join(states)))


def queued_id(push, timeout=30):
    T.wait_until(lambda: [e for e in push.lines if e.get("event") == "queued"], timeout, 0.02,
                 "the queued event")
    return [e for e in push.lines if e.get("event") == "queued"][0]["transfer"]


def push_sampled(root, wan, rate, seed, total, interval, timeout, **tree):
    """hq pushes a tree of random data to branch over one address with the
    given rate, its interface sampled every interval seconds; returns (hq,
    branch, data size, sampler, push start time, the sample before it)."""
    hq, branch = wan_sites(root, wan, ["wan"], address_section(
        "wan", "%s:%d" % (RECEIVER_IP, PORT), rate=rate))
    branch.start()
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=seed, total=total, random_share=1.0, **tree)
    smp = wan.sampler(interval)
    t_push = time.monotonic()
    base = smp.last()
    res = hq.push_start("app", src, "branch").wait(timeout)
    assert res.ok, "push failed: %r\n%s" % (res, hq.log_tail())
    T.assert_same_tree(src, branch.current_tree("app"))
    smp.settle(0.3)
    return hq, branch, data_size(src), smp, t_push, base


# ---- 1 ----

def test_rate_limit(root):
    """rate = 2Mbit (250000 B/s) on the sender's address, 4 MiB of random
    data: over every 10-second window of the transfer (its first second
    left out) the sender's interface carries 250000 B/s within 5%."""
    run_wan("a", lambda wan: _rate_limit(root, wan))


def _rate_limit(root, wan):
    rate = 250000
    hq, branch, size, smp, t_push, base = push_sampled(root, wan, "2Mbit", 71, 4 * MiB, 0.1,
                                                       120)
    s = smp.since(t_push - 1)
    final = smp.last()
    total = final[1] - base[1]
    # the transfer on the wire: from the first data to the last
    t_first = next(x[0] for x in s if x[1] - base[1] > 8192)
    t_end = next(x[0] for x in s if x[1] >= final[1] - 3000)
    start = t_first + 1.0
    T.log("%d bytes of random data; %d bytes (%d frames) on %s in %.1f s of sending "
          "(%.3fx the data)" % (size, total, final[2] - base[2], wan.if_s, t_end - t_first,
                               total / size))
    assert t_end - start >= 10, "the transfer lasted %.1f s: no 10-second window" % (
        t_end - t_first)
    raw, pay = [], []
    a = start
    while a + 10 <= t_end + 1e-9:
        raw.append((at(s, a + 10) - at(s, a)) / 10.0)
        pay.append((payload_at(s, a + 10) - payload_at(s, a)) / 10.0)
        a += 1.0
    T.log("10-second windows, one a second from %.1f s to %.1f s after the first data:"
          % (start - t_first, t_end - t_first))
    T.log("  raw tx_bytes B/s: %s" % " ".join("%.0f" % r for r in raw))
    T.log("  payload      B/s: %s" % " ".join("%.0f" % r for r in pay))
    T.log("  raw: %+.2f%% .. %+.2f%%; payload: %+.2f%% .. %+.2f%% of %d B/s"
          % ((min(raw) / rate - 1) * 100, (max(raw) / rate - 1) * 100,
             (min(pay) / rate - 1) * 100, (max(pay) / rate - 1) * 100, rate))
    for r in pay:
        assert abs(r / rate - 1) <= 0.05, "a 10-second window carried %.0f B/s of payload, " \
            "not %d +/- 5%%" % (r, rate)
    # the frames' headers are the kernel's, on top of the limit: about 4.5%
    # of a full 1514-byte frame
    for r in raw:
        assert 0.95 <= r / rate <= 1.05 + HDR / 1448.0, \
            "a 10-second window carried %.0f B/s on the interface" % r
    hq.stop()
    branch.stop()


# ---- 2 ----

def bursts(samples, base, quiet=0.5, min_delta=2000):
    """Bursts of the timeline: runs of samples that grew by more than
    min_delta bytes, apart by at least quiet seconds; each is (start, end,
    raw bytes, payload bytes). Small growths (ACKs) between are left out."""
    out, cur = [], None
    for a, b in zip(samples, samples[1:]):
        d = b[1] - a[1]
        if d <= min_delta:
            continue
        dp = d - HDR * (b[2] - a[2])
        if cur and a[0] - cur[1] < quiet:
            cur = [cur[0], b[0], cur[2] + d, cur[3] + dp]
        else:
            if cur:
                out.append(tuple(cur))
            cur = [a[0], b[0], d, dp]
    if cur:
        out.append(tuple(cur))
    return out


def test_pulse(root):
    """rate = pulse 64K 2s: the sender's interface, sampled every 50 ms,
    shows bursts of 64 KiB (within 10%: frames, messages) separated by
    about 2 s of quiet."""
    run_wan("b", lambda wan: _pulse(root, wan))


def _pulse(root, wan):
    block, gap = 64 * 1024, 2.0
    hq, branch, size, smp, t_push, base = push_sampled(root, wan, "pulse 64K 2s", 72, 1 * MiB,
                                                       0.05, 180, big_files=False)
    s = smp.since(t_push - 0.2)
    bs = bursts(s, base)
    T.log("%d bytes of random data in %d bursts:" % (size, len(bs)))
    t0 = bs[0][0]
    for i, (a, b, raw, pay) in enumerate(bs):
        T.log("  %6.2f s  %5.0f ms  %6d raw  %6d payload%s" % (
            a - t0, (b - a) * 1000, raw, pay,
            "" if i == 0 else "  (%.2f s after the last began, %.2f s of quiet)"
            % (a - bs[i - 1][0], a - bs[i - 1][1])))
    # the first burst also holds the handshake, the offer and the manifest;
    # the last is what was left
    mid = bs[1:-1]
    assert len(mid) >= 8, "only %d whole bursts" % len(mid)
    for a, b, raw, pay in mid:
        assert abs(pay / block - 1) <= 0.10, "a burst of %d bytes, not 64 KiB +/- 10%%" % pay
        assert abs(raw / block - 1) <= 0.10, "a burst of %d bytes on the interface" % raw
    starts = [b[0] for b in bs]
    periods = [y - x for x, y in zip(starts[1:], starts[2:])]
    quiets = [bs[i + 1][0] - bs[i][1] for i in range(1, len(bs) - 1)]
    T.log("whole bursts: %d..%d payload bytes (%d..%d raw); from one start to the next "
          "%.2f..%.2f s; quiet %.2f..%.2f s"
          % (min(b[3] for b in mid), max(b[3] for b in mid), min(b[2] for b in mid),
             max(b[2] for b in mid), min(periods), max(periods), min(quiets), max(quiets)))
    for p in periods:
        assert gap * 0.95 <= p <= gap * 1.15, "bursts %.2f s apart, not ~%.0f s" % (p, gap)
    for q in quiets:
        assert q >= gap * 0.8, "only %.2f s of quiet between bursts" % q
    hq.stop()
    branch.stop()


# ---- 3 ----

def test_window_closes_mid_transfer(root):
    """A low-priority push over rate = 1Mbit: past 30% the address's
    schedule becomes `all all high` and is reloaded; the transfer pauses
    within ~2 s (status paused, the interface quiet), status says why it
    waits; a high-priority push goes through meanwhile; the schedule is
    opened again and reloaded: the transfer resumes, completes bit-exact,
    and the interface carried under 1.15x one transfer (no verified chunk
    sent twice)."""
    run_wan("c", lambda wan: _window(root, wan))


def _window(root, wan):
    host = "%s:%d" % (RECEIVER_IP, PORT)

    def section(sched):
        return address_section("wan", host, rate="1Mbit", schedule=sched)
    hq, branch = wan_sites(root, wan, ["wan"], section("all all all"))
    branch.start()
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=73, total=4 * MiB, random_share=1.0)
    size = data_size(src)
    urgent = os.path.join(root, "urgent")
    T.make_tree(urgent, seed=74, total=256 * 1024, random_share=1.0, big_files=False)
    smp = wan.sampler(0.05)
    base = smp.last()
    past = threading.Event()
    seen = {}

    def on_event(ev):
        if ev["event"] == "progress" and not past.is_set() and \
                ev["bytes_sent"] >= 0.3 * ev["bytes_total"]:
            seen.update(ev)
            past.set()

    push = hq.push_start("app", src, "branch", on_event=on_event, priority="low")
    tid = queued_id(push)
    if not past.wait(120):
        raise AssertionError("no progress past 30%%: %r" % push.wait(10))

    # -- close the window to low --
    hq.extra_config = section("all all high")
    hq.write_config()
    t_reload = time.monotonic()
    hq.ctl("reload")
    t = wait_state(hq, tid, ("paused",), 10)
    t_paused = time.monotonic()
    T.log("closed at %d of %d bytes (%.0f%%): status 'paused' %.2f s after the reload"
          % (seen["bytes_sent"], seen["bytes_total"],
             100.0 * seen["bytes_sent"] / seen["bytes_total"], t_paused - t_reload))
    assert t_paused - t_reload <= 2.5, "paused %.2f s after the reload" % (t_paused - t_reload)
    # the interface falls quiet: the last frame of data, then nothing
    time.sleep(3)
    s = smp.since(t_reload - 1)
    last_data = max(b[0] for a, b in zip(s, s[1:]) if b[1] - a[1] > 1000)
    quiet_from = at(s, t_paused + 0.5)
    grew = smp.last()[1] - quiet_from
    T.log("the last data frame left %.2f s after the reload; %d bytes in the %.1f s after "
          "(keepalives, FIN)" % (last_data - t_reload, grew, smp.last()[0] - t_paused - 0.5))
    assert last_data - t_reload <= 2.5, "data went out %.2f s after the reload" % (
        last_data - t_reload)
    assert grew < 2000, "%d bytes left while paused" % grew
    st = hq.ctl("status")
    t = [x for x in st["transfers"] if x["transfer"] == tid][0]
    T.log("status while closed: state %s, bytes_sent %d, waiting %r, last_error %r"
          % (t["state"], t["bytes_sent"], t["waiting"], t["last_error"]))
    assert t["state"] == "paused", t
    assert t["waiting"] and "low" in t["waiting"] and ("window" in t["waiting"] or
                                                       "open" in t["waiting"]), t
    lines = [x for x in hq.log_text().splitlines() if " paused: " in x]
    assert lines, "no 'paused' line in the sender's log"
    T.log("sender: " + lines[-1])

    # -- a high-priority push goes through the closed window --
    before = smp.last()[1]
    t_h = time.monotonic()
    res = hq.push_start("urgent", urgent, "branch", priority="high").wait(60)
    assert res.ok, "the high-priority push failed: %r\n%s" % (res, hq.log_tail())
    T.assert_same_tree(urgent, branch.current_tree("urgent"))
    smp.settle(0.5)
    high_bytes = smp.last()[1] - before
    T.log("a high-priority push of %d bytes went through in %.1f s (%d bytes on the "
          "interface); the low one is %s" % (data_size(urgent), time.monotonic() - t_h,
                                             high_bytes, hq.transfer(tid)["state"]))
    assert hq.transfer(tid)["state"] == "paused"

    # -- open again --
    hq.extra_config = section("all all all")
    hq.write_config()
    t_open = time.monotonic()
    hq.ctl("reload")
    wait_state(hq, tid, ("sending", "activated"), 10)
    t_sending = time.monotonic()
    before_resume = smp.last()[1]
    T.wait_until(lambda: smp.last()[1] - before_resume > 20000, 10, 0.05,
                 "data on the interface after the reopening")
    T.log("reopened: status 'sending' %.2f s after the reload, data flowing %.2f s after it"
          % (t_sending - t_open, time.monotonic() - t_open))
    res = push.wait(180)
    assert res.ok, "the low-priority push failed: %r\n%s" % (res, hq.log_tail())
    T.assert_same_tree(src, branch.current_tree("app"))
    smp.settle(0.5)
    total = smp.last()[1] - base[1] - high_bytes
    frames = smp.last()[2] - base[2]
    t = hq.transfer(tid)
    asked = [int(x) for x in re.findall(r"package=app version=1 receiving: (\d+) chunks to fetch",
                                        branch.log_text())]
    T.log("done: %d bytes of random data; the interface carried %d bytes for it (%.3fx; "
          "%.3fx less frame headers); status bytes_sent %d (%.3fx); chunks asked for per "
          "connection: %s" % (size, total, total / size,
                              (total - HDR * frames) / size if frames else 0,
                              t["bytes_sent"], t["bytes_sent"] / size, asked))
    assert total < 1.15 * size, "%d bytes on the wire for %d bytes" % (total, size)
    assert len(asked) >= 2 and asked[-1] < asked[0], \
        "the reopened transfer did not resume (chunks asked for: %s)" % asked
    hq.stop()
    branch.stop()


# ---- 4 ----

def test_failover(root):
    """The peer's first address is a port nobody listens on, retries = 1,
    retry_delay_s = 1: the push fails there twice, then goes to the second
    address and succeeds; the sender logs a 'failover' line; status shows
    the attempts and the last error on the way."""
    run_wan("d", lambda wan: _failover(root, wan))


def _failover(root, wan):
    dead = "%s:%d" % (RECEIVER_IP, PORT + 88)
    live = "%s:%d" % (RECEIVER_IP, PORT)
    hq, branch = wan_sites(root, wan, ["dead", "live"],
                           address_section("dead", dead) + "\n" + address_section("live", live),
                           limits={"retries": 1, "retry_delay_s": 1})
    branch.start()
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=75, total=512 * 1024, random_share=1.0, big_files=False)
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                st = hq.ctl("status", check=False, timeout=10)
            except Exception:
                st = None
            if isinstance(st, tuple) and st[0] in (0, 5) and st[1]:
                for x in st[1]["transfers"]:
                    v = (x["state"], x["attempts"], x["last_error"], x["waiting"])
                    if not seen or seen[-1] != v:
                        seen.append(v)
            time.sleep(0.03)
    th = threading.Thread(target=watch, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        res = hq.push_start("app", src, "branch").wait(60)
    finally:
        stop.set()
        th.join(15)
    dt = time.monotonic() - t0
    assert res.ok, "push failed: %r\n%s" % (res, hq.log_tail())
    T.assert_same_tree(src, branch.current_tree("app"))
    T.log("pushed in %.1f s; status on the way (state, attempts, last_error, waiting):" % dt)
    for v in seen:
        T.log("  %r" % (v,))
    log = hq.log_text()
    fails = [x for x in log.splitlines() if "connecting to %s: " % dead in x]
    retry = [x for x in log.splitlines() if " retry: " in x]
    failover = [x for x in log.splitlines() if " failover: " in x]
    starts = re.findall(r"starting transfer \d+ on address (\d+)", log)
    T.log("sender: %d failed connects to %s; addresses of the attempts: %s"
          % (len(fails), dead, starts))
    for x in retry + failover:
        T.log("sender: " + x)
    assert starts == ["0", "0", "1"], "attempts on addresses %s, expected 0, 0, 1" % starts
    assert len(fails) == 2, "%d failed connects to the dead address" % len(fails)
    assert failover, "no 'failover' line in the sender's log:\n" + hq.log_tail()
    assert any(a == 1 and e and "refused" in e for _, a, e, _w in seen), \
        "status never showed the first failed attempt: %r" % seen
    assert any(w and w.startswith("retry at") for _, _a, _e, w in seen), \
        "status never said when the retry was due: %r" % seen
    final = hq.transfer(res.transfer())
    assert final["state"] == "activated", final
    hq.stop()
    branch.stop()


TESTS = [
    test_rate_limit,
    test_pulse,
    test_window_closes_mid_transfer,
    test_failover,
]

if __name__ == "__main__":
    try:
        rc = T.main(TESTS, sys.argv[1:])
    finally:
        T.cleanup()
        for w in list(_nets):
            w.down()
    sys.exit(rc)
