#!/usr/bin/env python3
"""The crash campaign: a receiver killed (SIGKILL) at random moments of
pushes, round after round, whatever it was doing -- receiving chunks,
rebuilding, activating, applying retention (keep_versions = 2, so every
activation deletes a version).

After each kill, before the restart, the receiver's active version must be
a complete, bit-exact copy of some version that was pushed (contents,
modes, mtimes, symlinks), with no version on disk that fails to verify;
after the restart its status must agree with its library (a held version
is "activated", nothing held is "receiving"), nothing quarantined, no
partial version left; and the push must then complete, bit-exact.

Odd rounds kill at a moment drawn over the whole transfer (uniform, from
the offer on), where receiving chunks takes most of the time; even rounds
over its end, from the moment the receiver starts building the version in
staging: rebuild, activation, retention.

BDR_CAMPAIGN_ROUNDS (default 30, about a minute and a half) and BDR_CAMPAIGN_SEED
(default: from the clock; printed, so a failure can be replayed) set the
campaign; a person runs a long one with e.g. BDR_CAMPAIGN_ROUNDS=200.

usage: test_campaign.py BDRD BDRCTL [TEST...]
"""
import collections
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402

KEEP = 2
RESULTS = {}


def current_version(site):
    try:
        return int(os.readlink(os.path.join(site.data, "packages", "app", "current")))
    except FileNotFoundError:
        return None


def held_versions(site):
    d = os.path.join(site.data, "packages", "app")
    if not os.path.isdir(d):
        return []
    return sorted(int(x) for x in os.listdir(d) if x.isdigit())


def listing(site, sub):
    d = os.path.join(site.data, sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def last_phase(log):
    """What the receiver was doing when it was killed, from its last line
    about the package."""
    for line in reversed(log.splitlines()):
        for word, phase in ((" activated:", "after activation"), (" receiving:", "chunks"),
                            (" offer:", "offer/manifest"), (" held:", "held"),
                            (" connected:", "handshake"), (" start:", "idle")):
            if word in line:
                return phase
    return "idle"


def disk_phase(site, v, phase):
    """Refines the phase from what the kill left on disk."""
    if listing(site, "trash"):
        return "retention (deleting a version)"
    if any(os.path.isdir(os.path.join(site.data, "staging", x, "tree"))
           for x in listing(site, "staging")):
        return "rebuild (staging)"
    if v in held_versions(site) and phase != "after activation":
        return "activation (renamed, not yet answered)"
    return phase


def finishing(site, v, push):
    """Waits (polling the disk) until site builds version v in staging;
    False if v was activated or the push ended before that was seen."""
    prefix = "app.%d." % v
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(x.startswith(prefix) for x in listing(site, "staging")):
            return True
        if v in held_versions(site) or not push.running():
            return False
        time.sleep(0.002)
    raise AssertionError("version %d never reached staging" % v)


def check_library(site, sources, what):
    """The active version is a bit-exact copy of the version pushed under
    that number; every other version directory belongs to a held version."""
    cur = current_version(site)
    assert cur is not None, "%s: no active version" % what
    assert cur in sources, "%s: active version %d was never pushed" % (what, cur)
    if os.path.isdir(sources[cur]):
        T.assert_same_tree(sources[cur], site.current_tree("app"))
    return cur


def check_status(site, what, settled):
    """Status rows against the library. settled: no transfer may be under
    way (every row is final)."""
    held = held_versions(site)
    cur = current_version(site)
    st = site.status()
    for r in st["received"]:
        if r["package"] != "app":
            continue
        v, s = r["version"], r["state"]
        if v in held:
            assert s == "activated", "%s: version %d is held but its row says %r (%r)" % (
                what, v, s, r["last_error"])
        elif s == "receiving":
            assert not settled and v > cur, "%s: version %d is 'receiving', library at %d" % (
                what, v, cur)
    q = st["storage"]["quarantine"]
    assert q["trees"] == 0 and not listing(site, "quarantine"), "%s: quarantined %r" % (
        what, listing(site, "quarantine"))
    assert not listing(site, "staging") and not listing(site, "trash"), what
    if settled:
        assert not listing(site, "partial"), "%s: received data left: %r" % (
            what, listing(site, "partial"))


def mutate(rng, src, prev, v):
    """src = prev with a few files rewritten, one removed, one added."""
    if prev:
        shutil.copytree(prev, src, symlinks=True, copy_function=shutil.copy2)
    else:
        T.make_tree(src, seed=rng.randrange(1 << 30), total=6 * MiB, random_share=0.8)
        return
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(src) for f in fs
                   if not os.path.islink(os.path.join(dp, f)))
    for p in rng.sample(files, min(3, len(files))):
        T.write_file(p, rng.randbytes(rng.randrange(64 << 10, 1 << 20)))
    os.unlink(rng.choice([p for p in files if os.path.exists(p)]))
    T.write_file(os.path.join(src, "new%d.bin" % v), rng.randbytes(2 * MiB))


