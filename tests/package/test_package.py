#!/usr/bin/env python3
"""The Debian package and `meson install`, as an operator gets them.

    test_package.py [BUILD_DIR]       (as root, on Debian 12; BUILD_DIR: a
                                       configured meson build, default build)

In order, each step needing the ones before it:
  1. `meson install --destdir` of BUILD_DIR lays out the files the package
     ships, the unit's paths following the build's prefix, and the
     installed bdr.conf passes `bdrd --check-config`;
  2. packaging/build-deb.sh builds the package (DEB_BUILD_OPTIONS=nocheck
     parallel=2: the suite has run already) and lintian finds nothing that
     is not overridden with a reason;
  3. `apt-get install ./bdr_*.deb` on this machine (PID 1 need not be
     systemd): the files (dpkg -L), the conffile, --version, the shipped
     configuration checked as root and as bdr, the user and group bdr, the
     directories, the site key (owner bdr, mode 0600, the public key the
     postinst printed) and `systemd-analyze verify` of the unit;
  4. two sites from the INSTALLED binaries: hq is the installed site itself
     (/etc/bdr/bdr.conf edited as the README says, its key, /var/lib/bdr,
     /run/bdr/control.sock, started with the unit's ExecStart as user bdr),
     branch a second bdrd in a temporary directory; `bdrctl push --wait`
     twice, bit-exact each time; then the unit's ExecReload lines run as
     systemd would run them (one after the other, stopping at a failure)
     against a broken and then a valid file;
  5. `dpkg --purge`: the files, /etc/bdr and /run/bdr are gone, the
     library and the user stay, and the postrm says how to remove them;
  6. installed again where neither systemd-sysusers nor systemd-tmpfiles
     is on PATH (the postinst's fallback: adduser, install -d), then purged
     with /etc/bdr/purge-library, which removes the library too.
The machine is left as found: what the test created (the user and group
bdr, /var/lib/bdr) is removed at the end. A step that fails stops the test
(exit 1); not root or not Debian: a message and exit 77 (skipped).
"""
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import bdrtest as T  # noqa: E402

SBIN_BDRD, BIN_BDRCTL = "/usr/sbin/bdrd", "/usr/bin/bdrctl"
CONF, KEY, LIB, RUN = "/etc/bdr/bdr.conf", "/etc/bdr/site.key", "/var/lib/bdr", "/run/bdr"
UNIT = "/lib/systemd/system/bdrd.service"
SYSUSERS, TMPFILES = "/usr/lib/sysusers.d/bdr.conf", "/usr/lib/tmpfiles.d/bdr.conf"
MANS = ["/usr/share/man/man8/bdrd.8.gz", "/usr/share/man/man8/bdrctl.8.gz",
        "/usr/share/man/man5/bdr.conf.5.gz"]
# Everything the package ships but its documentation directory.
SHIPPED = [SBIN_BDRD, BIN_BDRCTL, CONF, UNIT, SYSUSERS, TMPFILES] + MANS
AS_BDR = ["setpriv", "--reuid=bdr", "--regid=bdr", "--init-groups"]


def log(msg):
    print("    " + msg, flush=True)


def run(args, check=True, timeout=600, **kw):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(args), p.returncode, p.stdout))
    return p


def project_version():
    with open(os.path.join(TOP, "meson.build")) as f:
        return re.search(r"\bversion\s*:\s*'([^']+)'", f.read()).group(1)


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def installed():
    p = run(["dpkg-query", "-W", "-f=${Status}", "bdr"], check=False)
    return p.returncode == 0 and "installed" in p.stdout.split()


def check_owner_mode(path, user, group, mode):
    st = os.lstat(path)
    got = (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
           stat.S_IMODE(st.st_mode))
    assert got == (user, group, mode), "%s: owner, group, mode %s:%s %04o, expected %s:%s %04o" % (
        path, got[0], got[1], got[2], user, group, mode)


# ---- 1. meson install ----

