#!/usr/bin/env python3
"""A distribution point serves its active versions with a plain web server
(bdr.conf(5), share_group): a real nginx, its workers running as www-data,
serves the receiving site's DATA/packages/ while new versions activate.
Every response must be 200 with the bytes of one pushed version: a 404
would be a half-switched tree, a 403 wrong permissions.

Needs root (nginx's master starts as root and drops its workers to
www-data) and nginx (.ci/deps.sh installs it); skipped without either.

usage: test_webshare.py BDRD BDRCTL [TEST...]
"""
import grp
import http.client
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402

WEB_USER = "www-data"   # the user nginx's workers run as; its group is share_group
VERSIONS = 8            # versions pushed while the client fetches


def nginx_path():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def needs():
    """nginx, root and the web user, or a Skip saying which is missing."""
    if os.geteuid() != 0:
        raise T.Skip("needs root: nginx's master starts as root to run its workers as %s"
                     % WEB_USER)
    if not nginx_path():
        raise T.Skip("nginx is not installed (.ci/deps.sh installs it)")
    try:
        return grp.getgrnam(WEB_USER).gr_gid
    except KeyError:
        raise T.Skip("no group %s for nginx's workers" % WEB_USER)


class ShareDir:
    """A directory under /tmp that the web user can enter (0711): the
    tests' own $BDR_TEST_TMP may sit below a home directory it cannot."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="bdr-webshare-", dir="/tmp")
        os.chmod(self.path, 0o711)

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Nginx:
    """nginx -p PREFIX -c PREFIX/nginx.conf in the foreground, listening on
    a free loopback port: location /NAME/ is an alias of a path."""

    def __init__(self, prefix, locations):
        self.prefix = prefix
        self.port = T.free_port()
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        loc = "".join("""
    location /%s/ {
      alias %s/;
      disable_symlinks off;
      autoindex on;
    }""" % (name, path) for name, path in locations.items())
        tmp = os.path.join(prefix, "tmp")
        conf = """daemon off;
user %(user)s %(user)s;
worker_processes 1;
pid %(p)s/nginx.pid;
error_log %(p)s/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path %(t)s/body;
  proxy_temp_path %(t)s/proxy;
  fastcgi_temp_path %(t)s/fastcgi;
  uwsgi_temp_path %(t)s/uwsgi;
  scgi_temp_path %(t)s/scgi;
  server {
    listen 127.0.0.1:%(port)d;%(loc)s
  }
}
""" % {"user": WEB_USER, "p": prefix, "t": tmp, "port": self.port, "loc": loc}
        self.conf = os.path.join(prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        args = [nginx_path(), "-p", prefix, "-c", self.conf, "-e", os.path.join(prefix, "error.log")]
        check = T.run(args + ["-t"], check=False)
        assert check.returncode == 0, "nginx -t: %s" % check.stderr
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            T.wait_until(self._up, 20, what="nginx to listen on port %d" % self.port)
        except BaseException:
            self.stop()
            raise

    def _up(self):
        assert self.proc.poll() is None, "nginx exited: %s" % self.proc.stderr.read().decode()
        try:
            self.get("/")
            return True
        except OSError:
            return False

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def error_log(self):
        try:
            with open(os.path.join(self.prefix, "error.log"), errors="replace") as f:
                return "\n".join(f.read().splitlines()[-20:])
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_version(src, rng, n):
    """Version n of the source: data.bin changes, same.txt and the
    script do not. Returns data.bin's bytes."""
    os.makedirs(os.path.join(src, "sub"), exist_ok=True)
    body = b"version %d\n" % n + rng.randbytes(rng.randrange(50000, 400000))
    T.write_file(os.path.join(src, "data.bin"), body)
    if n == 1:
        T.write_file(os.path.join(src, "same.txt"), b"unchanged\n", mode=0o600)
        T.write_file(os.path.join(src, "sub", "run.sh"), b"#!/bin/sh\necho hi\n", mode=0o755)
    return body


