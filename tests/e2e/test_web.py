"""The HTTP listener and IRC over WebSocket (issue 14), at the protocol level:
raw sockets for HTTP and for frames (natlib.ws_frame, natlib.WsIrcClient), and
Debian's python3-websockets as an independent client. The page's own behaviour
is tested in a browser elsewhere; here: what natterd sends and what it refuses."""
import gzip, os, re, select, socket, ssl, time

import pytest

import natlib
from test_tls import certs, context  # noqa: F401  (the module's certificates: a CA and localhost)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def is_asan(build):
    return "asan" in os.path.basename(os.path.normpath(build))


def web(natterd, *args):
    s = natterd(*args)
    assert s.http_port, "no HTTP listener logged"
    return s


def request(s, raw, port=None, timeout=natlib.DEFAULT_WAIT):
    """Send raw bytes, read one response: (status, headers, body)."""
    with socket.create_connection((s.host, port or s.http_port), timeout=timeout) as c:
        c.sendall(raw if isinstance(raw, bytes) else raw.encode())
        status, headers, body = natlib.http_read_head(c, timeout)
        n = int(headers.get("content-length", "0"))
        deadline = time.time() + timeout
        while len(body) < n and time.time() < deadline:
            chunk = c.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body


def get(s, path, *headers, method="GET"):
    head = f"{method} {path} HTTP/1.1\r\nHost: {s.host}:{s.http_port}\r\n" + "".join(h + "\r\n" for h in headers)
    return request(s, head + "Connection: close\r\n\r\n")


def read_eof(sock, timeout=natlib.DEFAULT_WAIT):
    """Read until EOF: the bytes, or raise after timeout."""
    data, deadline = b"", time.time() + timeout
    sock.settimeout(0.2)
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"no EOF within {timeout}s: {data[:200]!r}")


# ==== The page ====

def test_get_serves_the_embedded_page_with_strict_headers(natterd):
    s = web(natterd)
    status, h, body = get(s, "/")
    assert status == 200
    with open(os.path.join(ROOT, "web", "index.html"), "rb") as f:
        assert body == f.read()
    assert h["content-type"] == "text/html; charset=utf-8"
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert re.fullmatch(r'"[0-9]+-[0-9]+"', h["etag"])
    status, js, body = get(s, "/app.js")
    assert status == 200 and js["content-type"].startswith("text/javascript")
    with open(os.path.join(ROOT, "web", "app.js"), "rb") as f:
        assert body == f.read()


def test_head_says_what_get_would_without_a_body(natterd):
    s = web(natterd)
    _, g, body = get(s, "/")
    status, h, rest = get(s, "/", method="HEAD")
    assert status == 200 and rest == b""
    assert h["content-length"] == g["content-length"] == str(len(body))
    assert h["etag"] == g["etag"]


def test_etag_gives_304(natterd):
    s = web(natterd)
    _, h, _ = get(s, "/index.html")
    status, h2, body = get(s, "/index.html", "If-None-Match: " + h["etag"])
    assert status == 304 and body == b"" and h2["etag"] == h["etag"]
    status, _, _ = get(s, "/index.html", 'If-None-Match: "0-0"')
    assert status == 200


def test_gzip_when_the_client_takes_it(natterd):
    s = web(natterd)
    files = [f for f in os.listdir(os.path.join(ROOT, "web")) if re.search(r"\.(html|js|css)$", f)]
    name = max(files, key=lambda f: os.path.getsize(os.path.join(ROOT, "web", f)))
    with open(os.path.join(ROOT, "web", name), "rb") as f:
        want = f.read()
    status, h, body = get(s, "/" + name, "Accept-Encoding: gzip, deflate")
    assert status == 200
    if len(gzip.compress(want, 9)) >= len(want):
        pytest.skip(f"{name} is too small to gain from gzip")
    assert h.get("content-encoding") == "gzip" and "Accept-Encoding" in h["vary"]
    assert gzip.decompress(body) == want
    _, h, body = get(s, "/" + name, "Accept-Encoding: gzip;q=0, identity")
    assert "content-encoding" not in h and body == want