def step_meson_install(st):
    build = st.build
    if not os.path.isfile(os.path.join(build, "build.ninja")):
        build = os.path.join(st.tmp, "build-install")
        run(["meson", "setup", build, TOP, "-Dtests=false"])
    opts = {o["name"]: o["value"] for o in json.loads(
        run(["meson", "introspect", build, "--buildoptions"]).stdout)}
    prefix = opts["prefix"]

    def under(d):
        return os.path.join(prefix, d)  # an absolute d stays as it is
    dest = os.path.join(st.tmp, "destdir")
    run(["meson", "install", "-C", build, "--destdir", dest, "--quiet"])
    got = sorted("/" + os.path.relpath(os.path.join(dp, f), dest)
                 for dp, dn, fn in os.walk(dest) for f in fn)
    unitdir = opts.get("systemdunitdir") or under("lib/systemd/system")
    want = sorted([
        os.path.join(under(opts["sbindir"]), "bdrd"),
        os.path.join(under(opts["bindir"]), "bdrctl"),
        os.path.join(under(opts["sysconfdir"]), "bdr", "bdr.conf"),
        os.path.join(unitdir, "bdrd.service"),
        under("lib/sysusers.d/bdr.conf"),
        under("lib/tmpfiles.d/bdr.conf"),
        os.path.join(under(opts["mandir"]), "man8", "bdrd.8"),
        os.path.join(under(opts["mandir"]), "man8", "bdrctl.8"),
        os.path.join(under(opts["mandir"]), "man5", "bdr.conf.5"),
    ])
    log("meson install --destdir (prefix %s):\n      %s" % (prefix, "\n      ".join(got)))
    assert got == want, "installed %s\nexpected %s" % (got, want)
    with open(dest + os.path.join(unitdir, "bdrd.service")) as f:
        unit = f.read()
    bdrd = os.path.join(under(opts["sbindir"]), "bdrd")
    conf = os.path.join(under(opts["sysconfdir"]), "bdr", "bdr.conf")
    assert "\nExecStart=%s -c %s\n" % (bdrd, conf) in unit, unit
    assert "\nExecReload=%s --check-config -c %s\nExecReload=/bin/kill -HUP $MAINPID\n" % (
        bdrd, conf) in unit, unit
    assert not re.search(r"@\w+@", unit), "an unsubstituted @VAR@ in the unit"
    p = run([dest + bdrd, "--check-config", "-c", dest + conf], check=False)
    assert p.returncode == 0 and not p.stdout, "installed bdr.conf refused: %s" % p.stdout


# ---- 2. the package and lintian ----

def step_build_deb(st):
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")
    out = os.path.join(st.tmp, "debs")
    t0 = time.monotonic()
    p = run(["bash", os.path.join(TOP, "packaging", "build-deb.sh"), out], check=False,
            env=env, timeout=1200)
    if p.returncode != 0:
        raise AssertionError("build-deb.sh exited %d; last lines:\n%s"
                             % (p.returncode, "\n".join(p.stdout.splitlines()[-40:])))
    debs = [f for f in os.listdir(out) if re.fullmatch(r"bdr_[^_]+_[^_]+\.deb", f)]
    assert len(debs) == 1, os.listdir(out)
    st.deb_dir, st.deb = out, debs[0]
    st.changes = [f for f in os.listdir(out) if f.endswith(".changes")][0]
    log("built %s in %.0f s" % (st.deb, time.monotonic() - t0))


def step_lintian(st):
    # lintian need not be root: it reads the files as nobody
    os.chmod(st.deb_dir, 0o755)
    lintian = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               "env", "HOME=/tmp", "lintian", "--pedantic"]
    changes = os.path.join(st.deb_dir, st.changes)
    p = run(lintian + ["--display-info", "--fail-on", "error,warning,info", changes],
            check=False)
    log("lintian --pedantic --display-info (exit %d):\n      %s"
        % (p.returncode, "\n      ".join(p.stdout.splitlines()) or "(nothing)"))
    tags = [x for x in p.stdout.splitlines() if re.match(r"[EWIP]: ", x)]
    assert p.returncode == 0 and not tags, "lintian: tags not overridden: %s" % tags
    # what debian/bdr.lintian-overrides hides (with its reasons), for the log;
    # lintian exits 2 when --show-overrides meets --fail-on, so no verdict here
    p = run(lintian + ["--display-info", "--show-overrides", changes], check=False)
    log("overridden:\n      %s" % "\n      ".join(p.stdout.splitlines()))


