"""Shared helpers of bdr's Python integration tests (stdlib only).

A test builds sites (key, configuration, data directory, control socket) in
a temporary directory, starts real bdrd processes, drives them with bdrctl
--json and checks what a user sees: the trees under
DATA/packages/PKG/current/tree, `status`, the logs.

    bdrtest.configure(bdrd_path, bdrctl_path)
    root = bdrtest.TempRoot("push")
    a = bdrtest.Site(root.path, "hq"); b = bdrtest.Site(root.path, "branch")
    a.add_peer(b); b.add_peer(a, address=False)
    b.start(); a.start()
    res = a.push("app", src, to="branch")   # bdrctl --json push --wait
    bdrtest.assert_same_tree(src, b.current_tree("app"))

Daemons are started with NOTIFY_SOCKET set to a datagram socket of the
test's own, and start() returns once bdrd sent READY=1: no sleeps. Every
daemon started is remembered, so cleanup() can kill whatever a failing test
left behind.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

BDRD = None
BDRCTL = None
MiB = 1 << 20

# bdrd's lines outside the journal start with their local time (bdrd(8)).
LOG_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} "


def log_level(line):
    """The level word of one of bdrd's log lines (after its time), or None."""
    m = re.match(LOG_TIME + r"(\w+) ", line)
    return m.group(1) if m else None

_live = []  # every Site with a running daemon


class Skip(Exception):
    """The test cannot run here (something genuinely unavailable)."""


class ExpectedFailure(Exception):
    """A known daemon bug makes this test fail; the message says which."""


def configure(bdrd, bdrctl):
    global BDRD, BDRCTL
    for p in (bdrd, bdrctl):
        if not os.access(p, os.X_OK):
            raise SystemExit("not an executable: %s" % p)
    BDRD, BDRCTL = os.path.abspath(bdrd), os.path.abspath(bdrctl)


def log(msg):
    print("    " + msg, flush=True)


def deadline(seconds):
    return time.monotonic() + seconds


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "%.1f %s" % (n, unit) if unit != "B" else "%d B" % n
        n /= 1024.0


# ---- temporary directories and ports ----

class TempRoot:
    """A fresh directory under $BDR_TEST_TMP (or /tmp) for one test."""

    def __init__(self, name):
        base = os.environ.get("BDR_TEST_TMP") or tempfile.gettempdir()
        os.makedirs(base, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix="bdr-%s-" % name, dir=base)

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- running bdrctl ----

def run(args, timeout=60, check=True, **kw):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


class PushResult:
    """What `bdrctl --json push` printed: events, then result or error."""

    def __init__(self, rc, events, final, stderr):
        self.rc = rc
        self.events = events      # every {"event": ...} line, in order
        self.final = final        # the last line (result object or error)
        self.stderr = stderr

    @property
    def ok(self):
        return self.rc == 0

    def event(self, name):
        return [e for e in self.events if e.get("event") == name]

    def transfer(self):
        q = self.event("queued")
        if q:
            return q[0]["transfer"]
        return self.final.get("transfer") if isinstance(self.final, dict) else None

    def __repr__(self):
        return "PushResult(rc=%d, final=%r, stderr=%r)" % (self.rc, self.final,
                                                           self.stderr.strip())