def test_receiver_kill_campaign(root):
    rounds = int(os.environ.get("BDR_CAMPAIGN_ROUNDS", "30"))
    seed = int(os.environ.get("BDR_CAMPAIGN_SEED", str(int(time.time()))))
    T.log("campaign: %d rounds, seed %d (BDR_CAMPAIGN_ROUNDS, BDR_CAMPAIGN_SEED)" % (rounds, seed))
    rng = random.Random(seed)
    hq, branch = T.hq_and_branch(root, keep_versions=KEEP)
    hq.limits["retry_delay_s"] = 1
    hq.limits["retries"] = 1000
    branch.start()
    hq.start()
    sources = {}

    def new_version():
        v = len(sources) + 1
        src = os.path.join(root, "src", str(v))
        mutate(rng, src, sources.get(v - 1), v)
        sources[v] = src
        old = v - 3   # the active one at a kill is v or v - 1: keep those
        if old in sources and os.path.isdir(sources[old]):
            shutil.rmtree(sources[old])
        return v, src

    # An uninterrupted push sets the range the kills are drawn from.
    v, src = new_version()
    hq.push("app", src, to="branch")
    v, src = new_version()
    hq_at = len(hq.log_text())
    push = hq.push_start("app", src, "branch")
    T.wait_until(lambda: "version=%d offer:" % v in hq.log_text()[hq_at:], 60, interval=0.005,
                 what="hq to offer version %d" % v)
    t0 = time.monotonic()
    assert finishing(branch, v, push)
    t1 = time.monotonic()
    assert push.wait(120).ok
    full, late = time.monotonic() - t0, time.monotonic() - t1
    T.log("a version takes %.2f s from its offer to its activation, %.2f s of it from its "
          "staging on" % (full, late))
    phases = collections.Counter()
    outcomes = collections.Counter()
    t_start = time.monotonic()
    for rnd in range(1, rounds + 1):
        v, src = new_version()
        before = current_version(branch)
        log_at = len(branch.log_text())
        hq_at = len(hq.log_text())
        push = hq.push_start("app", src, "branch")
        T.wait_until(lambda: "version=%d offer:" % v in hq.log_text()[hq_at:], 60,
                     interval=0.005, what="hq to offer version %d" % v)
        # Every other round aims at the end of the transfer, where it is
        # short: from the moment the receiver starts building the version
        # (staging appears) through activation and retention.
        if rnd % 2 == 0 and finishing(branch, v, push):
            delay = rng.uniform(0, 1.2 * late)
        else:
            delay = rng.uniform(0, 1.1 * full)
        # The random moment itself: what the campaign is about, not a wait
        # for an event.
        time.sleep(delay)
        branch.kill()
        phase = disk_phase(branch, v, last_phase(branch.log_text()[log_at:]))
        phases[phase] += 1
        what = "round %d (seed %d, version %d, killed %.3f s in, %s)" % (rnd, seed, v, delay, phase)
        cur = check_library(branch, sources, what + ", before the restart")
        assert cur in (before, v), "%s: active %d, expected %d or %d" % (what, cur, before, v)
        outcomes["new version active" if cur == v else "old version active"] += 1
        branch.start()
        check_status(branch, what + ", after the restart", settled=False)
        res = push.wait(120)
        assert res.ok and res.final["state"] == "activated", (what, res)
        assert check_library(branch, sources, what + ", after the push") == v
        check_status(branch, what + ", after the push", settled=True)
        assert held_versions(branch) == list(range(max(1, v - KEEP + 1), v + 1)), (
            what, held_versions(branch))
    took = time.monotonic() - t_start
    T.log("%d rounds in %.0f s; killed during: %s; at the kill: %s"
          % (rounds, took, dict(phases), dict(outcomes)))
    RESULTS.update(rounds=rounds, seed=seed, seconds=round(took))
    RESULTS.update({"phase " + k: n for k, n in phases.items()})
    hq.stop()
    branch.stop()


TESTS = [test_receiver_kill_campaign]

if __name__ == "__main__":
    rc = T.main(TESTS, sys.argv[1:])
    if RESULTS:
        print("measured: " + ", ".join("%s=%s" % kv for kv in RESULTS.items()))
    sys.exit(rc)
