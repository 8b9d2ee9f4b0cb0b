"""End-to-end tests of the natter client: scripted mode against natterd, 1:1 chat
(--listen) with a natter or a raw socket on the other end, and the terminal mode
for real, in tmux (typing, history, UTF-8 editing, messages arriving mid-line).

Nothing waits a fixed time: every wait polls for what it expects, with a deadline.
"""
import os, re, select, shlex, shutil, socket, subprocess, tempfile, time
import pytest

import natlib

WAIT = natlib.DEFAULT_WAIT


# ==== natter in scripted mode: stdin and stdout are pipes ====

class Natter:
    """A natter process with piped stdin/stdout/stderr (the natter fixture: killed at teardown)."""

    def __init__(self, exe, *args):
        self.proc = subprocess.Popen([exe, *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=natlib.sanitizer_env())
        self.out, self.err = b"", b""
        self.open = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}

    def _pump(self, timeout):
        if not self.open:
            return False
        r, _, _ = select.select(list(self.open), [], [], max(timeout, 0))
        for fd in r:
            chunk = os.read(fd, 65536)
            if not chunk:
                del self.open[fd]
            elif self.open[fd] == "out":
                self.out += chunk
            else:
                self.err += chunk
        return bool(r)

    def stdout(self):
        return self.out.decode("utf-8")  # natter must only ever print valid UTF-8

    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def _wait(self, what, pattern, timeout):
        rx = re.compile(pattern, re.M)
        deadline = time.time() + timeout
        while True:
            text = self.stdout() if what == "out" else self.stderr()
            m = rx.search(text)
            if m:
                return m
            left = deadline - time.time()
            if left <= 0 or (not self.open and self.proc.poll() is not None):
                raise AssertionError(f"natter std{what} never matched {pattern!r}\n"
                                     f"stdout:\n{self.stdout()[-2000:]}\nstderr:\n{self.stderr()[-2000:]}")
            self._pump(min(left, 0.2))

    def wait_out(self, pattern, timeout=WAIT):
        return self._wait("out", pattern, timeout)

    def wait_err(self, pattern, timeout=WAIT):
        return self._wait("err", pattern, timeout)

    def send(self, text):
        self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
        self.proc.stdin.flush()

    def close_stdin(self):
        self.proc.stdin.close()

    def wait_exit(self, timeout=WAIT):
        """Wait for the exit (reading all output); returns the exit status."""
        deadline = time.time() + timeout
        while self.open or self.proc.poll() is None:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"natter did not exit within {timeout}s\nstdout:\n"
                                     f"{self.stdout()[-2000:]}\nstderr:\n{self.stderr()[-2000:]}")
            if not self._pump(min(left, 0.1)) and not self.open:
                time.sleep(0.01)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if not f.closed:
                f.close()
        for mark in natlib.SANITIZER_MARKS:
            assert mark not in self.stderr(), f"sanitizer report from natter:\n{self.stderr()[-6000:]}"
        return self.proc.returncode


@pytest.fixture
def natter(binary, closing):
    """natter(*args): a Natter running the build's natter; killed at teardown."""
    def start(*args):
        n = Natter(binary("natter"), *args)
        closing(n.proc)
        return n
    return start


@pytest.fixture
def listener(natter):
    """listener(*extra): natter --listen 127.0.0.1:0; returns (process, port)."""
    def start(*extra):
        n = natter("--listen", "127.0.0.1:0", *extra)
        port = int(n.wait_err(r"^natter: listening on 127\.0\.0\.1:(\d+)$").group(1))
        return n, port
    return start


