"""TLS (issue 11): natterd's --tls-port with real peers (openssl s_client, Python's
ssl, natter --tls), certificates made here with the openssl CLI: a CA, a server
certificate for localhost and 127.0.0.1, an expired one, one for another host, and a
second one to reload on SIGHUP."""
import os, re, select, shutil, signal, socket, ssl, subprocess, time, warnings

import pytest

import natlib

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(not OPENSSL, reason="no openssl command (Debian package openssl)")


# ==== Certificates ====

def _openssl(*args, cwd):
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _issue(d, name, cn, san, days="30"):
    """A P-256 key and a certificate signed by the CA in d: name.key, name.pem."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
             "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", name + ".pem", "-days", days, "-extfile", name + ".ext", cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "30", "-subj", "/CN=natter test CA", cwd=d)
    c = {"dir": d, "ca": os.path.join(d, "ca.pem")}
    c["good"] = _issue(d, "good", "localhost", "DNS:localhost,IP:127.0.0.1")
    c["expired"] = _issue(d, "expired", "localhost", "DNS:localhost,IP:127.0.0.1", days="-1")
    c["wronghost"] = _issue(d, "wronghost", "example.org", "DNS:example.org")
    c["second"] = _issue(d, "second", "second.localhost", "DNS:localhost,IP:127.0.0.1")
    return c


def tls_server(natterd, pair, *args):
    """natterd with a TLS listener on a free port; .tls_port is where."""
    s = natterd("--tls-cert", pair[0], "--tls-key", pair[1], "--tls-port", "0", *args)
    m = s.wait_log(r"(?m)listening for TLS on [^ \n]*:(\d+)$")
    s.tls_port = int(m.group(1))
    return s


def context(certs):
    ctx = ssl.create_default_context(cafile=certs["ca"])
    return ctx


class TLSClient(natlib.Client):
    """natlib.Client over TLS (Python's ssl): records decrypted but not read yet are
    taken before waiting on the socket, which select() cannot see."""

    def __init__(self, server, ctx, greet=True, timeout=natlib.DEFAULT_WAIT, host="localhost"):
        raw = socket.create_connection((server.host, server.tls_port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.buf, self.lines, self.eof, self.name = b"", [], False, None
        if greet:
            m = self.expect(r"^-- welcome to natter, (\S+?)!")
            self.name = m.group(1)
            self.expect(r"^-- %s joined #lobby$" % re.escape(self.name))

    def _fill(self, timeout):
        if not self.sock.pending():
            r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
            if not r:
                return False
        try:
            chunk = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return False
        except (ConnectionResetError, socket.timeout, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True


@pytest.fixture
def tls_client(closing, certs):
    def connect(server, **kw):
        return closing(TLSClient(server, context(certs), **kw))
    return connect


def read_to_eof(sock, timeout=natlib.DEFAULT_WAIT):
    """Everything sock receives until EOF (raises on timeout)."""
    sock.settimeout(timeout)
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


# ==== Real peers ====

def test_s_client_is_a_real_peer(natterd, certs, closing):
    s = tls_server(natterd, certs["good"])
    p = closing(subprocess.Popen([OPENSSL, "s_client", "-quiet", "-verify_return_error", "-CAfile", certs["ca"],
                                  "-servername", "localhost", "-connect", "127.0.0.1:%d" % s.tls_port],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    p.stdin.write(b"/nick carol\n/who\n")
    p.stdin.flush()
    seen = b""
    deadline = time.time() + natlib.DEFAULT_WAIT
    while b"#lobby: carol" not in seen:  # the first in #lobby, but nobody keeps #lobby
        assert time.time() < deadline, seen
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            chunk = os.read(p.stdout.fileno(), 4096)
            assert chunk, "s_client ended: " + p.stderr.read().decode()
            seen += chunk
    assert b"-- welcome to natter, guest" in seen
    assert b"-- guest1 is now known as carol" in seen
    p.stdin.write(b"bye\n")  # (-quiet ignores the end of its input)
    p.stdin.flush()
    p.wait(timeout=10)
    s.wait_log(r"disconnect #\d+ 127\.0\.0\.1:\d+ \S+: quit")


def test_plain_and_tls_users_share_a_room(natterd, client, tls_client, certs):
    s = tls_server(natterd, certs["good"])
    plain = client(s)
    plain.nick("pat")
    secure = tls_client(s)
    secure.nick("tess")
    plain.expect(r"^-- guest\d+ joined #lobby$")
    secure.send("hello from TLS")
    plain.expect(r"^#lobby <tess> hello from TLS$")
    plain.send("hello from plain")
    secure.expect(r"^#lobby <pat> hello from plain$")
    secure.send("/msg pat psst")
    plain.expect(r"^\*tess\* psst$")
    secure.send("bye")
    secure.expect(r"^-- bye tess$")
    secure.expect_eof()
    plain.expect(r"^-- tess quit")
    assert "protocol version" not in s.drain_log()


def test_only_tls_1_2_and_1_3(natterd, certs, closing):
    s = tls_server(natterd, certs["good"])
    for version, ok in ((ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
        ctx = context(certs)
        ctx.minimum_version = ctx.maximum_version = version
        c = closing(TLSClient(s, ctx))
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        assert ok
    # TLS 1.1 (where this Python's OpenSSL can still offer it) is refused by the server.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return
    raw = closing(socket.create_connection((s.host, s.tls_port), timeout=10))
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        ctx.wrap_socket(raw, server_hostname="localhost")
    s.wait_log(r"handshake failed: tls: (unsupported protocol|no protocols available|.*version)")


# ==== natter --tls ====

def run_natter(binary, *args, stdin=b"/who\n"):
    p = subprocess.run([binary("natter"), *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30, env=natlib.sanitizer_env())
    err = p.stderr.decode()
    for mark in natlib.SANITIZER_MARKS:
        assert mark not in err, err
    return p.returncode, p.stdout.decode(), err


def test_natter_tls_verifies_and_chats(natterd, binary, certs):
    s = tls_server(natterd, certs["good"])
    for host in ("localhost", "127.0.0.1"):
        rc, out, err = run_natter(binary, "--tls", "--ca", certs["ca"], host, str(s.tls_port))
        assert rc == 0, err
        assert re.search(r"^-- #lobby: guest\d+ \(1 user\)$", out, re.M), out
        assert err == ""
    # No --ca: the test CA is in no system store.
    rc, out, err = run_natter(binary, "--tls", "localhost", str(s.tls_port))
    assert rc == 1 and out == ""
    assert "the server's certificate was refused: unable to get local issuer certificate" in err, err
    assert "--ca FILE" in err
    # --insecure goes ahead, and says what that means.
    rc, out, err = run_natter(binary, "--tls", "--insecure", "localhost", str(s.tls_port))
    assert rc == 0 and "-- #lobby: " in out
    assert "warning: --insecure" in err
    # The plain port is not a TLS port.
    rc, out, err = run_natter(binary, "--tls", "--ca", certs["ca"], "localhost", str(s.port))
    assert rc == 1 and "is this a TLS port?" in err, err


@pytest.mark.parametrize("which,message", [
    ("expired", r"the server's certificate was refused: certificate has expired \(on .* GMT\)"),
    ("wronghost", r"the server's certificate was refused: [Hh]ostname mismatch: it is for example\.org, not localhost"),
])
def test_natter_refuses_a_bad_certificate(natterd, binary, certs, which, message):
    s = tls_server(natterd, certs[which])
    rc, out, err = run_natter(binary, "--tls", "--ca", certs["ca"], "localhost", str(s.tls_port))
    assert rc == 1 and out == "", (rc, out)
    assert re.search(r"^natter: localhost:%d: %s$" % (s.tls_port, message), err, re.M), err
    s.wait_log(r"handshake failed: tls: .*(certificate expired|bad certificate|certificate unknown)")


def test_natter_tls_usage(binary):
    for args, msg in ((["--ca", "x", "localhost"], "--ca goes with --tls"),
                      (["--insecure"], "--insecure goes with --tls"),
                      (["--tls", "--listen", "9999"], "--listen does not speak TLS")):
        rc, out, err = run_natter(binary, *args)
        assert rc == 2 and msg in err, (args, err)
    rc, out, err = run_natter(binary, "--tls", "--ca", "/nonexistent/ca.pem", "127.0.0.1", "1")
    assert rc == 1


# ==== natterd's options ====

def test_tls_options_are_checked(binary, certs, tmp_path):
    natterd = binary("natterd")

    def run(*args):
        p = subprocess.run([natterd, "--bind", "127.0.0.1", "--port", "0", "--http-port", "0", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20, env=natlib.sanitizer_env())
        return p.returncode, p.stderr.decode()
    cert, key = certs["good"]
    rc, err = run("--tls-cert", cert)
    assert rc == 2 and "--tls-cert and --tls-key go together" in err
    rc, err = run("--tls-port", "7000")
    assert rc == 2 and "--tls-port needs --tls-cert and --tls-key" in err
    rc, err = run("--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", key)
    assert rc == 1 and re.search(r"TLS certificate .*missing\.pem: No such file or directory", err), err
    rc, err = run("--tls-cert", cert, "--tls-key", certs["wronghost"][1])
    assert rc == 1 and "does not belong to the certificate" in err, err
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    rc, err = run("--tls-cert", str(junk), "--tls-key", key)
    assert rc == 1 and "junk.pem: no start line" in err, err
    enc = tmp_path / "enc.key"
    subprocess.run([OPENSSL, "pkey", "-in", key, "-aes256", "-passout", "pass:secret", "-out", str(enc)], check=True)
    rc, err = run("--tls-cert", cert, "--tls-key", str(enc))  # must not ask for a passphrase
    assert rc == 1 and "enc.key" in err, err
    for mark in natlib.SANITIZER_MARKS:
        assert mark not in err


# ==== Hostile and slow peers ====

def test_one_byte_per_write(natterd, client, certs, closing):
    """Every TLS byte, ClientHello included, in its own write: the handshake and
    the records are put together from pieces."""
    s = tls_server(natterd, certs["good"], "--rate", "0")
    watcher = client(s)
    raw = closing(socket.create_connection((s.host, s.tls_port), timeout=10))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context(certs).wrap_bio(inc, out, server_hostname="localhost")
    writes = [0]

    def trickle():
        data = out.read()
        for i in range(len(data)):
            raw.send(data[i:i + 1])
            writes[0] += 1
            time.sleep(0.0005)  # pacing, so the pieces arrive apart: not waiting for anything

    def pump(timeout=0.05):
        r, _, _ = select.select([raw], [], [], timeout)
        if r:
            chunk = raw.recv(65536)
            if chunk:
                inc.write(chunk)
            else:
                inc.write_eof()

    deadline = time.time() + 20
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            trickle()
            pump()
        assert time.time() < deadline, "no handshake"
    trickle()
    for line in (b"/nick slowpoke\n", b"hello, one byte at a time\n"):
        tls.write(line)
        trickle()
    watcher.expect(r"^#lobby <slowpoke> hello, one byte at a time$", timeout=20)
    got = b""
    while b"is now known as slowpoke" not in got:
        assert time.time() < deadline, got
        pump(0.2)
        try:
            got += tls.read(65536)
        except ssl.SSLWantReadError:
            pass
    assert writes[0] > 300


def test_stalled_handshake_costs_nobody_and_is_reaped(natterd, client, tls_client, certs, closing):
    s = tls_server(natterd, certs["good"], "--tls-handshake-timeout", "2")
    # Half a ClientHello, then silence.
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    half = context(certs).wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        half.do_handshake()
    hello = out.read()
    staller = closing(socket.create_connection((s.host, s.tls_port), timeout=10))
    staller.sendall(hello[:len(hello) // 2])
    silent = closing(socket.create_connection((s.host, s.tls_port), timeout=10))  # sends nothing at all
    t0 = time.time()
    # Meanwhile everybody else is served at once.
    a = tls_client(s)
    b = client(s)
    a.send("still here")
    b.expect(r"^#lobby <%s> still here$" % a.name)
    assert time.time() - t0 < 1.5, "the stalled handshakes held others up"
    assert read_to_eof(staller, timeout=15) == b""
    assert read_to_eof(silent, timeout=15) == b""
    assert time.time() - t0 >= 1.5, "reaped before the handshake timeout"
    log = s.wait_log(r"(?s)handshake timeout.*handshake timeout").group(0)
    assert log
    a.send("after")
    b.expect(r"^#lobby <%s> after$" % a.name)


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"/nick plaintext\nhello in clear\n",
    bytes(range(256)) * 4,
    b"\x16\x03\x01\xff\xff" + b"A" * 100,  # a record header that lies about its length
])
def test_garbage_instead_of_a_client_hello(natterd, client, certs, closing, garbage):
    s = tls_server(natterd, certs["good"])
    watcher = client(s)
    g = closing(socket.create_connection((s.host, s.tls_port), timeout=10))
    g.sendall(garbage)
    try:
        g.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    data = read_to_eof(g, timeout=20)
    # Nothing in clear: at most a TLS alert record (content type 21).
    assert data == b"" or data[0] == 0x15, data[:80]
    assert b"natter" not in data and b"--" not in data
    s.wait_log(r"disconnect #\d+ 127\.0\.0\.1:\d+: handshake (failed|timeout)", timeout=20)
    assert watcher.sync()


def test_refusals_on_the_tls_port_say_nothing_in_clear(natterd, client, certs, closing, binary):
    s = tls_server(natterd, certs["good"], "--max-clients", "1")
    holder = client(s)
    late = closing(socket.create_connection((s.host, s.tls_port), timeout=10))
    assert read_to_eof(late) == b""
    s.wait_log(r"refused 127\.0\.0\.1:\d+: server full")
    rc, out, err = run_natter(binary, "--tls", "--ca", certs["ca"], "localhost", str(s.tls_port))
    assert rc == 1 and "the server closed the connection during the TLS handshake (is this its TLS port? " \
        "is it full?)" in err, err
    holder.sync()
    s2 = tls_server(natterd, certs["good"], "--max-per-ip", "1")
    first = closing(TLSClient(s2, context(certs)))
    second = closing(socket.create_connection((s2.host, s2.tls_port), timeout=10))
    assert read_to_eof(second) == b""
    s2.wait_log(r"refused 127\.0\.0\.1:\d+: too many connections from its address")
    assert first.sync()


def test_a_stalled_tls_reader_is_dropped_at_max_outbuf(natterd, client, tls_client, certs, closing):
    s = tls_server(natterd, certs["good"], "--rate", "0", "--max-outbuf", str(256 << 10))
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect((s.host, s.tls_port))
    stalled = closing(context(certs).wrap_socket(raw, server_hostname="localhost"))
    watcher = tls_client(s)
    talker = client(s)
    payload = "z" * 1000
    deadline = time.time() + 30
    i = 0
    while "output queue over" not in s.drain_log():
        assert time.time() < deadline, "the stalled reader was never dropped"
        for _ in range(100):
            talker.send("%d %s" % (i, payload))
            i += 1
        watcher.expect(r"^#lobby <%s> %d " % (talker.name, i - 1))  # the others keep up
    s.wait_log(r"output queue over 262144 bytes, disconnecting")
    s.wait_log(r"disconnect #\d+ 127\.0\.0\.1:\d+ \S+: too slow")
    talker.send("afterwards")
    watcher.expect(r"^#lobby <%s> afterwards$" % talker.name)


def test_flood_control_over_tls_loses_nothing(natterd, client, tls_client, certs):
    """A flood in one write is one TLS record: most of it sits decrypted inside
    OpenSSL while the reader is paused, and must come out when it resumes."""
    s = tls_server(natterd, certs["good"], "--rate", "50", "--burst", "10", "--max-line", "512")
    watcher = client(s)
    sender = tls_client(s)
    sender.sock.sendall(b"".join(b"line %d\n" % i for i in range(120)))
    for i in range(120):
        watcher.expect(r"^#lobby <%s> line %d$" % (sender.name, i), timeout=30)
    sender.expect(r"^!! slow down")


def test_sighup_reloads_the_certificate_without_dropping_anyone(natterd, client, tls_client, certs, tmp_path):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(certs["good"][0], cert)
    shutil.copy(certs["good"][1], key)
    s = tls_server(natterd, (str(cert), str(key)))
    old = tls_client(s)
    watcher = client(s)
    assert dict(x[0] for x in old.sock.getpeercert()["subject"])["commonName"] == "localhost"
    shutil.copy(certs["second"][0], cert)
    shutil.copy(certs["second"][1], key)
    mark = len(s.drain_log())
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"TLS certificate reloaded: .*second\.localhost", start=mark)
    new = tls_client(s)
    assert dict(x[0] for x in new.sock.getpeercert()["subject"])["commonName"] == "second.localhost"
    old.send("still connected")
    watcher.expect(r"^#lobby <%s> still connected$" % old.name)
    # A broken file is logged, and the certificate in use stays.
    cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    mark = len(s.drain_log())
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"TLS certificate .*live\.pem: .*; keeping the certificate in use", start=mark)
    third = tls_client(s)
    assert dict(x[0] for x in third.sock.getpeercert()["subject"])["commonName"] == "second.localhost"
    new.send("and me")
    watcher.expect(r"^#lobby <%s> and me$" % new.name)
    old.send("me too")
    watcher.expect(r"^#lobby <%s> me too$" % old.name)


def test_sighup_without_tls_is_harmless(natterd, client):
    s = natterd()
    c = client(s)
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"reloaded \(no configuration file\)")  # the reload of the configuration, no TLS part
    assert "TLS certificate" not in s.log
    assert c.sync()


def test_bench_over_tls(natterd, binary, certs):
    s = tls_server(natterd, certs["good"], "--rate", "0", "--max-per-ip", "0")
    p = subprocess.run([binary("natter-bench"), "--tls", "--port", str(s.tls_port), "-c", "20", "-m", "50",
                        "-d", "10", "--server-pid", str(s.pid())], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=natlib.sanitizer_env())
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert re.search(r"held 20 of 20", out), out


def test_bench_over_tls_counts_a_silent_close_as_refused(natterd, binary, certs):
    s = tls_server(natterd, certs["good"], "--rate", "0", "--max-per-ip", "0", "--max-clients", "10")
    p = subprocess.run([binary("natter-bench"), "--tls", "--port", str(s.tls_port), "-c", "11", "-s", "1", "-m", "1",
                        "--expect-refused", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=natlib.sanitizer_env())
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert "held 10 of 11 (refused 1, failed 0, lost 0), over TLS" in out, out
    assert re.search(r"setup +[\d.]+ s: \d+ connections set up per second", out), out


def test_natter_drops_a_line_cut_short_over_tls(binary, certs, closing):
    """A TLS stream that ends without close_notify in the middle of a line was cut:
    natter shows the whole lines before it, not the piece."""
    import threading
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certs["good"])
    lsock = closing(socket.socket())
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def serve():
        conn, _ = lsock.accept()
        with ctx.wrap_socket(conn, server_side=True) as t:
            t.sendall(b"-- a whole line\n-- and a piece of anoth")
            t.shutdown(socket.SHUT_RDWR)  # TCP's FIN, no close_notify

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    rc, out, err = run_natter(binary, "--tls", "--ca", certs["ca"], "localhost", str(lsock.getsockname()[1]),
                              stdin=b"")
    th.join(10)
    assert out == "-- a whole line\n", (out, err)
    assert rc == 0, err


def test_natter_tls_on_a_terminal(natterd, client, certs, binary, closing, tmp_path):
    """The interactive client over TLS, in tmux: typed lines go out, lines arrive
    while typing, and bye leaves cleanly (close_notify, then the server's close)."""
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    from test_client import STAMP, Tmux  # natter in tmux, as the client's own tests drive it
    s = tls_server(natterd, certs["good"])
    carol = client(s)
    carol.nick("carol")
    t = Tmux(binary("natter"), str(tmp_path), closing, "--tls", "--ca", certs["ca"], "--name", "bob", "localhost",
             s.tls_port)
    t.wait_prompt("#lobby>")
    carol.expect(r"is now known as bob$")
    t.type("typed over TLS")
    t.keys("Enter")
    carol.expect(r"^#lobby <bob> typed over TLS$")
    t.type("half")
    carol.send("hello, bob")
    t.wait_line("^" + STAMP + "#lobby <carol> hello, bob$")
    t.wait_prompt("#lobby> half")
    t.keys("C-u")
    t.type("bye")
    t.keys("Enter")
    t.check_clean_exit()
    carol.expect(r"^-- bob quit$")
    assert t.errors() == ""


class TLSIrcClient(natlib.IrcClient):
    """natlib.IrcClient over TLS: decrypted records not read yet come first."""

    def __init__(self, host, port, ctx, timeout=natlib.DEFAULT_WAIT):
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf, self.lines, self.eof, self.nick = b"", [], False, None

    _fill = TLSClient._fill  # the same reading: records decrypted but unread first


def test_irc_over_tls_shares_rooms_with_plain_users(natterd, client, certs, closing):
    s = tls_server(natterd, certs["good"])
    m = s.wait_log(r"listening for IRC/TLS on [^ \n]*:(\d+)")
    irc = closing(TLSIrcClient(s.host, int(m.group(1)), context(certs)))
    irc.register("ivy")
    irc.send("JOIN #lobby")
    irc.expect(r"^:ivy!\S+ JOIN :?#lobby$")
    plain = client(s)
    plain.nick("pat")
    irc.send("PRIVMSG #lobby :hello over IRC/TLS")
    plain.expect(r"^#lobby <ivy> hello over IRC/TLS$")
    plain.send("hello back")
    irc.expect(r"^:pat!\S+ PRIVMSG #lobby :hello back$")
    irc.send("QUIT :done")
    irc.expect(r"^ERROR ")
    plain.expect(r"^-- ivy quit")


def test_irc_tls_port_needs_a_certificate(binary):
    p = subprocess.run([binary("natterd"), "--irc-tls-port", "0"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--irc-tls-port needs --tls-cert and --tls-key" in p.stderr


def test_irc_sts_plus_z_and_whois_671(natterd, certs, closing):
    # IRCv3 sts: plain IRC connections are told the IRC TLS port, TLS ones how
    # long to keep to it; a TLS user is +Z and WHOIS says 671 of it.
    s = tls_server(natterd, certs["good"], "--sts-duration", "120")
    port = int(s.wait_log(r"listening for IRC/TLS on [^ \n]*:(\d+)").group(1))
    plain = closing(natlib.IrcClient(s.host, s.irc_port))
    plain.register("pat", caps=[])
    ls = [l for l in plain.lines if " CAP * LS :" in l or " CAP pat LS :" in l][0]
    assert "sts=port=%d" % port in ls.split(), ls
    secure = closing(TLSIrcClient(s.host, port, context(certs)))
    secure.register("tess", caps=[])
    ls = [l for l in secure.lines if " LS :" in l][0]
    assert "sts=duration=120" in ls.split(), ls
    secure.send("MODE tess")
    secure.expect(r" 221 tess \+Z$")
    plain.send("MODE pat")
    plain.expect(r" 221 pat \+$")
    plain.send("WHOIS tess")
    plain.expect(r" 671 pat tess :is using a secure connection$")
    plain.expect(r" 318 pat tess ")
    secure.send("WHOIS pat")
    secure.expect(r" 318 tess pat ")
    assert not [l for l in secure.lines if " 671 " in l]
    # without an IRC TLS listener there is no sts
    s2 = natterd()
    other = closing(natlib.IrcClient(s2.host, s2.irc_port))
    other.register("olga", caps=[])
    assert not [l for l in other.lines if "sts=" in l]


def test_reload_applies_limits_to_tls_connections_too(natterd, tls_client, certs, tmp_path):
    """The TLS profile is a copy of the plain one: a reload must change both."""
    conf = tmp_path / "natterd.conf"
    conf.write_text("max-line = 4096\n")
    s = tls_server(natterd, certs["good"], "--config", str(conf))
    a = tls_client(s)
    conf.write_text("max-line = 100\nmotd = over tls too\n")
    mark = len(s.drain_log())
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"TLS certificate reloaded: ", start=mark)
    s.wait_log(r"reloaded .*natterd\.conf: 2 live changes", start=mark)
    a.send("x" * 200)
    a.expect(r"^!! line too long \(max 100 bytes\)")
    b = tls_client(s)
    assert "-- over tls too" in b.lines, b.lines
