#!/usr/bin/env python3
"""The site hierarchy: real daemons on 127.0.0.1 in a three-level tree,

    central --> region (role site) --> dp1, dp2 (role dp)

one push at the top reaching every site bit-exact, each hop a delta on the
next version; a cut link below the middle resuming when it returns; a
distribution point refusing a push from a site that is not its parent.

usage: test_hier.py BDRD BDRCTL [TEST...]   (TEST: a name below, with or
without its test_ prefix; none runs them all). Data goes under
$BDR_TEST_TMP (meson sets it) or /tmp; BDR_TEST_KEEP=1 keeps it.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402


def tree(root, retry_delay_s=1):
    """central -> region -> dp1, dp2; each site pins its parent and its
    children and nobody else. Parents connect down to push; region also
    knows central's address, to send its status reports up."""
    central = T.Site(root, "central")
    region = T.Site(root, "region")
    dps = [T.Site(root, n, role="dp") for n in ("dp1", "dp2")]
    central.add_peer(region, relation="child")
    region.add_peer(central, relation="parent")
    for dp in dps:
        region.add_peer(dp, relation="child")
        dp.add_peer(region, address=False, relation="parent")
    region.limits.update({"retries": 100, "retry_delay_s": retry_delay_s})
    return central, region, dps


def start(*sites):
    for s in sites:
        s.start()


def wait_tree(site, package, src, timeout=120):
    """Until site's current tree of package is src, bit-exact."""
    def same():
        dst = site.current_tree(package)
        return os.path.isdir(dst) and not T.tree_diff(src, dst)
    T.wait_until(same, timeout, 0.1, "%s to hold %s as %s" % (site.name, package, src))
    T.assert_same_tree(src, site.current_tree(package))


def relayed(site, package, version, to):
    """The transfer row at site of package version to peer to, or None."""
    for t in site.status()["transfers"]:
        if t["package"] == package and t["version"] == version and t["to"] == to:
            return t
    return None


def wait_relayed(site, package, version, to, timeout=120):
    return T.wait_until(lambda: (relayed(site, package, version, to) or {}).get(
        "state") == "activated" and relayed(site, package, version, to), timeout, 0.1,
        "%s to have relayed %s v%d to %s" % (site.name, package, version, to))


def site_rows(site, package):
    """{site name: row} of site's status roll-up for package."""
    return {r["site"]: r for r in site.status(package)["sites"] if r["package"] == package}


def wait_rollup(site, package, want, timeout=30):
    """Until site's roll-up shows each {name: (version, state)} of want."""
    def ok():
        rows = site_rows(site, package)
        return all(n in rows and (rows[n]["version"], rows[n]["state"]) == vs
                   for n, vs in want.items()) and rows
    return T.wait_until(ok, timeout, 0.2, "%s's status to show %r" % (site.name, want))


def test_push_reaches_the_tree(root):
    """One push at central reaches region and both DPs with the same tree;
    the next version is a delta on every hop (under 10% of the first)."""
    central, region, dps = tree(root)
    start(region, *dps, central)
    v1, v2 = os.path.join(root, "v1"), os.path.join(root, "v2")
    T.make_tree(v1, seed=81, total=4 * MiB)
    res1 = central.push("app", v1, "region")
    for s in [region] + dps:
        wait_tree(s, "app", v1)
    first = {dp.name: wait_relayed(region, "app", 1, dp.name)["bytes_sent"] for dp in dps}
    T.copy_tree(v1, v2)
    with open(os.path.join(v2, "added.txt"), "w") as f:
        f.write("a new file in version 2\n" * 100)
    res = central.push("app", v2, "region")
    for s in [region] + dps:
        wait_tree(s, "app", v2)
    second = {dp.name: wait_relayed(region, "app", 2, dp.name)["bytes_sent"] for dp in dps}
    T.log("central -> region: %d then %d bytes; region -> DPs: %s then %s"
          % (res1.final["bytes_sent"], res.final["bytes_sent"], first, second))
    assert res.final["bytes_sent"] < 0.1 * res1.final["bytes_sent"], (res1.final, res.final)
    rows = wait_rollup(central, "app", {"region": (2, "activated"), "dp1": (2, "activated"),
                                        "dp2": (2, "activated")})
    T.log("central's status of the tree: %s" % ", ".join(
        "%s via %s v%d %s %d/%d" % (r["site"], r["via"], r["version"], r["state"],
                                    r["bytes_done"], r["bytes_total"])
        for r in rows.values()))
    assert rows["dp1"]["via"] == "region" and rows["region"]["via"] == "central", rows
    for dp in dps:
        assert second[dp.name] < 0.1 * first[dp.name], (first, second)
        assert not dp.status()["transfers"], "a dp relayed: %r" % dp.status()["transfers"]
    for s in (central, region, *dps):
        s.stop()


