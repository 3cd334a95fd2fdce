#!/usr/bin/env python3
"""Metrics as a Prometheus scrape and node_exporter's textfile collector
see them: after real pushes, /metrics over HTTP and `bdrctl metrics` give
the same families, every line parses as the text exposition format, and
the figures agree with `bdrctl status`; hostile scrapers (garbage, slow
heads, too many at once, huge heads) get an error status or a closed
connection while the daemon keeps serving.

usage: test_metrics.py BDRD BDRCTL [TEST...]
"""
import os
import re
import socket
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402
from bdrtest import MiB  # noqa: E402

# name{labels} value, as the text format writes a sample (no timestamps).
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse(text):
    """{(name, ((label, value), ...)): float}; asserts the format: every
    family has HELP and TYPE before its samples, no sample twice."""
    out, typed = {}, set()
    assert text.endswith("\n"), "the exposition ends with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter"), line
            assert name not in typed, "family %s typed twice" % name
            typed.add(name)
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels = m.group(1), ()
        assert name.startswith("bdr_"), name
        assert name in typed, "sample before its TYPE: %r" % line
        if m.group(3):
            labels = tuple((k, v) for k, v, _ in LABEL.findall(m.group(3)))
            assert ",".join('%s="%s"' % kv for kv in labels) == m.group(3), line
        key = (name, labels)
        assert key not in out, "sample twice: %r" % line
        out[key] = float(m.group(4))
    return out


def get(port, path="/metrics", method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def scrape_status(port):
    """The status of a scrape, or None if it was turned away unanswered."""
    try:
        return get(port)[0]
    except (ConnectionError, urllib.error.URLError):
        return None


def raw(port, data, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(data)
        if not read:
            return s
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                # turned away unanswered (closed with our request unread)
                assert not chunks, "reset after a partial answer: %r" % chunks
                return b""
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        if read:
            s.close()


def pair(root):
    port = T.free_port()
    hq = T.Site(root, "hq", metrics_listen="127.0.0.1:%d" % port)
    branch = T.Site(root, "branch")
    hq.add_peer(branch)
    branch.add_peer(hq, address=False)
    branch.start()
    hq.start()
    return hq, branch, port


def test_scrape_after_pushes(root):
    """Two pushes (first and delta): the HTTP scrape and bdrctl metrics
    agree with status on bytes sent and saved, count the transfers as
    activated, and the receiver's own metrics show what it received."""
    hq, branch, port = pair(root)
    src = os.path.join(root, "src")
    T.make_tree(src, seed=7, total=3 * MiB)
    hq.push("app", src, "branch")
    with open(os.path.join(src, "added.txt"), "w") as f:
        f.write("a new file\n" * 1000)
    hq.push("app", src, "branch")
    st = hq.status("app")["transfers"]
    sent = sum(t["bytes_sent"] for t in st)
    saved = sum(t["bytes_saved"] for t in st)

    status, headers, body = get(port)
    assert status == 200, (status, body)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    m = parse(body)
    lab = (("peer", "branch"), ("package", "app"))
    assert m[("bdr_sent_bytes", lab)] == sent, (m.get(("bdr_sent_bytes", lab)), sent)
    assert m[("bdr_saved_bytes", lab)] == saved and saved > 0, saved
    assert m[("bdr_transfers", (("state", "activated"),))] == 2
    assert m[("bdr_queue_transfers", (("priority", "medium"),))] == 0
    assert m[("bdr_resident_memory_bytes", ())] > 1 * MiB
    assert m[("bdr_build_info", (("version", m_version(body)), ("site", "hq")))] == 1
    assert ("bdr_peer_last_activation_timestamp_seconds", lab) in m

    # bdrctl metrics: the same families (values may move between the two reads)
    text = T.run([T.BDRCTL, "-s", hq.control, "metrics"]).stdout
    assert {k[0] for k in parse(text)} == {k[0] for k in m}
    # the receiver's side
    rm = parse(T.run([T.BDRCTL, "-s", branch.control, "metrics"]).stdout)
    got = branch.status("app")["received"]
    assert rm[("bdr_received_bytes", (("peer", "hq"), ("package", "app")))] == \
        sum(r["bytes_received"] for r in got)
    assert rm[("bdr_received_versions", (("state", "activated"),))] == 2
    assert ("bdr_last_activation_timestamp_seconds", (("peer", "hq"), ("package", "app"))) in rm

    # HEAD: headers only; other paths: 404
    status, headers, body = get(port, method="HEAD")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 0
    assert get(port, "/")[0] == 404
    assert get(port, "/metrics?x=1")[0] == 200


def m_version(body):
    return re.search(r'bdr_build_info\{version="([^"]*)"', body).group(1)


def test_hostile_scrapers(root):
    """Bad requests get 400/405/431/505 and the connection closes; silent
    connections past the limit are closed at once; a slow head is cut; the
    daemon answers a real scrape afterwards and stays up."""
    hq, branch, port = pair(root)
    assert raw(port, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert raw(port, b"GET /metrics HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    assert raw(port, b"\x00\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 431 ")
    # 8 silent clients hold every slot; the 9th is closed without an answer
    silent = [raw(port, b"GET /met", read=False) for _ in range(8)]
    try:
        T.wait_until(lambda: "scrapes at once" in hq.log_text() or
                     raw(port, b"GET /metrics HTTP/1.1\r\n\r\n") == b"", 20,
                     what="the ninth scraper to be turned away")
        assert raw(port, b"GET /metrics HTTP/1.1\r\n\r\n") == b""
    finally:
        for s in silent:
            s.close()
    # once they are gone a scrape works again
    T.wait_until(lambda: scrape_status(port) == 200, 20, what="a scrape to be served again")
    # a head never finished is cut after its deadline: the server closes
    s = raw(port, b"GET /metrics HTTP/1.1\r\n", read=False)
    try:
        s.settimeout(30)
        assert s.recv(100) == b"", "a slow head was not cut"
    finally:
        s.close()
    assert hq.alive()


def test_metrics_off_by_default(root):
    """Without metrics_listen nothing listens; bdrctl metrics still works."""
    hq, branch = T.hq_and_branch(root)
    branch.start()
    hq.start()
    assert "serving /metrics" not in hq.log_text()
    m = parse(T.run([T.BDRCTL, "-s", hq.control, "metrics"]).stdout)
    assert m[("bdr_transfers", (("state", "activated"),))] == 0


TESTS = [test_scrape_after_pushes, test_hostile_scrapers, test_metrics_off_by_default]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
