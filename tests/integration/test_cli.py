#!/usr/bin/env python3
"""bdrctl against real daemons, for what an operator reads and scripts:
cancel and retry of one transfer, status's times and reasons, its exit
status when it shows failures, and unknown names refused with status 4.

usage: test_cli.py BDRD BDRCTL [TEST...]
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402


def ctl(site, *args):
    return T.run([T.BDRCTL, "-s", site.control] + list(args), check=False)


def test_cancel_and_retry(root):
    """A push to a site that is down waits with a reason; cancel ends it
    (state cancelled, push --wait of it ends, nothing is retried); retry
    queues it again and it completes once the site is up; cancel and retry
    of ended or unknown transfers are refused with a clear message."""
    hq, branch = T.hq_and_branch(root)
    hq.limits.update(retry_delay_s=3600)   # one attempt, then a long wait
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=5, total=1 * MiB)
    res = hq.push("app", src, "branch", wait=False)
    tid = res.final["transfer"]
    T.wait_until(lambda: hq.transfer(tid)["attempts"] >= 1, 60,
                 what="the first attempt to fail (branch is down)")
    t = hq.transfer(tid)
    assert t["state"] == "queued" and t["waiting"].startswith("retry at"), t
    assert t["queued_at"] and t["updated_at"] and t["activated_at"] is None, t
    p = ctl(hq, "status")
    assert p.returncode == 0, p
    assert re.search(r"app\s+branch\s+1\s+queued\s.*waits: retry at", p.stdout), p.stdout

    p = ctl(hq, "cancel", str(tid))
    assert p.returncode == 0 and p.stdout.strip() == "transfer %d: cancelled" % tid, p
    assert hq.transfer(tid)["state"] == "cancelled"
    assert "cancelled by an operator" in hq.transfer(tid)["last_error"]
    assert "transfer %d cancelled by an operator" % tid in hq.log_text()
    p = ctl(hq, "cancel", str(tid))
    assert p.returncode == 4 and "has ended (cancelled)" in p.stderr, p

    branch.start()
    p = ctl(hq, "retry", str(tid))
    assert p.returncode == 0 and p.stdout.strip() == "transfer %d: queued" % tid, p
    T.wait_until(lambda: hq.transfer(tid)["state"] == "activated", 60,
                 what="the retried transfer to be activated")
    T.assert_same_tree(src, branch.current_tree("app"))
    t = hq.transfer(tid)
    assert t["activated_at"], t
    p = ctl(hq, "retry", str(tid))
    assert p.returncode == 4 and "activated: nothing to retry" in p.stderr, p

    for cmd in ("cancel", "retry"):
        p = ctl(hq, cmd, "999999")
        assert p.returncode == 4 and "no transfer 999999" in p.stderr, p
        p = ctl(hq, cmd, "x1")
        assert p.returncode == 2 and "not a transfer number" in p.stderr, p


def test_cancel_running(root):
    """Cancelling a transfer while it sends stops the sender at once (the
    connection closes, the row stays cancelled), and push --wait of it ends
    (exit 1, naming the cancel) rather than waiting forever."""
    hq = T.Site(root, "hq")
    branch = T.Site(root, "branch")
    link = T.Link(branch.port, rate=2 * MiB)
    hq.add_peer(branch, address=link.address)
    branch.add_peer(hq, address=False)
    try:
        branch.start()
        hq.start()
        src = os.path.join(root, "src")
        T.make_tree(src, seed=6, total=40 * MiB, random_share=1.0)
        seen = {}

        def on_event(ev):
            if ev.get("event") == "progress" and ev.get("bytes_sent", 0) > 0:
                seen.setdefault("tid", ev.get("transfer"))

        push = hq.push_start("app", src, "branch", on_event=on_event)
        T.wait_until(lambda: "tid" in seen or any(
            t["state"] == "sending" for t in hq.status()["transfers"]), 60,
            what="the transfer to start sending")
        tid = [t for t in hq.status()["transfers"] if t["package"] == "app"][0]["transfer"]
        p = ctl(hq, "cancel", str(tid))
        assert p.returncode == 0, p
        res = push.wait(60)
        assert res.rc == 1 and "cancelled by an operator" in res.stderr, res
        assert hq.transfer(tid)["state"] == "cancelled"
        T.wait_until(lambda: "cancelled" in hq.log_text(), 10, what="the cancel in the log")
        assert not branch.has_package("app")
    finally:
        link.close()


def test_status_truth(root):
    """status of an unknown package is refused (4); a failed transfer makes
    status exit 5, with its reason in the table and on stderr."""
    hq, branch = T.hq_and_branch(root)
    hq.limits.update(retries=0, retry_delay_s=1)
    hq.start()
    p = ctl(hq, "status", "nosuch")
    assert p.returncode == 4 and "no package named 'nosuch'" in p.stderr, p
    src = os.path.join(root, "src")
    T.make_tree(src, seed=8, total=256 * 1024)
    tid = hq.push("app", src, "branch", wait=False).final["transfer"]
    T.wait_until(lambda: hq.transfer(tid)["state"] == "failed", 60,
                 what="the transfer to fail (branch is down, no retries)")
    p = ctl(hq, "status")
    assert p.returncode == 5 and "1 failed transfer shown" in p.stderr, p
    assert re.search(r"app\s+branch\s+1\s+failed\s", p.stdout), p.stdout
    p = ctl(hq, "--json", "status")
    assert p.returncode == 5, p


def test_push_wait_several_sites(root):
    """push --wait --to a,b prints a line per site and every site's end:
    with one site down (no retries) the other's activation is still shown,
    and the exit status says one failed."""
    hq = T.Site(root, "hq")
    b1, b2 = T.Site(root, "b1"), T.Site(root, "b2")
    for b in (b1, b2):
        hq.add_peer(b)
        b.add_peer(hq, address=False)
    hq.limits.update(retries=0)
    b1.start()
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=9, total=2 * MiB)
    p = T.run([T.BDRCTL, "-s", hq.control, "push", "app", src, "--to", "b1,b2", "--wait"],
              check=False, timeout=120)
    assert p.returncode == 1, p
    lines = p.stdout.splitlines()
    assert lines[0].startswith("importing ") and lines[1].startswith("imported version 1"), p.stdout
    assert "b1: activated app version 1: sent" in p.stdout, p.stdout
    assert re.search(r"^b2: failed: ", p.stdout, re.M), p.stdout
    assert "1 of 2 transfers failed" in p.stderr, p.stderr
    T.assert_same_tree(src, b1.current_tree("app"))


def test_push_wait_timeout(root):
    """push --wait to a site whose only address is closed all week says
    why it waits, and --timeout ends the wait (exit 6) while the transfer
    stays queued."""
    hq, branch = T.hq_and_branch(root)
    hq.peers = []
    hq.add_peer(branch, address="shut")
    hq.extra_config = "[address shut]\nhost = %s\nschedule = all all closed\n" % branch.address
    hq.start()
    src = os.path.join(root, "src")
    T.make_tree(src, seed=10, total=64 * 1024)
    p = T.run([T.BDRCTL, "-s", hq.control, "push", "app", src, "--to", "branch", "--wait",
               "--timeout", "3"], check=False, timeout=60)
    assert p.returncode == 6, p
    assert "stopped waiting after 3 s (--timeout)" in p.stderr, p.stderr
    assert re.search(r"^branch: waits: no address is open", p.stdout, re.M), p.stdout
    t = hq.status()["transfers"][0]
    assert t["state"] == "queued", t
    p = T.run([T.BDRCTL, "-s", hq.control, "push", "app", src, "--to", "branch",
               "--timeout", "3"], check=False)
    assert p.returncode == 2 and "--timeout is for --wait" in p.stderr, p


def test_json_errors_and_exit_codes(root):
    """With --json every error is one JSON document on stdout (code,
    message, exit) as well as a line on stderr, daemon errors and bdrctl's
    own alike; remove and status of an unknown package exit 4."""
    hq, branch = T.hq_and_branch(root)
    hq.start()
    p = ctl(hq, "--json", "remove", "nosuch")
    assert p.returncode == 4, p
    doc = json.loads(p.stdout)
    assert doc["error"]["code"] == "unknown_package" and doc["error"]["exit"] == 4, doc
    assert "no package named 'nosuch'" in p.stderr, p
    p = ctl(hq, "remove", "nosuch")
    assert p.returncode == 4 and p.stdout == "", p
    p = ctl(hq, "--json", "status", "nosuch")
    assert p.returncode == 4 and json.loads(p.stdout)["error"]["code"] == "unknown_package", p
    p = T.run([T.BDRCTL, "-s", os.path.join(root, "none.sock"), "--json", "peers"], check=False)
    assert p.returncode == 3, p
    assert json.loads(p.stdout) == {"error": {"code": "unreachable", "exit": 3, "message":
                                    p.stderr.strip()[len("bdrctl: "):]}}, p
    missing = os.path.join(root, "missing")
    p = ctl(hq, "--json", "push", "app", missing, "--to", "branch")
    assert p.returncode == 1, p
    doc = json.loads(p.stdout)
    assert doc["error"]["code"] == "local_file" and missing in doc["error"]["message"], doc


TESTS = [test_json_errors_and_exit_codes, test_cancel_and_retry, test_cancel_running, test_status_truth,
         test_push_wait_several_sites, test_push_wait_timeout]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
