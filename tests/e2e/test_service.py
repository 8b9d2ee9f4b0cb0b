"""natterd as a service: the configuration file, SIGHUP reloads, privileges, the pid
file, systemd's notification protocol, logs."""
import os, pwd, re, signal, socket, subprocess, sys
import pytest

import natlib


def conf(tmp_path, text, name="natterd.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def reloaded(s, start):
    """Wait for the next reload to finish (success or not); returns the log from start."""
    s.wait_log(r"reloaded |reload: .*the running configuration stays", start=start)
    return s.log[start:]


def hup(s):
    start = len(s.drain_log())
    s.proc.send_signal(signal.SIGHUP)
    return reloaded(s, start)


def test_sighup_reloads_and_never_kills(natterd, client, tmp_path):
    """SIGHUP used to kill natterd (exit 129, no goodbye); now it rereads the file."""
    s = natterd("--config", conf(tmp_path, "rate = 0\n"))
    a = client(s)
    for _ in range(3):
        log = hup(s)
        assert "reloaded" in log, log
    assert s.proc.poll() is None
    a.send("still here")
    a.sync()
    assert not a.eof


def test_reload_reaches_irc_and_keeps_what_needs_a_restart(natterd, irc, tmp_path):
    """A reload's limits reach the IRC connections too; IRC names, ports and history
    keys are logged as needing a restart and keep working as they were (the running
    values outlive the configuration they came from: checked under ASan too)."""
    path = conf(tmp_path, "rate = 0\nmax-line = 4096\nserver-name = irc.file\nnetwork = FileNet\n"
                          "irc-password = sesame\nhistory = 50\n")
    s = natterd("--config", path)
    c = irc(s).register("ivy", password="sesame")
    c.send("JOIN #lobby")
    c.expect(r"^:irc\.file 366 ivy #lobby ")
    c.send("PRIVMSG #lobby :" + "y" * 300)
    c.send("PING :one")
    c.expect(r"PONG .*one$")
    assert not any(" 417 " in l for l in c.lines), c.lines
    with open(path, "w") as f:
        f.write("rate = 0\nmax-line = 100\nserver-name = irc.other\nnetwork = OtherNet\n"
                "irc-password = other\nhistory = 0\nno-irc = yes\n")
    log = hup(s)
    for name in ("server-name", "network", "irc-password", "history", "no-irc"):
        assert "--%s changed: needs a restart" % name in log, log
    assert "--max-line changed" in log, log
    c.send("PRIVMSG #lobby :" + "y" * 300)  # the connection already up gets the new limit
    c.expect(r"^:irc\.file 417 ivy :Input line was too long$")
    d = irc(s).register("zed", password="sesame")  # the running name, network and password
    assert any(l.startswith(":irc.file 001 zed :Welcome to the FileNet IRC Network") for l in d.lines), d.lines


def test_sighup_without_a_file(natterd, client):
    s = natterd()
    a = client(s)
    assert "reloaded" in hup(s)
    a.sync()


def test_reload_applies_limits_and_motd(natterd, client, tmp_path):
    path = conf(tmp_path, "[natterd]\nrate = 0\nmax-line = 4096\nmotd = first words\n")
    s = natterd("--config", path)
    a = client(s)
    assert "-- first words" in a.lines
    a.send("y" * 1000)
    a.sync()
    assert not any("too long" in l for l in a.lines)
    with open(path, "w") as f:
        f.write("rate = 0\nmax-line = 100\nmotd = second \x1b[31mwords\n")
    log = hup(s)
    assert "--max-line changed" in log and "--motd changed" in log, log
    b = client(s)
    assert "-- second [31mwords" in b.lines, b.lines  # the MOTD is sanitised: no ESC
    a.send("x" * 200)  # an existing connection gets the new limit too
    a.expect(r"^!! line too long \(max 100 bytes\)")


def test_reload_keeps_running_config_when_file_is_bad(natterd, client, tmp_path):
    path = conf(tmp_path, "motd = good\n")
    s = natterd("--config", path)
    for bad, why in (("rate = nan\n", r"\b1: --rate: 'nan' is not a whole number from 0 to 1000000"),
                     ("motd = x\nnonsense line\n", r":2: not a 'key = value' line"),
                     ("colour = blue\n", r":1: unknown key 'colour'")):
        with open(path, "w") as f:
            f.write(bad)
        log = hup(s)
        assert re.search(why, log), log
        assert "the running configuration stays" in log, log
    os.unlink(path)
    assert "No such file" in hup(s)
    b = client(s)
    assert "-- good" in b.lines, b.lines


def test_reload_listener_options_need_a_restart(natterd, client, tmp_path):
    path = conf(tmp_path, "keepalive = 60\n")
    s = natterd("--config", path)
    with open(path, "w") as f:
        f.write("keepalive = 10\nbind = 127.0.0.2\nmax-rooms = 3\n")
    log = hup(s)
    assert re.search(r"--keepalive changed: needs a restart", log), log
    assert "--max-rooms changed" in log and "needs a restart" not in log.split("--max-rooms")[1].split("\n")[0]
    assert "--bind" not in log  # the command line's --bind overrides the file's
    client(s).sync()


def test_config_file_keys_are_the_long_options_and_flags_win(natterd, client, tmp_path, binary):
    path = conf(tmp_path, "# a comment\n; another\n[natterd]\nmax-name = 3\nmotd = hi\nverbose = yes\n")
    s = natterd("--config", path, "--max-name", "6")
    a = client(s)
    a.nick("sixsix")  # the flag's 6, not the file's 3
    a.send("/nick sevenxx")
    a.expect(r"^!! invalid name")
    # Every key is a long option of --help, and --help's long options all parse as keys
    # (but --config itself, --help and --version).
    h = subprocess.run([binary("natterd"), "--help"], capture_output=True, text=True, timeout=10,
                       env=natlib.sanitizer_env())
    longs = set(re.findall(r"--([a-z-]+)", h.stdout)) - {"config", "help", "version"}
    assert {"max-line", "rate", "user", "pid-file", "syslog", "motd", "bind"} <= longs
    for key in sorted(longs):
        p = subprocess.run([binary("natterd"), "--config", conf(tmp_path, f"{key} = zz\n", "k.conf"),
                            "--version"], capture_output=True, text=True, timeout=10, env=natlib.sanitizer_env())
        assert p.returncode == 0  # --version exits before the file is read
    for text, rc, msg in (("nope = 1\n", 2, r"k\.conf:1: unknown key 'nope'"),
                          ("config = /x\n", 2, r"unknown key 'config'"),
                          ("max-line = 1e3\n", 2, r"--max-line: '1e3' is not a whole number from 64 to 16777216"),
                          ("[other]\nrate = 1\n", 2, r"unknown section \[other\]")):
        p = subprocess.run([binary("natterd"), "--config", conf(tmp_path, text, "k.conf"), "-p", "0", "--http-port", "0"],
                           capture_output=True, text=True, timeout=10, env=natlib.sanitizer_env())
        assert p.returncode == rc and re.search(msg, p.stderr), (text, p.returncode, p.stderr)
    p = subprocess.run([binary("natterd"), "--config", str(tmp_path / "missing.conf")], capture_output=True,
                       text=True, timeout=10, env=natlib.sanitizer_env())
    assert p.returncode == 2 and "missing.conf: No such file or directory" in p.stderr, p.stderr


def test_notify_protocol(natterd, client, tmp_path):
    """READY=1 once serving, RELOADING=1 with MONOTONIC_USEC then READY=1 around a reload,
    STOPPING=1 at the end: systemd's Type=notify, over a real notification socket."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(natlib.DEFAULT_WAIT)
    try:
        env = natlib.sanitizer_env()
        env["NOTIFY_SOCKET"] = path
        s = natterd(env=env)
        got = sock.recv(4096).decode()
        assert "READY=1" in got.split("\n"), got
        s.proc.send_signal(signal.SIGHUP)
        got = sock.recv(4096).decode().split("\n")
        assert "RELOADING=1" in got and any(re.fullmatch(r"MONOTONIC_USEC=\d+", l) for l in got), got
        assert sock.recv(4096).decode().split("\n")[0] == "READY=1"
        s.stop()
        assert "STOPPING=1" in sock.recv(4096).decode().split("\n")
    finally:
        sock.close()


def test_pid_file(natterd, tmp_path):
    pidf = tmp_path / "natterd.pid"
    s = natterd("--pid-file", str(pidf))
    assert pidf.read_text() == f"{s.pid()}\n"
    s.stop()
    assert not pidf.exists()


def _uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("Uid:", "Gid:", "Groups:")):
                yield line.split(":")[0], line.split()[1:]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping root needs root")
def test_user_drops_root_after_binding(natterd, client, binary):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    s = natterd("--user", "nobody")
    s.wait_log(r"running as nobody \(uid %d" % nobody.pw_uid)
    ids = dict(_uid(s.pid()))
    assert ids["Uid"] == [str(nobody.pw_uid)] * 4, ids
    assert ids["Gid"] == [str(nobody.pw_gid)] * 4, ids
    assert ids["Groups"] in ([], [str(nobody.pw_gid)]), ids
    client(s).sync()
    # Unknown user: refuse to run at all rather than go on as root.
    p = subprocess.run([binary("natterd"), "-b", "127.0.0.1", "-p", "0", "--http-port", "0", "--user", "no-such-user-natter"],
                       capture_output=True, text=True, timeout=10, env=natlib.sanitizer_env())
    assert p.returncode == 1 and "--user no-such-user-natter: no such user" in p.stderr, p.stderr
    p = subprocess.run([binary("natterd"), "-b", "127.0.0.1", "-p", "0", "--http-port", "0", "--user", "root"],
                       capture_output=True, text=True, timeout=10, env=natlib.sanitizer_env())
    assert p.returncode == 1 and "that is root" in p.stderr, p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start as root")
def test_root_without_user_is_warned(natterd):
    s = natterd()
    s.wait_log(r"warning: running as root")


def test_log_lines_have_time_level_ids_and_names(natterd, client):
    """Connect and disconnect lines carry the connection's number and, once known, the
    name; renames are logged; what people say never is."""
    s = natterd()
    a = client(s)
    b = client(s)
    # The plain port takes IRC clients too, so a plain guest is named a moment after
    # its connect line (natterd first waits to see which protocol it speaks).
    m = s.wait_log(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) natterd: info: connect #(\d+) "
                   r"127\.0\.0\.1:(\d+)(?: %s)? \(\d clients?\)" % a.name)
    ida, guest = m.group(2), a.name
    a.nick("mallory")
    s.wait_log(r"info: rename #%s %s -> mallory" % (ida, re.escape(guest)))
    a.send("the secret plan")
    b.expect(r"the secret plan")
    a.send("/msg %s psst private" % b.name)
    b.expect(r"psst private")
    a.close()
    s.wait_log(r"info: disconnect #%s 127\.0\.0\.1:%s mallory: " % (ida, m.group(3)))
    b.nick("bobby")
    b.send("bye")
    b.expect(r"^-- bye bobby$")
    s.wait_log(r"(?m)info: disconnect #\d+ 127\.0\.0\.1:\d+ bobby: quit$")  # gone from the hub at bye, still named
    log = s.stop()
    assert "secret plan" not in log and "psst" not in log, log
    for line in log.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z natterd: (info|warning|error|debug): ", line), line


def _run_with_journal_stream(binary, args, stop_when=None):
    """natterd with stderr a pipe that JOURNAL_STREAM names; SIGTERM once stop_when is seen."""
    r, w = os.pipe()
    st = os.fstat(w)
    env = natlib.sanitizer_env()
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    p = subprocess.Popen([binary("natterd"), "-b", "127.0.0.1", "-p", "0", "--http-port", "0"] + args,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w, env=env)
    os.close(w)
    out = b""
    try:
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            out += chunk
            if stop_when and stop_when in out and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        os.close(r)
        natlib.close_quietly(p)
    return p.returncode, out.decode()


def test_log_under_the_journal_has_levels_and_no_time(binary):
    """With stderr the journal's stream (JOURNAL_STREAM=dev:inode, as systemd sets it),
    lines are '<level>message': the journal keeps the time and the level."""
    rc, text = _run_with_journal_stream(binary, [], stop_when=b"listening on")
    assert rc == 0, text
    assert re.search(r"^<6>listening on 127\.0\.0\.1:\d+ \(max \d+ clients\)$", text, re.M), text
    assert re.search(r"^<6>stopped$", text, re.M), text
    rc, text = _run_with_journal_stream(binary, ["--user", "root-is-not-a-user"])
    assert rc == 1 and re.search(r"^<3>--user root-is-not-a-user: no such user$", text, re.M), text
    assert not re.search(r"\d{4}-\d\d-\d\dT", text), text


SYSLOG_PROBE = r'''
import os, socket, subprocess, sys
os.makedirs("/dev", exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "none", "/dev"], check=True)   # this namespace's /dev only
os.mknod("/dev/null", 0o20666, os.makedev(1, 3))
os.mknod("/dev/urandom", 0o20666, os.makedev(1, 9))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.settimeout(20)
p = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE)
got = []
while not any(b"listening on" in g for g in got):
    got.append(s.recv(4096))
p.terminate()
rc = p.wait(timeout=30)
while not any(b"stopped" in g for g in got):
    got.append(s.recv(4096))
sys.stdout.write(repr((rc, got, p.stderr.read())))
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="a private /dev/log needs a mount namespace (root)")
def test_syslog(binary):
    """--syslog: facility daemon, the levels, the pid; nothing on stderr. Run in a mount
    namespace of its own, with /dev/log a socket of the test's."""
    import shutil, ast
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    p = subprocess.run(["unshare", "-m", sys.executable, "-c", SYSLOG_PROBE, binary("natterd"), "--syslog",
                        "-b", "127.0.0.1", "-p", "0", "--http-port", "0"], capture_output=True, text=True, timeout=60,
                       env=natlib.sanitizer_env())
    if p.returncode != 0 and ("unshare" in p.stderr or "mount" in p.stderr):
        pytest.skip(f"no private mount namespace here: {p.stderr.strip()[-200:]}")
    rc, got, err = ast.literal_eval(p.stdout)
    assert rc == 0, (got, err)
    text = b"\n".join(got).decode()
    pid = r"natterd\[\d+\]: "
    assert re.search(r"^<30>.*" + pid + r"listening on 127\.0\.0\.1:\d+", text, re.M), text  # daemon.info
    assert re.search(r"^<28>.*" + pid + r"running as root", text, re.M), text               # daemon.warning
    assert re.search(r"^<30>.*" + pid + r"stopped", text, re.M), text
    assert err == b"", err  # (nothing on stderr)
