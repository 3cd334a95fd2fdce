#!/usr/bin/env python3
"""Pre-staged bundles (proto/bundle.md) end to end: a branch that no link
reaches receives versions carried by hand, bit-exact, and afterwards the
first network push to it is a delta; tampered, truncated and foreign
bundles are refused with a message naming the problem, and the branch's
library and status stay as they were.

usage: test_bundle.py BDRD BDRCTL [TEST...]
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402


def version_tree(site, package, version):
    return os.path.join(site.data, "packages", package, str(version), "tree")


def edit(src, files, seed, share=0.01):
    """Overwrites about share of the tree's bytes in place, in a few large
    files, and adds a file (a new release, as a corpus's next version)."""
    rng = random.Random(seed)
    big = sorted(f for f in files if os.path.getsize(os.path.join(src, f)) >= 256 * 1024)
    budget = int(T.tree_size(src) * share)
    for f in rng.sample(big, min(6, len(big))):
        p = os.path.join(src, f)
        n = min(budget // 6, os.path.getsize(p))
        with open(p, "r+b") as fh:
            fh.seek(rng.randrange(0, os.path.getsize(p) - n + 1))
            fh.write(rng.randbytes(n))
    T.write_file(os.path.join(src, "added-%d.txt" % seed), T.text_bytes(rng, 200 * 1024))


def import_only(site, src):
    """A new version in site's library, queued to a peer nobody answers at
    (what a site does when its only destination is the hand-carried one)."""
    res = site.push("app", src, to="elsewhere", wait=False)
    return res.event("imported")[0]["version"]


def bundle_create(site, path, *args):
    return site.ctl("bundle", "create", "app", "-o", path, *args)


def refused(site, path, words):
    rc, res, err = site.ctl("bundle", "import", path, check=False)
    assert rc == 1 and res is None, "bundle %s was not refused: rc %d, %r" % (path, rc, res)
    assert "[invalid_bundle]" in err and words in err, "refusal without %r: %s" % (words, err)
    T.log("refused %s: %s" % (os.path.basename(path), err.strip()))


def branch_state(site):
    """What must not change when a bundle is refused."""
    partial = os.path.join(site.data, "partial")
    staging = os.path.join(site.data, "staging")
    return (site.ctl("packages"), site.status(),
            sorted(os.listdir(partial)) if os.path.isdir(partial) else [],
            sorted(os.listdir(staging)) if os.path.isdir(staging) else [])


def sites(root):
    hq = T.Site(root, "hq")
    branch = T.Site(root, "branch")
    elsewhere = T.Site(root, "elsewhere")   # never started
    stranger = T.Site(root, "stranger")     # branch does not pin it
    hq.add_peer(branch)
    hq.add_peer(elsewhere)
    stranger.add_peer(elsewhere)
    branch.add_peer(hq, address=False)      # pinned; no link either way yet
    return hq, branch, stranger


def test_bundles_then_network_delta(root):
    hq, branch, stranger = sites(root)
    hq.start()
    branch.start()
    stranger.start()
    src = os.path.join(root, "src")
    files = T.make_tree(src, seed=11, total=24 * MiB, random_share=0.3)
    bundles = os.path.join(root, "carried")
    os.makedirs(bundles)
    b1 = os.path.join(bundles, "app-1.bdrb")

    # v1, whole
    assert import_only(hq, src) == 1
    c1 = bundle_create(hq, b1)
    assert c1["version"] == 1 and c1["base"] == 0, c1
    r1 = branch.ctl("bundle", "import", b1)
    assert r1["version"] == 1 and r1["from"] == "hq" and not r1["held"], r1
    T.assert_same_tree(version_tree(hq, "app", 1), branch.current_tree("app"))
    again = branch.ctl("bundle", "import", b1)
    assert again["held"], again

    # v2, against v1
    edit(src, files, seed=12)
    assert import_only(hq, src) == 2
    b2 = os.path.join(bundles, "app-2-base-1.bdrb")
    b2full = os.path.join(bundles, "app-2.bdrb")
    c2 = bundle_create(hq, b2, "--base", "1")
    c2full = bundle_create(hq, b2full, "--version", "2")
    T.log("v2 of %s: whole bundle %d bytes, --base 1 bundle %d bytes (%.2f%%)"
          % (T.fmt_bytes(c2full["version_bytes"]), c2full["bytes"], c2["bytes"],
             100.0 * c2["bytes"] / c2full["bytes"]))
    assert c2["bytes"] < c2full["bytes"] // 5, (c2, c2full)
    r2 = branch.ctl("bundle", "import", b2)
    assert r2["version"] == 2 and r2["base"] == 1, r2
    T.assert_same_tree(version_tree(hq, "app", 2), branch.current_tree("app"))
    got = {(r["version"], r["from"], r["state"]) for r in branch.status("app")["received"]}
    assert got == {(1, "hq", "activated"), (2, "hq", "activated")}, got

    # refusals: v3 tampered, truncated; a stranger's bundle
    edit(src, files, seed=13)
    assert import_only(hq, src) == 3
    b3 = os.path.join(bundles, "app-3-base-2.bdrb")
    bundle_create(hq, b3, "--base", "2")
    data = open(b3, "rb").read()
    before = branch_state(branch)
    tampered = os.path.join(bundles, "tampered.bdrb")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    open(tampered, "wb").write(bytes(flipped))
    refused(branch, tampered, "altered or damaged")
    truncated = os.path.join(bundles, "truncated.bdrb")
    open(truncated, "wb").write(data[:len(data) * 2 // 3])
    refused(branch, truncated, "truncated")
    foreign = os.path.join(bundles, "foreign.bdrb")
    assert import_only(stranger, src) == 1
    stranger.ctl("bundle", "create", "app", "-o", foreign)
    refused(branch, foreign, "not pinned")
    assert branch_state(branch) == before, "a refused bundle changed the branch"

    # the link comes up: v3 over the network is a delta against what the
    # bundles brought, though hq never sent branch anything
    res = hq.push("app", src, to="branch")
    t = hq.transfer(res.transfer())
    T.assert_same_tree(version_tree(hq, "app", 3), branch.current_tree("app"))
    T.log("v3 over the network: %d wire bytes (whole v2 bundle %d bytes, tree %s); "
          "bytes_saved %d" % (t["bytes_sent"], c2full["bytes"], T.fmt_bytes(T.tree_size(src)),
                              t["bytes_saved"]))
    assert t["bytes_sent"] < c2full["bytes"] // 10, (t, c2full)
    stranger.stop()
    branch.stop()
    hq.stop()


def test_base_bundle_needs_its_base(root):
    """A --base bundle at a site without the base: refused, named."""
    hq, branch, _ = sites(root)
    hq.start()
    branch.start()
    src = os.path.join(root, "src")
    files = T.make_tree(src, seed=21, total=4 * MiB)
    import_only(hq, src)
    edit(src, files, seed=22)
    import_only(hq, src)
    path = os.path.join(root, "app-2-base-1.bdrb")
    bundle_create(hq, path, "--base", "1")
    before = branch_state(branch)
    refused(branch, path, "import version 1 first")
    assert branch_state(branch) == before
    # bdrctl makes the file (with the user's rights): it refuses one that
    # exists itself, a local file error (exit 1), and leaves it as it was.
    with open(path, "rb") as f:
        kept = f.read()
    rc, _, err = hq.ctl("bundle", "create", "app", "-o", path, check=False)
    assert rc == 1 and "exists" in err, (rc, err)
    with open(path, "rb") as f:
        assert f.read() == kept, "an existing bundle was written over"
    rc, _, err = hq.ctl("bundle", "create", "app", "--version", "9", "-o",
                        os.path.join(root, "x"), check=False)
    assert rc == 4 and "[unknown_package]" in err, (rc, err)
    assert not os.path.exists(os.path.join(root, "x")), "a refused bundle left a file"
    assert not [n for n in os.listdir(root) if n.startswith("x.")], \
        "a refused bundle left its temporary file: %r" % os.listdir(root)
    branch.stop()
    hq.stop()


def test_parent_learns_of_an_imported_bundle(root):
    """A child that imported a bundle says so in its status report; its
    parent records the version as held there, and the next push is a delta
    against it: the manifest as a delta, the changed chunks compressed
    against the held files."""
    hq = T.Site(root, "hq")
    branch = T.Site(root, "branch")
    elsewhere = T.Site(root, "elsewhere")   # never started
    hq.add_peer(branch, relation="child")
    hq.add_peer(elsewhere)
    branch.add_peer(hq, relation="parent")  # it can reach hq to report
    hq.start()
    branch.start()
    src = os.path.join(root, "src")
    files = T.make_tree(src, seed=31, total=8 * MiB, random_share=0.3)
    assert import_only(hq, src) == 1
    b1 = os.path.join(root, "app-1.bdrb")
    bundle_create(hq, b1)
    branch.ctl("bundle", "import", b1)
    T.wait_until(lambda: any(r["site"] == "branch" and r["version"] == 1 and
                             r["state"] == "activated" for r in hq.status("app")["sites"]),
                 30, 0.1, "hq's roll-up to show branch holding v1")
    T.wait_until(lambda: "it holds version 1 (reported)" in open(hq.log_path).read(),
                 10, 0.1, "hq to record branch's v1")

    # v2 over the network: a delta against the bundle's v1
    edit(src, files, seed=32)
    res = hq.push("app", src, to="branch")
    t = hq.transfer(res.transfer())
    T.assert_same_tree(version_tree(hq, "app", 2), branch.current_tree("app"))
    log = open(hq.log_path).read()
    assert "version=2 offer: offering version (manifest" in log and \
        "delta against version 1" in log, log[-2000:]
    T.log("v2 after the v1 bundle: %d wire bytes for a %s tree" %
          (t["bytes_sent"], T.fmt_bytes(T.tree_size(src))))
    assert t["bytes_sent"] < T.tree_size(src) // 20, t
    branch.stop()
    hq.stop()


TESTS = [
    test_bundles_then_network_delta,
    test_parent_learns_of_an_imported_bundle,
    test_base_bundle_needs_its_base,
]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