def assert_shared_tree(data, package, gid):
    """As bdrd left it: the path to the tree the group's to enter, the
    tree's directories 0750, files 0640 or 0750, all of group gid; the
    database and staging nobody's but bdrd's."""
    st = os.stat(data)
    assert st.st_mode & (0o010 if st.st_gid == gid else 0o001), "DATA %o" % st.st_mode
    for p in ("packages", "packages/" + package):
        st = os.lstat(os.path.join(data, p))
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o750, gid), (p, oct(st.st_mode), st.st_gid)
    tree = os.path.realpath(os.path.join(data, "packages", package, "current", "tree"))
    for top in (tree, os.path.dirname(tree)):
        st = os.lstat(top)
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o750, gid), (top, oct(st.st_mode))
    seen = 0
    for dirpath, dirs, files in os.walk(tree):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            want = 0o750 if stat.S_ISDIR(st.st_mode) or name == "run.sh" else 0o640
            assert (mode, st.st_gid) == (want, gid), "%s: mode %o group %d, want %o group %d" % (
                p, mode, st.st_gid, want, gid)
            seen += 1
    assert seen == 4, "the tree holds %d entries, not 4" % seen
    private = [p for p in os.listdir(data) if p != "packages"]
    assert {"bdr.db", "staging", "partial", "quarantine"} <= set(private), private
    for p in private:
        mode = stat.S_IMODE(os.lstat(os.path.join(data, p)).st_mode)
        assert mode & 0o077 == 0, "%s is mode %o: open beyond bdrd" % (p, mode)


class Client(threading.Thread):
    """Fetches one path over and over until stopped (or a bound is hit),
    recording every status and whether each body was a known version."""

    def __init__(self, web, path, known, lock):
        super().__init__(daemon=True)
        self.web, self.path, self.known, self.lock = web, path, known, lock
        self.stop_ev = threading.Event()
        self.fetches = 0
        self.bad = []        # (status, why)
        self.bodies = set()  # distinct versions seen
        self.error = None

    def run(self):
        end = T.deadline(600)
        try:
            while not self.stop_ev.is_set() and self.fetches < 200000 and time.monotonic() < end:
                status, body = self.web.get(self.path)
                with self.lock:
                    if status != 200:
                        self.bad.append((status, body[:200]))
                    elif body not in self.known:
                        self.bad.append((status, "body of %d bytes is no pushed version" % len(body)))
                    else:
                        self.bodies.add(body[:16])
                    self.fetches += 1
        except Exception as e:  # reported by the test, not lost in the thread
            self.error = e


def test_nginx_serves_every_activation(root):
    gid = needs()
    share = ShareDir()
    web = None
    try:
        hq = T.Site(share.path, "hq")
        dp = T.Site(share.path, "dp", share_group=WEB_USER, role="dp")
        hq.add_peer(dp)
        dp.add_peer(hq, address=False)
        hq.start()
        dp.start()
        web = Nginx(os.path.join(share.path, "nginx"),
                    {"dp": os.path.join(dp.data, "packages"),
                     "hq": os.path.join(hq.data, "packages")})
        rng = random.Random(16)
        src = os.path.join(root, "src")
        known = set()
        lock = threading.Lock()
        with lock:
            known.add(write_version(src, rng, 1))
        hq.push("app", src, "dp")
        status, body = web.get("/dp/app/current/tree/data.bin")
        assert status == 200 and body in known, (status, body[:100], web.error_log())
        # The sender has no share_group: nginx's workers must be refused
        # there, so the 200s above come from the permissions, not root.
        status, _ = web.get("/hq/app/current/tree/data.bin")
        assert status == 403, "the unshared site answered %d, not 403" % status

        client = Client(web, "/dp/app/current/tree/data.bin", known, lock)
        client.start()
        for n in range(2, VERSIONS + 1):
            # Every activation happens while the client is fetching: wait
            # for a fetch after the previous one before pushing again.
            before = client.fetches
            T.wait_until(lambda: client.fetches > before or client.error or not client.is_alive(),
                         60, interval=0.02, what="a fetch between versions")
            with lock:
                known.add(write_version(src, rng, n))
            hq.push("app", src, "dp")
            for p in ("same.txt", "sub/run.sh"):
                status, _ = web.get("/dp/app/current/tree/" + p)
                assert status == 200, "%s: %d after version %d" % (p, status, n)
        before = client.fetches
        T.wait_until(lambda: client.fetches > before or client.error or not client.is_alive(),
                     60, interval=0.02, what="a fetch after the last version")
        client.stop_ev.set()
        client.join(60)
        assert client.error is None, "the client failed: %r" % client.error
        T.log("%d fetches across %d activations, %d distinct versions seen"
              % (client.fetches, VERSIONS - 1, len(client.bodies)))
        assert not client.bad, "%d bad responses, first %r\nnginx: %s" % (
            len(client.bad), client.bad[:3], web.error_log())
        status, body = web.get("/dp/app/current/tree/data.bin")
        assert status == 200 and body.startswith(b"version %d\n" % VERSIONS), (status, body[:20])
        status, listing = web.get("/dp/app/current/tree/")
        assert status == 200 and b"data.bin" in listing, (status, listing[:200])
        assert_shared_tree(dp.data, "app", gid)
        hq.stop()
        dp.stop()
    finally:
        if web:
            web.stop()
        T.cleanup()
        share.remove()


