#!/usr/bin/env python3
"""A package belongs to its origin (bdr.conf(5), ORIGINS): real daemons on
127.0.0.1.

- flat: hq owns app; branch pins hq and a rogue peer. rogue's own version
  1000 of app is refused with both sites named, branch's library is
  unchanged, rogue's REMOVE is refused, and hq's next push activates and
  says so truthfully.
- first accept: a package branch's file pins to hq cannot be claimed by
  rogue even first; one it does not pin goes to whoever sends it first (the
  documented limit), and is then that site's.
- tree: central -> region -> dp; a compromised region's own version of
  central's package is refused at the dp, naming both sites.
- held: a site that holds another manifest under the same version number
  (its origin's data lost and the version made again) makes the push fail
  with the reason; bdrctl push --wait never says "activated".

usage: test_origin.py BDRD BDRCTL [TEST...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402


class Site(T.Site):
    """A site whose [peer NAME] sections may carry more keys: peer_keys maps
    a peer's name to lines written under its section."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.peer_keys = {}

    def write_config(self):
        super().write_config()
        with open(self.conf) as f:
            text = f.read()
        for name, lines in self.peer_keys.items():
            text = text.replace("[peer %s]\n" % name, "[peer %s]\n%s\n" % (name, lines))
        with open(self.conf, "w") as f:
            f.write(text)


def flat(root):
    """hq and rogue both push to branch; branch pins both (they connect to
    it), with the default accept (own: each sends its own packages)."""
    hq = Site(root, "hq")
    rogue = Site(root, "rogue")
    branch = Site(root, "branch")
    hq.add_peer(branch)
    rogue.add_peer(branch)
    branch.add_peer(hq, address=False)
    branch.add_peer(rogue, address=False)
    return hq, rogue, branch


def next_version_is(site, package, version):
    """Makes site's next import of package take number version: the
    library's record of a removed package's highest number (DIR/removed)."""
    d = os.path.join(site.data, "removed")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, package), "w") as f:
        f.write("%d\n" % (version - 1))


def push_text(site, package, src, to):
    """bdrctl push --wait as an operator runs it: (exit status, stdout, stderr)."""
    p = T.run([T.BDRCTL, "-s", site.control, "push", package, src, "--to", to, "--wait"],
              timeout=300, check=False)
    return p.returncode, p.stdout, p.stderr


def current_version(site, package):
    return int(os.readlink(os.path.join(site.data, "packages", package, "current")))


def refusal(site, text, once=True):
    """The line of site's log that contains text: the only one (once), or
    the first (a REMOVE refused is sent again, and refused again)."""
    lines = [ln for ln in site.log_text().splitlines() if text in ln]
    assert lines and (len(lines) == 1 or not once), \
        "expected %s line with %r in the log of %s, got %r" % (
            "one" if once else "a", text, site.name, lines)
    return lines[0]


