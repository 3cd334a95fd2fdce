#!/usr/bin/env python3
"""Local users of the control socket (bdrctl(8), USERS): a member of
control_group gets from bdrd nothing it could not do with its own rights.

bdrctl opens what the user names (the directory of a push, the file of a
bundle) and passes the descriptor; bdrd opens no path for a client and reads
beneath a pushed directory only what the client may read. The tests run
bdrctl as an unprivileged user made for them (bdrtest-user, in the group
bdrtest-ctl; created once with useradd/groupadd and reused) and need root:
they skip otherwise. Also: a control client that never reads its answers is
dropped once its backlog passes the cap, with bdrd's memory bounded, while
another client is served.

    python3 test_users.py BDRD BDRCTL [TEST...]
"""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bdrtest as T  # noqa: E402

USER, GROUP = "bdrtest-user", "bdrtest-ctl"
SECRET = b"TOP-SECRET-root-only-bytes-4f1c9e\n"


def control_user():
    """(uid, primary gid) of USER, a member of GROUP (supplementary),
    created if missing; skips when that cannot be done here."""
    if os.geteuid() != 0:
        raise T.Skip("needs root to run bdrctl as another user")
    for tool in ("useradd", "groupadd", "setpriv"):
        if not shutil.which(tool):
            raise T.Skip("%s not found" % tool)
    if subprocess.run(["getent", "group", GROUP], stdout=subprocess.DEVNULL).returncode:
        T.run(["groupadd", "-r", GROUP])
    if subprocess.run(["getent", "passwd", USER], stdout=subprocess.DEVNULL).returncode:
        T.run(["useradd", "-r", "-M", "-N", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
               "-G", GROUP, USER])
    pw = T.run(["getent", "passwd", USER]).stdout.split(":")
    ids = T.run(["id", "-Gn", USER]).stdout.split()
    if GROUP not in ids:
        T.run(["usermod", "-a", "-G", GROUP, USER])
    return int(pw[2]), int(pw[3])


def reachable(path):
    """Makes path and every directory above it traversable by others (the
    test root is made 0700); fails if one above the test root is not."""
    t = path
    while t != "/":
        st = os.stat(t)
        if not st.st_mode & stat.S_IXOTH:
            os.chmod(t, stat.S_IMODE(st.st_mode) | 0o011)
        t = os.path.dirname(t)


def setup(root):
    uid, gid = control_user()
    hq, branch = T.hq_and_branch(root)
    hq.site_opts["control_group"] = GROUP
    branch.start()
    hq.start()
    reachable(hq.dir)
    return uid, gid, hq, branch


def as_user(site, *args, wrap=(), timeout=120):
    """bdrctl --json ARGS on site, run as USER (its own groups)."""
    cmd = list(wrap) + ["setpriv", "--reuid", USER, "--regid", GROUP, "--init-groups",
                        T.BDRCTL, "-s", site.control, "--json"] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def last_json(p):
    """The last of the JSON values bdrctl --json printed (events, result)."""
    dec, text, pos, last = json.JSONDecoder(), p.stdout, 0, None
    while text[pos:].strip():
        pos += len(text[pos:]) - len(text[pos:].lstrip())
        last, pos = dec.raw_decode(text, pos)
    return last


def library_holds(site, data):
    """Whether any file under site's data directory contains data."""
    for dp, _, fn in os.walk(site.data):
        for name in fn:
            p = os.path.join(dp, name)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                if data in f.read():
                    return p
    return None


def make_pkg(path, uid):
    """A small tree the user may read: files, a subdirectory, a relative
    symlink inside it."""
    os.makedirs(os.path.join(path, "sub"))
    T.write_file(os.path.join(path, "a.txt"), b"alpha\n" * 1000)
    T.write_file(os.path.join(path, "sub", "b.bin"), bytes(range(256)) * 300, mode=0o640)
    os.symlink("sub/b.bin", os.path.join(path, "link-inside"))
    os.chown(os.path.join(path, "sub", "b.bin"), uid, -1)  # 0640, the user's own