def test_cut_link_resumes(root):
    """dp2 is down while a version comes down the tree: dp1 gets it; the
    region's transfer to dp2 waits and retries; once dp2 is back it gets
    the version too, bit-exact."""
    central, region, dps = tree(root)
    dp1, dp2 = dps
    start(region, dp1, central)
    src = os.path.join(root, "src")
    T.make_tree(src, seed=82, total=2 * MiB)
    central.push("app", src, "region")
    wait_tree(dp1, "app", src)
    T.wait_until(lambda: (relayed(region, "app", 1, "dp2") or {}).get("attempts", 0) >= 1,
                 30, 0.1, "a failed attempt to reach dp2")
    t = relayed(region, "app", 1, "dp2")
    T.log("dp2 down: region's transfer to it is %s after %d attempts (%s)"
          % (t["state"], t["attempts"], t["last_error"]))
    assert t["state"] in ("queued", "sending"), t
    rows = T.wait_until(lambda: (lambda r: r if "dp2" in r and r["dp2"]["last_error"]
                                 else None)(site_rows(central, "app")),
                        30, 0.2, "central to see dp2's error")
    T.log("central sees dp2: %s, v%d, %r" % (rows["dp2"]["state"], rows["dp2"]["version"],
                                           rows["dp2"]["last_error"]))
    assert rows["dp2"]["state"] == "queued" and "connect" in rows["dp2"]["last_error"], rows
    dp2.start()
    wait_tree(dp2, "app", src)
    wait_relayed(region, "app", 1, "dp2")
    wait_rollup(central, "app", {"dp2": (1, "activated"), "dp1": (1, "activated")})
    for s in (central, region, dp1, dp2):
        s.stop()


def test_dp_refuses_a_stranger(root):
    """central pins dp1 and pushes to it directly; dp1 knows central's key
    (a plain peer) but its parent is region: the push fails with the
    reason, and dp1 holds nothing of it."""
    central, region, dps = tree(root)
    dp1 = dps[0]
    central.add_peer(dp1)
    dp1.add_peer(central, address=False)
    start(region, dp1, central)
    src = os.path.join(root, "src")
    T.make_tree(src, seed=83, total=256 * 1024, big_files=False)
    res = central.push("direct", src, "dp1", check=False)
    assert res.rc != 0, "a push from a non-parent succeeded: %r" % res
    T.log("central's push straight to dp1: rc %d, %s" % (res.rc, res.stderr.strip()))
    assert "only this site's parent, region, may send it packages" in dp1.log_text()
    assert "only this site's parent" in res.stderr, res.stderr
    assert not dp1.has_package("direct") or not os.path.exists(dp1.current_tree("direct"))
    for s in (central, region, dp1):
        s.stop()


def ctl_events(site, *args):
    """bdrctl --json ARGS of a command that streams events: (exit status,
    the last JSON object printed, stderr)."""
    p = T.run([T.BDRCTL, "-s", site.control, "--json"] + list(args), check=False)
    dec, i, last = json.JSONDecoder(), 0, None
    while i < len(p.stdout):
        if p.stdout[i].isspace():
            i += 1
            continue
        last, i = dec.raw_decode(p.stdout, i)
    return p.returncode, last, p.stderr


