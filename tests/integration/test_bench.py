#!/usr/bin/env python3
"""bdr-bench on a tiny generated corpus, so the harness never rots: every
tool and scenario runs for real, every destination is checked against v2,
the JSON follows bench/README.md, a destination that differs from v2 is
reported and fails the run, and bad arguments are refused by name. And
bdr-corebench codecs, the zlib-against-zstd measurement, on the same corpus.

usage: test_bench.py BDRD BDRCTL [TEST...]
       (BDR_BENCH: the harness, BDR_COREBENCH: bdr-corebench)
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402

RECORD_KEYS = {
    "corpus", "scenario", "link", "link_mbit", "tool", "v2_bytes", "v2_files", "runs",
    "runs_verified", "verified", "wire_bytes", "wire_up_bytes", "wire_down_bytes", "wall_s",
    "wall_min_s", "wall_max_s", "cpu_s", "cpu_sender_s", "cpu_receiver_s", "peak_rss_bytes",
    "peak_rss_sender_bytes", "peak_rss_receiver_bytes", "delta_throughput_bps",
    "encode_rate_bps", "samples",
}


def bench_exe():
    exe = os.environ.get("BDR_BENCH")
    if not exe:
        raise T.Skip("BDR_BENCH is not set")
    if not shutil.which("rsync"):
        raise T.Skip("rsync is not installed")
    return exe


def corpus(root):
    """v1 and v2 of a small package: v2 edits some files, adds one,
    removes one and renames one."""
    c = os.path.join(root, "tiny")
    v1, v2 = os.path.join(c, "v1"), os.path.join(c, "v2")
    files = T.make_tree(v1, seed=61, total=3 * MiB)
    # v1 an hour old, as a release is: rsync skips a file whose size and
    # mtime (to the second) match, and the edits below keep sizes.
    for f in files:
        st = os.stat(os.path.join(v1, f))
        os.utime(os.path.join(v1, f), ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    shutil.copytree(v1, v2, symlinks=True)
    big = sorted(files, key=lambda f: -os.path.getsize(os.path.join(v2, f)))
    with open(os.path.join(v2, big[0]), "r+b") as f:
        f.seek(1000)
        f.write(b"a new release" * 300)
    os.rename(os.path.join(v2, big[1]), os.path.join(v2, "renamed.bin"))
    os.unlink(os.path.join(v2, big[2]))
    T.write_file(os.path.join(v2, "NEWS"), b"what changed\n" * 200)
    return c


def bench(root, *args, check=True):
    exe = bench_exe()
    cmd = [exe, "--bdrd", T.BDRD, "--bdrctl", T.BDRCTL] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError("bdr-bench exited %d:\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    return p


def test_every_tool_and_scenario(root):
    c = corpus(root)
    out = os.path.join(root, "bench.json")
    png = os.path.join(root, "bench.png")
    args = ["--png", png] if shutil.which("gnuplot") else []
    p = bench(root, "--runs", "1", "--json", out, *args, c)
    if args:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", "--png wrote no PNG"
    doc = json.load(open(out))
    recs = doc["records"]
    assert doc["bdr_bench"] == 1 and doc["runs"] == 1 and doc["link_mbit"] == 0
    assert len(recs) == 9, [r["tool"] for r in recs]
    by = {(r["scenario"], r["tool"]): r for r in recs}
    for sc in ("incremental", "initial", "nochange"):
        for tool in ("bdr", "rsync", "rsync-z"):
            r = by[(sc, tool)]
            assert set(r) >= RECORD_KEYS, RECORD_KEYS - set(r)
            assert r["verified"] and r["runs_verified"] == 1, r
            assert r["corpus"] == "tiny" and r["link"] == "loopback"
            assert r["wall_s"] > 0 and r["delta_throughput_bps"] > 0
            assert r["wire_bytes"] == r["wire_up_bytes"] + r["wire_down_bytes"]
            assert r["peak_rss_sender_bytes"] > 0 and r["peak_rss_receiver_bytes"] > 0
            assert len(r["samples"]) == 1 and r["samples"][0]["verified"]
    v2 = by[("initial", "bdr")]["v2_bytes"]
    assert v2 == T.tree_size(os.path.join(c, "v2"))
    # What the relay counted is what crossed: rsync's first push carries v2
    # uncompressed, bdr's a compressed v2, a delta far less.
    assert by[("initial", "rsync")]["wire_up_bytes"] > v2
    assert by[("initial", "bdr")]["wire_up_bytes"] > v2 // 5
    assert by[("incremental", "bdr")]["wire_bytes"] < v2 // 20
    assert by[("incremental", "bdr")]["wire_bytes"] < by[("incremental", "rsync")]["wire_bytes"]
    for tool in ("rsync", "rsync-z"):
        assert by[("nochange", tool)]["wire_bytes"] > 0  # rsync still compares file lists
    assert "bdr / rsync-z: wire" in p.stdout and "| bdr |" in p.stdout, p.stdout
    T.log("tiny: bdr incremental %d B, rsync -z %d B" % (
        by[("incremental", "bdr")]["wire_bytes"], by[("incremental", "rsync-z")]["wire_bytes"]))


def test_a_wrong_destination_is_reported(root):
    """A tool that leaves the destination different from v2 (here rsync
    told to skip a file) makes the run unverified and the harness fail."""
    c = corpus(root)
    real = shutil.which("rsync")
    fake = os.path.join(root, "rsync-skipping")
    with open(fake, "w") as f:
        f.write('#!/bin/sh\ncase "$1" in --daemon) exec %s "$@";; esac\n'
                'exec %s --exclude=NEWS "$@"\n' % (real, real))
    os.chmod(fake, 0o755)
    out = os.path.join(root, "bench.json")
    p = bench(root, "--runs", "1", "--tools", "rsync", "--scenario", "initial",
              "--rsync", fake, "--json", out, c, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "MISMATCH rsync: NEWS: missing at the destination" in p.stderr, p.stderr
    (r,) = json.load(open(out))["records"]
    assert not r["verified"] and r["runs_verified"] == 0 and r["wall_s"] is None
    assert "differs from v2" in r["samples"][0]["error"]
    assert "**NO**" in p.stdout


def test_bad_arguments(root):
    c = corpus(root)
    cases = [
        ([os.path.join(root, "nowhere")], "nowhere"),
        ([os.path.join(c, "v1")], "no directory v1"),
        (["--runs", "0", c], "--runs must be"),
        (["--scenario", "sideways", c], "unknown name 'sideways'"),
        ([], "no corpus directory"),
    ]
    if os.geteuid() != 0:
        cases.append((["--link", "10", c], "--link needs root"))
    for args, words in cases:
        p = bench(root, *args, check=False)
        assert p.returncode in (2, 3), (args, p.returncode, p.stderr)
        assert words in p.stderr, (args, p.stderr)


def test_codecs(root):
    """Every distinct chunk of v2 through each codec: each decodes back to
    its bytes (else the run fails), none sends more than the raw bytes, and
    compressible text comes out smaller under every codec."""
    exe = os.environ.get("BDR_COREBENCH")
    if not exe:
        raise T.Skip("BDR_COREBENCH is not set")
    c = corpus(root)
    with open(os.path.join(c, "v2", "text.txt"), "wb") as f:
        f.write(b"".join(b"line %d of a compressible file\n" % i for i in range(20000)))
    p = subprocess.run([exe, "codecs", c], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    rows = [r.split("|")[1:-1] for r in p.stdout.splitlines()[2:]]
    names = {(r[1].strip(), int(r[2])) for r in rows}
    assert {("zlib", 1), ("zlib", 6)} <= names, names
    for r in rows:
        distinct, sent = int(r[3]), int(r[4])
        assert distinct >= T.tree_size(os.path.join(c, "v2")) // 2, r
        assert 0 < sent < distinct, r
    p = subprocess.run([exe, "codecs", os.path.join(root, "nowhere")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1 and "nowhere" in p.stderr, (p.returncode, p.stderr)


def test_fanout_script(root):
    """bench/fanout.sh to three daemons, once: every tree bit-exact, and the
    fan-out's chunks sealed once and sent to several sites (the CPU figures
    are printed, never judged here)."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(T.BDRD))))
    c = corpus(root)
    p = subprocess.run(["bash", os.path.join(top, "bench", "fanout.sh"), c, "3", "1"],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, BDR_BUILD=build))
    T.log(p.stdout.strip())
    assert p.returncode == 0 and "every tree bit-exact: yes" in p.stdout, (p.stdout, p.stderr)
    m = re.search(r"chunks sealed once: (\d+), sent as shared tails: (\d+)", p.stdout)
    assert m and int(m.group(2)) > int(m.group(1)) > 0, p.stdout


TESTS = [
    test_every_tool_and_scenario,
    test_codecs,
    test_fanout_script,
    test_a_wrong_destination_is_reported,
    test_bad_arguments,
]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