def test_setting_share_group_opens_held_versions_at_start(root):
    """A site that held versions before share_group was set serves them
    once restarted with it (no push needed), says so in its log, and
    keeps them private again once the key is removed."""
    gid = needs()
    share = ShareDir()
    web = None
    try:
        hq, dp = T.Site(share.path, "hq"), T.Site(share.path, "dp")
        hq.add_peer(dp)
        dp.add_peer(hq, address=False)
        hq.start()
        dp.start()
        src = os.path.join(root, "src")
        rng = random.Random(17)
        write_version(src, rng, 1)
        hq.push("app", src, "dp")
        body = write_version(src, rng, 2)
        hq.push("app", src, "dp")
        web = Nginx(os.path.join(share.path, "nginx"), {"dp": os.path.join(dp.data, "packages")})
        url = "/dp/app/current/tree/data.bin"
        assert web.get(url)[0] == 403, "served before share_group was set"
        dp.stop()
        dp.site_opts["share_group"] = WEB_USER
        dp.start()
        assert web.get(url) == (200, body)
        assert web.get("/dp/app/1/tree/same.txt")[0] == 200, "the older version stayed private"
        assert_shared_tree(dp.data, "app", gid)
        lines = [x for x in dp.log_text().splitlines()
                 if "share_group %s: 2 held versions given the group's access" % WEB_USER in x]
        assert len(lines) == 1 and T.log_level(lines[0]) == "info", dp.log_tail()
        dp.stop()
        del dp.site_opts["share_group"]
        dp.start()
        assert web.get(url)[0] == 403, "still served after share_group was removed"
        tree = os.path.realpath(dp.current_tree("app"))
        assert stat.S_IMODE(os.stat(os.path.dirname(tree)).st_mode) == 0o700
        hq.stop()
        dp.stop()
    finally:
        if web:
            web.stop()
        T.cleanup()
        share.remove()


def test_check_config_refuses_a_group_bdrd_is_not_in(root):
    """bdrd --check-config, run as a user outside share_group, names the
    group and the fix; bdrd's start makes the same check."""
    needs()
    if not shutil.which("setpriv"):
        raise T.Skip("setpriv not found")
    share = ShareDir()
    try:
        site = T.Site(share.path, "dp", share_group=WEB_USER)
        site.write_config()
        os.chmod(site.dir, 0o755)
        os.chmod(site.conf, 0o644)
        p = T.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                   T.BDRD, "--check-config", "-c", site.conf], check=False)
        T.log("--check-config as nobody: exit %d: %s" % (p.returncode, p.stderr.strip()))
        assert p.returncode == 1, p
        assert "share_group %s: bdrd is not a member" % WEB_USER in p.stderr, p.stderr
        assert "usermod -aG %s bdr" % WEB_USER in p.stderr, p.stderr
    finally:
        share.remove()


TESTS = [
    test_nginx_serves_every_activation,
    test_setting_share_group_opens_held_versions_at_start,
    test_check_config_refuses_a_group_bdrd_is_not_in,
]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
