"""Hostile and broken clients: floods, limits, timeouts, descriptor exhaustion.
Each test also checks that the well-behaved clients lost nothing."""
import os, re, resource, socket, subprocess, time
import natlib


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_flood_is_paused_not_dropped(natterd, client):
    s = natterd("--rate", "20", "--burst", "5", "--flood-timeout", "30")
    a, b = client(s), client(s)
    a.send(b"".join(b"line %d\n" % i for i in range(40)))  # 8 times the burst, at once
    a.expect(r"^!! slow down: more than 20 lines per second, reading paused$")
    for i in range(40):  # every line arrives, in order: TCP held them, nothing was dropped
        b.expect(r"^#lobby <%s> line %d$" % (a.name, i))
    a.send("still here")
    b.expect(r"still here$")


def test_persistent_flooder_is_disconnected(natterd, client):
    s = natterd("--rate", "5", "--burst", "5", "--flood-timeout", "1")
    a, b, c = client(s), client(s), client(s)
    flood = b"".join(b"spam %d\n" % i for i in range(2000))
    a.sock.setblocking(False)
    deadline = time.time() + 15
    sent = 0
    while not a.eof and time.time() < deadline:  # keep pushing until the server gives up
        try:
            sent += a.sock.send(flood[sent % len(flood):])
        except (BlockingIOError, ConnectionError):
            pass
        a._fill(0.05)
    assert b"!! flooding, disconnected" in a.buf, a.buf[-300:]
    c.send("after the flood")
    b.expect(r"after the flood$")
    assert "-- %s quit (flooding)" % a.name in b.lines, natlib.short(b.lines[-5:])
    spam = [l for l in b.lines if " spam " in l]
    assert 5 <= len(spam) <= 5 + 5 * 4, f"the rate limit let {len(spam)} lines through"
    assert spam == ["#lobby <%s> spam %d" % (a.name, i) for i in range(len(spam))]


def test_max_per_ip(natterd, client, closing):
    s = natterd("--max-per-ip", "2")
    a, b = client(s), client(s)
    c = client(s, greet=False)
    c.expect(r"^!! too many connections from your address$")
    c.expect_eof()
    # another loopback address is another address
    d = closing(socket.create_connection((s.host, s.port), source_address=("127.0.0.2", 0), timeout=5))
    assert b"welcome" in d.recv(4096)
    b.close()
    natlib.wait_until(lambda: "disconnect" in s.drain_log(), what="b's disconnect")
    e = client(s)  # a slot came free
    a.send("hi e")
    e.expect(r"hi e$")


def test_silent_connection_is_reaped_talkers_stay(natterd, client):
    s = natterd("--login-timeout", "1")
    silent, talker = client(s), client(s)
    talker.send("hello")  # a line that says something counts as a sign of life (an empty one does not)
    silent.expect(r"^!! nothing received for 1 seconds, disconnected$", timeout=5)
    silent.expect_eof()
    talker.expect(r"^-- %s quit \(login timeout\)$" % silent.name)
    talker.sync()


def test_idle_timeout(natterd, client):
    s = natterd("--idle-timeout", "1")
    a = client(s)
    a.expect(r"^!! idle for 1 seconds, disconnected$", timeout=5)
    a.expect_eof()
    s.wait_log(r"idle timeout")


def test_out_of_descriptors_does_not_spin_and_recovers(natterd, client, closing):
    def low_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    proc_env = natlib.sanitizer_env()
    s = natterd("--max-clients", "1000", "--max-per-ip", "0", "--notice-storm", "0", preexec_fn=low_fds, env=proc_env)
    s.wait_log(r"expect 'server full' sooner")
    clients, refused = [], 0
    for i in range(60):
        c = client(s, greet=False)
        line = c.readline()
        if line.startswith("!! server full"):
            refused += 1
            c.expect_eof()
            c.close()
        else:
            assert line.startswith("-- welcome"), line
            clients.append(c)
    assert refused > 0 and len(clients) > 20, (refused, len(clients))
    # The listener stays readable while fds are exhausted: it must not spin.
    t0, c0 = time.time(), cpu_seconds(s.pid())
    pending = [closing(socket.create_connection((s.host, s.port))) for _ in range(3)]
    natlib.wait_until(lambda: time.time() - t0 > 1.0, what="a second to pass")
    assert cpu_seconds(s.pid()) - c0 < 0.5, "natterd busy-looped while out of descriptors"
    for c in clients[:10]:
        c.close()
    natlib.wait_until(lambda: s.drain_log().count("disconnect") >= 10, what="10 disconnects")
    fresh = client(s)  # descriptors came back: new clients are served again
    clients[-1].expect(r"^-- %s joined #lobby$" % fresh.name)
    fresh.send("recovered")
    clients[-1].expect(r"recovered$")


