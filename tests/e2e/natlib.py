"""Helpers for natter's end-to-end tests: start natterd, connect clients, wait with deadlines.

Nothing here sleeps for a fixed time to wait for something: every wait polls with a
deadline. Under pytest the fixtures of tests/e2e/conftest.py own what these start
(natterd, client, closing, ...) and stop it at teardown, pass or fail; the binaries
come from the build directory of the test's [build] parameter (tests/conftest.py).
tests/soak.py uses this module without pytest, so it must not import pytest.
"""
import os, re, select, signal, socket, subprocess, threading, time

# The build directory when none is given (tests/soak.py run by hand): $NATTER_BUILD or build/.
BUILD = os.environ.get("NATTER_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
DEFAULT_WAIT = float(os.environ.get("NATTER_WAIT", "10"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def short(lines, width=160):
    """Lines for an error message, each cut to width characters."""
    return "\n  " + "\n  ".join(repr(l if len(l) <= width else l[:width] + "...") for l in lines)


def rss_kib(pid):
    """Resident set size of a process, in KiB (from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def binary(name, build=None):
    """The path of a built program (name relative to the build directory, default BUILD)."""
    path = os.path.join(build or BUILD, name)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is not built")
    return path


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=67")
    return env


def close_quietly(thing):
    """Kill a process (and close its pipes) or close a socket or anything with close(); never raises."""
    try:
        if isinstance(thing, subprocess.Popen):
            if thing.poll() is None:
                thing.kill()
            thing.wait(timeout=10)
            for f in (thing.stdin, thing.stdout, thing.stderr):
                if f:
                    f.close()
        else:
            thing.close()
    except Exception:
        pass


def wait_until(pred, timeout=DEFAULT_WAIT, what="condition"):
    deadline = time.time() + timeout
    delay = 0.005
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class Server:
    """natterd on 127.0.0.1 and a free port (the natterd fixture starts and stops these).

    stop() sends SIGTERM, waits, and asserts a clean exit with no sanitizer report;
    kill() just ends it (for cleaning up after a failure).
    """

    def __init__(self, *args, bind="127.0.0.1", port=0, env=None, preexec_fn=None, build=None, pump=True):
        self.args = list(args)
        # Tests connect many times from 127.0.0.1: no connect-rate limit unless asked for.
        if "--connect-rate" not in self.args:
            self.args = ["--connect-rate", "0"] + self.args
        self.stopped = False
        # History in memory unless the test names a database: nothing left on disk.
        db = [] if "--db" in self.args else ["--db", ":memory:"]
        # IRC on a free port too, unless the test says otherwise (the default 6667 would clash).
        irc = [] if "--irc-port" in self.args or "--no-irc" in self.args else ["--irc-port", "0"]
        if "--tls-cert" in self.args and "--irc-tls-port" not in self.args and "--no-irc" not in self.args:
            irc += ["--irc-tls-port", "0"]
        # HTTP (the page, WebSocket) too: the defaults 8080 and 8443 would clash.
        web = [] if "--http-port" in self.args or "--no-web" in self.args else ["--http-port", "0"]
        if "--tls-cert" in self.args and "--https-port" not in self.args and "--no-web" not in self.args:
            web += ["--https-port", "0"]
        cmd = [binary("natterd", build), "--bind", bind, "--port", str(port)] + db + irc + web + self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env or sanitizer_env(),
                                     preexec_fn=preexec_fn)
        self.log = ""
        # stderr is read all the time, as journald would: a server whose log pipe
        # fills up blocks on its next log line (300 connects are more than 64 KiB).
        self._chunks, self._eof, self._cv = [], False, threading.Condition()
        self._reader = None
        if pump:  # (tests/soak.py reads stderr itself, with its own selector)
            self._reader = threading.Thread(target=self._pump, daemon=True)
            self._reader.start()
        try:
            m = self.wait_log(r"listening on (\[[^\]]+\]|[^ :]+):(\d+)")
        except BaseException:
            self.kill()
            raise
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        self.irc_port = None
        if "--no-irc" not in self.args:  # its line may come before or after the ready line
            try:
                irc_m = self.wait_log(r"listening for IRC on (\[[^\]]+\]|[^ :]+):(\d+)")
            except BaseException:
                self.kill()
                raise
            self.irc_port = int(irc_m.group(2))
        self.http_port = self.https_port = None
        if "--no-web" not in self.args:  # logged before the ready line
            m = re.search(r"listening for HTTP on (\[[^\]]+\]|[^ :]+):(\d+)", self.log)
            self.http_port = int(m.group(2)) if m else None
            m = re.search(r"listening for HTTPS on (\[[^\]]+\]|[^ :]+):(\d+)", self.log)
            self.https_port = int(m.group(2)) if m else None
        self.family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def _pump(self):
        fd = self.proc.stderr.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cv:
                if chunk:
                    self._chunks.append(chunk)
                else:
                    self._eof = True
                self._cv.notify_all()
            if not chunk:
                return

    def _read_stderr(self, timeout):
        """Move what the reader got into self.log: True if something came, None at EOF."""
        if not self._reader:
            r, _, _ = select.select([self.proc.stderr], [], [], timeout)
            if not r:
                return False
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            if not chunk:
                return None
            self.log += chunk.decode("utf-8", "replace")
            return True
        with self._cv:
            if not self._chunks and not self._eof and timeout > 0:
                self._cv.wait(timeout)
            chunks, self._chunks = self._chunks, []
            eof = self._eof
        if chunks:
            self.log += b"".join(chunks).decode("utf-8", "replace")
            return True
        return None if eof else False

    def wait_log(self, pattern, timeout=DEFAULT_WAIT, start=0):
        """Wait until the server's stderr (from offset start) matches pattern."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            m = rx.search(self.log, start)
            if m:
                return m
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"server log never matched {pattern!r}; log:\n{self.log[-3000:]}")
            if self._read_stderr(min(left, 0.2)) is None and not rx.search(self.log, start):
                raise AssertionError(f"server exited ({self.proc.poll()}) before {pattern!r}; log:\n{self.log[-3000:]}")

    def drain_log(self):
        while self._read_stderr(0):
            pass
        return self.log

    def stop(self, sig=signal.SIGTERM, expect_rc=0):
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not exit within 30s of SIGTERM")
        if self._reader:
            self._reader.join(timeout=10)
        while self._read_stderr(0):
            pass
        for mark in SANITIZER_MARKS:
            assert mark not in self.log, f"sanitizer report from natterd:\n{self.log[-6000:]}"
        assert self.proc.returncode == expect_rc, \
            f"natterd exited {self.proc.returncode}, wanted {expect_rc}; log:\n{self.log[-3000:]}"
        return self.log

    def kill(self):
        """SIGKILL if still running, and wait; no checks."""
        self.stopped = True
        close_quietly(self.proc)

    def pid(self):
        return self.proc.pid


class IrcClient:
    """An IRC client over a real socket, speaking raw IRC: send lines, expect lines.

    register(nick) does NICK/USER (with CAP first if caps is given: CAP LS 302,
    REQ, END) and waits for 001 and the end of the MOTD."""

    def __init__(self, host, port, timeout=DEFAULT_WAIT):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.buf = b""
        self.lines = []
        self.eof = False
        self.nick = None
        try:
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            self.sock.close()
            raise

    def send(self, text):
        data = text if isinstance(text, bytes) else (text + "\r\n").encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def readline(self, timeout=DEFAULT_WAIT):
        """Next line (str, without CR LF), or None at EOF. Every line must end in CR LF,
        be valid UTF-8 and be at most 512 bytes without its tags."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no line within {timeout}s; last lines: {short(self.lines[-10:])}")
            self._fill(left)
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), f"IRC line without CR: {line!r}"
        line = line[:-1]
        body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
        assert len(body) + 2 <= 512, f"IRC line over 512 bytes ({len(body) + 2}): {line[:200]!r}..."
        s = line.decode("utf-8")
        self.lines.append(s)
        return s

    def expect(self, pattern, timeout=DEFAULT_WAIT):
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            line = self.readline(max(deadline - time.time(), 0.001))
            if line is None:
                raise AssertionError(f"EOF while waiting for {pattern!r}; last lines: {short(self.lines[-10:])}")
            m = rx.search(line)
            if m:
                return m

    def expect_eof(self, timeout=DEFAULT_WAIT):
        deadline = time.time() + timeout
        while self.readline(max(deadline - time.time(), 0.001)) is not None:
            pass

    def register(self, nick, user="u", caps=None, password=None):
        if caps is not None:
            self.send("CAP LS 302")
        if password:
            self.send("PASS " + password)
        self.send("NICK " + nick)
        self.send(f"USER {user} 0 * :{nick} real")
        if caps is not None:
            self.expect(r" CAP \S+ LS :")
            if caps:
                self.send("CAP REQ :" + " ".join(caps))
                self.expect(r" CAP \S+ ACK :")
            self.send("CAP END")
        self.expect(r"^:\S+ 001 %s :" % re.escape(nick))
        self.expect(r"^:\S+ (376|422) ")
        self.nick = nick
        return self

    def sync(self, token="sync"):
        """PING round trip: everything sent before it has arrived."""
        self.send("PING :" + token)
        return self.expect(r" PONG \S+ :%s$" % re.escape(token))

    def close(self):
        self.sock.close()


class Client:
    """A plain-protocol client over a real socket: send lines, expect lines with deadlines.

    The client fixture makes these (client(server)) and closes them at teardown."""

    def __init__(self, host, port, family=None, greet=True, timeout=DEFAULT_WAIT):
        fam = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.buf = b""
        self.lines = []  # every line received, in order
        self.eof = False
        self.name = None
        try:
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if greet:
                m = self.expect(r"^-- welcome to natter, (\S+?)!")
                self.name = m.group(1)
                self.expect(r"^-- %s joined #lobby$" % re.escape(self.name))
        except BaseException:
            self.sock.close()
            raise

    def send(self, text):
        data = text if isinstance(text, bytes) else (text + "\n").encode()
        self.sock.sendall(data)

    def _fill(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def readline(self, timeout=DEFAULT_WAIT):
        """Next line (str, without newline), or None at EOF; raises on timeout."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no line within {timeout}s; last lines: {short(self.lines[-10:])}")
            self._fill(left)
        line, self.buf = self.buf.split(b"\n", 1)
        s = line.decode("utf-8")  # the server must only ever send valid UTF-8
        self.lines.append(s)
        return s

    def expect(self, pattern, timeout=DEFAULT_WAIT):
        """Read lines until one matches pattern (regex); returns the match. Lines skipped are kept in .lines."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            line = self.readline(max(deadline - time.time(), 0.001))
            if line is None:
                raise AssertionError(f"EOF while waiting for {pattern!r}; last lines: {short(self.lines[-10:])}")
            m = rx.search(line)
            if m:
                return m

    def expect_eof(self, timeout=DEFAULT_WAIT):
        deadline = time.time() + timeout
        while True:
            line = self.readline(max(deadline - time.time(), 0.001))
            if line is None:
                return

    def nothing_pending(self, wait=0.2):
        """True if no line arrives within `wait` seconds (use after a sync point, not to wait)."""
        if b"\n" in self.buf:
            return False
        self._fill(wait)
        return b"\n" not in self.buf

    def sync(self):
        """Round-trip a /who so everything the server sent before it has arrived."""
        self.send("/rooms")
        return self.expect(r"^-- rooms: ")

    def nick(self, name):
        self.send("/nick " + name)
        self.expect(r"^-- %s is now known as %s$" % (re.escape(self.name), re.escape(name)))
        self.name = name

    def close(self):
        self.sock.close()


# ==== Node programs of tests/web: a headless browser and Kiwi IRC's irc-framework ====

WEB_TOOLS = os.path.join(os.path.dirname(__file__), "..", "web")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def node_path():
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin"]:
        p = os.path.join(d, "node")
        if os.access(p, os.X_OK):
            return p
    return None


def web_tools_missing(browser=True):
    """Why tests/web's programs cannot run here (a reason to skip), or None."""
    node = node_path()
    if not node:
        return "node is not installed (Debian: apt-get install nodejs npm)"
    mods = os.path.join(WEB_TOOLS, "node_modules")
    for pkg in ("irc-framework",) + (("playwright-core",) if browser else ()):
        if not os.path.isdir(os.path.join(mods, pkg)):
            return f"tests/web/node_modules/{pkg} is absent (npm ci --prefix tests/web)"
    if node_ws_flags() is None:
        return f"{node} has no WebSocket (node 22, or node 20 or 21 with --experimental-websocket)"
    if browser and not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is absent (Debian: apt-get install chromium)"
    return None


_ws_flags = []


def node_ws_flags():
    """node's options for a global WebSocket: [] from node 22, the flag in 20 and 21, None before."""
    if not _ws_flags:
        found = None
        for flags in ([], ["--experimental-websocket"]):
            p = subprocess.run([node_path()] + flags + ["-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                               capture_output=True, timeout=30)
            if p.returncode == 0:
                found = flags
                break
        _ws_flags.append(found)
    return _ws_flags[0]


def node_command(script):
    return [node_path()] + (node_ws_flags() or []) + ["--no-warnings", os.path.join(WEB_TOOLS, script)]


class NodeLines:
    """A node program of tests/web that speaks JSON lines on stdin and stdout."""

    def __init__(self, script, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        e["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
        self.proc = subprocess.Popen(node_command(script) + list(args), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                                     cwd=WEB_TOOLS)
        self.buf = b""
        self.seen = []   # every object received
        self.err = b""

    def write(self, obj):
        data = (obj if isinstance(obj, str) else __import__("json").dumps(obj)) + "\n"
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def read(self, timeout=DEFAULT_WAIT):
        """The next JSON object, or None at EOF; raises on timeout."""
        import json
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"{self.proc.args[-1]}: nothing within {timeout}s; "
                                     f"last: {short([str(o) for o in self.seen[-5:]])}; stderr: {self.stderr()[-2000:]}")
            fds = [self.proc.stdout, self.proc.stderr]
            r, _, _ = select.select(fds, [], [], min(left, 0.5))
            if self.proc.stderr in r:
                chunk = os.read(self.proc.stderr.fileno(), 65536)
                self.err += chunk
            if self.proc.stdout in r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        obj = json.loads(line)
        self.seen.append(obj)
        return obj

    def stderr(self):
        while True:
            r, _, _ = select.select([self.proc.stderr], [], [], 0)
            if not r:
                break
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            if not chunk:
                break
            self.err += chunk
        return self.err.decode("utf-8", "replace")

    def close(self):
        """Close stdin (the program ends), wait a little, then kill."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        close_quietly(self.proc)


class Browser(NodeLines):
    """Headless Chromium through tests/web/browser.js: call(op, page=..., ...) -> value."""

    def __init__(self, timeout=60):
        super().__init__("browser.js", env={"CHROMIUM": CHROMIUM})
        self.n = 0
        try:
            first = self.read(timeout)
            if not first or not first.get("ok"):
                raise AssertionError(f"chromium did not start: {first}; {self.stderr()[-2000:]}")
        except BaseException:
            self.close()
            raise
        self.version = first["value"]

    def call(self, op, timeout=DEFAULT_WAIT, **kw):
        self.n += 1
        req = dict(kw, id=self.n, op=op, timeout=int(timeout * 1000))
        self.write(req)
        while True:
            r = self.read(timeout + 10)  # the browser's own wait ends first
            if r is None:
                raise AssertionError(f"browser.js exited during {op}: {self.stderr()[-2000:]}")
            if r.get("id") == self.n:
                break
        if not r["ok"]:
            raise AssertionError(f"browser {op} {kw}: {r['error']}")
        return r.get("value")


class Kiwi(NodeLines):
    """Kiwi IRC's irc-framework over WebSocket (tests/web/kiwi.js) in one room."""

    def __init__(self, url, nick, room):
        super().__init__("kiwi.js", url, nick, room)

    def expect(self, pred, timeout=DEFAULT_WAIT, what="event"):
        deadline = time.time() + timeout
        for ev in self.seen:
            if pred(ev):
                return ev
        while True:
            ev = self.read(max(deadline - time.time(), 0.001))
            if ev is None:
                raise AssertionError(f"kiwi.js ended while waiting for {what}: {short([str(o) for o in self.seen[-8:]])}; {self.stderr()[-2000:]}")
            if pred(ev):
                return ev

    def say(self, text):
        self.write(text)


# ==== WebSocket (RFC 6455), by hand: the frames are what the tests look at ====

def ws_frame(opcode, payload, fin=True, mask=True, rsv=0):
    """One frame as a client sends it (masked unless mask=False)."""
    payload = payload if isinstance(payload, bytes) else payload.encode()
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_handshake(sock, host, path="/ws", protocols=None, origin=None, extra=(), timeout=DEFAULT_WAIT):
    """Send an upgrade request and read the response head: (status, {header: value}, bytes after it)."""
    import base64
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if protocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
    if origin:
        lines.append("Origin: " + origin)
    lines += list(extra)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, headers, rest = http_read_head(sock, timeout)
    if status == 101:
        import hashlib
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert headers.get("sec-websocket-accept") == want.decode(), headers
    return status, headers, rest


def http_read_head(sock, timeout=DEFAULT_WAIT):
    """Read an HTTP response head: (status, {lower-case name: value}, the bytes after it)."""
    buf = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in buf:
        left = deadline - time.time()
        assert left > 0, f"no HTTP response head within {timeout}s: {buf[:300]!r}"
        r, _, _ = select.select([sock], [], [], left)
        if r:
            chunk = sock.recv(65536)
            assert chunk, f"EOF before the end of the response head: {buf[:300]!r}"
            buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


class WsIrcClient(IrcClient):
    """IrcClient over WebSocket (IRCv3's binding: one IRC line per message, no CR LF).

    Messages come in as lines (payload + CR LF) for IrcClient's reading; frames()
    gives the raw (opcode, payload) of control frames seen, close is where a close
    frame's (code, reason) lands."""

    def __init__(self, host, port, protocols=("text.ircv3.net",), origin=None, timeout=DEFAULT_WAIT,
                 sock=None, path="/ws"):
        if sock is None:
            super().__init__(host, port, timeout)
        else:
            self.sock, self.buf, self.lines, self.eof, self.nick = sock, b"", [], False, None
        self.raw, self.control, self.close_frame, self.opcodes = b"", [], None, []
        self.frag_op, self.frag = None, b""
        status, self.headers, self.raw = ws_handshake(self.sock, f"{host}:{port}", path, list(protocols or ()),
                                                      origin, timeout=timeout)
        assert status == 101, f"WebSocket upgrade refused: {status} {self.headers}"
        self.protocol = self.headers.get("sec-websocket-protocol")
        self._parse()

    def send(self, text):
        data = text if isinstance(text, bytes) else text.encode()
        self.send_frame(2 if self.protocol == "binary.ircv3.net" else 1, data)

    def send_frame(self, opcode, payload, **kw):
        self.sock.sendall(ws_frame(opcode, payload, **kw))

    def _recv(self):
        """Raw bytes from the socket (for TLS: records decrypted but unread first)."""
        return self.sock.recv(65536)

    def _parse(self):
        while True:
            b = self.raw
            if len(b) < 2:
                return
            op, n, i = b[0] & 0x0F, b[1] & 0x7F, 2
            assert not b[1] & 0x80, "the server masked a frame"
            if n == 126:
                if len(b) < 4:
                    return
                n, i = int.from_bytes(b[2:4], "big"), 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, i = int.from_bytes(b[2:10], "big"), 10
            if len(b) < i + n:
                return
            payload, self.raw = b[i:i + n], b[i + n:]
            fin = b[0] & 0x80
            self.opcodes.append(op)
            if op >= 8:
                self.control.append((op, payload))
                if op == 8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    self.close_frame = (code, payload[2:])
                continue
            if op == 0:
                op, payload = self.frag_op, self.frag + payload
            if not fin:
                self.frag_op, self.frag = op, payload
                continue
            self.frag_op, self.frag = None, b""
            assert b"\r" not in payload and b"\n" not in payload, f"CR or LF in a message: {payload!r}"
            if op == 1:
                payload.decode("utf-8")  # a text frame is UTF-8, always
            self.buf += payload + b"\r\n"

    def _fill(self, timeout):
        if not self._pending_tls():
            r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
            if not r:
                return False
        try:
            chunk = self._recv()
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        except BlockingIOError:
            return False
        if not chunk:
            self.eof = True
            return False
        self.raw += chunk
        self._parse()
        return True

    def _pending_tls(self):
        return hasattr(self.sock, "pending") and self.sock.pending() > 0

    def wait_close(self, timeout=DEFAULT_WAIT):
        """Read until a close frame came (and then EOF, or the timeout): its (code, reason)."""
        deadline = time.time() + timeout
        while self.close_frame is None and not self.eof:
            left = deadline - time.time()
            assert left > 0, f"no close frame within {timeout}s; lines {short(self.lines[-5:])}"
            self._fill(left)
            while b"\n" in self.buf:
                self.readline(0.001)
        return self.close_frame