def test_push_needs_the_users_rights(root):
    """The user cannot push what it cannot read: a root-only directory
    fails in bdrctl itself (its own EACCES, exit 1, nothing sent); a
    readable directory holding a root-only file or directory is refused by
    bdrd (invalid_package, exit 4), nothing imported; a symlink pointing out
    of the tree is never followed (refused, its target's bytes nowhere in
    the library); a readable tree arrives bit-exact."""
    uid, gid, hq, branch = setup(root)
    secret = os.path.join(root, "secret")
    os.mkdir(secret, 0o700)
    T.write_file(os.path.join(secret, "key"), SECRET, mode=0o600)
    off = len(hq.log_text())

    p = as_user(hq, "push", "leak", secret, "--to", "branch")
    T.log("root-only directory: exit %d: %s" % (p.returncode, p.stderr.strip()))
    assert p.returncode == 1, p
    assert p.stderr.strip() == "bdrctl: %s: Permission denied" % secret, p.stderr
    assert "imported" not in hq.log_text()[off:], hq.log_tail()
    assert hq.status()["transfers"] == [], hq.status()

    # Readable directories with something inside the user may not read.
    for what in ("file", "dir"):
        pkg = os.path.join(root, "mixed-" + what)
        make_pkg(pkg, uid)
        if what == "file":
            T.write_file(os.path.join(pkg, "sub", "shadow"), SECRET, mode=0o600)
        else:
            os.mkdir(os.path.join(pkg, "private"), 0o700)
            T.write_file(os.path.join(pkg, "private", "k"), SECRET, mode=0o644)
        p = as_user(hq, "push", "leak", pkg, "--to", "branch")
        T.log("root-only %s inside: exit %d: %s" % (what, p.returncode, p.stderr.strip()))
        assert p.returncode == 4 and "[invalid_package]" in p.stderr \
            and "Permission denied" in p.stderr, p

    # A symlink out of the tree: stored only as a link would be, never read
    # through; bdr refuses targets outside the package root.
    pkg = os.path.join(root, "outlink")
    make_pkg(pkg, uid)
    os.symlink(os.path.join(secret, "key"), os.path.join(pkg, "leak"))
    p = as_user(hq, "push", "leak", pkg, "--to", "branch")
    T.log("symlink out of the tree: exit %d: %s" % (p.returncode, p.stderr.strip()))
    assert p.returncode == 4 and "absolute" in p.stderr, p
    assert hq.ctl("packages")["packages"] == [], "a refused push made a version"

    # What the user may read goes through, bit-exact.
    pkg = os.path.join(root, "pkg")
    make_pkg(pkg, uid)
    p = as_user(hq, "push", "app", pkg, "--to", "branch", "--wait")
    assert p.returncode == 0, p
    assert last_json(p)["state"] == "activated", p.stdout
    T.assert_same_tree(pkg, branch.current_tree("app"))
    assert os.path.islink(os.path.join(branch.current_tree("app"), "link-inside"))
    log = hq.log_text()[off:]
    assert "imported: directory of uid %d" % uid in log, log
    for site in (hq, branch):
        leaked = library_holds(site, SECRET)
        assert not leaked, "the secret is in %s's data: %s" % (site.name, leaked)
    assert [x["name"] for x in hq.ctl("packages")["packages"]] == ["app"]
    # The fence is the client's, not bdrd's: root may push the same tree.
    hq.push("rootpkg", os.path.join(root, "mixed-file"), to="branch", wait=False)