class PushProcess:
    """A running `bdrctl --json push [--wait]`; its lines are read by a
    thread and handed to on_event(dict) as they come (progress included)."""

    def __init__(self, site, package, src, to, wait=True, on_event=None, priority=None):
        args = [BDRCTL, "-s", site.control, "--json", "push", package, src, "--to", to]
        if wait:
            args.append("--wait")
        if priority:
            args += ["--priority", priority]
        self.args = args
        self.on_event = on_event
        self.lines = []
        self.rest = []
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self._err = []
        self._t_out = threading.Thread(target=self._read_out, daemon=True)
        self._t_err = threading.Thread(target=lambda: self._err.append(self.proc.stderr.read()),
                                       daemon=True)
        self._t_out.start()
        self._t_err.start()
        self.callback_error = None

    def _read_out(self):
        # Events are compact lines; the result that ends a successful run is
        # indented JSON over several lines (errors go to stderr).
        for line in self.proc.stdout:
            obj = None
            if line.startswith("{") and line.rstrip().endswith("}"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
            if isinstance(obj, dict) and "event" in obj:
                self.lines.append(obj)
                if self.on_event:
                    try:
                        self.on_event(obj)
                    except Exception as e:  # reported by wait()
                        self.callback_error = e
            else:
                self.rest.append(line)

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("bdrctl push did not end within %d s: %s (lines so far: %s)"
                                 % (timeout, " ".join(self.args), self.lines[-3:]))
        self._t_out.join(10)
        self._t_err.join(10)
        if self.callback_error:
            raise self.callback_error
        text = "".join(self.rest).strip()
        try:
            final = json.loads(text) if text else None
        except ValueError:
            final = {"unparsed": text}
        return PushResult(rc, list(self.lines), final, "".join(self._err))

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---- sites ----

class Site:
    """One bdr site: key, bdr.conf, data directory, control socket, bdrd."""

    def __init__(self, root, name, host="127.0.0.1", dirname=None, extra_config="",
                 port=None, wrapper=None, **site_opts):
        self.name = name
        self.dir = os.path.join(root, dirname or name)
        self.data = os.path.join(self.dir, "data")
        self.key = os.path.join(self.dir, "key")
        self.conf = os.path.join(self.dir, "bdr.conf")
        self.control = os.path.join(self.dir, "control.sock")
        self.log_path = os.path.join(self.dir, "log")
        self.notify_path = os.path.join(self.dir, "notify.sock")
        self.host = host
        # port: a fixed one (a host of another network namespace, where the
        # kernel cannot be asked for a free one here); default: a free port
        self.port = port if port is not None else free_port(host)
        # wrapper: the command bdrd runs under (["ip", "netns", "exec", NS]);
        # it must exec bdrd, so the process started is the daemon itself
        self.wrapper = list(wrapper or [])
        self.site_opts = dict(site_opts)   # extra [site] keys
        self.limits = {}                   # [limits] keys
        self.peers = []                    # (name, public_key, [addresses], relation)
        self.extra_config = extra_config   # text written at the end of bdr.conf
        self.proc = None
        self.starts = 0
        self.notify = None                 # the notify socket kept by start(keep_notify=True)
        self.notified = []                 # what it received after READY=1, line by line
        os.makedirs(self.data)
        run([BDRCTL, "keygen", "-o", self.key])
        self.public_key = run([BDRCTL, "pubkey", "-k", self.key]).stdout.strip()

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def add_peer(self, other, address=True, public_key=None, name=None, relation=None):
        """Lists other (a Site) as a peer. address=False: it only connects
        to us; a string or a list: the address lines written (HOST:PORT or
        [address NAME] names). public_key/name override what is written
        (wrong pins). relation: parent or child (the hierarchy)."""
        if isinstance(address, (list, tuple)):
            addrs = list(address)
        else:
            addrs = [other.address] if address is True else ([address] if address else [])
        self.peers.append((name or other.name, public_key or other.public_key, addrs, relation))
        if self.proc:
            self.write_config()

    def write_config(self):
        lines = ["[site]", "name = " + self.name, "listen = " + self.address,
                 "key = " + self.key, "data = " + self.data, "control = " + self.control]
        lines += ["%s = %s" % kv for kv in self.site_opts.items()]
        if self.limits:
            lines += ["", "[limits]"] + ["%s = %s" % kv for kv in self.limits.items()]
        for name, pk, addrs, relation in self.peers:
            lines += ["", "[peer %s]" % name, "public_key = " + pk]
            lines += ["address = " + a for a in addrs]
            if relation:
                lines.append("relation = " + relation)
        if self.extra_config:
            lines += ["", self.extra_config.strip("\n")]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- the daemon --

    def start(self, timeout=30, keep_notify=False):
        """Starts bdrd and returns once it sent READY=1. keep_notify: the
        notify socket stays open afterwards, for notify_wait() to read what
        bdrd reports later (RELOADING=1, READY=1, STOPPING=1), even after
        it exited."""
        assert self.proc is None, "%s already running" % self.name
        self.write_config()
        self.close_notify()
        try:
            os.unlink(self.notify_path)
        except FileNotFoundError:
            pass
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(self.notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        self.starts += 1
        with open(self.log_path, "a") as logf:
            logf.write("==== test: start %d of %s\n" % (self.starts, self.name))
            logf.flush()
            self.proc = subprocess.Popen(self.wrapper + [BDRD, "-c", self.conf],
                                         stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, env=env)
        _live.append(self)
        end = deadline(timeout)
        try:
            while True:
                ns.settimeout(0.2)
                try:
                    msg = ns.recv(4096).decode(errors="replace")
                except socket.timeout:
                    msg = ""
                if "READY=1" in msg.split("\n"):
                    if keep_notify:
                        self.notify, ns = ns, None
                    return
                rc = self.proc.poll()
                if rc is not None:
                    self.proc = None
                    raise AssertionError("bdrd of %s exited %d before READY=1; log:\n%s"
                                         % (self.name, rc, self.log_tail()))
                if time.monotonic() > end:
                    self.kill()
                    raise AssertionError("bdrd of %s sent no READY=1 within %d s; log:\n%s"
                                         % (self.name, timeout, self.log_tail()))
        finally:
            if ns is not None:
                ns.close()
                try:
                    os.unlink(self.notify_path)
                except FileNotFoundError:
                    pass

    def notify_wait(self, line, timeout=10):
        """Reads the kept notify socket (start(keep_notify=True)) until a
        datagram holds the line (e.g. "READY=1"); returns every line received
        up to it (appended to self.notified too). Bounded by timeout."""
        assert self.notify is not None, "%s: start() did not keep the notify socket" % self.name
        got = []
        end = deadline(timeout)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no %s on the notify socket within %d s (got %r)"
                                     % (self.name, line, timeout, got))
            self.notify.settimeout(min(left, 0.2))
            try:
                msg = self.notify.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            lines = [x for x in msg.split("\n") if x]
            got += lines
            self.notified += lines
            if line in lines:
                return got

    def close_notify(self):
        if self.notify is None:
            return
        self.notify.close()
        self.notify = None
        try:
            os.unlink(self.notify_path)
        except FileNotFoundError:
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM, then waits: the daemon must exit 0 in time."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        _forget(self)
        if p.poll() is not None:
            raise AssertionError("bdrd of %s had already exited %d; log:\n%s"
                                 % (self.name, p.returncode, self.log_tail()))
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("bdrd of %s did not stop within %d s of SIGTERM; log:\n%s"
                                 % (self.name, timeout, self.log_tail()))
        if rc != 0:
            raise AssertionError("bdrd of %s exited %d after SIGTERM; log:\n%s"
                                 % (self.name, rc, self.log_tail()))

    def kill(self):
        """SIGKILL: no chance to clean up (a crash, a power cut of the process)."""
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        _forget(self)
        if p.poll() is None:
            p.kill()
        p.wait()

    # -- bdrctl --

    def ctl(self, *args, check=True, timeout=60):
        """bdrctl --json ARGS; returns the parsed last line (the result).
        check=False: (exit status, result or None after an error, stderr)."""
        p = run([BDRCTL, "-s", self.control, "--json"] + list(args), timeout=timeout,
                check=False)
        if check and p.returncode != 0:
            died = ""
            if self.proc is not None and self.proc.poll() is not None:
                died = "; bdrd of %s has died (exit status %d)" % (self.name,
                                                                   self.proc.returncode)
            raise AssertionError("bdrctl %s on %s exited %d: %s%s\nlog of %s:\n%s"
                                 % (" ".join(args), self.name, p.returncode, p.stderr.strip(),
                                    died, self.name, self.log_tail()))
        res = json.loads(p.stdout) if p.stdout.strip() else None
        if p.returncode != 0 and isinstance(res, dict) and set(res) == {"error"}:
            # --json's error document (stderr says the same): no result
            assert "bdrctl: " + res["error"]["message"] == p.stderr.strip(), (res, p.stderr)
            res = None
        return res if check else (p.returncode, res, p.stderr)

    def status(self, package=None):
        """bdrctl --json status [PACKAGE]; exit 5 (it shows failed
        transfers) is an answer like 0."""
        rc, res, err = self.ctl("status", *([package] if package else []), check=False)
        if rc not in (0, 5):
            raise AssertionError("bdrctl status on %s exited %d: %s\nlog of %s:\n%s"
                                 % (self.name, rc, err.strip(), self.name, self.log_tail()))
        return res

    def transfer(self, tid):
        for t in self.status()["transfers"]:
            if t["transfer"] == tid:
                return t
        raise AssertionError("%s: no transfer %s in status" % (self.name, tid))

    def push_start(self, package, src, to, wait=True, on_event=None, priority=None):
        return PushProcess(self, package, src, to, wait=wait, on_event=on_event,
                           priority=priority)

    def push(self, package, src, to, wait=True, on_event=None, timeout=300, check=True):
        """bdrctl --json push PACKAGE SRC --to TO [--wait]; with check the
        push must succeed (exit 0, state activated with wait)."""
        res = self.push_start(package, src, to, wait=wait, on_event=on_event).wait(timeout)
        if check:
            if res.rc != 0:
                raise AssertionError("push %s to %s failed: %r\nsender log:\n%s"
                                     % (package, to, res, self.log_tail()))
            want = "activated" if wait else "queued"
            if not isinstance(res.final, dict) or res.final.get("state") != want:
                raise AssertionError("push %s to %s: expected state %s, got %r"
                                     % (package, to, want, res.final))
        return res

    # -- what is on disk --

    def current_tree(self, package):
        return os.path.join(self.data, "packages", package, "current", "tree")

    def has_package(self, package):
        return os.path.lexists(os.path.join(self.data, "packages", package))

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


def _forget(site):
    try:
        _live.remove(site)
    except ValueError:
        pass


def cleanup():
    """Kills every daemon a test left running."""
    for s in list(_live):
        s.kill()


def wait_until(pred, timeout, interval=0.2, what="condition"):
    """Polls pred() every interval until it returns something true; bounded."""
    end = deadline(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- a slow link ----

class Link:
    """A TCP relay on 127.0.0.1 standing for a WAN link: what the client
    (the connecting sender) writes reaches target at most rate bytes per
    second, so a transfer lasts long enough to be interrupted where a test
    wants it (loopback is faster than bdrd's progress events). An end that
    closes is passed on as a half close (FIN); an end that resets (a killed
    process with unread data) resets the other end too (RST), as a real
    path would."""

    def __init__(self, target_port, rate):
        self.target = ("127.0.0.1", target_port)
        self.rate = rate
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.closed = False
        self.pairs = []
        self.relayed = 0     # bytes from the client delivered to target, all connections
        self._count_lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target, timeout=10)
                b.settimeout(None)
            except OSError:
                a.close()
                continue
            self.pairs.append(_Pair(a, b, self.rate, self._count))

    def _count(self, n):
        with self._count_lock:
            self.relayed += n

    def close(self):
        self.closed = True
        self.srv.close()
        for p in self.pairs:
            p.reset()


class _Pair:
    """One relayed connection: a (the client) -> b rate-limited, b -> a."""

    def __init__(self, a, b, rate, count=None):
        self.socks = (a, b)
        self.lock = threading.Lock()
        self.running = 2
        self.resetting = False
        threading.Thread(target=self._pump, args=(a, b, rate, count), daemon=True).start()
        threading.Thread(target=self._pump, args=(b, a, None), daemon=True).start()

    def _pump(self, src, dst, rate, count=None):
        sent, t0 = 0, time.monotonic()
        try:
            while True:
                data = src.recv(64 * 1024)
                if not data:
                    if not self.resetting:
                        dst.shutdown(socket.SHUT_WR)
                    break
                dst.sendall(data)
                sent += len(data)
                if count:
                    count(len(data))
                if rate:
                    ahead = sent / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            self.reset()
        with self.lock:
            self.running -= 1
            last = self.running == 0
        if last:
            for s in self.socks:
                s.close()  # with SO_LINGER 0 after a reset: an RST

    def reset(self):
        """Both ends get an RST once both pumps stopped (SHUT_RD wakes a
        pump blocked in recv without sending anything)."""
        with self.lock:
            if self.resetting:
                return
            self.resetting = True
        for s in self.socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)
            except OSError:
                pass