@pytest.fixture
def raw_peer(closing):
    """raw_peer(port): a plain socket connected to 127.0.0.1:port; closed at teardown."""
    def connect(port):
        return closing(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
    return connect


def recv_line(sock, buf, timeout=WAIT):
    """Next line from a raw socket; buf is a one-element list holding unread bytes."""
    deadline = time.time() + timeout
    while b"\n" not in buf[0]:
        r, _, _ = select.select([sock], [], [], max(deadline - time.time(), 0))
        if not r:
            raise AssertionError(f"no line within {timeout}s; have {buf[0]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf[0] += chunk
    line, buf[0] = buf[0].split(b"\n", 1)
    return line.decode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_client_usage_version_and_errors(binary):
    exe = binary("natter")
    env = natlib.sanitizer_env()
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=WAIT, env=env)
    assert p.returncode == 0 and re.fullmatch(r"natter \d+\.\d+\.\d+\n", p.stdout), p
    p = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=WAIT, env=env)
    assert p.returncode == 0 and "--listen" in p.stdout and "--no-color" in p.stdout, p
    for bad in (["--bogus"], ["--name"], ["host", "99999"], ["a", "b", "c"],
                ["--listen", "nope"], ["--listen", "0", "host"]):
        p = subprocess.run([exe, *bad], capture_output=True, text=True, timeout=WAIT, env=env,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 2 and p.stderr.startswith("natter: ") and "usage:" in p.stderr, (bad, p)
    port = free_port()
    p = subprocess.run([exe, "127.0.0.1", str(port)], capture_output=True, text=True, timeout=WAIT,
                       env=env, stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p
    assert p.stderr == f"natter: connect 127.0.0.1:{port}: Connection refused\n", p.stderr


def test_client_port_zero_is_a_bad_port(binary):
    # Port 0 picks a free port for --listen (see listener()), but nothing listens
    # on it to connect to: wrong usage, exit 2, not a failed connection.
    exe = binary("natter")
    for port in ("0", "00000"):
        p = subprocess.run([exe, "127.0.0.1", port], capture_output=True, text=True, timeout=WAIT,
                           env=natlib.sanitizer_env(), stdin=subprocess.DEVNULL)
        assert p.returncode == 2, p
        assert p.stderr.startswith(f"natter: PORT '{port}' is not a whole number from 1 to 65535\n") \
            and "usage:" in p.stderr, p.stderr


def test_client_numbers_are_strict_with_plain_ranges(binary):
    exe = binary("natter")
    for args, msg in ((["127.0.0.1", "1e3"], "PORT '1e3' is not a whole number from 1 to 65535"),
                      (["127.0.0.1", "nan"], "PORT 'nan' is not a whole number from 1 to 65535"),
                      (["127.0.0.1", " 80"], "PORT ' 80' is not a whole number from 1 to 65535"),
                      (["127.0.0.1", "+80"], "PORT '+80' is not a whole number from 1 to 65535"),
                      (["--listen", "99999"], "--listen: port '99999' is not a whole number from 0 to 65535"),
                      (["--listen", "1e3"], "bad --listen address: 1e3")):
        p = subprocess.run([exe] + args, capture_output=True, text=True, timeout=WAIT,
                           env=natlib.sanitizer_env(), stdin=subprocess.DEVNULL)
        assert p.returncode == 2 and p.stderr.startswith(f"natter: {msg}\n"), (args, p.stderr)


# ==== Scripted mode against natterd ====

def test_client_scripted_room_chat(natterd, client, natter):
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    bob = natter("--name", "bob", s.host, s.port)
    bob.wait_out(r"^-- \S+ is now known as bob$")
    bob.send("hello everyone\n")
    carol.expect(r"^#lobby <bob> hello everyone$")
    carol.send("hi bob")
    bob.wait_out(r"^#lobby <carol> hi bob$")
    bob.send("/msg carol psst\n")
    carol.expect(r"^\*bob\* psst$")
    bob.wait_out(r"^-> \*carol\* psst$")
    bob.send("bye\n")
    bob.close_stdin()
    assert bob.wait_exit() == 0, bob.stderr()
    carol.expect(r"^-- bob quit$")
    lines = bob.stdout().splitlines()
    # Exactly what the server sent, unadorned: no timestamps, colours or echo.
    assert re.fullmatch(r"-- welcome to natter, guest\d+! .*", lines[0]), lines
    assert lines[-1] == "-- bye bob", lines
    assert not any("hello everyone" in l for l in lines), lines
    assert "\x1b" not in bob.stdout()


def test_client_scripted_pipe_until_server_closes(natterd, client, binary):
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    exe = binary("natter")
    # The lesson's way out: bye. natter prints the server's answer, then exits.
    p = subprocess.run([exe, "--name", "bob", s.host, str(s.port)], input=b"hello\nbye\n",
                       capture_output=True, timeout=WAIT, env=natlib.sanitizer_env())
    assert p.returncode == 0, p
    assert p.stdout.decode().splitlines()[-1] == "-- bye bob", p.stdout
    carol.expect(r"^#lobby <bob> hello$")
    # No bye: at the end of stdin natter half-closes, so every line still arrives
    # (even a last one without a newline), and it exits when the server closes.
    p = subprocess.run([exe, "--name", "dave", s.host, str(s.port)], input=b"one\ntwo",
                       capture_output=True, timeout=WAIT, env=natlib.sanitizer_env())
    assert p.returncode == 0, p
    assert re.search(rb"^-- \S+ is now known as dave$", p.stdout, re.M), p.stdout
    carol.expect(r"^#lobby <dave> one$")
    carol.expect(r"^#lobby <dave> two$")
    carol.expect(r"^-- dave quit")
    for mark in natlib.SANITIZER_MARKS:
        assert mark.encode() not in p.stderr, p.stderr.decode()


def test_client_scripted_bye_waits_for_rate_limited_server(natterd, natter):
    # natterd's default rate limit (10 lines/s after a burst of 50) takes about 7 s
    # over these lines; a script's bye must still get every answer, not give up.
    s = natterd()
    n = natter("--name", "s", s.host, s.port)
    n.send("".join(f"line {i}\n" for i in range(1, 121)) + "/who\nbye\n")
    assert n.wait_exit(timeout=30) == 0, n.stderr()
    lines = n.stdout().splitlines()
    assert re.fullmatch(r"-- #lobby: s \(1 user\)", lines[-2]), lines[-5:]  # nobody keeps #lobby
    assert lines[-1] == "-- bye s", lines[-5:]


def test_client_reports_server_close(natterd, natter):
    s = natterd()
    bob = natter("--name", "bob", s.host, s.port)
    bob.wait_out(r"^-- \S+ is now known as bob$")
    s.stop()
    assert bob.wait_exit() == 0, bob.stderr()
    assert bob.stdout().splitlines()[-1] == "-- server shutting down", bob.stdout()
    assert "natter: connection closed by server" in bob.stderr(), bob.stderr()


# ==== 1:1 chat: natter --listen ====

def test_client_one_to_one_between_two_natters(natter, listener):
    lis, port = listener()
    alice = natter("--name", "alice", "127.0.0.1", port)
    lis.wait_err(r"^natter: connection from 127\.0\.0\.1:\d+$")
    # Both ways at once, not turn by turn: two lines each way before any answer.
    alice.send("hi there\nhow are you?\n")
    lis.send("hello alice\nfine\n")
    lis.wait_out(r"^how are you\?$")
    alice.wait_out(r"^fine$")
    assert lis.stdout().splitlines() == ["/nick alice", "hi there", "how are you?"], lis.stdout()
    assert alice.stdout().splitlines() == ["hello alice", "fine"], alice.stdout()
    # The side that types bye sends it and leaves; the other prints it and leaves.
    lis.send("bye\n")
    assert lis.wait_exit() == 0, lis.stderr()
    alice.wait_out(r"^bye$")
    assert alice.wait_exit() == 0, alice.stderr()


def test_client_one_to_one_raw_peer(listener, raw_peer):
    lis, port = listener()
    peer = raw_peer(port)
    m = lis.wait_err(r"^natter: connection from (127\.0\.0\.1:\d+)$")
    assert m.group(1) == "127.0.0.1:%d" % peer.getsockname()[1], lis.stderr()
    buf = [b""]
    peer.sendall(b"hello from nc\n")
    lis.wait_out(r"^hello from nc$")
    lis.send("hello nc\n")
    assert recv_line(peer, buf) == "hello nc"
    # What reaches the terminal is cleaned: no escapes, no bells, bad bytes replaced.
    peer.sendall(b"\x1b[2J\x1b]0;owned\x07red \xff end\r\n")
    m = lis.wait_out(r"^.*red .* end$")
    assert m.group(0) == "[2J]0;owned" + "red \ufffd end", repr(m.group(0))
    peer.sendall(b"bye\n")
    lis.wait_out(r"^bye$")
    assert lis.wait_exit() == 0, lis.stderr()
    assert recv_line(peer, buf) is None  # the listener closed


def test_client_one_to_one_listener_sees_peer_leave(listener, raw_peer):
    lis, port = listener()
    peer = raw_peer(port)
    lis.wait_err(r"^natter: connection from ")
    peer.sendall(b"just passing\n")
    peer.close()
    lis.wait_out(r"^just passing$")
    assert lis.wait_exit() == 0, lis.stderr()
    assert "natter: connection closed by peer" in lis.stderr()


# ==== The terminal, for real: natter in tmux ====

class Tmux:
    """natter in a detached tmux session of its own (a private server socket).

    Made by the tmux fixture: natter's stderr goes to a file in tmp_path, and
    closing() kills the tmux server at teardown."""
    count = 0

    def __init__(self, exe, tmpdir, closing, *args, env=None, cwd=None, width=100, job_control=False):
        """job_control: natter is a job of an interactive bash, so Ctrl-Z and fg work;
        the test then prints the exit status itself (see test_client_terminal_ctrl_z_and_fg)."""
        argv = [exe, *map(str, args)]
        Tmux.count += 1
        self.base = ["tmux", "-L", f"natter-test-{os.getpid()}-{Tmux.count}", "-f", "/dev/null"]
        self.socket_path = None
        self.env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        self.env.update({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        fd, self.errfile = tempfile.mkstemp(prefix="natter-tmux-", suffix=".err", dir=tmpdir)
        os.close(fd)
        closing(self)  # from here on, close() cleans up
        pane_env = {"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                    "ASAN_OPTIONS": natlib.sanitizer_env()["ASAN_OPTIONS"],
                    "UBSAN_OPTIONS": natlib.sanitizer_env()["UBSAN_OPTIONS"]}
        pane_env.update(env or {})
        # stderr to a file (sanitizer reports); the exit status stays on screen.
        if env and "TERM" in env:  # tmux sets the pane's TERM itself: set it on the command
            argv = ["env", "TERM=" + env["TERM"]] + argv
        run = f"{shlex.join(argv)} 2>>{shlex.quote(self.errfile)}"
        cmd = run + "; echo \"[natter exited $?]\""
        envargs = [a for k, v in pane_env.items() for a in ("-e", f"{k}={v}")]
        where = ["-c", cwd] if cwd else []
        first = "bash --norc --noprofile -i" if job_control else cmd + "; sleep 600"
        subprocess.run(self.base + ["new-session", "-d", "-x", str(width), "-y", "30", *where, *envargs, first],
                       env=self.env, check=True, timeout=WAIT, stdin=subprocess.DEVNULL)
        self.socket_path = self._tmux("display-message", "-p", "#{socket_path}").decode().strip()
        if job_control:
            # natter alone is the job: bash then reports it stopped only once natter
            # has stopped itself (after giving the terminal back), not earlier.
            self.type(run)
            self.keys("Enter")

    def _tmux(self, *args):
        return subprocess.run(self.base + list(args), env=self.env, check=True, timeout=WAIT,
                              capture_output=True, stdin=subprocess.DEVNULL).stdout

    def keys(self, *keys):
        self._tmux("send-keys", *keys)

    def type(self, text):
        self._tmux("send-keys", "-l", text)

    def screen(self, colors=False):
        out = self._tmux("capture-pane", "-p", *(["-e"] if colors else []))
        return [l.rstrip() for l in out.decode("utf-8").split("\n")]

    def wait(self, pred, what):
        last = []

        def check():
            last[:] = self.screen()
            return pred(last)
        try:
            return natlib.wait_until(check, what=what)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {what}; screen:\n" + "\n".join(last).rstrip())

    def wait_line(self, pattern, what=None):
        rx = re.compile(pattern)
        return self.wait(lambda lines: any(rx.search(l) for l in lines), what or f"a line matching {pattern!r}")

    def prompt_line(self, lines):
        """The last non-empty line on the screen (the input line while natter runs)."""
        filled = [l for l in lines if l]
        return filled[-1] if filled else ""

    def wait_prompt(self, text):
        return self.wait(lambda lines: self.prompt_line(lines) == text, f"prompt line {text!r}")

    def errors(self):
        with open(self.errfile, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_err(self, pattern):
        """Wait until natter's stderr (kept in a file) matches pattern; returns the match."""
        rx = re.compile(pattern, re.M)
        try:
            return natlib.wait_until(lambda: rx.search(self.errors()), what=f"stderr {pattern!r}")
        except AssertionError:
            raise AssertionError(f"natter stderr never matched {pattern!r}:\n{self.errors()}")

    def check_clean_exit(self):
        self.wait_line(r"^\[natter exited \d+\]$", "natter to exit")
        lines = self.screen()
        assert "[natter exited 0]" in lines, "\n".join(lines) + "\n" + self.errors()
        for mark in natlib.SANITIZER_MARKS:
            assert mark not in self.errors(), f"sanitizer report from natter:\n{self.errors()[-6000:]}"

    def close(self):
        subprocess.run(self.base + ["kill-server"], env=self.env, capture_output=True, timeout=WAIT)
        try:
            if self.socket_path:
                os.unlink(self.socket_path)  # tmux leaves its socket behind
        except OSError:
            pass


@pytest.fixture
def tmux(binary, closing, tmp_path):
    """tmux(*args, env=, cwd=, width=, job_control=): natter in a Tmux; skips the test
    when tmux is not installed."""
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")

    def start(*args, **kw):
        return Tmux(binary("natter"), tmp_path, closing, *args, **kw)
    return start


STAMP = r"\d\d:\d\d "


def test_client_terminal_message_arrives_while_typing(natterd, client, tmux):
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    t = tmux("--name", "bob", s.host, s.port)
    t.wait_prompt("#lobby>")
    carol.expect(r"is now known as bob$")
    t.type("half a li")
    t.wait_prompt("#lobby> half a li")
    carol.send("hello from carol")
    t.wait_line("^" + STAMP + "#lobby <carol> hello from carol$")
    lines = t.screen()
    filled = [l for l in lines if l]
    # The message is printed above; the half-typed input is intact on the prompt line.
    assert filled[-1] == "#lobby> half a li", lines
    assert re.fullmatch(STAMP + "#lobby <carol> hello from carol", filled[-2]), lines
    assert sum("half a li" in l for l in lines) == 1, lines
    t.type("ne")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> half a line$")
    # Our own line is shown the way the others see it, and the input is empty again.
    t.wait_line("^" + STAMP + "#lobby <bob> half a line$")
    t.wait_prompt("#lobby>")
    t.type("bye")
    t.keys("Enter")
    t.check_clean_exit()
    assert "-- bye bob" in "\n".join(t.screen())
    carol.expect(r"^-- bob quit$")


def test_client_terminal_history_recall(natterd, client, tmux):
    s = natterd()
    carol = client(s)
    t = tmux("--name", "bob", s.host, s.port)
    t.wait_prompt("#lobby>")
    for text in ("first one", "second one"):
        t.type(text)
        t.keys("Enter")
        carol.expect(r"^#lobby <bob> %s$" % text)
    t.wait_prompt("#lobby>")
    t.keys("Up")
    t.wait_prompt("#lobby> second one")
    t.keys("Up")
    t.wait_prompt("#lobby> first one")
    t.type(" again")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> first one again$")
    t.keys("C-d")  # Ctrl-D leaves, like bye
    t.check_clean_exit()
    carol.expect(r"^-- bob quit$")


def test_client_terminal_utf8_editing(natterd, client, tmux):
    s = natterd()
    carol = client(s)
    t = tmux("--name", "bob", s.host, s.port)
    t.wait_prompt("#lobby>")
    t.type("héllo wörld")
    t.wait_prompt("#lobby> héllo wörld")
    t.keys("Left", "Left", "Left", "BSpace")  # cursor before "rld": delete ö
    t.type("ø")
    t.keys("C-a", "Right", "Right", "BSpace")  # delete é
    t.type("E")
    t.wait_prompt("#lobby> hEllo wørld")
    t.keys("Enter")
    m = carol.expect(r"^#lobby <bob> (.*)$")
    assert m.group(1).encode() == "hEllo wørld".encode(), m.group(1)
    # Wide characters too: the input line must stay where it is drawn.
    t.type("你好")
    t.wait_prompt("#lobby> 你好")
    carol.send("世界 to you")
    t.wait_line("^" + STAMP + "#lobby <\\S+> 世界 to you$")
    t.wait_prompt("#lobby> 你好")
    t.keys("BSpace", "Enter")
    carol.expect(r"^#lobby <bob> 你$")
    t.type("/quit")
    t.keys("Enter")
    t.check_clean_exit()


def test_client_terminal_asks_name_and_tracks_rooms(natterd, client, tmux):
    s = natterd()
    carol = client(s)
    t = tmux(s.host, s.port)
    t.wait_prompt("name:")
    m = carol.expect(r"^-- (guest\d+) joined #lobby$")
    t.type("dora")
    t.keys("Enter")
    carol.expect(r"^-- %s is now known as dora$" % m.group(1))
    t.wait_prompt("#lobby>")
    t.type("/join dev")
    t.keys("Enter")
    t.wait_prompt("#dev>")
    t.type("/me waves")
    t.keys("Enter")
    t.wait_line("^" + STAMP + r"#dev \* dora waves$")
    t.type("/part")
    t.keys("Enter")
    t.wait_prompt("#lobby>")
    t.type("/nick dora2")
    t.keys("Enter")
    carol.expect(r"^-- dora is now known as dora2$")
    t.type("still here")
    t.keys("Enter")
    carol.expect(r"^#lobby <dora2> still here$")
    t.wait_line("^" + STAMP + "#lobby <dora2> still here$")
    t.type("bye")
    t.keys("Enter")
    t.check_clean_exit()


def test_client_terminal_colors_and_no_color(natterd, client, tmux):
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    colored = tmux("--name", "bob", s.host, s.port)
    plain = tmux("--name", "ann", s.host, s.port, env={"NO_COLOR": "1"})
    colored.wait_prompt("#lobby>")
    plain.wait_prompt("#lobby>")
    carol.send("colour me")
    for t in (colored, plain):
        t.wait_line("<carol> colour me$")
    line = [l for l in colored.screen(colors=True) if "colour me" in l][0]
    assert re.search(r"\x1b\[[0-9;]*m<carol>", line), repr(line)
    line = [l for l in plain.screen(colors=True) if "colour me" in l][0]
    assert "\x1b" not in line, repr(line)
    for t in (colored, plain):
        t.keys("C-d")
        t.check_clean_exit()


def test_client_terminal_one_to_one_listener(natter, tmux):
    t = tmux("--listen", "127.0.0.1:0", "--name", "lis")
    port = int(t.wait_err(r"^natter: listening on 127\.0\.0\.1:(\d+)$").group(1))
    alice = natter("--name", "alice", "127.0.0.1", port)
    t.wait_err(r"^natter: connection from 127\.0\.0\.1:\d+$")
    alice.send("hi lis\n")
    t.wait_line("^" + STAMP + "<alice> hi lis$")
    t.wait_prompt(">")
    t.type("hi alice")
    t.keys("Enter")
    alice.wait_out(r"^hi alice$")
    t.wait_line("^" + STAMP + "<lis> hi alice$")
    alice.send("bye\n")
    t.wait_line("^" + STAMP + "<alice> bye$")
    t.check_clean_exit()
    assert alice.wait_exit() == 0, alice.stderr()


def test_client_terminal_tab_completes_no_file_names(natterd, client, tmux, tmp_path):
    # libedit's default Tab completes file names: a local name must not end up
    # said in a public room.
    s = natterd()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "zqxsecretfile.txt").touch()
    carol = client(s)
    t = tmux("--name", "bob", s.host, s.port, cwd=str(cwd))
    t.wait_prompt("#lobby>")
    t.type("zqxsec")
    t.keys("Tab", "Enter")
    m = carol.expect(r"^#lobby <bob> (.*)$")
    assert m.group(1) == "zqxsec", m.group(1)
    t.keys("C-d")
    t.check_clean_exit()


def test_client_terminal_asks_again_when_name_refused(natterd, client, tmux):
    s = natterd("--max-name", "8")
    carol = client(s)
    carol.nick("dora")
    t = tmux(s.host, s.port)
    t.wait_prompt("name:")
    guest = carol.expect(r"^-- (guest\d+) joined #lobby$").group(1)
    t.type("dora")
    t.keys("Enter")
    t.wait_line("^" + STAMP + "!! name taken: dora$")
    t.wait_prompt("name:")
    t.type("dorothea1")  # fine for natter, too long for this server
    t.keys("Enter")
    t.wait_line("^" + STAMP + "!! invalid name: dorothea1 ")
    t.wait_prompt("name:")
    t.type("dot")
    t.keys("Enter")
    carol.expect(r"^-- %s is now known as dot$" % guest)
    t.wait_prompt("#lobby>")
    t.type("hi")
    t.keys("Enter")
    carol.expect(r"^#lobby <dot> hi$")
    t.keys("C-d")
    t.check_clean_exit()


def test_client_terminal_connected_to_listener_echoes_literally(listener, tmux):
    # A natter --listen takes every line as text: no natterd reads /me or /who,
    # so the connecting side must show them as they were sent.
    lis, port = listener()
    t = tmux("--name", "alice", "127.0.0.1", port)
    lis.wait_out(r"^/nick alice$")
    t.wait_prompt(">")
    for text in ("/me waves", "/who"):
        t.type(text)
        t.keys("Enter")
        lis.wait_out("^%s$" % re.escape(text))
        t.wait_line("^" + STAMP + "<alice> %s$" % re.escape(text))
    lines = t.screen()
    assert not any(re.search(r"\* alice waves", l) for l in lines), lines
    t.type("bye")
    t.keys("Enter")
    lis.wait_out(r"^bye$")
    assert lis.wait_exit() == 0, lis.stderr()
    t.check_clean_exit()


def test_client_terminal_ctrl_z_and_fg(natterd, client, tmux):
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    t = tmux("--name", "bob", s.host, s.port, job_control=True)
    t.wait_prompt("#lobby>")
    t.keys("C-z")
    t.wait_line(r"^\[1\]\+ +Stopped ", "the shell to report natter stopped")
    # The shell has its terminal back: what is typed is echoed once.
    t.type("echo shell-$((6*7))")
    t.keys("Enter")
    t.wait_line("^shell-42$")
    # fg waits for natter and gives its status, for check_clean_exit().
    t.type('fg; echo "[natter exited $?]"')
    t.keys("Enter")
    t.wait_prompt("#lobby>")
    carol.send("while you were away")
    t.wait_line("^" + STAMP + "#lobby <carol> while you were away$")
    # Line editing works again: Ctrl-A goes to the start of the line.
    t.type("back again")
    t.keys("C-a")
    t.type(">> ")
    t.wait_prompt("#lobby> >> back again")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> >> back again$")
    t.wait_line("^" + STAMP + "#lobby <bob> >> back again$")
    t.wait_prompt("#lobby>")
    t.keys("C-d")
    t.check_clean_exit()


def test_client_terminal_wide_chars_wrapping_at_margin(natterd, client, tmux):
    # At 80 columns "#lobby> x" and 35 wide characters take 79 cells: the 36th
    # does not fit, so libedit moves it to the next row, which the next 40 fill.
    # The input is then 3 rows (the cursor on the third), not 159 // 80 + 1 = 2.
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    t = tmux("--name", "bob", s.host, s.port, width=80)
    t.wait_prompt("#lobby>")
    text = "x" + "你" * 75
    t.type(text)
    t.wait(lambda lines: "你" * 40 in lines, "the input to wrap")
    carol.send("ping")
    t.wait_line("^" + STAMP + "#lobby <carol> ping$")
    filled = [l for l in t.screen() if l]
    at = [i for i, l in enumerate(filled) if l.endswith("<carol> ping")][0]
    assert not any("你" in l for l in filled[:at]), "stale input rows above the message:\n" + "\n".join(filled)
    assert filled[at + 1:] == ["#lobby> x" + "你" * 35, "你" * 40], "\n".join(filled)
    t.keys("Enter")
    m = carol.expect(r"^#lobby <bob> (.*)$")
    assert m.group(1) == text, m.group(1)
    # After Enter the finished input is replaced by our own line, all of it.
    t.wait_line("^" + STAMP + "#lobby <bob> x你")
    t.wait_prompt("#lobby>")
    lines = t.screen()
    assert not any(l.startswith("#lobby> x") for l in lines), "\n".join(lines)
    t.keys("C-d")
    t.check_clean_exit()


def test_client_terminal_esc_and_ctrl_r_do_not_freeze(natterd, client, tmux):
    # Esc alone and a Ctrl-R search make libedit wait for more keys inside one
    # call; messages must still arrive meanwhile (natter gives up waiting).
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    t = tmux("--name", "bob", s.host, s.port)
    t.wait_prompt("#lobby>")
    t.type("first one")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> first one$")
    t.wait_prompt("#lobby>")
    t.type("abc")
    t.keys("Escape")
    carol.send("after esc")
    t.wait_line("^" + STAMP + "#lobby <carol> after esc$")
    t.type("dé你")  # the input goes on as before, UTF-8 and all
    t.wait_prompt("#lobby> abcdé你")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> abcdé你$")
    t.wait_prompt("#lobby>")
    t.keys("C-r")
    t.type("fir")
    carol.send("during search")
    t.wait_line("^" + STAMP + "#lobby <carol> during search$")
    # The search ended where it was and kept what it found.
    t.wait_prompt("#lobby> first one")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> first one$")
    t.keys("C-d")
    t.check_clean_exit()


# ==== Fixes from issue 8 ====

def test_client_name_option_is_checked_here(binary):
    """--name '' and --name 'has space' used to reach the server as '/nick ...' and come
    back as '!! usage: /nick NAME', a command the user never typed."""
    exe = binary("natter")
    for name, why in (("", "empty"), ("has space", "has a space, a control or one of < > * ,"),
                      ("\u0430lice", "mixes scripts"), ("-x", "starts with a character a name cannot start with")):
        p = subprocess.run([exe, "--name", name, "127.0.0.1", "1"], capture_output=True, text=True, timeout=WAIT,
                           env=natlib.sanitizer_env(), stdin=subprocess.DEVNULL)
        assert p.returncode == 2, p
        assert p.stderr.startswith(f"natter: --name '{name}': {why}\n"), p.stderr
        assert "/nick" not in p.stderr, p.stderr


def test_client_scripted_taken_name_fails(natterd, client, binary):
    """Scripted with a taken name, natter went on posting as a guest and exited 0."""
    s = natterd()
    carol = client(s)
    carol.nick("bob")
    p = subprocess.run([binary("natter"), "--name", "BOB", s.host, str(s.port)], input=b"hello\nmore\n",
                       capture_output=True, timeout=WAIT, env=natlib.sanitizer_env())
    assert p.returncode == 1, p
    assert "natter: the server refused the name BOB: name taken: BOB" in p.stderr.decode(), p.stderr
    carol.sync()
    assert not any("hello" in l or "more" in l for l in carol.lines), carol.lines


def test_client_scripted_name_then_lines_in_order(natterd, client, binary):
    """The script's lines wait for the name: every one goes out under it."""
    s = natterd()
    carol = client(s)
    p = subprocess.run([binary("natter"), "--name", "dave", s.host, str(s.port)], input=b"first\n",
                       capture_output=True, timeout=WAIT, env=natlib.sanitizer_env())
    assert p.returncode == 0, p
    carol.expect(r"^#lobby <dave> first$")


def test_client_terminal_dumb_has_no_colour(natterd, client, tmux):
    s = natterd()
    carol = client(s)
    carol.nick("carol")
    t = tmux("--name", "bob", s.host, s.port, env={"TERM": "dumb"})
    t.wait_prompt("#lobby>")
    carol.send("colour me")
    t.wait_line("<carol> colour me$")
    assert not any("\x1b" in l for l in t.screen(colors=True)), t.screen(colors=True)
    t.keys("C-d")
    t.check_clean_exit()


def test_client_terminal_more_than_64_rooms(natterd, client, tmux):
    """With more than 64 rooms the prompt showed the wrong room after a /part, and an
    echo was labelled with a room the message did not go to."""
    s = natterd("--max-rooms", "100", "--rate", "0")
    carol = client(s)
    carol.nick("carol")
    carol.send("/join #r64")
    carol.expect(r"^-- carol joined #r64$")
    t = tmux("--name", "bob", s.host, s.port)
    t.wait_prompt("#lobby>")
    for i in range(1, 66):
        t.type(f"/join #r{i}")
        t.keys("Enter")
    t.wait_prompt("#r65>")
    t.type("/part #r65")
    t.keys("Enter")
    t.wait_prompt("#r64>")  # the server's current room now: the last joined that is left
    t.type("where am i")
    t.keys("Enter")
    carol.expect(r"^#r64 <bob> where am i$")
    t.wait_line("^" + STAMP + r"#r64 <bob> where am i$")
    t.keys("C-d")
    t.check_clean_exit()


def test_client_terminal_long_line_refused_before_echo(natterd, client, tmux):
    s = natterd("--max-line", "100")
    carol = client(s)
    carol.nick("carol")
    t = tmux("--name", "bob", s.host, s.port, width=200)
    t.wait_prompt("#lobby>")
    t.type("a" * 150)  # the server says how long a line may be the first time
    t.keys("Enter")
    t.wait_line(r"!! line too long \(max 100 bytes\)")
    t.type("b" * 150)
    t.keys("Enter")
    t.wait_line(r"natter: line too long \(150 bytes, the server takes 100 at most\): not sent")
    assert not any("<bob> bbb" in l for l in t.screen()), t.screen()
    t.type("short one")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> short one$")
    carol.sync()
    assert not any("bbb" in l for l in carol.lines)
    t.keys("C-d")
    t.check_clean_exit()


def test_client_terminal_listener_names_a_nameless_peer(tmux, raw_peer):
    """--listen showed a raw peer's lines under no name ('<peer>'): its address now, until
    it names itself with /nick."""
    t = tmux("--listen", "127.0.0.1:0", "--name", "lis")
    port = int(t.wait_err(r"^natter: listening on 127\.0\.0\.1:(\d+)$").group(1))
    peer = raw_peer(port)
    me = "127.0.0.1:%d" % peer.getsockname()[1]
    t.wait_err(r"^natter: connection from ")
    peer.sendall(b"hello from nc\n")
    t.wait_line("^" + STAMP + "<%s> hello from nc$" % re.escape(me))
    peer.sendall(b"/nick zed\nnamed now\n")
    t.wait_line("^" + STAMP + "<zed> named now$")
    peer.sendall(b"bye\n")
    t.check_clean_exit()


def test_readme_one_shot_receiver_with_debian_nc(listener):
    """README's one-shot row: natter --listen, then echo hello | nc -N ... . Debian's
    nc (netcat-openbsd) without -N never closes, so both sides waited forever."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    assert "echo hello \\| nc -N 127.0.0.1 8998" in readme and "netcat-openbsd" in readme
    nc = shutil.which("nc")
    if not nc:
        pytest.skip("nc is not installed (Debian: netcat-openbsd)")
    lis, port = listener()
    p = subprocess.run(f"echo hello | {nc} -N 127.0.0.1 {port}", shell=True, capture_output=True,
                       timeout=WAIT)
    assert p.returncode == 0, p
    lis.wait_out(r"^hello$")
    assert lis.wait_exit() == 0, lis.stderr()
    assert "natter: connection closed by peer" in lis.stderr()