# ---- 3. install ----

def step_install(st):
    assert not installed(), "bdr is installed on this machine: this test would replace it"
    for what, there in (("user bdr", user_exists("bdr")), ("group bdr", group_exists("bdr")),
                        (LIB, os.path.lexists(LIB)), ("/etc/bdr", os.path.lexists("/etc/bdr"))):
        assert not there, ("%s exists already (left by an earlier install?): this test checks "
                           "that the package creates it; remove it first" % what)
    st.created_user = True
    p = run(["apt-get", "install", "-y", "--no-install-recommends", "./" + st.deb],
            cwd=st.deb_dir, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    said = [x for x in p.stdout.splitlines() if x.startswith(("bdr:", "    "))]
    log("the postinst printed:\n      %s" % "\n      ".join(said))
    st.postinst_said = said
    assert installed()


def step_files(st):
    listed = run(["dpkg", "-L", "bdr"]).stdout.split()
    log("dpkg -L bdr:\n      %s" % "\n      ".join(listed))
    for f in SHIPPED:
        assert f in listed, "%s not in dpkg -L bdr" % f
        assert os.path.isfile(f), f
    for f in (SBIN_BDRD, BIN_BDRCTL):
        check_owner_mode(f, "root", "root", 0o755)
    for f in MANS:
        head = run(["sh", "-c", "zcat %s | head -c 4096" % shlex.quote(f)]).stdout
        assert ".TH" in head, "%s is not a man page" % f
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "bdr"]).stdout.split()
    assert CONF in conffiles, "bdr.conf is not a conffile: %s" % conffiles
    # nothing else but the documentation and lintian's overrides
    extra = [f for f in listed if os.path.isfile(f) and f not in SHIPPED
             and not f.startswith("/usr/share/doc/bdr/")
             and f != "/usr/share/lintian/overrides/bdr"]
    assert not extra, "unexpected files: %s" % extra
    version = run(["dpkg-query", "-W", "-f=${Version}", "bdr"]).stdout
    upstream = version.rsplit("-", 1)[0]
    assert upstream == project_version(), (version, project_version())
    for prog, path in (("bdrd", SBIN_BDRD), ("bdrctl", BIN_BDRCTL)):
        out = run([path, "--version"]).stdout
        assert out == "%s %s\n" % (prog, upstream), out


def step_config(st):
    for who in ([], AS_BDR):   # as root, and as bdr (ExecReload's user)
        p = run(who + [SBIN_BDRD, "--check-config"], check=False)
        assert p.returncode == 0 and not p.stdout, "shipped %s refused (%s): %s" % (
            CONF, "as bdr" if who else "as root", p.stdout)
    check_owner_mode(CONF, "root", "root", 0o644)


def step_user_dirs_key(st):
    pw = pwd.getpwnam("bdr")
    gr = grp.getgrnam("bdr")
    log("user: %s" % ":".join(str(x) for x in pw))
    assert pw.pw_gid == gr.gr_gid, "bdr's primary group is not bdr"
    assert pw.pw_dir == LIB, pw
    assert pw.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"), pw
    assert pw.pw_uid < 1000, "bdr is not a system user: uid %d" % pw.pw_uid
    check_owner_mode(LIB, "bdr", "bdr", 0o750)
    check_owner_mode(RUN, "bdr", "bdr", 0o755)
    check_owner_mode("/etc/bdr", "root", "root", 0o755)
    assert stat.S_ISREG(os.lstat(KEY).st_mode)
    check_owner_mode(KEY, "bdr", "bdr", 0o600)
    pub = run([BIN_BDRCTL, "pubkey"]).stdout.strip()   # default key path
    assert any(KEY in x for x in st.postinst_said), st.postinst_said
    assert "    " + pub in st.postinst_said, "postinst did not print the public key %s" % pub
    st.hq_pub = pub


