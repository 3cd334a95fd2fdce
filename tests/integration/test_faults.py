#!/usr/bin/env python3
"""Faults at a receiver: its status rows agree with its library after a
restart and after a "held" answer, and a full disk during a push.

usage: test_faults.py BDRD BDRCTL [TEST...]   (TEST: a name below, with or
without its test_ prefix; none runs them all). Data goes under
$BDR_TEST_TMP (meson sets it) or /tmp; BDR_TEST_KEEP=1 keeps it.
"""
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402


def received(site, version, package="app"):
    for r in site.status()["received"]:
        if r["package"] == package and r["version"] == version:
            return r
    raise AssertionError("%s: no received row for %s version %d" % (site.name, package, version))


def partial_files(site):
    d = os.path.join(site.data, "partial")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def set_row(site, version, state, error=None, package="app", peer="hq"):
    db = sqlite3.connect(os.path.join(site.data, "bdr.db"))
    with db:
        db.execute("INSERT INTO received (package, version, peer, state, bytes_received,"
                   " started_ns, updated_ns, last_error) VALUES (?, ?, ?, ?, 0, 1, 1, ?)"
                   " ON CONFLICT (package, version) DO UPDATE SET state = excluded.state,"
                   " last_error = excluded.last_error",
                   (package, version, peer, state, error))
    db.close()


# ---- status against the library ----

def test_status_reconciled_at_start(root):
    """A receiver stopped after the activation rename but before it wrote
    its row (or with rows a crash left behind) says, once restarted, what
    its library holds: a version it holds is "activated"; a "receiving"
    row of a version it does not hold and cannot resume is "failed" with
    the reason; one it can resume (its received data is kept) stays
    "receiving"; the received data of a failed transfer is deleted."""
    hq, branch = T.hq_and_branch(root)
    branch.start()
    hq.start()
    for i in (1, 2):
        src = os.path.join(root, "src%d" % i)
        T.make_tree(src, seed=i, total=2 * MiB)
        hq.push("app", src, to="branch")
    assert received(branch, 2)["state"] == "activated"
    branch.stop()
    # What a SIGTERM between the activation rename and the row left:
    set_row(branch, 2, "receiving", "connection lost; the next attempt resumes")
    set_row(branch, 1, "failed", "the connection went")
    # A version newer than any held, interrupted before anything was kept:
    set_row(branch, 3, "receiving")
    # One with received data kept: resumable.
    set_row(branch, 4, "receiving")
    part = os.path.join(branch.data, "partial")
    os.makedirs(part, exist_ok=True)
    with open(os.path.join(part, "app.4.pack"), "wb") as f:
        f.write(b"x" * 4096)
    # A failed one whose received data was kept:
    set_row(branch, 5, "failed", "the destination refused")
    with open(os.path.join(part, "app.5.pack"), "wb") as f:
        f.write(b"x" * 4096)
    branch.start()
    rows = {v: received(branch, v) for v in (1, 2, 3, 4, 5)}
    T.log("after the restart: %s" % {v: (r["state"], r["last_error"]) for v, r in rows.items()})
    assert rows[2]["state"] == "activated" and not rows[2]["last_error"], rows[2]
    assert rows[1]["state"] == "activated", rows[1]
    assert rows[3]["state"] == "failed" and "interrupted" in rows[3]["last_error"], rows[3]
    assert rows[4]["state"] == "receiving", rows[4]
    assert rows[5]["state"] == "failed", rows[5]
    assert partial_files(branch) == ["app.4.pack"], partial_files(branch)
    st = branch.status()["storage"]
    assert st["partial"]["bytes"] >= 4096 and st["quarantine"]["trees"] == 0, st
    out = branch.ctl("status", check=False)
    hq.stop()
    branch.stop()