def test_flat_rogue_is_refused(root):
    hq, rogue, branch = flat(root)
    for s in (branch, hq, rogue):
        s.start()
    v1, evil, v2 = (os.path.join(root, n) for n in ("v1", "evil", "v2"))
    T.make_tree(v1, seed=1, total=2 * MiB)
    T.make_tree(evil, seed=66, total=1 * MiB)
    T.make_tree(v2, seed=2, total=2 * MiB)

    hq.push("app", v1, "branch")
    T.assert_same_tree(v1, branch.current_tree("app"))

    # rogue's own content as version 1000 of hq's package.
    next_version_is(rogue, "app", 1000)
    rc, out, err = push_text(rogue, "app", evil, "branch")
    want = ("package app belongs to origin hq (key %s), refusing version 1000 signed by rogue "
            "(key %s)" % (hq.public_key, rogue.public_key))
    assert rc != 0, "rogue's push succeeded: %r %r" % (out, err)
    assert "activated" not in out, out
    assert want in out + err, "rogue is told why: %r %r" % (out, err)
    line = refusal(branch, want)
    assert T.log_level(line) == "warn" and "site=branch" in line and "peer=rogue" in line \
        and "package=app" in line and "version=1000" in line, line
    assert current_version(branch, "app") == 1
    assert not os.path.exists(os.path.join(branch.data, "packages", "app", "1000"))
    T.assert_same_tree(v1, branch.current_tree("app"))
    T.log("rogue's version 1000 refused: %s" % want)

    # rogue's REMOVE: refused, the package stays.
    rogue.ctl("remove", "app", "--from", "branch")
    T.wait_until(lambda: "removal refused" in branch.log_text(), 30, 0.1,
                 "branch to refuse rogue's removal")
    line = refusal(branch, "removal refused", once=False)
    assert "peer=rogue" in line and "package=app" in line and \
        "package app belongs to origin hq (key %s); rogue" % hq.public_key in line, line
    assert "asked to remove the package" not in branch.log_text()
    T.assert_same_tree(v1, branch.current_tree("app"))

    # hq's next push: activated, bit-exact, and push --wait says so.
    rc, out, err = push_text(hq, "app", v2, "branch")
    assert rc == 0, (out, err, hq.log_tail())
    assert "branch: activated app version 2" in out, out
    assert current_version(branch, "app") == 2
    T.assert_same_tree(v2, branch.current_tree("app"))
    # And still after a restart: the origin is durable.
    branch.stop()
    branch.start()
    next_version_is(rogue, "app", 2000)
    rc, out, err = push_text(rogue, "app", evil, "branch")
    assert rc != 0 and "package app belongs to origin hq" in out + err, (out, err)
    T.assert_same_tree(v2, branch.current_tree("app"))


def test_first_accept_and_pins(root):
    hq, rogue, branch = flat(root)
    branch.peer_keys["hq"] = "packages = tools"   # hq is the origin of tools
    for s in (branch, hq, rogue):
        s.start()
    src, evil = os.path.join(root, "src"), os.path.join(root, "evil")
    T.make_tree(src, seed=5, total=1 * MiB)
    T.make_tree(evil, seed=55, total=1 * MiB)

    # rogue first, with a high number: refused though branch never saw tools.
    next_version_is(rogue, "tools", 1000)
    rc, out, err = push_text(rogue, "tools", evil, "branch")
    assert rc != 0 and "activated" not in out, (out, err)
    assert "package tools belongs to origin hq (bdr.conf), and rogue may send only the " \
        "packages it originates (accept = own)" in out + err, (out, err)
    assert not branch.has_package("tools")
    hq.push("tools", src, "branch")
    T.assert_same_tree(src, branch.current_tree("tools"))

    # Not pinned, never seen: the first sender's (the documented limit)...
    rogue.push("gadget", evil, "branch")
    T.assert_same_tree(evil, branch.current_tree("gadget"))
    # ... and hq may not send it: its packages are tools.
    rc, out, err = push_text(hq, "gadget", src, "branch")
    assert rc != 0 and "hq may not send package gadget: its packages are tools" in out + err, \
        (out, err)
    T.assert_same_tree(evil, branch.current_tree("gadget"))

    # A bundle follows the same rule: rogue's own tools, by hand, refused.
    path = os.path.join(root, "tools.bdrb")
    rogue.ctl("bundle", "create", "tools", "-o", path)
    rc, res, err = branch.ctl("bundle", "import", path, check=False)
    assert rc != 0, res
    assert "bundle from rogue refused: package tools belongs to origin hq (bdr.conf), and rogue " \
        "may send only the packages it originates (accept = own)" in err, err
    T.assert_same_tree(src, branch.current_tree("tools"))