# ---- trees ----

WORDS = ("alpha beta gamma delta config server client request response error warning "
         "info debug value key table index record version package branch site daemon "
         "transfer chunk manifest library import export buffer stream socket thread "
         "the of and to in is for on with as at by from that this it be are was").split()


def text_bytes(rng, n):
    """n bytes of compressible, log-like text."""
    out, size = [], 0
    while size < n:
        words = rng.choices(WORDS, k=4096)
        line_ends = rng.choices(range(8, 16), k=512)
        parts, i = [], 0
        for le in line_ends:
            parts.append("%d %s\n" % (rng.randrange(1 << 30), " ".join(words[i:i + le])))
            i += le
            if i >= len(words):
                break
        blob = "".join(parts).encode()
        out.append(blob)
        size += len(blob)
    return b"".join(out)[:n]


def random_bytes(rng, n):
    return rng.randbytes(n)


def write_file(path, data, mode=0o644, mtime_ns=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def make_tree(root, seed, total, random_share=0.6, big_files=True):
    """A tree of about total bytes under root, the same for the same seed:
    nested directories, many small files and a few large ones, text and
    random content, exec bits, an empty file, an empty directory and
    symlinks (to a file, to a directory, through ..). Returns the list of
    regular files' relative paths."""
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    dirs = [""]
    for i in range(12):
        parent = rng.choice(dirs)
        if parent.count("/") >= 3:
            parent = ""
        dirs.append(os.path.join(parent, "d%02d" % i))
    files, size, i = [], 0, 0
    # a few large files first, then smaller ones until the budget is spent
    plan = []
    if big_files:
        plan += [total // 8, total // 10, total // 16]
    while sum(plan) < total:
        r = rng.random()
        if r < 0.6:
            plan.append(rng.randrange(0, 16 << 10))
        elif r < 0.9:
            plan.append(rng.randrange(16 << 10, 512 << 10))
        else:
            plan.append(rng.randrange(512 << 10, 4 << 20))
    for n in plan:
        n = min(n, total - size) if size < total else 0
        if n <= 0 and files:
            break
        d = rng.choice(dirs)
        israndom = rng.random() < random_share
        name = "f%04d.%s" % (i, "bin" if israndom else "txt")
        rel = os.path.join(d, name)
        data = random_bytes(rng, n) if israndom else text_bytes(rng, n)
        mode = rng.choice((0o644, 0o644, 0o644, 0o755, 0o600, 0o640))
        write_file(os.path.join(root, rel), data, mode)
        files.append(rel)
        size += n
        i += 1
    # the special cases a user relies on
    write_file(os.path.join(root, "empty"), b"", 0o644)
    files.append("empty")
    write_file(os.path.join(root, "bin", "tool"), b"#!/bin/sh\necho tool\n", 0o755)
    files.append("bin/tool")
    os.makedirs(os.path.join(root, "emptydir", "nested"))
    os.symlink("tool", os.path.join(root, "bin", "tool-link"))
    os.symlink(os.path.join("..", files[0]), os.path.join(root, "bin", "first"))
    target_dir = next((d for d in dirs if d), "bin")
    os.symlink(target_dir, os.path.join(root, "dir-link"))
    os.chmod(os.path.join(root, "emptydir"), 0o750)
    return files


def tree_size(root):
    n = 0
    for dp, dn, fn in os.walk(root):
        for f in fn:
            st = os.lstat(os.path.join(dp, f))
            if stat.S_ISREG(st.st_mode):
                n += st.st_size
    return n


def _entries(root):
    out = {}
    for dp, dn, fn in os.walk(root):
        for name in dn + fn:
            p = os.path.join(dp, name)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


def _same_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def tree_diff(src, dst, mtime=True):
    """Differences between two trees (empty list: bit-exact): the set of
    paths, each entry's type and permission bits (07777), regular files'
    bytes and mtime, symlinks' targets."""
    if not os.path.isdir(dst):
        return ["%s does not exist" % dst]
    a, b = _entries(src), _entries(dst)
    diffs = []
    for p in sorted(set(a) - set(b)):
        diffs.append("missing at destination: " + p)
    for p in sorted(set(b) - set(a)):
        diffs.append("extra at destination: " + p)
    for p in sorted(set(a) & set(b)):
        sa, sb = a[p], b[p]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            diffs.append("%s: type %o != %o" % (p, stat.S_IFMT(sa.st_mode),
                                                stat.S_IFMT(sb.st_mode)))
            continue
        if stat.S_ISLNK(sa.st_mode):
            ta, tb = os.readlink(os.path.join(src, p)), os.readlink(os.path.join(dst, p))
            if ta != tb:
                diffs.append("%s: symlink target %r != %r" % (p, ta, tb))
            continue
        if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            diffs.append("%s: mode %o != %o" % (p, stat.S_IMODE(sa.st_mode),
                                              stat.S_IMODE(sb.st_mode)))
        if stat.S_ISREG(sa.st_mode):
            if sa.st_size != sb.st_size:
                diffs.append("%s: size %d != %d" % (p, sa.st_size, sb.st_size))
            elif not _same_content(os.path.join(src, p), os.path.join(dst, p)):
                diffs.append("%s: content differs" % p)
            if mtime and sa.st_mtime_ns != sb.st_mtime_ns:
                diffs.append("%s: mtime %d != %d" % (p, sa.st_mtime_ns, sb.st_mtime_ns))
    return diffs


def assert_same_tree(src, dst, mtime=True):
    d = tree_diff(src, dst, mtime=mtime)
    if d:
        raise AssertionError("%s and %s differ (%d differences):\n  %s"
                             % (src, dst, len(d), "\n  ".join(d[:20])))


def file_hashes(root):
    """relative path -> sha256 of every regular file."""
    out = {}
    for dp, dn, fn in os.walk(root):
        for f in fn:
            p = os.path.join(dp, f)
            if stat.S_ISREG(os.lstat(p).st_mode):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def copy_tree(src, dst):
    shutil.copytree(src, dst, symlinks=True)


# ---- the runner ----

def main(tests, argv):
    """Runs tests (a list of functions taking a TempRoot path) in order:
    argv = [bdrd, bdrctl, [name...]]. Prints each result; exit 1 on failure."""
    if len(argv) < 2:
        print("usage: %s BDRD BDRCTL [TEST...]" % sys.argv[0], file=sys.stderr)
        return 2
    if sys.version_info < (3, 9):
        print("SKIP: these tests need Python 3.9 or later (random.randbytes), not %s"
              % sys.version.split()[0])
        return 77  # meson's "skipped"
    configure(argv[0], argv[1])

    def on_term(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    # meson's timeout sends SIGTERM: the daemons must not outlive the run
    signal.signal(signal.SIGTERM, on_term)
    wanted = argv[2:]
    chosen = [t for t in tests if not wanted or t.__name__ in wanted
              or t.__name__[len("test_"):] in wanted]
    unknown = [w for w in wanted if not any(w in (t.__name__, t.__name__[5:]) for t in tests)]
    if unknown:
        print("unknown tests: %s" % ", ".join(unknown), file=sys.stderr)
        return 2
    keep = os.environ.get("BDR_TEST_KEEP")
    results = []
    t_all = time.monotonic()
    for t in chosen:
        root = TempRoot(t.__name__[len("test_"):])
        print("--- %s (%s)" % (t.__name__, root.path), flush=True)
        t0 = time.monotonic()
        outcome, detail = "PASS", ""
        try:
            t(root.path)
        except Skip as e:
            outcome, detail = "SKIP", str(e)
        except ExpectedFailure as e:
            outcome, detail = "XFAIL", str(e)
        except KeyboardInterrupt:
            cleanup()
            print("INTERRUPTED in %s; kept %s" % (t.__name__, root.path), flush=True)
            return 1
        except Exception as e:
            outcome = "FAIL"
            import traceback
            detail = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        finally:
            cleanup()
        dt = time.monotonic() - t0
        results.append((t.__name__, outcome, dt))
        print("%s %s (%.1f s)%s" % (outcome, t.__name__, dt,
                                   ("\n" + detail) if detail else ""), flush=True)
        if outcome == "FAIL" and not keep:
            # The logs are the useful part; print them before removing.
            for name in sorted(os.listdir(root.path)):
                lp = os.path.join(root.path, name, "log")
                if os.path.isfile(lp):
                    with open(lp, errors="replace") as f:
                        lines = f.read().splitlines()
                    print("    ---- log of %s (last 60 lines)\n    %s"
                          % (name, "\n    ".join(lines[-60:])))
        if keep:
            print("    kept %s" % root.path)
        else:
            root.remove()
    print("\n=== summary (%.1f s)" % (time.monotonic() - t_all))
    for name, outcome, dt in results:
        print("%-5s %-40s %6.1f s" % (outcome, name, dt))
    failed = [r for r in results if r[1] == "FAIL"]
    return 1 if failed else 0


def hq_and_branch(root, **branch_opts):
    """The usual pair: hq pushes to branch; branch knows hq's key only."""
    hq = Site(root, "hq")
    branch = Site(root, "branch", **branch_opts)
    hq.add_peer(branch)
    branch.add_peer(hq, address=False)
    return hq, branch