@pytest.mark.parametrize("raw, code", [
    ("GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 405),
    ("DELETE /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    ("HELLO\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    ("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 9000 + "\r\n\r\n", 431),
    ("GET /" + "a" * 2000 + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
], ids=["404", "dotdot", "post", "delete", "garbage", "bad-header", "ws-without-upgrade", "431", "414"])
def test_errors(natterd, raw, code):
    s = web(natterd)
    status, h, _ = request(s, raw)
    assert status == code
    if code == 405:
        assert "GET" in h["allow"]


def test_keep_alive_serves_several_requests_on_one_connection(natterd):
    s = web(natterd)
    with socket.create_connection((s.host, s.http_port)) as c:
        for _ in range(3):
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, h, body = natlib.http_read_head(c)
            assert status == 200 and h["connection"] == "keep-alive"
            n = int(h["content-length"])
            while len(body) < n:
                body += c.recv(65536)
        c.sendall(b"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_eof(c).startswith(b"HTTP/1.1 200 ")


def test_pipelined_requests_are_answered_in_order(natterd):
    """Several requests in one write, one with an Upgrade header that is not WebSocket."""
    s = web(natterd)
    with socket.create_connection((s.host, s.http_port)) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
                  b"HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_eof(c)
    assert re.findall(rb"^HTTP/1\.1 (\d+)", data, re.M) == [b"200", b"200", b"404"]


def test_slowloris_is_dropped_within_http_timeout(natterd, closing):
    s = web(natterd, "--http-timeout", "2")
    c = closing(socket.create_connection((s.host, s.http_port)))
    start = time.time()
    c.settimeout(0.3)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    data = b""
    for b in head:  # a byte every 0.1 s: never a whole head
        try:
            c.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = c.recv(4096)
            data += chunk
            if not chunk:
                break
        except socket.timeout:
            pass
        if time.time() - start > 8:
            break
    took = time.time() - start
    assert took < 5, f"a slowloris client lived {took:.1f}s with --http-timeout 2"
    assert b"408" in data.split(b"\r\n")[0] or data == b""
    s.wait_log(r"disconnect #\d+ 127\.0\.0\.1:\d+: login timeout")


def test_connect_rate_refusal_is_429_with_retry_after(natterd):
    s = web(natterd, "--connect-rate", "1", "--connect-burst", "1")
    assert get(s, "/")[0] == 200
    status, h, _ = get(s, "/")
    assert status == 429 and int(h["retry-after"]) > 0


# ==== The WebSocket handshake ====

@pytest.mark.parametrize("offered, chosen", [
    ((), None),
    (("text.ircv3.net",), "text.ircv3.net"),
    (("binary.ircv3.net", "text.ircv3.net"), "binary.ircv3.net"),
    (("text.ircv3.net", "binary.ircv3.net"), "text.ircv3.net"),
    (("chat", "binary.ircv3.net"), "binary.ircv3.net"),
    (("chat",), None),
])
def test_subprotocol_follows_the_clients_preference(natterd, closing, offered, chosen):
    s = web(natterd)
    w = closing(natlib.WsIrcClient(s.host, s.http_port, protocols=offered))
    assert w.protocol == chosen
    w.register("wsu")
    w.send("PING :x")
    w.expect(r" PONG \S+ :x$")
    # binary.ircv3.net: binary frames; text or none: text frames
    assert set(o for o in w.opcodes if o < 8) == {2 if chosen == "binary.ircv3.net" else 1}


def test_python_websockets_client(natterd):
    websockets = pytest.importorskip("websockets", reason="python3-websockets (Debian) absent")
    import asyncio
    s = web(natterd)

    async def chat():
        async with websockets.connect(f"ws://{s.host}:{s.http_port}/ws", subprotocols=["text.ircv3.net"],
                                      open_timeout=natlib.DEFAULT_WAIT) as w:
            assert w.subprotocol == "text.ircv3.net"
            await w.send("NICK pyws")
            await w.send("USER u 0 * :real")
            while True:
                m = await asyncio.wait_for(w.recv(), natlib.DEFAULT_WAIT)
                assert isinstance(m, str) and not m.endswith("\n")
                if " 001 pyws " in m:
                    break
            await asyncio.wait_for(await w.ping(b"hi"), natlib.DEFAULT_WAIT)  # answered by a pong
        return w.close_code
    assert asyncio.run(chat()) == 1000


@pytest.mark.parametrize("origin, allowed", [
    (None, True),                       # not a browser
    ("http://{host}:{port}", True),     # the page's own
    ("http://evil.example", False),
    ("https://{host}:{port}", False),   # another scheme is another origin
])
def test_origin_is_checked(natterd, closing, origin, allowed):
    s = web(natterd)
    c = closing(socket.create_connection((s.host, s.http_port)))
    o = origin.format(host=s.host, port=s.http_port) if origin else None
    status, _, _ = natlib.ws_handshake(c, f"{s.host}:{s.http_port}", origin=o)
    assert status == (101 if allowed else 403)
    if not allowed:
        s.wait_log(r"WebSocket from origin \S+ refused")


def test_web_origin_names_the_origins_allowed(natterd, closing):
    s = web(natterd, "--web-origin", "https://chat.example.org http://other.example")
    for origin, code in (("https://chat.example.org", 101), ("http://other.example", 101),
                         (f"http://{s.host}:{s.http_port}", 403)):
        c = closing(socket.create_connection((s.host, s.http_port)))
        assert natlib.ws_handshake(c, f"{s.host}:{s.http_port}", origin=origin)[0] == code


def test_bad_handshakes(natterd, closing):
    s = web(natterd)
    for extra, code in ((["Sec-WebSocket-Version: 8"], 426),):
        c = closing(socket.create_connection((s.host, s.http_port)))
        c.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + "".join(e + "\r\n" for e in extra).encode() +
                  b"\r\n")
        status, h, _ = natlib.http_read_head(c)
        assert status == code and h["sec-websocket-version"] == "13"
    c = closing(socket.create_connection((s.host, s.http_port)))
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert natlib.http_read_head(c)[0] == 400


# ==== Frames ====

def ws_user(s, closing, nick, **kw):
    w = closing(natlib.WsIrcClient(s.host, s.http_port, **kw))
    w.register(nick)
    return w


def test_plain_irc_and_websocket_users_share_a_room(natterd, client, closing):
    s = web(natterd)
    w = ws_user(s, closing, "webby")
    w.send("JOIN #lobby")
    w.expect(r"^:webby!\S+ JOIN :?#lobby$")
    irc = closing(natlib.IrcClient(s.host, s.irc_port))
    irc.register("ircy")
    irc.send("JOIN #lobby")
    irc.expect(r"^:ircy!\S+ JOIN :?#lobby$")
    plain = client(s)
    plain.nick("nc")
    w.send("PRIVMSG #lobby :hello from the browser")
    irc.expect(r"^:webby!\S+ PRIVMSG #lobby :hello from the browser$")
    plain.expect(r"^#lobby <webby> hello from the browser$")
    plain.send("hi web")
    w.expect(r"^:nc!\S+ PRIVMSG #lobby :hi web$")
    irc.send("PRIVMSG #lobby :hi from irc")
    w.expect(r"^:ircy!\S+ PRIVMSG #lobby :hi from irc$")
    # the real peer address, as for any connection
    s.wait_log(r"connect #\d+ 127\.0\.0\.1:\d+")
    w.send("WHOIS webby")
    w.expect(r" 311 webby webby \S+ \S+ ")


def test_the_first_frames_may_come_with_the_request(natterd, closing):
    """Bytes after the request head, in the same write, are the first frames."""
    s = web(natterd)
    c = closing(socket.create_connection((s.host, s.http_port)))
    first = natlib.ws_frame(1, "NICK early") + natlib.ws_frame(1, "USER u 0 * :r")
    import base64
    key = base64.b64encode(os.urandom(16)).decode()
    c.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode() + first)
    w = natlib.WsIrcClient.__new__(natlib.WsIrcClient)
    w.sock, w.buf, w.lines, w.eof, w.nick = c, b"", [], False, None
    w.control, w.close_frame, w.opcodes, w.frag_op, w.frag = [], None, [], None, b""
    status, w.headers, w.raw = natlib.http_read_head(c)
    assert status == 101
    w.protocol = None
    w._parse()
    w.expect(r" 001 early :")


def test_fragmented_masked_messages_with_a_ping_between(natterd, closing):
    s = web(natterd)
    a = ws_user(s, closing, "alice")
    b = ws_user(s, closing, "bob")
    for u in (a, b):
        u.send("JOIN #lobby")
        u.expect(r"JOIN :?#lobby$")
    a.send_frame(1, "PRIVMSG #lobby :hel", fin=False)
    a.send_frame(9, "between")               # a control frame between fragments
    a.send_frame(0, "lo wor", fin=False)
    a.send_frame(0, "ld", fin=True)
    b.expect(r"^:alice!\S+ PRIVMSG #lobby :hello world$")
    natlib.wait_until(lambda: a._fill(0.05) or (10, b"between") in a.control, what="the pong")
    assert (10, b"between") in a.control


def test_ping_is_answered(natterd, closing):
    s = web(natterd)
    w = ws_user(s, closing, "pinger")
    w.send_frame(9, b"\x00\xffdata")
    natlib.wait_until(lambda: w._fill(0.05) or (10, b"\x00\xffdata") in w.control, what="pong")


def test_pings_from_a_client_that_never_reads_do_not_pile_up(natterd, client, closing, build):
    """Each ping owes a pong; a client that pings and never reads is not read
    either, so TCP pushes back on it: what it gets to send, and what natterd
    holds for it, stay bounded (without the bound it sends all it likes and
    natterd queues a pong for each)."""
    s = web(natterd, "--rate", "0")
    w = ws_user(s, closing, "pinger")
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    w.sock.setblocking(False)
    ping = natlib.ws_frame(9, b"p" * 125)
    burst = ping * 256
    before = natlib.rss_kib(s.proc.pid)
    sent, deadline, stalled_since = 0, time.time() + 20, None
    while sent < 64 * 1024 * 1024 and time.time() < deadline:
        try:
            sent += w.sock.send(burst)
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.time()
            if time.time() - stalled_since > 1.0:
                break  # pushed back on for a second: natterd stopped reading
            select.select([], [w.sock], [], 0.05)
    assert sent < 32 * 1024 * 1024, f"natterd kept reading pings it could not answer: {sent} bytes taken"
    if not is_asan(build):
        grown = natlib.rss_kib(s.proc.pid) - before
        assert grown < 16 * 1024, f"natterd grew {grown} KiB for one pinging client"
    # The others go on meanwhile.
    a, b = client(s), client(s)
    a.nick("amy")
    b.nick("bo")
    a.send("still here")
    b.expect(r"^#lobby <amy> still here$")


def expect_close(w, code):
    got = w.wait_close()
    assert got and got[0] == code, f"closed with {got}, wanted {code}"
    read_eof(w.sock)


@pytest.mark.parametrize("frame", [
    natlib.ws_frame(1, "PING :x", mask=False),           # a client frame must be masked
    natlib.ws_frame(1, "PING :x", rsv=4),                # no extension: no reserved bits
    natlib.ws_frame(0, "orphan"),                        # a continuation with nothing to continue
    natlib.ws_frame(3, "x"),                             # a reserved opcode
    natlib.ws_frame(9, "p" * 126),                       # a control frame over 125 bytes
    natlib.ws_frame(9, "p", fin=False),                  # a fragmented control frame
    natlib.ws_frame(1, "a", fin=False) + natlib.ws_frame(1, "b"),  # a new message inside one
], ids=["unmasked", "rsv", "orphan-continuation", "reserved-opcode", "long-ping", "fragmented-ping", "interleaved"])
def test_protocol_errors_close_with_1002(natterd, closing, frame):
    s = web(natterd)
    w = ws_user(s, closing, "proto")
    w.sock.sendall(frame)
    expect_close(w, 1002)
    s.wait_log(r"read error: ws: protocol error \(closed with 1002\)")


def test_oversize_message_gets_1009(natterd, closing):
    s = web(natterd, "--max-line", "512")
    w = ws_user(s, closing, "big")
    w.send_frame(1, "PRIVMSG #lobby :" + "x" * 2000)
    expect_close(w, 1009)


def test_oversize_fragmented_message_gets_1009(natterd, closing):
    s = web(natterd, "--max-line", "512")
    w = ws_user(s, closing, "bigfrag")
    for _ in range(5):
        w.send_frame(1 if _ == 0 else 0, "x" * 200, fin=False)
    expect_close(w, 1009)


def test_bad_utf8_in_a_text_frame_gets_1007(natterd, closing):
    s = web(natterd)
    w = ws_user(s, closing, "badutf")
    w.send_frame(1, b"PRIVMSG #lobby :\xff\xfe")
    expect_close(w, 1007)


def test_binary_subprotocol_takes_any_bytes(natterd, closing):
    """binary.ircv3.net: not UTF-8 is the IRC codec's to clean, not a close."""
    s = web(natterd)
    a = ws_user(s, closing, "bina", protocols=("binary.ircv3.net",))
    b = ws_user(s, closing, "binb")
    for u in (a, b):
        u.send("JOIN #lobby")
        u.expect(r"JOIN :?#lobby$")
    a.send(b"PRIVMSG #lobby :caf\xe9 ok")
    b.expect(r"^:bina!\S+ PRIVMSG #lobby :caf.* ok$")


def test_close_handshake(natterd, closing):
    s = web(natterd)
    w = ws_user(s, closing, "closer")
    w.send_frame(8, (1000).to_bytes(2, "big") + b"bye")
    expect_close(w, 1000)
    s.wait_log(r"disconnect #\d+ \S+ closer: connection closed")


def test_server_pings_an_idle_client_then_closes_with_1008(natterd, closing):
    s = web(natterd, "--idle-timeout", "4")
    w = ws_user(s, closing, "sleepy")
    natlib.wait_until(lambda: w._fill(0.1) or any(op == 9 for op, _ in w.control), timeout=8,
                      what="the server's ping")
    w.expect(r"^PING ")  # and the IRC one, for IRC clients that ignore frames
    expect_close(w, 1008)


def test_websocket_connections_count_under_max_per_ip(natterd, closing):
    s = web(natterd, "--max-per-ip", "2")
    ws_user(s, closing, "one")
    ws_user(s, closing, "two")
    status, h, _ = get(s, "/")
    assert status == 429


def test_wss_over_https_port(natterd, certs, closing, client):  # noqa: F811
    s = web(natterd, "--tls-cert", certs["good"][0], "--tls-key", certs["good"][1])
    assert s.https_port
    ctx = context(certs)

    def tls_sock():
        raw = socket.create_connection((s.host, s.https_port))
        return closing(ctx.wrap_socket(raw, server_hostname="localhost"))
    c = tls_sock()
    c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    status, h, _ = natlib.http_read_head(c)
    assert status == 200
    w = closing(natlib.WsIrcClient(s.host, s.https_port, sock=tls_sock(),
                                   origin=f"https://{s.host}:{s.https_port}"))
    w.register("secure")
    w.send("JOIN #lobby")
    w.expect(r"JOIN :?#lobby$")
    w.send("MODE secure")
    w.expect(r" 221 secure \+\S*Z")  # over TLS, under WebSocket too
    plain = client(s)
    plain.nick("pln")
    w.send("PRIVMSG #lobby :over wss")
    plain.expect(r"^#lobby <secure> over wss$")


def test_no_web(natterd, closing):
    s = natterd("--no-web")
    assert s.http_port is None and "listening for HTTP" not in s.log


def test_https_port_needs_a_certificate(binary):
    import subprocess
    p = subprocess.run([binary("natterd"), "--https-port", "0"], capture_output=True, text=True, timeout=10,
                       env=natlib.sanitizer_env())
    assert p.returncode == 2 and "--https-port needs --tls-cert" in p.stderr


def test_bench_over_websocket(natterd, binary):
    import json, subprocess
    s = web(natterd, "--rate", "0")
    p = subprocess.run([binary("natter-bench"), "--port", str(s.port), "--ws", "--irc-port", str(s.http_port),
                        "-c", "20", "-m", "50", "--json"], capture_output=True, text=True, timeout=60,
                       env=natlib.sanitizer_env())
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["ok"] and rep["ws"] and rep["delivered"] == rep["expected"] == 20 * 19 * 50
    s.wait_log(r"(?s)(WebSocket \(text\.ircv3\.net\).*){20}")  # every one of them upgraded


def test_bench_ws_needs_the_http_port(binary):
    import subprocess
    p = subprocess.run([binary("natter-bench"), "--ws"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--ws needs --irc-port" in p.stderr


def test_lines_decoded_inside_the_transport_are_served_after_a_yield(natterd, closing, client):
    """A connection that yields its turn (the hub's --turn-fanout budget is spent on
    a room over 64) must still get the lines its transport decoded already, with no
    new bytes arriving to wake it: the WebSocket transport holds them, not the socket."""
    s = web(natterd, "--turn-fanout", "1", "--max-per-ip", "0", "--rate", "1000", "--burst", "1000",
            "--max-announce", "0")
    crowd = [closing(socket.create_connection((s.host, s.port))) for _ in range(66)]  # #lobby over 64
    watcher = client(s)
    natlib.wait_until(lambda: s.drain_log().count("connect #") >= 67, what="the crowd")
    w = ws_user(s, closing, "burst")
    w.send("JOIN #lobby")
    w.expect(r"JOIN :?#lobby$")
    watcher.sync()
    frames = b"".join(natlib.ws_frame(1, "PRIVMSG #lobby :%02d %s" % (i, "y" * 300)) for i in range(30))
    w.sock.sendall(frames)  # 30 lines, ~10 KB: more than one read of --max-line + 1
    for i in range(30):
        watcher.expect(r"^#lobby <burst> %02d y+$" % i, timeout=5)
    assert len(crowd) == 66


def test_quit_closes_with_1000_and_shutdown_with_1001(natterd, closing):
    s = web(natterd)
    a = ws_user(s, closing, "leaver")
    b = ws_user(s, closing, "stayer")
    a.send("QUIT :bye")
    a.expect(r"^ERROR ")
    expect_close(a, 1000)
    s.stop()
    b.expect(r"^ERROR ")
    assert b.wait_close()[0] == 1001


def test_web_origin_and_http_timeout_change_on_sighup(natterd, closing, tmp_path):
    import signal
    path = tmp_path / "natterd.conf"
    path.write_text("web-origin = http://a.example\nhttp-timeout = 30\n")
    s = web(natterd, "--config", str(path))

    def code(origin):
        c = closing(socket.create_connection((s.host, s.http_port)))
        return natlib.ws_handshake(c, f"{s.host}:{s.http_port}", origin=origin)[0]
    assert code("http://a.example") == 101 and code("http://b.example") == 403
    path.write_text("web-origin = http://b.example\nhttp-timeout = 1\n")
    start = len(s.drain_log())
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"reloaded .*: 2 live changes", start=start)
    assert code("http://b.example") == 101 and code("http://a.example") == 403
    slow = closing(socket.create_connection((s.host, s.http_port)))
    slow.sendall(b"GET / HTTP/1.1\r\n")
    assert read_eof(slow, timeout=5).startswith(b"HTTP/1.1 408 ")  # the new --http-timeout