def test_hostile_names_and_long_lines(natterd, client):
    s = natterd("--rate", "0")  # (a 1 MiB line costs 2048 tokens: 3 minutes at the default rate)
    a, b = client(s), client(s)
    a.send("/nick \u202eevil")  # a bidi override would display the name reversed
    b.expect(r"^-- %s is now known as evil$" % a.name)
    a.send(b"/nick \xc0\xafroot\n")  # overlong '/' is not a '/'
    a.expect(r"^-- evil is now known as \ufffd\ufffdroot$")
    b.nick("bob")
    for lookalike in ("bob\u200b", "bob\u00a0", "\ufeffbob", "bo\u3000b"):  # invisible or space-like
        a.send("/nick " + lookalike)
        a.expect(r"^!! invalid name: ")
    a.send(b"x" * (1 << 20))  # 1 MiB with no newline at all
    a.expect(r"^!! line too long \(max 4096 bytes\), discarded$")
    a.send(b"\nnormal again\n")
    b.expect(r"<\ufffd\ufffdroot> normal again$")
    b.sync()
    assert not any("xxxx" in l for l in b.lines)


def test_half_close_leaves_cleanly(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.send("last words")
    a.sock.shutdown(socket.SHUT_WR)
    b.expect(r"last words$")
    b.expect(r"^-- %s quit \(connection closed\)$" % a.name)
    a.expect_eof()


def test_trickled_bytes_do_not_dodge_the_login_timeout(natterd, client):
    s = natterd("--login-timeout", "1")
    a = client(s)
    deadline = time.time() + 10
    while not a.eof and time.time() < deadline:  # a byte at a time, never a whole line
        try:
            a.send(b"z")
        except OSError:
            break
        a._fill(0.2)
    assert b"!! nothing received for 1 seconds, disconnected" in a.buf, a.buf[-200:]


def test_reset_while_throttled_does_not_spin(natterd, client):
    s = natterd("--rate", "5", "--burst", "5", "--flood-timeout", "0")
    a, b = client(s), client(s)
    a.send(b"".join(b"x%d\n" % i for i in range(3000)))
    a.expect(r"^!! slow down")
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    a.close()  # RST while the server holds its unread lines
    t0, c0 = time.time(), cpu_seconds(s.pid())
    natlib.wait_until(lambda: time.time() - t0 > 1.0, what="a second to pass")
    assert cpu_seconds(s.pid()) - c0 < 0.3, "natterd busy-looped on a reset, throttled connection"
    b.send("/who")
    b.expect(r"^-- #lobby: ")


def test_overlong_lines_count_against_the_rate(natterd, client):
    s = natterd("--max-line", "64", "--rate", "5", "--burst", "5", "--flood-timeout", "1")
    a, b = client(s), client(s)
    junk = (b"y" * 100 + b"\n") * 5000
    a.sock.setblocking(False)
    sent, deadline = 0, time.time() + 15
    while not a.eof and time.time() < deadline:
        try:
            sent += a.sock.send(junk[sent % len(junk):])
        except (BlockingIOError, ConnectionError):
            pass
        a._fill(0.05)
    assert b"!! slow down" in a.buf and b"!! flooding, disconnected" in a.buf, a.buf[-200:]
    assert a.buf.count(b"line too long") < 100, "overlong lines were not rate limited"
    b.send("/who")
    b.expect(r"^-- #lobby: %s \(1 user\)$" % b.name)


def test_a_burst_then_a_steady_pace_is_not_flooding(natterd, client):
    s = natterd("--rate", "10", "--burst", "20", "--flood-timeout", "2")
    a, b = client(s), client(s)
    a.send(b"".join(b"burst %d\n" % i for i in range(21)))  # one over the burst
    a.expect(r"^!! slow down")
    t0 = time.time()
    i = 0
    while time.time() - t0 < 5:  # then well under the rate for longer than the flood timeout
        a.send("steady %d" % i)
        i += 1
        a._fill(0.25)
    b.expect(r"steady %d$" % (i - 1))
    assert b"flooding" not in a.buf, a.buf[-200:]


def test_big_listings_cost_their_size(natterd, client):
    s = natterd("--rate", "10", "--burst", "10", "--max-per-ip", "0")
    users = [client(s) for _ in range(60)]
    for i, u in enumerate(users):
        u.send("/nick a_rather_long_name_%03d" % i)
    asker = users[0]
    asker.expect(r"is now known as a_rather_long_name_059$")
    asker.send(b"/who\n" * 5)  # 5 lines, but ~1.5 KB of reply each
    asker.expect(r"^!! slow down")


def test_lookalike_rooms_and_slash_space(natterd, client):
    s = natterd()
    a = client(s)
    a.send("/join #lobby\u200b")
    a.expect(r"^!! invalid room name: ")
    a.send("/ nick x")
    a.expect(r"^!! unknown command: / \(try /help\)$")


def test_last_words_reach_a_reader_that_is_behind(natterd, client, closing):
    # A is far behind (its socket is full) when the server drops it: the reason
    # must still arrive after everything queued before it, then EOF.
    s = natterd("--idle-timeout", "3", "--rate", "0", "--max-outbuf", str(8 << 20), "--max-line", "4096")
    a = closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.connect((s.host, s.port))
    b = client(s)
    payload = "q" * 3000
    for i in range(2500):  # ~7.5 MB towards a, which does not read yet
        b.send("%d %s" % (i, payload))
    s.wait_log(r"disconnect #\d+ 127\.0\.0\.1:\d+ guest\d+: idle timeout", timeout=20)
    a.settimeout(10)
    data = bytearray()  # (+= on bytes copies it all each time: megabytes, quadratic)
    while True:
        chunk = a.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    lines = data.decode().splitlines()
    assert lines[-1] == "!! idle for 3 seconds, disconnected", lines[-1][:100]
    assert sum(l.startswith("#lobby <%s> " % b.name) for l in lines) == 2500


def test_a_dropped_flooder_still_reads_why(natterd, closing):
    # The flooder's unread input must not turn the close into a reset that throws
    # away the reason (Linux resets a socket closed with unread input).
    s = natterd("--rate", "10", "--burst", "3000", "--flood-timeout", "1", "--max-outbuf", str(32 << 20))
    a = closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.connect((s.host, s.port))
    a.sendall(b"/help\n" * 2500)  # a couple of MB of replies it does not read yet
    a.setblocking(False)
    junk = b"flood\n" * 10000
    deadline = time.time() + 20
    while "flooding" not in s.drain_log() and time.time() < deadline:
        try:
            a.send(junk)
        except BlockingIOError:
            pass
        natlib.wait_until(lambda: True)
    s.wait_log(r"disconnect #\d+ 127\.0\.0\.1:\d+ \S+: flooding")
    a.setblocking(True)
    a.settimeout(10)
    data = bytearray()
    while True:
        chunk = a.recv(1 << 20)  # a reset would raise ConnectionResetError here
        if not chunk:
            break
        data += chunk
    assert data.endswith(b"!! flooding, disconnected\n"), data[-200:]


def test_one_big_listing_is_not_flooding(natterd, client):
    s = natterd("--rate", "1", "--burst", "5", "--flood-timeout", "4", "--max-per-ip", "0", "--max-list", "300")
    users = [client(s) for _ in range(300)]
    for i, u in enumerate(users):
        u.send("/nick a_rather_long_name_%03d" % i)
    for i, u in enumerate(users):  # (big rooms do not announce renames to others)
        u.expect(r"is now known as a_rather_long_name_%03d$" % i)
    asker, other = users[0], users[1]
    asker.send("/who")  # ~7.5 KB of reply: 14 tokens at 1 line/s, more than the flood timeout
    asker.expect(r"^-- #lobby: .* \(300 users\)$")
    asker.send("still here")
    other.expect(r"<a_rather_long_name_000> still here$", timeout=15)
    asker.sync()
    assert not any("flooding" in l for l in asker.lines), natlib.short(asker.lines[-5:])


def test_a_small_burst_does_not_hide_a_persistent_flood(natterd, client):
    s = natterd("--rate", "10", "--burst", "1", "--flood-timeout", "2")
    a, b = client(s), client(s)
    a.sock.setblocking(False)
    junk = b"spam\n" * 2000
    deadline = time.time() + 15
    while not a.eof and time.time() < deadline:
        try:
            a.sock.send(junk)
        except (BlockingIOError, ConnectionError):
            pass
        a._fill(0.05)
    assert b"!! flooding, disconnected" in a.buf, a.buf[-200:]
    assert a.buf.count(b"!! slow down") <= 2, a.buf.count(b"!! slow down")