def step_unit(st):
    p = run(["systemd-analyze", "verify", UNIT], check=False)
    log("systemd-analyze verify %s: exit %d %s" % (UNIT, p.returncode, p.stdout.strip()))
    assert p.returncode == 0, p.stdout
    with open(UNIT) as f:
        unit = f.read()
    st.exec_start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))
    st.exec_reload = [shlex.split(x) for x in re.findall(r"^ExecReload=(.*)$", unit, re.M)]
    assert st.exec_start == [SBIN_BDRD, "-c", CONF], st.exec_start
    assert st.exec_reload == [[SBIN_BDRD, "--check-config", "-c", CONF],
                              ["/bin/kill", "-HUP", "$MAINPID"]], st.exec_reload
    assert re.search(r"^User=bdr$", unit, re.M) and re.search(r"^Group=bdr$", unit, re.M)


# ---- 4. two sites from the installed binaries ----

def start_hq(st):
    """The installed site as the unit starts it (ExecStart, as bdr, with
    NOTIFY_SOCKET); returns once bdrd sent READY=1."""
    nsp = os.path.join(st.tmp, "hq-notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(nsp)
    os.chmod(nsp, 0o777)   # bdrd, as bdr, writes to it
    st.hq_log = os.path.join(st.tmp, "hq.log")
    with open(st.hq_log, "a") as logf:
        st.hq = subprocess.Popen(AS_BDR + st.exec_start, stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=logf,
                                 env=dict(os.environ, NOTIFY_SOCKET=nsp))
    end = time.monotonic() + 30
    try:
        while True:
            ns.settimeout(0.2)
            try:
                if "READY=1" in ns.recv(4096).decode(errors="replace").split("\n"):
                    return
            except socket.timeout:
                pass
            assert st.hq.poll() is None, "hq's bdrd exited %d:\n%s" % (st.hq.returncode,
                                                                      hq_log(st))
            assert time.monotonic() < end, "hq's bdrd sent no READY=1:\n%s" % hq_log(st)
    finally:
        ns.close()
        os.unlink(nsp)


def hq_log(st):
    with open(st.hq_log, errors="replace") as f:
        return f.read()


def stop_hq(st):
    if st.hq is None:
        return
    p, st.hq = st.hq, None
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("hq's bdrd did not stop within 30 s of SIGTERM")
        assert rc == 0, "hq's bdrd exited %d after SIGTERM:\n%s" % (rc, hq_log(st))


def push(st, src, label):
    """bdrctl push --wait at hq through the default socket: exit 0,
    activated at branch, bit-exact."""
    env = {k: v for k, v in os.environ.items() if k != "BDR_CONTROL"}
    p = run([BIN_BDRCTL, "push", "app", src, "--to", "branch", "--wait"], check=False,
            env=env, timeout=300)
    log("%s: bdrctl push app --to branch --wait: exit %d, %s"
        % (label, p.returncode, p.stdout.strip().splitlines()[-1:]))
    assert p.returncode == 0, "%s:\n%s\nhq log:\n%s" % (label, p.stdout, hq_log(st))
    T.assert_same_tree(src, st.branch.current_tree("app"))


def step_push(st):
    T.configure(SBIN_BDRD, BIN_BDRCTL)
    branch = T.Site(st.tmp, "branch")
    st.branch = branch
    port = T.free_port()
    # The README's steps at hq: name the site, add the peer (and, here
    # only, listen on a free loopback port rather than 7411).
    with open(CONF) as f:
        text = f.read()
    assert "\nname = unnamed\n" in text and "\n;listen = 0.0.0.0:7411\n" in text, text
    text = text.replace("\nname = unnamed\n", "\nname = hq\n")
    text = text.replace("\n;listen = 0.0.0.0:7411\n", "\nlisten = 127.0.0.1:%d\n" % port)
    text += "\n[peer branch]\npublic_key = %s\naddress = %s\n" % (branch.public_key,
                                                                  branch.address)
    with open(CONF, "w") as f:
        f.write(text)
    st.conf_text = text
    run([SBIN_BDRD, "--check-config"])
    branch.peers.append(("hq", st.hq_pub, [], None))   # hq connects to branch
    branch.start()
    start_hq(st)
    # bdrd reads the pushed directory as bdr (bdrd(8), SYSTEMD)
    src = os.path.join(st.tmp, "src")
    T.make_tree(src, seed=16, total=6 << 20)
    run(["chown", "-R", "bdr:bdr", src])
    push(st, src, "first push")
    with open(os.path.join(src, "added.txt"), "w") as f:
        f.write("a second version\n" * 1000)
    os.chmod(os.path.join(src, "added.txt"), 0o644)
    os.chown(os.path.join(src, "added.txt"), pwd.getpwnam("bdr").pw_uid, -1)
    with open(os.path.join(src, "bin", "tool"), "a") as f:
        f.write("echo changed\n")
    push(st, src, "second push")
    versions = os.listdir(os.path.join(LIB, "packages", "app"))
    assert "current" in versions, versions


def reload_as_systemd(st):
    """The unit's ExecReload lines as systemd runs them: in order, as
    User=bdr, $MAINPID replaced, stopping at the first that fails.
    Returns (exit status of the failing line or 0, its output)."""
    for cmd in st.exec_reload:
        cmd = [str(st.hq.pid) if a == "$MAINPID" else a for a in cmd]
        p = run(AS_BDR + cmd, check=False)
        if p.returncode != 0:
            return p.returncode, p.stdout
    return 0, ""


def step_reload(st):
    # a file with an error: the reload fails naming it; bdrd is not signalled
    before = len(hq_log(st))
    with open(CONF, "w") as f:
        f.write(st.conf_text.replace("\n[site]\n", "\n[site]\ncolour = blue\n"))
    rc, out = reload_as_systemd(st)
    log("reload of a broken file: exit %d: %s" % (rc, out.strip()))
    assert rc == 1 and re.search(re.escape(CONF) + r":\d+: .*colour", out), out
    assert st.hq.poll() is None
    assert "reload" not in hq_log(st)[before:], "bdrd was signalled:\n" + hq_log(st)[before:]
    # a valid change: checked, then SIGHUP, and bdrd takes it
    with open(CONF, "w") as f:
        f.write(st.conf_text.replace("\n;log_level = info\n", "\nlog_level = debug\n"))
    rc, out = reload_as_systemd(st)
    assert rc == 0, out
    T.wait_until(lambda: "configuration reloaded from %s" % CONF in hq_log(st)[before:], 20,
                 what="hq's log to say it reloaded")
    assert st.hq.poll() is None
    stop_hq(st)
    st.branch.stop()


# ---- 5. purge ----

def step_purge(st):
    p = run(["dpkg", "--purge", "bdr"])
    said = [x for x in p.stdout.splitlines() if x.startswith("bdr:")]
    log("dpkg --purge bdr printed:\n      %s" % "\n      ".join(said))
    assert not installed()
    for f in SHIPPED + [KEY, "/etc/bdr", RUN]:
        assert not os.path.lexists(f), "%s remains after the purge" % f
    assert os.path.isdir(os.path.join(LIB, "packages", "app")), "the library was removed"
    assert user_exists("bdr") and group_exists("bdr"), "the user or group bdr was removed"
    assert any(LIB in x for x in said) and any("purge-library" in x for x in said), said


# ---- 6. the fallbacks, and a purge that removes the library ----

def path_without(names):
    """A PATH of one directory linking every program on PATH but names,
    and the package's own (not there yet: the links dangle until dpkg
    unpacks them)."""
    d = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TMPDIR", "/tmp")), "bin")
    os.mkdir(d)
    for prog in (SBIN_BDRD, BIN_BDRCTL):
        os.symlink(prog, os.path.join(d, os.path.basename(prog)))
    for p in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        if not os.path.isdir(p):
            continue
        for n in os.listdir(p):
            t = os.path.join(d, n)
            if n not in names and not os.path.lexists(t):
                os.symlink(os.path.join(p, n), t)
    return d


def step_fallbacks(st):
    run(["userdel", "bdr"])
    if group_exists("bdr"):
        run(["groupdel", "bdr"])
    bindir = path_without({"systemd-sysusers", "systemd-tmpfiles"})
    try:
        env = dict(os.environ, PATH=bindir)
        assert shutil.which("systemd-sysusers", path=bindir) is None
        p = run(["dpkg", "-i", os.path.join(st.deb_dir, st.deb)], env=env)
    finally:
        shutil.rmtree(os.path.dirname(bindir))
    log("dpkg -i without systemd-sysusers and systemd-tmpfiles printed:\n      %s"
        % "\n      ".join(x for x in p.stdout.splitlines() if x.startswith(("bdr:", "    "))))
    pw = pwd.getpwnam("bdr")
    log("user: %s" % ":".join(str(x) for x in pw))
    assert pw.pw_dir == LIB and pw.pw_uid < 1000 and group_exists("bdr"), pw
    assert pw.pw_gid == grp.getgrnam("bdr").gr_gid, "bdr's primary group is not bdr"
    check_owner_mode(LIB, "bdr", "bdr", 0o750)
    check_owner_mode(RUN, "bdr", "bdr", 0o755)
    check_owner_mode(KEY, "bdr", "bdr", 0o600)
    run(AS_BDR + [SBIN_BDRD, "--check-config"])
    run(AS_BDR + [BIN_BDRCTL, "pubkey"])   # bdr can read its key
    open("/etc/bdr/purge-library", "w").close()
    p = run(["dpkg", "--purge", "bdr"])
    log("dpkg --purge with /etc/bdr/purge-library printed:\n      %s"
        % "\n      ".join(x for x in p.stdout.splitlines() if x.startswith("bdr:")))
    for f in SHIPPED + [KEY, "/etc/bdr", RUN, LIB]:
        assert not os.path.lexists(f), "%s remains after the purge" % f


# ---- the run ----

class State:
    pass


def teardown(st):
    """Leaves the machine as found: stops the daemons, purges the package,
    removes what the test made (the user and group bdr, /var/lib/bdr)."""
    try:
        stop_hq(st)
    except AssertionError as e:
        print("teardown: %s" % e)
    T.cleanup()
    if st.created_user:   # bdr was not here before the test: remove all of it
        run(["dpkg", "--purge", "bdr"], check=False)
        if user_exists("bdr"):
            run(["userdel", "bdr"], check=False)
        if group_exists("bdr"):
            run(["groupdel", "bdr"], check=False)
        shutil.rmtree(LIB, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        print("SKIP: the package test installs bdr with dpkg: it needs root")
        return 77
    if not shutil.which("dpkg-buildpackage") or not shutil.which("lintian"):
        print("SKIP: needs dpkg-dev, debhelper and lintian (bash .ci/deps.sh installs them)")
        return 77
    st = State()
    st.build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build"))
    st.tmp = tempfile.mkdtemp(prefix="bdr-package-", dir=os.environ.get("TMPDIR", "/tmp"))
    os.chmod(st.tmp, 0o755)   # bdr (hq's bdrd) reads the pushed tree under it
    st.hq = None
    st.created_user = False

    def on_term(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)
    steps = [step_meson_install, step_build_deb, step_lintian, step_install, step_files,
             step_config, step_user_dirs_key, step_unit, step_push, step_reload, step_purge,
             step_fallbacks]
    t_all = time.monotonic()
    failed = None
    try:
        for step in steps:
            t0 = time.monotonic()
            print("--- %s" % step.__name__[len("step_"):], flush=True)
            try:
                step(st)
            except Exception as e:
                import traceback
                failed = step.__name__
                print("FAIL %s:\n%s" % (failed, "".join(
                    traceback.format_exception(type(e), e, e.__traceback__))), flush=True)
                if st.hq is not None and getattr(st, "hq_log", None):
                    print("    ---- hq's log (last 40 lines)\n    %s"
                          % "\n    ".join(hq_log(st).splitlines()[-40:]))
                break
            print("ok   %s (%.1f s)" % (step.__name__[len("step_"):], time.monotonic() - t0),
                  flush=True)
    finally:
        teardown(st)
        if failed:
            print("kept %s for inspection" % st.tmp)
        else:
            shutil.rmtree(st.tmp, ignore_errors=True)
    print("%s in %.0f s" % ("FAILED at " + failed if failed else "all steps passed",
                            time.monotonic() - t_all))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
