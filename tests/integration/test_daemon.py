#!/usr/bin/env python3
"""bdrd as an operator runs it: --check-config and the exit statuses of
bdrd(8), reload (bdrctl reload and SIGHUP, good and broken files, sd_notify
around them), a corrupt file in the library repaired by a refetch, SIGTERM
of a sender in the middle of a transfer, and who may use the control socket.

usage: test_daemon.py BDRD BDRCTL [TEST...]   (TEST: a name below, with or
without its test_ prefix; none runs them all). Data goes under
$BDR_TEST_TMP (meson sets it) or /tmp; BDR_TEST_KEEP=1 keeps it.
"""
import os
import random
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402


hq_and_branch = T.hq_and_branch

# Every line bdrd writes outside the journal starts with its local time.
TS = "^" + T.LOG_TIME


def bdrd(*args, timeout=20):
    return T.run([T.BDRD] + list(args), timeout=timeout, check=False)


def config_lines(site):
    site.write_config()
    with open(site.conf) as f:
        return f.read().splitlines()


def broken_config(site):
    """Writes site's configuration with four problems added (an unknown
    key, two bad values, an unknown section); returns [(line, word)], the
    line each problem is on and a word its message must name."""
    lines = config_lines(site)
    # lines[0] is "[site]": the unknown key goes right under it
    lines[1:1] = ["colour = blue", "keep_versions = 0"]
    problems = [(2, "colour"), (3, "keep_versions")]
    lines += ["", "[limits]", "max_transfers = 0"]
    problems.append((len(lines), "max_transfers"))
    lines += ["", "[schedule night]"]
    problems.append((len(lines), "schedule"))
    lines += ["rate = 1M"]
    with open(site.conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return problems


def check_problems(text, conf, problems, what):
    """Every problem is reported as CONF:LINE: message naming its word."""
    for line, word in problems:
        prefix = "%s:%d: " % (conf, line)
        hits = [x for x in text.splitlines() if prefix in x]
        assert hits, "%s: no '%s...' line for the problem with %r:\n%s" % (what, prefix, word, text)
        assert any(word in x for x in hits), "%s: the line for %s does not name %r: %r" % (
            what, prefix, word, hits)


def log_since(site, offset):
    return site.log_text()[offset:]


# ---- 1 ----

def test_check_config_and_exit_status(root):
    """bdrd --check-config: 0 on a valid file, 1 with every problem as
    FILE:LINE: message on stderr, 1 for a file that is missing or cannot be
    read, 1 for a key file bdrd would refuse at start (missing, a
    directory, readable by others, malformed), named on its "key =" line;
    an unknown option is 2; a configuration whose key file is missing
    makes bdrd exit 3 with a log line naming it."""
    hq = T.Site(root, "hq")
    hq.site_opts["log_level"] = "debug"
    hq.write_config()
    p = bdrd("--check-config", "-c", hq.conf)
    assert p.returncode == 0 and not p.stderr.strip(), p
    # The key file is checked as bdrd checks it at start, on its line.
    nokey = T.Site(root, "nokey")
    nokey.write_config()
    with open(nokey.key) as f:
        good = f.read()
    key_line = [i + 1 for i, x in enumerate(config_lines(nokey)) if x.startswith("key =")][0]
    prefix = "%s:%d: key = %s: " % (nokey.conf, key_line, nokey.key)

    def refused(why, word):
        p = bdrd("--check-config", "-c", nokey.conf)
        T.log("--check-config, key file %s: exit %d: %s" % (why, p.returncode, p.stderr.strip()))
        assert p.returncode == 1 and p.stderr.startswith(prefix) and word in p.stderr, (why, p)

    os.chmod(nokey.key, 0o644)
    refused("readable by others", "chmod 600")
    for bad_text in ("not a key\n", good.strip() + "AAAA\n", ""):
        os.unlink(nokey.key)
        with open(os.open(nokey.key, os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
            f.write(bad_text)
        refused("holding %r" % bad_text, "malformed")
    os.unlink(nokey.key)
    os.mkdir(nokey.key, 0o700)
    refused("a directory", "not a regular file")
    os.rmdir(nokey.key)
    refused("missing", "No such file")

    bad = T.Site(root, "bad")
    problems = broken_config(bad)
    p = bdrd("--check-config", "-c", bad.conf)
    T.log("--check-config of a broken file: exit %d\n      %s"
          % (p.returncode, "\n      ".join(p.stderr.splitlines())))
    assert p.returncode == 1, p
    check_problems(p.stderr, bad.conf, problems, "--check-config")
    errs = [x for x in p.stderr.splitlines() if x.strip()]
    assert all(re.match(re.escape(bad.conf) + r":\d+: \S", x) for x in errs), errs
    assert len(errs) == len(problems), "expected %d problems, got %r" % (len(problems), errs)
    # bdrd without --check-config refuses the same file the same way
    p = bdrd("-c", bad.conf)
    assert p.returncode == 1, p
    check_problems(p.stderr, bad.conf, problems, "bdrd -c")

    missing = os.path.join(root, "no-such.conf")
    p = bdrd("--check-config", "-c", missing)
    assert p.returncode == 1 and missing in p.stderr, p
    p = bdrd("-c", missing)
    assert p.returncode == 1 and missing in p.stderr, p
    unreadable = os.path.join(root, "a-directory.conf")
    os.mkdir(unreadable)
    p = bdrd("--check-config", "-c", unreadable)
    assert p.returncode == 1 and unreadable in p.stderr, p
    if os.geteuid() != 0:   # root reads a file of mode 0
        os.chmod(hq.conf, 0)
        p = bdrd("--check-config", "-c", hq.conf)
        os.chmod(hq.conf, 0o644)
        assert p.returncode == 1 and hq.conf in p.stderr, p

    for args in (["--no-such-option"], ["-x"], ["-c"], ["-c", hq.conf, "extra"]):
        p = bdrd(*args)
        assert p.returncode == 2, (args, p)
        assert "usage" in p.stderr, (args, p)

    # The key file is missing: a runtime failure, status 3, named in the log.
    p = bdrd("-c", nokey.conf)
    T.log("bdrd with a missing key file: exit %d: %s" % (p.returncode, p.stderr.strip()))
    assert p.returncode == 3, p
    named = [x for x in p.stderr.splitlines() if nokey.key in x]
    assert named and re.match(TS + "error ", named[0]), p.stderr
    assert not os.path.exists(nokey.control), "a control socket was left behind"


# ---- 2 ----

def test_reload(root):
    """bdrctl reload and SIGHUP: a valid changed file takes effect (a new
    peer, log_level); a broken one is refused with every problem named (by
    bdrctl as FILE:LINE lines, in the log for SIGHUP), the old configuration
    stays in force and the daemon goes on serving. sd_notify: RELOADING=1
    then READY=1 around a reload, STOPPING=1 at SIGTERM."""
    hq, branch = hq_and_branch(root)
    branch.start()
    hq.start(keep_notify=True)
    src = os.path.join(root, "src")
    T.make_tree(src, seed=30, total=2 * MiB, big_files=False)

    def peer_names():
        return sorted(p["name"] for p in hq.ctl("peers")["peers"])

    assert peer_names() == ["branch"]
    # -- a valid change: one more peer, log_level debug --
    extra = T.Site(root, "branch2")   # never started: only its key is used
    hq.add_peer(extra)
    hq.site_opts["log_level"] = "debug"
    hq.write_config()
    off = len(hq.log_text())
    rc, res, err = hq.ctl("reload", check=False)
    assert rc == 0 and res == {}, (rc, res, err)
    got = hq.notify_wait("READY=1")
    assert "RELOADING=1" in got and got.index("RELOADING=1") < got.index("READY=1"), got
    assert peer_names() == ["branch", "branch2"]
    new = log_since(hq, off)
    T.log("log of the reload:\n      " + "\n      ".join(new.splitlines()))
    assert re.search(TS + r"info site=hq reload: configuration reloaded from %s$"
                     % re.escape(hq.conf), new, re.M), new
    assert re.search(TS + r"info site=hq reload: .*branch2", new, re.M), \
        "the reload does not log the added peer:\n" + new
    good_peers = peer_names()

    # -- a broken file: (a) bdrctl reload --
    problems = broken_config(hq)
    off = len(hq.log_text())
    rc, res, err = hq.ctl("reload", check=False)
    T.log("bdrctl reload of a broken file: exit %d\n      %s"
          % (rc, "\n      ".join(err.splitlines())))
    assert rc == 1 and res is None, (rc, res, err)
    assert "invalid_config" in err, err
    check_problems(err, hq.conf, problems, "bdrctl reload")
    hq.notify_wait("READY=1")
    assert hq.alive()
    assert "stays in force" in log_since(hq, off)
    assert peer_names() == good_peers

    # -- (b) SIGHUP --
    off = len(hq.log_text())
    hq.proc.send_signal(signal.SIGHUP)
    got = hq.notify_wait("READY=1")
    assert "RELOADING=1" in got, got
    T.wait_until(lambda: "stays in force" in log_since(hq, off), 10,
                 what="the log to refuse the file")
    new = log_since(hq, off)
    T.log("log of SIGHUP with a broken file:\n      " + "\n      ".join(new.splitlines()))
    errors = [x for x in new.splitlines() if re.match(TS + "error ", x)]
    assert any("stays in force" in x for x in errors), new
    check_problems("\n".join(errors), hq.conf, problems, "SIGHUP log")
    assert hq.alive()
    assert peer_names() == good_peers
    # still serving: a push goes through, with the old configuration
    off = len(hq.log_text())
    hq.push("app", src, to="branch", timeout=60)
    T.assert_same_tree(src, branch.current_tree("app"))
    assert peer_names() == good_peers
    # log_level debug, reloaded before the broken files, is in force
    assert re.search(TS + r"debug site=hq ", log_since(hq, off), re.M), \
        "no debug line while log_level = debug:\n" + log_since(hq, off)

    # -- a good file again, by SIGHUP: branch2 goes away --
    hq.peers = [p for p in hq.peers if p[0] != "branch2"]
    hq.site_opts["log_level"] = "info"
    hq.write_config()
    off = len(hq.log_text())
    hq.proc.send_signal(signal.SIGHUP)
    got = hq.notify_wait("READY=1")
    T.log("notify around a good SIGHUP reload: %r" % got)
    assert "RELOADING=1" in got and got.index("RELOADING=1") < got.index("READY=1"), got
    T.wait_until(lambda: "configuration reloaded" in log_since(hq, off), 10,
                 what="the reload line")
    assert peer_names() == ["branch"]

    hq.stop()
    got = hq.notify_wait("STOPPING=1", timeout=5)
    T.log("notify at SIGTERM: %r" % got)
    hq.close_notify()
    assert re.search(TS + r"info site=hq stop: ", hq.log_text(), re.M)
    branch.stop()


# ---- 3 ----

def corrupt_in_place(path, offset, nbytes, rng):
    """Overwrites nbytes at offset with other bytes, same inode and size."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(nbytes)
        new = bytes((b ^ (1 + rng.randrange(255))) for b in old)
        f.seek(offset)
        f.write(new)
        f.flush()
        os.fsync(f.fileno())
    assert os.path.getsize(path) == size


def test_refetch_corrupt_local_file(root):
    """A file of v1 in the receiver's library is corrupted in place (a bad
    held chunk). v2 reuses that file's chunks with an edit elsewhere in it,
    plus small edits to other files: the receiver's rebuild fails the file's
    BLAKE2b, asks for its bytes in full (NEED FORCE), rebuilds and activates
    v2 bit-exact, and logs a 'refetch' line naming the file."""
    hq, branch = hq_and_branch(root)
    branch.start()
    hq.start()
    v1 = os.path.join(root, "v1")
    files = T.make_tree(v1, seed=31, total=8 * MiB, random_share=1.0)
    hq.push("app", v1, to="branch", timeout=60)
    T.assert_same_tree(v1, branch.current_tree("app"))

    # the largest file: many chunks, a corrupted one in its first half
    victim = max(files, key=lambda f: os.path.getsize(os.path.join(v1, f)))
    size = os.path.getsize(os.path.join(v1, victim))
    held = os.path.join(branch.data, "packages", "app", "1", "tree", victim)
    st = os.stat(held)
    rng = random.Random(32)
    corrupt_in_place(held, size // 4, 512, rng)
    T.log("corrupted 512 bytes at %d of %s (%d bytes, %d links) in branch's library"
          % (size // 4, victim, size, st.st_nlink))

    # v2: the victim's tail edited (its first chunks, the bad one among them,
    # are reused), a couple of other files edited, one file added
    v2 = os.path.join(root, "v2")
    T.copy_tree(v1, v2)
    p = os.path.join(v2, victim)
    with open(p, "r+b") as f:
        f.seek(size - 4096)
        f.write(rng.randbytes(4096))
    others = [f for f in files if f != victim and os.path.getsize(os.path.join(v1, f)) > 8192]
    for f in others[:2]:
        with open(os.path.join(v2, f), "r+b") as fh:
            fh.seek(100)
            fh.write(rng.randbytes(100))
    T.write_file(os.path.join(v2, "added.bin"), rng.randbytes(20000))

    off = len(branch.log_text())
    res = hq.push("app", v2, to="branch", timeout=60, check=False)
    new = log_since(branch, off)
    refetch = [x for x in new.splitlines() if " refetch: " in x]
    T.log("push of v2: exit %d, final %r" % (res.rc, res.final))
    T.log("branch's refetch lines:\n      " + "\n      ".join(refetch))
    if not res.ok:
        raise AssertionError("push of v2 failed: %r\nbranch log:\n%s" % (res, new))
    assert res.final["version"] == 2 and res.final["state"] == "activated", res
    T.assert_same_tree(v2, branch.current_tree("app"))
    assert os.readlink(os.path.join(branch.data, "packages", "app", "current")) == "2"
    assert refetch, "branch's log has no refetch line:\n" + new
    assert any(victim in x for x in refetch), "no refetch line names %s:\n%s" % (victim, new)
    assert branch.status("app")["received"][-1]["state"] == "activated"
    hq.stop()
    branch.stop()


# ---- 4 ----

def test_sigterm_sender_during_transfer(root):
    """SIGTERM of the sender past 20% of a transfer over a slow link: it
    exits 0 within seconds, logging its stop; `bdrctl push --wait` exits 3
    (the daemon went away). Restarted, the sender resumes the transfer,
    which completes bit-exact having sent under 1.3x one transfer."""
    hq = T.Site(root, "hq")
    branch = T.Site(root, "branch")
    link = T.Link(branch.port, rate=16 * MiB)
    hq.add_peer(branch, address=link.address)
    branch.add_peer(hq, address=False)
    try:
        _sigterm_sender(root, hq, branch, link)
    finally:
        link.close()


def _sigterm_sender(root, hq, branch, link):
    branch.start()
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=40, total=48 * MiB, random_share=1.0)
    total = T.tree_size(src)
    past = threading.Event()
    seen = {}

    def on_event(ev):
        if ev["event"] == "progress" and not past.is_set() and \
                ev["bytes_sent"] >= 0.2 * ev["bytes_total"]:
            seen.update(ev)
            past.set()

    push = hq.push_start("app", src, "branch", on_event=on_event)
    if not past.wait(60):
        raise AssertionError("no progress event past 20%% before the push ended: %r"
                             % push.wait(30))
    tid = [e for e in push.lines if e.get("event") == "queued"][0]["transfer"]
    off = len(hq.log_text())
    t0 = time.monotonic()
    hq.stop(timeout=10)     # SIGTERM; must exit 0
    dt = time.monotonic() - t0
    T.log("SIGTERM at %d of %d bytes (%.0f%%): the sender exited 0 in %.2f s"
          % (seen["bytes_sent"], seen["bytes_total"],
             100.0 * seen["bytes_sent"] / seen["bytes_total"], dt))
    # (it flushes what it had queued, for at most 5 s: LINGER_MS)
    assert dt < 8, "the sender took %.1f s to stop" % dt
    new = log_since(hq, off)
    assert re.search(TS + r"info site=hq stop: ", new, re.M), "no stop line:\n" + new
    res = push.wait(10)
    T.log("push --wait: exit %d: %s" % (res.rc, res.stderr.strip()))
    assert res.rc == 3, res
    assert not os.path.exists(hq.control), "the control socket was left behind"

    hq.start()
    t = hq.transfer(tid)
    T.log("after the restart: %s, bytes_sent %d, last_error %r; %d bytes crossed the link so far"
          % (t["state"], t["bytes_sent"], t["last_error"], link.relayed))
    end = T.deadline(60)
    while True:
        t = hq.transfer(tid)
        if t["state"] == "activated":
            break
        assert t["state"] != "failed", t
        if time.monotonic() > end:
            raise AssertionError("transfer not activated within 60 s of the restart: %r\n%s"
                                 % (t, hq.log_tail()))
        time.sleep(0.2)
    T.assert_same_tree(src, branch.current_tree("app"))
    ratio = t["bytes_sent"] / total
    wire = link.relayed   # what really crossed the link, both connections
    T.log("resumed: status says %d bytes sent (%.3fx of %d bytes of random data); "
          "%d bytes crossed the link (%.3fx); attempts %d"
          % (t["bytes_sent"], ratio, total, wire, wire / total, t["attempts"]))
    assert ratio < 1.3, "the resumed transfer sent %.2fx the data" % ratio
    assert wire / total < 1.3, "%d bytes crossed the link for %d bytes" % (wire, total)
    asked = [int(x) for x in re.findall(r"receiving: (\d+) chunks to fetch", branch.log_text())]
    T.log("chunks branch asked for, per connection: %s" % asked)
    assert len(asked) >= 2 and asked[-1] < asked[0], \
        "the restarted sender did not resume (branch asked for %s chunks)" % asked
    hq.stop()
    branch.stop()
    # Status is what an operator reads: it must not claim fewer bytes than
    # crossed the wire (random data cannot take less than itself).
    # The write queue a stopping sender flushes counts too.
    assert t["bytes_sent"] >= 0.98 * wire, (
        "status bytes_sent %d is %.1f%% short of the %d bytes that crossed the link"
        % (t["bytes_sent"], 100.0 * (1 - t["bytes_sent"] / wire), wire))


# ---- 5 ----

def test_control_socket_permissions(root):
    """The control socket is mode 0660; uid 65534 cannot use it, neither
    through the file mode nor, with the mode loosened by hand, past the
    daemon's credential check (permission_denied, logged); root can."""
    if os.geteuid() != 0:
        raise T.Skip("needs root to run bdrctl as another uid")
    hq = T.Site(root, "hq")
    hq.start()
    st = os.stat(hq.control)
    assert stat.S_ISSOCK(st.st_mode), st
    assert stat.S_IMODE(st.st_mode) == 0o660, "control socket mode %o" % stat.S_IMODE(st.st_mode)
    assert st.st_uid == os.geteuid(), st

    def as_nobody():
        try:
            return subprocess.run([T.BDRCTL, "-s", hq.control, "--json", "status"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=20, user=65534, group=65534, extra_groups=[])
        except PermissionError as e:
            raise T.Skip("uid 65534 cannot run %s: %s" % (T.BDRCTL, e))

    p = as_nobody()
    T.log("uid 65534, socket as created: exit %d: %s" % (p.returncode, p.stderr.strip()))
    assert p.returncode in (3, 4), p
    # The mode is only the first fence: loosened by hand (and the path
    # made reachable), the daemon still refuses the uid.
    for d in (root, hq.dir):
        os.chmod(d, os.stat(d).st_mode | 0o011)
    os.chmod(hq.control, 0o666)
    off = len(hq.log_text())
    p = as_nobody()
    T.log("uid 65534, socket mode 0666: exit %d: %s" % (p.returncode, p.stderr.strip()))
    assert p.returncode == 4 and "permission_denied" in p.stderr, p
    new = log_since(hq, off)
    assert "65534" in new, "the refusal of uid 65534 is not logged:\n" + new
    # root may
    st = hq.status()
    assert {k: st[k] for k in ("transfers", "received", "sites", "fanout")} == {
        "transfers": [], "received": [], "sites": [],
        "fanout": {"tails_sealed": 0, "tails_sent": 0}}, st
    hq.stop()
    assert not os.path.exists(hq.control)


# ---- 6 ----

PRIORITIES = ("high", "medium", "low")


def grid_of(rules):
    """A 7x24 grid from (days, first hour, end hour, level) rules applied
    over all open (3), as bdr.conf(5) SCHEDULES reads them."""
    g = [[3] * 24 for _ in range(7)]
    for days, start, end, level in rules:
        for d in days:
            for h in range(start, end):
                g[d][h] = level
    return g


def iso_utc(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def windows(grid, now):
    """open_now, until and next_open of proto/control.md for each priority,
    at now (UTC): an edge is the first hour, within 8 days, whose level
    admits the priority (level > its index) differently from now."""
    out = {"open_now": {}, "until": {}, "next_open": {}}
    for p, name in enumerate(PRIORITIES):
        def admits(t):
            return grid[t.weekday()][t.hour] > p
        is_open, change = admits(now), None
        t = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while t <= now + timedelta(days=8):
            if admits(t) != is_open:
                change = iso_utc(t)
                break
            t += timedelta(hours=1)
        out["open_now"][name] = is_open
        out["until"][name] = change if is_open else None
        out["next_open"][name] = None if is_open else change
    return out


def narrow_rows(grid):
    """The grid as bdrctl prints it for an address without wide rates."""
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    return ["%-4s %s" % (days[d], "  ".join(".HMA"[x] for x in grid[d])) for d in range(7)]


def test_schedule_command(root):
    """bdrctl schedule SITE against a real bdrd with [site] timezone = UTC
    (started with TZ=JST-9, which the configuration overrides): for each address of the peer, in file order, its canonical schedule
    and rate, the grid the configuration describes, the rate of each hour
    (a percentage of the capacity resolved), a pulse, and what is open now
    for the daemon's own clock with the next edges; the human grid; a peer
    without addresses; unknown sites; a reload that closes an address."""
    hq = T.Site(root, "hq", timezone="UTC")
    branch = T.Site(root, "branch")   # never started: its key and port are used
    lonely = T.Site(root, "lonely")
    vpn_port = T.free_port()
    hq.add_peer(branch, address=["mpls", "vpn", "127.0.0.1:%d" % vpn_port])
    hq.add_peer(lonely, address=False)
    mpls = "\n".join(["[address mpls]", "host = " + branch.address,
                      "schedule = weekdays 08-18 high; weekend all closed",
                      "schedule = fri 18-22 medium",
                      "rate = 08-18 25%, 18-08 256K", "capacity = 10Mbit"])
    vpn = "\n".join(["[address vpn]", "host = [::1]:%d" % vpn_port,
                     "schedule = all all medium; daily 00-06 all", "rate = pulse 1M 30s"])
    hq.extra_config = mpls + "\n\n" + vpn
    # Started in another zone: [site] timezone is what counts.
    saved_tz = os.environ.get("TZ")
    os.environ["TZ"] = "JST-9"
    try:
        hq.start()
    finally:
        if saved_tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved_tz

    weekdays, weekend, every = range(0, 5), (5, 6), range(7)
    mpls_grid = grid_of([(weekdays, 8, 18, 1), (weekend, 0, 24, 0), ((4,), 18, 22, 2)])
    vpn_grid = grid_of([(every, 0, 24, 2), (every, 0, 6, 3)])
    open_grid = grid_of([])

    res = hq.ctl("schedule", "branch")
    T.log("schedule branch: now %s, timezone %s" % (res.get("now"), res.get("timezone")))
    assert set(res) == {"site", "timezone", "now", "addresses"}, res
    assert res["site"] == "branch" and res["timezone"] == "UTC", res
    now_s = res["now"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", now_s), \
        "now %r is not UTC local time with its offset (was [site] timezone applied?)" % now_s
    now = datetime.strptime(now_s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    skew = abs((datetime.now(timezone.utc) - now).total_seconds())
    assert skew < 30, "bdrd's now %s is %d s away from ours" % (now_s, skew)

    addrs = res["addresses"]
    assert [a["index"] for a in addrs] == [0, 1, 2], addrs
    expected = [
        dict(name="mpls", address=branch.address,
             schedule="weekdays 08-18 high; fri 18-22 medium; weekend all closed",
             grid=mpls_grid, rate="08-18 25%, 18-08 256K",
             rates_bps=[262144] * 8 + [312500] * 10 + [262144] * 6, pulse=None),
        dict(name="vpn", address="[::1]:%d" % vpn_port, schedule="all 06-24 medium",
             grid=vpn_grid, rate="pulse 1M 30s", rates_bps=None,
             pulse={"block_bytes": 1 << 20, "gap_ms": 30000}),
        dict(name=None, address="127.0.0.1:%d" % vpn_port, schedule="all all all",
             grid=open_grid, rate="unlimited", rates_bps=[0] * 24, pulse=None),
    ]
    for a, want in zip(addrs, expected):
        want = dict(want, index=a["index"], **windows(want["grid"], now))
        assert a == want, "address %d:\n got      %r\n expected %r" % (a["index"], a, want)
    # the inline address is open to all, always
    assert addrs[2]["open_now"] == {"high": True, "medium": True, "low": True}
    assert addrs[2]["until"] == {"high": None, "medium": None, "low": None}

    # What people see: the header, the grid, the rate row, the now line.
    p = T.run([T.BDRCTL, "-s", hq.control, "schedule", "branch"])
    blocks = p.stdout.split("\n\n")
    T.log("bdrctl schedule branch:\n      " + "\n      ".join(blocks[1].splitlines()))
    assert blocks[0].startswith("schedule of branch in UTC time, now "), p.stdout
    assert len(blocks) == 4, p.stdout
    lines = blocks[1].splitlines()
    assert lines[0] == "address 0 mpls %s (rate: 08-18 25%%, 18-08 256K)" % branch.address, lines
    assert lines[1] == "    " + "".join(" %02d" % h for h in range(24)), lines
    assert lines[2:9] == narrow_rows(mpls_grid), lines
    assert lines[9] == "rate 256K" + " " * 20 + "305K" + " " * 26 + "256K", lines
    assert lines[10].startswith("now: high "), lines
    lines = blocks[2].splitlines()
    assert lines[0] == "address 1 vpn [::1]:%d (rate: pulse 1M 30s)" % vpn_port, lines
    assert lines[2:9] == narrow_rows(vpn_grid), lines
    assert lines[9] == "pulse: blocks of 1M, each followed by 30s of quiet", lines
    lines = blocks[3].splitlines()
    assert lines[0] == "address 2 127.0.0.1:%d (rate: unlimited)" % vpn_port, lines
    assert lines[9] == ("now: high open, never closes; medium open, never closes; "
                        "low open, never closes"), lines

    # A peer that only connects to us has no address.
    res = hq.ctl("schedule", "lonely")
    assert res["site"] == "lonely" and res["addresses"] == [], res
    # Unknown sites, this site itself among them: exit 4, unknown_site.
    for site in ("nowhere", "hq"):
        rc, out, err = hq.ctl("schedule", site, check=False)
        assert rc == 4 and out is None and "unknown_site" in err, (site, rc, out, err)

    # A reload that closes mpls for good: never opens.
    hq.extra_config = mpls.replace("schedule = fri 18-22 medium", "schedule = all all closed") \
        + "\n\n" + vpn
    hq.write_config()
    hq.ctl("reload")
    a = hq.ctl("schedule", "branch")["addresses"][0]
    assert a["schedule"] == "all all closed" and a["grid"] == [[0] * 24] * 7, a
    assert a["open_now"] == {"high": False, "medium": False, "low": False}, a
    assert a["next_open"] == {"high": None, "medium": None, "low": None}, a
    p = T.run([T.BDRCTL, "-s", hq.control, "schedule", "branch"])
    assert ("now: high closed, never opens; medium closed, never opens; "
            "low closed, never opens") in p.stdout.split("\n\n")[1], p.stdout
    hq.stop()


JOURNAL_SOCKET = "/run/systemd/journal/socket"


def test_journal_fields(root):
    """Under systemd (stderr is the stream JOURNAL_STREAM names) every
    event is a native journal entry with SITE, EVENT, PEER, PACKAGE and
    VERSION fields, so `journalctl PACKAGE=app` finds a push's events;
    outside it, lines carry a timestamp. A stand-in journald (a datagram
    socket where libsystemd sends entries) receives them: root only, and
    only where no real journald listens."""
    if os.geteuid() != 0:
        raise T.Skip("needs root to stand in for journald at " + JOURNAL_SOCKET)
    if os.path.exists(JOURNAL_SOCKET):
        raise T.Skip("a journald is running here (%s exists)" % JOURNAL_SOCKET)
    made = [d for d in ("/run/systemd", "/run/systemd/journal") if not os.path.isdir(d)]
    for d in made:
        os.mkdir(d, 0o755)
    js = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        js.bind(JOURNAL_SOCKET)
        js.settimeout(1)
        hq, branch = hq_and_branch(root)
        branch.start()
        open(hq.log_path, "a").close()
        st = os.stat(hq.log_path)
        os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        try:
            hq.start()
        finally:
            del os.environ["JOURNAL_STREAM"]
        src = os.path.join(root, "src")
        T.make_tree(src, seed=3, total=256 * 1024)
        hq.push("app", src, "branch")
        entries = []

        def entry_of_app():
            try:
                while True:
                    d = js.recv(65536).decode(errors="replace")
                    entries.append(dict(l.split("=", 1) for l in d.splitlines() if "=" in l))
            except socket.timeout:
                pass
            return [e for e in entries if e.get("PACKAGE") == "app" and e.get("PEER") == "branch"]

        T.wait_until(entry_of_app, 30, what="a journal entry of package app to branch")
        e = entry_of_app()[0]
        assert e["SITE"] == "hq" and e["SYSLOG_IDENTIFIER"] == "bdrd", e
        assert e["PRIORITY"] in "3467" and e["EVENT"] and e["VERSION"] == "1", e
        assert e["MESSAGE"].startswith("site=hq peer=branch package=app"), e
        # nothing of those went to stderr; the branch (no journal) stamps its lines
        assert "package=app" not in hq.log_text(), hq.log_text()
        assert re.search(TS + r"info site=branch ", branch.log_text(), re.M), branch.log_text()
    finally:
        js.close()
        os.unlink(JOURNAL_SOCKET)
        for d in reversed(made):
            os.rmdir(d)


def test_version(root):
    """bdrd --version and -V print "bdrd VERSION", meson's project version
    (the one the Debian package's version starts with), and exit 0."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "meson.build")) as f:
        want = re.search(r"\bversion\s*:\s*'([^']+)'", f.read()).group(1)
    for arg in ("--version", "-V"):
        p = bdrd(arg)
        assert p.returncode == 0 and p.stdout == "bdrd %s\n" % want and not p.stderr, p


TESTS = [
    test_version,
    test_journal_fields,
    test_check_config_and_exit_status,
    test_reload,
    test_refetch_corrupt_local_file,
    test_sigterm_sender_during_transfer,
    test_control_socket_permissions,
    test_schedule_command,
]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