def test_status_reconciled_at_a_held_answer(root):
    """A stale "receiving" row of a version the receiver holds (left by a
    connection lost after the activation rename) is corrected, without a
    restart, the next time the receiver answers an offer "held"."""
    hq, branch = T.hq_and_branch(root)
    branch.start()
    hq.start()
    for i in (1, 2):
        src = os.path.join(root, "src%d" % i)
        T.make_tree(src, seed=i, total=1 * MiB)
        hq.push("app", src, to="branch")
    set_row(branch, 2, "receiving", "connection lost; the next attempt resumes")
    assert received(branch, 2)["state"] == "receiving"
    # hq forgets what it sent (as a sender restored from an old backup
    # would), so it offers version 1 again; branch, at 2, answers held
    hq.stop()
    db = sqlite3.connect(os.path.join(hq.data, "bdr.db"))
    with db:
        db.execute("DELETE FROM transfers")
        db.execute("DELETE FROM peer_versions")
    db.close()
    hq.start()
    at = len(branch.log_text())
    T.run([T.BDRCTL, "-s", hq.control, "distribute", "app", "--version", "1", "--to", "branch"])
    T.wait_until(lambda: " held: " in branch.log_text()[at:], 30,
                 what="branch to answer version 1 held")
    r = received(branch, 2)
    T.log("after the held answer: %s %r" % (r["state"], r["last_error"]))
    assert r["state"] == "activated" and not r["last_error"], r
    hq.stop()
    branch.stop()


# ---- a full disk ----

def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode:
        raise T.Skip("cannot mount a tmpfs: %s" % r.stderr.strip())


def test_disk_full_at_receiver(root):
    """The receiver's data directory on a 48 MiB file system; a push of 40
    MiB of new random data fills it. The push fails with an error that
    says so, the old version stays active and intact, the received data of
    the failed transfer is deleted (the disk has its room back), and the
    status says "failed" with the reason -- also after a restart."""
    if os.geteuid() != 0:
        raise T.Skip("needs root to mount a small tmpfs")
    hq, branch = T.hq_and_branch(root)
    shutil.rmtree(branch.data)
    _mount_tmpfs(branch.data, 48 * MiB)
    try:
        _disk_full(root, hq, branch)
    finally:
        for s in (hq, branch):
            if s.alive():
                s.stop()
        subprocess.run(["umount", "-l", branch.data], capture_output=True)


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _disk_full(root, hq, branch):
    branch.start()
    hq.start()
    src1 = os.path.join(root, "src1")
    T.make_tree(src1, seed=7, total=4 * MiB, random_share=1.0)
    hq.push("app", src1, to="branch")
    free_before = _free(branch.data)
    src2 = os.path.join(root, "src2")
    T.make_tree(src2, seed=8, total=40 * MiB, random_share=1.0)
    res = hq.push("app", src2, to="branch", check=False, timeout=120)
    assert not res.ok, res
    t = hq.transfer(res.transfer())
    T.log("push into a full disk: %r; at hq: %s %r" % (res, t["state"], t["last_error"]))
    assert t["state"] == "failed" and "space" in (t["last_error"] or "").lower(), t
    T.assert_same_tree(src1, branch.current_tree("app"))

    def check(when):
        r = received(branch, 2)
        T.log("%s: row %s %r; partial %s; free %d of %d bytes before"
              % (when, r["state"], r["last_error"], partial_files(branch), _free(branch.data),
                 free_before))
        assert r["state"] == "failed" and "space" in (r["last_error"] or "").lower(), r
        assert received(branch, 1)["state"] == "activated"
        assert partial_files(branch) == [], partial_files(branch)
        assert branch.status()["storage"]["partial"]["bytes"] == 0
        # what the failed transfer wrote is gone, give or take the database
        assert _free(branch.data) >= free_before - 2 * MiB, (_free(branch.data), free_before)
        T.assert_same_tree(src1, branch.current_tree("app"))

    check("after the failure")
    branch.stop()
    branch.start()
    check("after a restart")


TESTS = [
    test_status_reconciled_at_start,
    test_status_reconciled_at_a_held_answer,
    test_disk_full_at_receiver,
]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