def test_tree_middle_site_cannot_inject(root):
    central = Site(root, "central")
    region = Site(root, "region")
    dp = Site(root, "dp", role="dp")
    central.add_peer(region, relation="child")
    region.add_peer(central, relation="parent")
    region.add_peer(dp, relation="child")
    dp.add_peer(region, address=False, relation="parent")
    for s in (dp, region, central):
        s.start()
    v1, evil = os.path.join(root, "v1"), os.path.join(root, "evil")
    T.make_tree(v1, seed=11, total=2 * MiB)
    T.make_tree(evil, seed=12, total=1 * MiB)

    central.push("app", v1, "region")
    T.wait_until(lambda: os.path.isdir(dp.current_tree("app")) and
                 not T.tree_diff(v1, dp.current_tree("app")), 60, 0.1,
                 "the relay to reach dp")
    T.assert_same_tree(v1, dp.current_tree("app"))

    # region, compromised, makes its own version 2 of app and sends it down.
    rc, out, err = push_text(region, "app", evil, "dp")
    want = ("package app belongs to origin central (key %s), refusing version 2 signed by "
            "region (key %s)" % (central.public_key, region.public_key))
    assert rc != 0 and "activated" not in out, (out, err)
    assert want in out + err, (out, err)
    line = refusal(dp, want)
    assert "peer=region" in line and "version=2" in line, line
    assert current_version(dp, "app") == 1
    T.assert_same_tree(v1, dp.current_tree("app"))

    # Nor by hand: the same version in a bundle, which region signs as
    # dp's parent, carries region's manifest, not central's.
    path = os.path.join(root, "app-2.bdrb")
    region.ctl("bundle", "create", "app", "-o", path)
    rc, res, err = dp.ctl("bundle", "import", path, check=False)
    assert rc != 0, res
    assert "package app belongs to origin central (key %s), refusing version 2 from the " \
        "bundle of region: its manifest is signed by another key" % central.public_key in err, err
    assert current_version(dp, "app") == 1
    T.assert_same_tree(v1, dp.current_tree("app"))
    # central's own version 1, bundled by region, is the origin's: held.
    path1 = os.path.join(root, "app-1.bdrb")
    region.ctl("bundle", "create", "app", "--version", "1", "-o", path1)
    res = dp.ctl("bundle", "import", path1)
    assert res["held"] and res["version"] == 1, res


def test_held_means_the_same_manifest(root):
    hq, branch = T.hq_and_branch(root)
    branch.start()
    hq.start()
    a, b = os.path.join(root, "a"), os.path.join(root, "b")
    T.make_tree(a, seed=21, total=1 * MiB)
    T.make_tree(b, seed=22, total=1 * MiB)
    hq.push("app", a, "branch")
    # The same version again: truly held, and said so.
    p = T.run([T.BDRCTL, "-s", hq.control, "distribute", "app", "--to", "branch", "--wait"],
              check=False)
    assert p.returncode == 0, (p.stdout, p.stderr)

    # hq loses its data and makes version 1 of app again, other content,
    # signed by the same key: branch holds another version 1.
    hq.stop()
    T.run(["rm", "-rf", hq.data])
    os.makedirs(hq.data)
    hq.start()
    rc, out, err = push_text(hq, "app", b, "branch")
    assert rc != 0, "the push succeeded: %r %r" % (out, err)
    assert "activated" not in out, out
    assert "this site holds another version 1 of app (a different manifest)" in out + err, \
        (out, err)
    T.assert_same_tree(a, branch.current_tree("app"))

    # branch moves on to version 5; hq starts over once more, at 3: a
    # version branch does not hold and has passed.
    c = os.path.join(root, "c")
    T.make_tree(c, seed=23, total=1 * MiB)
    next_version_is(hq, "app", 5)
    hq.push("app", c, "branch")
    T.assert_same_tree(c, branch.current_tree("app"))
    hq.stop()
    T.run(["rm", "-rf", hq.data])
    os.makedirs(hq.data)
    hq.start()
    next_version_is(hq, "app", 3)
    rc, out, err = push_text(hq, "app", b, "branch")
    assert rc != 0 and "activated" not in out, (out, err)
    assert "this site is at version 5 of app, past 3, which it does not hold" in out + err, \
        (out, err)
    T.assert_same_tree(c, branch.current_tree("app"))


TESTS = [test_flat_rogue_is_refused, test_first_accept_and_pins,
         test_tree_middle_site_cannot_inject, test_held_means_the_same_manifest]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