def test_bundle_where_the_user_can_write(root):
    """bundle create writes only where the user may: into a root-only 0700
    directory it fails in bdrctl (EACCES, exit 1) and no file appears; into
    the user's own directory the bundle is the user's file; bundle import
    of a root-only file fails in bdrctl."""
    uid, gid, hq, branch = setup(root)
    pkg = os.path.join(root, "pkg")
    make_pkg(pkg, uid)
    hq.push("app", pkg, to="branch")
    closed = os.path.join(root, "closed")
    os.mkdir(closed, 0o700)
    out = os.path.join(closed, "app.bdrb")
    p = as_user(hq, "bundle", "create", "app", "-o", out)
    T.log("into a root-only directory: exit %d: %s" % (p.returncode, p.stderr.strip()))
    assert p.returncode == 1 and p.stderr.strip() == "bdrctl: %s: Permission denied" % out, p
    assert os.listdir(closed) == [], os.listdir(closed)

    mine = os.path.join(root, "mine")
    os.mkdir(mine, 0o700)
    os.chown(mine, uid, gid)
    out = os.path.join(mine, "app.bdrb")
    p = as_user(hq, "bundle", "create", "app", "-o", out)
    assert p.returncode == 0, p
    res = last_json(p)
    st = os.stat(out)
    assert res["file"] == out and res["bytes"] == st.st_size and st.st_uid == uid, (res, st)
    assert os.listdir(mine) == ["app.bdrb"], os.listdir(mine)

    rootonly = os.path.join(closed, "copy.bdrb")
    shutil.copy(out, rootonly)
    p = as_user(hq, "bundle", "import", rootonly)
    assert p.returncode == 1 and "Permission denied" in p.stderr, p
    # The user's own bundle goes in (a site takes its own versions back).
    p = as_user(hq, "bundle", "import", out)
    assert p.returncode == 0 and last_json(p)["held"] is True, p


def test_push_from_a_private_mount(root):
    """A directory only bdrctl's process can see (a tmpfs in a mount
    namespace of its own, as PrivateTmp hides /tmp from the service) is
    pushed from the descriptor bdrctl passes; the branch gets it
    bit-exact."""
    uid, gid, hq, branch = setup(root)
    if not shutil.which("unshare"):
        raise T.Skip("unshare not found")
    ref = os.path.join(root, "ref")
    make_pkg(ref, uid)
    hidden = os.path.join(root, "hidden")
    os.mkdir(hidden, 0o755)
    script = ('mount -t tmpfs -o mode=0755 bdrtest "$1" && cp -a "$2/." "$1/" && '
              'setpriv --reuid %s --regid %s --init-groups "$3" -s "$4" --json '
              'push app "$1" --to branch --wait' % (USER, GROUP))
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                        hidden, ref, T.BDRCTL, hq.control], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    if p.returncode and "unshare" in p.stderr and "Operation not permitted" in p.stderr:
        raise T.Skip("no mount namespaces here: %s" % p.stderr.strip())
    assert p.returncode == 0, p
    assert os.listdir(hidden) == [], "the tmpfs was visible outside its namespace"
    T.assert_same_tree(ref, branch.current_tree("app"))