def test_many_destinations(root):
    """push --to b1,b2 --wait queues and follows both, answering with both
    results; distribute sends a version of the library (an older one
    named by --version) without importing; --to all is every peer with an
    address when there are no children; bad lists are refused whole."""
    hq = T.Site(root, "hq")
    bs = [T.Site(root, "b%d" % i) for i in (1, 2, 3)]
    for b in bs:
        hq.add_peer(b)
        b.add_peer(hq, address=False)
    start(*bs, hq)
    v1, v2 = os.path.join(root, "v1"), os.path.join(root, "v2")
    T.make_tree(v1, seed=84, total=1 * MiB)
    T.make_tree(v2, seed=85, total=1 * MiB)
    res = hq.push_start("app", v1, "b1,b2").wait(120)
    assert res.rc == 0, res
    got = [(t["to"], t["state"]) for t in res.final["transfers"]]
    assert got == [("b1", "activated"), ("b2", "activated")], res.final
    for b in bs[:2]:
        T.assert_same_tree(v1, b.current_tree("app"))
    assert not bs[2].has_package("app")
    fan = hq.status()["fanout"]
    T.log("push to b1,b2 at once: %r" % fan)
    # Both sends were live together: chunks were sealed once and went to
    # both as shared tails.
    assert fan["tails_sent"] > fan["tails_sealed"] > 0, fan
    hq.push("app", v2, "b1")
    rc, out, err = ctl_events(hq, "distribute", "app", "--version", "1", "--to", "b3", "--wait")
    assert rc == 0, err
    assert out["to"] == "b3" and out["version"] == 1 and out["state"] == "activated", out
    T.assert_same_tree(v1, bs[2].current_tree("app"))
    rc, out, err = ctl_events(hq, "distribute", "app", "--to", "all", "--wait")
    assert rc == 0, err
    T.log("distribute --to all of the latest: %s" % [(t["to"], t["version"], t["bytes_sent"])
                                                    for t in out["transfers"]])
    assert sorted(t["to"] for t in out["transfers"]) == ["b1", "b2", "b3"], out
    for b in bs:
        T.assert_same_tree(v2, b.current_tree("app"))
    before = len(hq.status()["transfers"])
    for args, code in ((("--to", "b1,nowhere"), "unknown_site"),
                       (("--to", "b1,b1"), "bad_request"),
                       (("--to", "b1,"), "bad_request"),
                       (("--version", "9", "--to", "b1"),
                        "package 'app' has no version 9 in the library [invalid_package]")):
        rc, _, err = ctl_events(hq, "distribute", "app", *args)
        T.log("distribute app %s: exit %d, %s" % (" ".join(args), rc, err.strip()))
        assert rc != 0 and code in err, (args, rc, err)
    assert len(hq.status()["transfers"]) == before, "a refused request queued something"
    for s in (hq, *bs):
        s.stop()


def test_fanout_through_a_rate_limit(root):
    """A version pushed at once to a site behind a rate limit and to one
    without: the limited connection copies the shared tails out for its
    throttle, the other writes them where they are, and both trees come out
    bit-exact while chunks are still sealed once for both."""
    hq = T.Site(root, "hq")
    slow, fast = T.Site(root, "slow"), T.Site(root, "fast")
    hq.add_peer(slow, address="slow-link")
    hq.extra_config = "[address slow-link]\nhost = %s\nrate = 4Mbit\n" % slow.address
    hq.add_peer(fast)
    for b in (slow, fast):
        b.add_peer(hq, address=False)
    start(slow, fast, hq)
    src = os.path.join(root, "v1")
    T.make_tree(src, seed=91, total=2 * MiB)
    res = hq.push_start("app", src, "slow,fast").wait(120)
    assert res.rc == 0, res
    for b in (slow, fast):
        T.assert_same_tree(src, b.current_tree("app"))
    fan = hq.status()["fanout"]
    T.log("push to slow (4Mbit) and fast at once: %r" % fan)
    assert fan["tails_sent"] > fan["tails_sealed"] > 0, fan
    for s in (hq, slow, fast):
        s.stop()


def test_remove_down_the_tree(root):
    """remove --from region takes the package from region and both DPs and
    leaves it at central; remove at central then takes it there too; a push
    afterwards brings it back everywhere."""
    central, region, dps = tree(root)
    start(region, *dps, central)
    src = os.path.join(root, "src")
    T.make_tree(src, seed=86, total=1 * MiB)
    central.push("app", src, "region")
    for s in [region] + dps:
        wait_tree(s, "app", src)
    out = central.ctl("remove", "app", "--from", "region")
    assert out["queued"] == ["region"], out
    for s in [region] + dps:
        T.wait_until(lambda s=s: not s.has_package("app"), 30, 0.1,
                     "%s to remove the package" % s.name)
    T.assert_same_tree(src, central.current_tree("app"))
    T.log("remove --from region: gone from region, dp1, dp2; central keeps it")
    out = central.ctl("remove", "app")
    assert out["queued"] == ["central"], out
    T.wait_until(lambda: not central.has_package("app"), 30, 0.1, "central to remove it")
    assert "asked to remove the package" in region.log_text()
    central.push("app", src, "region")
    for s in [region] + dps:
        wait_tree(s, "app", src)
    rc, _, err = ctl_events(central, "remove", "app", "--from", "nowhere")
    assert rc != 0 and "unknown_site" in err, err
    for s in (central, region, *dps):
        s.stop()


TESTS = [
    test_push_reaches_the_tree,
    test_cut_link_resumes,
    test_dp_refuses_a_stranger,
    test_many_destinations,
    test_fanout_through_a_rate_limit,
    test_remove_down_the_tree,
]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