def test_paths_refused(root):
    """bdrd opens no path for a client: a request naming one (an older
    bdrctl's "dir" or "file") is refused with bad_request saying so; a push
    without its descriptor, or with a file where a directory belongs, is
    refused; descriptors sent with no request are closed; none of it
    leaks a descriptor in bdrd."""
    hq = T.Site(root, "hq")
    hq.start()
    secret = os.path.join(root, "secret")
    os.mkdir(secret, 0o700)
    T.write_file(os.path.join(secret, "key"), SECRET, mode=0o600)
    hq.status(), hq.ctl("packages")  # what bdrd opens on its first queries
    fds_before = len(os.listdir("/proc/%d/fd" % hq.proc.pid))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(hq.control)
    f = s.makefile("r")

    def ask(obj, fds=()):
        line = (json.dumps(obj) + "\n").encode()
        if fds:
            socket.send_fds(s, [line], list(fds))
        else:
            s.sendall(line)
        return json.loads(f.readline())

    a = ask({"id": 1, "cmd": "push", "package": "x", "dir": secret, "to": "hq"})
    assert a["error"]["code"] == "bad_request" and "opens no path" in a["error"]["message"], a
    a = ask({"id": 2, "cmd": "bundle_create", "package": "x", "file": "/etc/bdr-x"})
    assert a["error"]["code"] == "bad_request" and "opens no path" in a["error"]["message"], a
    assert not os.path.exists("/etc/bdr-x")
    a = ask({"id": 3, "cmd": "push", "package": "x", "to": "hq"})
    assert a["error"]["code"] == "bad_request" and "descriptor" in a["error"]["message"], a
    fd = os.open(os.path.join(secret, "key"), os.O_RDONLY)
    a = ask({"id": 4, "cmd": "push", "package": "x", "to": "hq"}, [fd])
    assert a["error"]["code"] == "bad_request" and "not a directory" in a["error"]["message"], a
    dfd = os.open(secret, os.O_RDONLY)
    a = ask({"id": 5, "cmd": "bundle_import"}, [dfd])
    os.close(dfd)
    assert "not a regular file" in a["error"]["message"], a
    a = ask({"id": 6, "cmd": "bundle_create", "package": "x"}, [fd])  # read-only
    assert "open for writing" in a["error"]["message"], a
    a = ask({"id": 7, "cmd": "status"}, [fd, fd])
    assert a == {"id": 7, "ok": True, "result": a["result"]}, a
    a = json.loads(f.readline())
    assert a["id"] is None and "no request" in a["error"]["message"], a
    os.close(fd)
    assert ask({"id": 8, "cmd": "packages"})["ok"] is True
    f.close()  # the socket closes with its last file object
    s.close()
    T.wait_until(lambda: len(os.listdir("/proc/%d/fd" % hq.proc.pid)) <= fds_before, 10,
                 what="bdrd to close every descriptor passed (%d before, now: %r)" % (
                     fds_before, [os.readlink("/proc/%d/fd/%s" % (hq.proc.pid, x))
                                  for x in os.listdir("/proc/%d/fd" % hq.proc.pid)]))
    assert "imported" not in hq.log_text(), hq.log_tail()


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def test_client_that_never_reads(root):
    """A client that pipelines requests and never reads its answers is
    dropped once its unread answers pass the cap (one warn line naming its
    uid and pid); bdrd's peak RSS grows by less than 64 MiB meanwhile, and
    another client is served throughout."""
    hq = T.Site(root, "hq")
    hq.start()
    pid = hq.proc.pid
    rss0 = vm_kib(pid, "VmRSS")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(hq.control)
    s.settimeout(1)
    batch = b"".join(b'{"id":%d,"cmd":"status"}\n' % i for i in range(1000))
    sent, served, dropped = 0, False, None
    end = T.deadline(120)
    while time.monotonic() < end:
        try:
            sent += s.send(batch)
        except socket.timeout:
            pass  # bdrd is busy answering; its reads resume
        except (BrokenPipeError, ConnectionResetError) as e:
            dropped = e
            break
        if not served and sent > (64 << 10):
            assert hq.ctl("packages") == {"packages": []}  # served meanwhile
            served = True
    T.log("sent %s of requests before the drop (%r)" % (T.fmt_bytes(sent), dropped))
    assert dropped is not None, "a client that never reads was not dropped after %s" \
        % T.fmt_bytes(sent)
    assert served
    line = T.wait_until(lambda: [x for x in hq.log_text().splitlines()
                                 if "dropped the client of uid 0 pid %d" % os.getpid() in x],
                        10, what="the drop's log line")
    assert len(line) == 1 and T.log_level(line[0]) == "warn", line
    peak = vm_kib(pid, "VmHWM")
    T.log("bdrd RSS %d KiB before, peak %d KiB" % (rss0, peak))
    assert peak - rss0 < 64 * 1024, "bdrd grew by %d KiB" % (peak - rss0)
    s.close()
    assert hq.status()["transfers"] == []


TESTS = [
    test_push_needs_the_users_rights,
    test_bundle_where_the_user_can_write,
    test_push_from_a_private_mount,
    test_paths_refused,
    test_client_that_never_reads,
]

if __name__ == "__main__":
    sys.exit(T.main(TESTS, sys.argv[1:]))
