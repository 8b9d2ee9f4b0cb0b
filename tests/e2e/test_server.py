"""End-to-end tests of natterd over 127.0.0.1 with raw sockets (what nc users see)."""
import os, re, signal, socket, subprocess, time
import pytest

import natlib


def test_greeting_and_guest_names(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    assert a.name != b.name and a.name.startswith("guest") and b.name.startswith("guest")
    a.expect(r"^-- %s joined #lobby$" % b.name)  # a sees b arrive


def test_broadcast_reaches_others_not_sender(natterd, client):
    s = natterd()
    a, b, c = client(s), client(s), client(s)
    a.send("hello everyone")
    for other in (b, c):
        other.expect(r"^#lobby <%s> hello everyone$" % a.name)
    a.sync()
    assert not any("hello everyone" in l for l in a.lines), a.lines


def test_nick_rules(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    old = a.name
    a.nick("alice")
    b.expect(r"^-- %s is now known as alice$" % old)
    b.send("/nick ALICE")
    b.expect(r"^!! name taken: ALICE$")
    for bad in ("#x", "a<b", "-x", "a*"):
        b.send("/nick " + bad)
        b.expect(r"^!! invalid name: ")
    b.send("/nick " + "x" * 25)
    b.expect(r"^!! invalid name: ")
    b.send("/nick 小明")
    b.expect(r"^-- \S+ is now known as 小明$")
    b.send("/nick")
    b.expect(r"^!! usage: /nick NAME$")


def test_rooms_join_part_current(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.nick("alice"); b.nick("bob")
    a.send("/join #dev")
    a.expect(r"^-- alice joined #dev$")
    a.send("in dev")              # goes to #dev, alice's current room
    a.send("/join lobby")         # switch back without '#'
    a.expect(r"^-- you are now in #lobby$")
    a.send("in lobby")
    b.expect(r"^#lobby <alice> in lobby$")
    assert not any("in dev" in l for l in b.lines), b.lines
    b.send("/join #dev")
    b.expect(r"^-- bob joined #dev$")
    a.expect(r"^-- bob joined #dev$")
    a.send("/who #dev")
    a.expect(r"^-- #dev: @alice bob \(2 users\)$")  # alice made #dev: its operator
    a.send("/rooms")
    a.expect(r"^-- rooms: #dev \(2\) #lobby \(2\)$")
    b.send("/part #dev see you")
    a.expect(r"^-- bob left #dev \(see you\)$")
    b.send("/part #nowhere")
    b.expect(r"^!! you are not in #nowhere$")
    b.send("/part")                # leaves #lobby, its last room
    a.expect(r"^-- bob left #lobby$")
    b.send("anyone?")
    b.expect(r"^!! you are in no room \(try /join #lobby\)$")
    b.send("/join bad room name")  # a room and its key, at most
    b.expect(r"^!! usage: /join #room \[key\]$")
    b.send("/join #a+b")
    b.expect(r"^!! invalid room name: #a\+b$")


def test_max_rooms(natterd, client):
    s = natterd("--max-rooms", "2")
    a = client(s)
    a.send("/join #one")
    a.expect(r"joined #one$")
    a.send("/join #two")
    a.expect(r"^!! too many rooms \(max 2\)$")


def test_private_message_and_action(natterd, client):
    s = natterd()
    a, b, c = client(s), client(s), client(s)
    a.nick("alice"); b.nick("bob")
    a.send("/msg BOB psst, secret")
    b.expect(r"^\*alice\* psst, secret$")
    a.expect(r"^-> \*bob\* psst, secret$")
    a.send("/msg nobody hi")
    a.expect(r"^!! no such user: nobody$")
    a.send("/msg bob")
    a.expect(r"^!! usage: /msg NAME text$")
    a.send("/me waves")
    b.expect(r"^#lobby \* alice waves$")
    c.expect(r"^#lobby \* alice waves$")
    c.sync()
    assert not any("secret" in l for l in c.lines), c.lines


def test_commands_help_unknown_and_slash_escape(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.send("/help")
    a.expect(r"^-- commands")
    for cmd in ("/nick", "/join", "/part", "/msg", "/me", "/who", "/rooms", "/help", "/quit"):
        a.expect(r"^--   %s\b" % re.escape(cmd))
    a.send("/frobnicate now")
    a.expect(r"^!! unknown command: /frobnicate \(try /help\)$")
    a.send("/WHO")
    a.expect(r"^-- #lobby: ")
    a.send("//shrug")
    b.expect(r"^#lobby <%s> /shrug$" % a.name)


def test_bye_and_quit_leave_and_tell_the_room(natterd, client):
    s = natterd()
    a, b, c = client(s), client(s), client(s)
    a.nick("alice"); b.nick("bob")
    a.send("bye")
    a.expect(r"^-- bye alice$")
    a.expect_eof()
    c.expect(r"^-- alice quit$")
    b.send("/quit gotta go")
    b.expect(r"^-- bye bob$")
    b.expect_eof()
    c.expect(r"^-- bob quit \(gotta go\)$")
    c.send("/who")
    c.expect(r"^-- #lobby: %s \(1 user\)$" % c.name)


def test_abrupt_disconnect_is_noticed(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.nick("alice")
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    a.close()  # RST
    b.expect(r"^-- alice quit")
    s.wait_log(r"disconnect #\d+ 127\.0\.0\.1:\d+")


def test_quit_notice_once_for_shared_rooms(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.nick("alice")
    for cl in (a, b):
        cl.send("/join #two")
        cl.expect(r"^-- %s joined #two$" % cl.name)
    a.expect(r"^-- %s joined #two$" % b.name)
    a.send("/nick alicia")
    b.expect(r"^-- alice is now known as alicia$")
    a.send("bye")
    b.expect(r"^-- alicia quit$")
    b.sync()
    assert sum("is now known as alicia" in l for l in b.lines) == 1, b.lines
    assert sum("alicia quit" in l for l in b.lines) == 1, b.lines


def test_overlong_line_is_refused_and_connection_kept(natterd, client):
    s = natterd("--max-line", "100")
    a, b = client(s), client(s)
    a.send(b"x" * 101 + b"\n")
    a.expect(r"^!! line too long \(max 100 bytes\), discarded$")
    a.send(b"y" * 5000 + b"z" * 5000 + b"\nafter\n")  # a long one arriving in pieces
    a.expect(r"^!! line too long")
    b.expect(r"^#lobby <%s> after$" % a.name)
    a.send(b"k" * 100 + b"\r\n")  # exactly the limit, with CRLF
    b.expect(r"^#lobby <%s> k{100}$" % a.name)
    b.sync()
    assert not any("xxx" in l or "yyy" in l or "zzz" in l for l in b.lines)


def test_hostile_bytes_are_cleaned(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.send(b"\x1b[2J\x1b]0;pwned\x07red\x1b[31m text\x00 \xc2\x9b1m \xff\xfe ok\xe2\x80\xae!\n")
    m = b.expect(r"^#lobby <%s> " % a.name)
    line = b.lines[-1]
    assert "\x1b" not in line and "\x07" not in line and "\x00" not in line, repr(line)
    assert "\u009b" not in line and "\u202e" not in line, repr(line)
    assert line.endswith("[2J]0;pwnedred[31m text 1m \ufffd\ufffd ok!"), repr(line)
    a.send(b"one\rtwo\n")  # a bare CR must not return the cursor on b's terminal
    b.expect(r"^#lobby <%s> onetwo$" % a.name)


def test_one_byte_writes_make_one_line(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    for ch in "split 字 line\n".encode():
        a.sock.sendall(bytes([ch]))
    b.expect(r"^#lobby <%s> split 字 line$" % a.name)


def test_many_clients_get_every_message_in_order(natterd, client):
    s = natterd("--rate", "0")
    clients = [client(s) for _ in range(30)]
    for c in clients:
        c.send("/nick n%d" % clients.index(c))
    for i, c in enumerate(clients):
        c.expect(r"is now known as n%d$" % i)
        c.name = "n%d" % i
    senders = clients[:5]
    for k in range(50):
        for c in senders:
            c.send("m%d" % k)
    for r in clients:
        want = {c.name: 0 for c in senders if c is not r}
        deadline = time.time() + 20
        while any(v < 50 for v in want.values()):
            line = r.readline(max(deadline - time.time(), 0.01))
            m = re.match(r"^#lobby <(n\d+)> m(\d+)$", line or "")
            if m and m.group(1) in want:
                assert int(m.group(2)) == want[m.group(1)], (r.name, line)
                want[m.group(1)] += 1


def test_server_full_gets_a_clear_line(natterd, client):
    s = natterd("--max-clients", "2")
    a, b = client(s), client(s)
    c = client(s, greet=False)
    c.expect(r"^!! server full, try again later$")
    c.expect_eof()
    a.send("still fine")
    b.expect(r"still fine$")


def test_slow_reader_is_dropped_others_unaffected(natterd, client):
    # History off: what is measured is the output backlog; the 24 MB said would be
    # kept by the tests' in-memory history database.
    s = natterd("--rate", "0", "--max-outbuf", "65536", "--history", "0")
    slow = client(s)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a, b = client(s), client(s)
    a.nick("alice")
    payload = "z" * 3000
    n = 8000  # 24 MB through the room, far more than socket buffers hold; slow never reads
    sent = 0
    got = 0
    deadline = time.time() + 60
    while got < n:
        assert time.time() < deadline, f"b got {got} of {n}"
        # b is a healthy reader: never more than 20 lines (60 KB) behind. (Python
        # parses lines slower than natterd sends them: unpaced, b itself would
        # fall behind by more than --max-outbuf and the kernel buffers, --sndbuf.)
        if sent < n and sent - got < 20:
            a.send("%d %s" % (sent, payload)); sent += 1
        while b.buf.count(b"\n") or b._fill(0 if sent < n and sent - got < 20 else 1):
            line = b.readline()
            if line.startswith("#lobby <alice> "):
                assert line.split()[2] == str(got), line
                got += 1
    s.wait_log(r"output queue over 65536 bytes, disconnecting")
    b.sync()
    assert "-- %s quit (too slow)" % slow.name in b.lines, "b was not told why slow left"
    assert natlib.rss_kib(s.pid()) < 64 * 1024, "server RSS grew with the backlog"


def test_sigterm_says_goodbye_and_exits_cleanly(natterd, client):
    s = natterd()
    a = client(s)
    log = s.stop()
    a.expect(r"^-- server shutting down$")
    a.expect_eof()
    assert "stopped" in log


def test_ipv6_loopback(natterd, client):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6); probe.bind(("::1", 0)); probe.close()
    except OSError:
        pytest.skip("no ::1 here")
    s = natterd(bind="::1")
    assert s.host == "::1"
    a, b = client(s), client(s)
    a.send("over six")
    b.expect(r"over six$")
    s.wait_log(r"connect #\d+ \[::1\]:\d+")


def test_usage_errors_and_version(binary):
    import subprocess
    d = binary("natterd")
    p = subprocess.run([d, "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("natterd "), p
    p = subprocess.run([d, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--max-clients" in p.stdout
    p = subprocess.run([d, "--port", "99999"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--port" in p.stderr, p
    p = subprocess.run([d, "--bogus"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, p


def test_port_in_use_is_a_clear_error(natterd, binary):
    import subprocess
    s = natterd()
    p = subprocess.run([binary("natterd"), "--bind", "127.0.0.1", "--port", str(s.port), "--http-port", "0", "--db", ":memory:"],
                       capture_output=True, text=True, timeout=10, env=natlib.sanitizer_env())
    assert p.returncode == 1, p
    assert re.search(r"listen 127\.0\.0\.1:%d: Address already in use" % s.port, p.stderr), p.stderr


def test_one_big_reply_is_not_mistaken_for_a_slow_reader(natterd, client):
    # 180 users' names in one /who line are more than --max-outbuf: still delivered.
    s = natterd("--max-outbuf", "4096", "--max-line", "1024", "--rate", "0", "--max-per-ip", "0", "--max-list", "200")
    users = [client(s) for _ in range(180)]
    for i, u in enumerate(users):
        u.send("/nick user_with_long_name_%03d" % i)
    asker = users[0]
    asker.expect(r"is now known as user_with_long_name_179$")
    asker.send("/who")
    m = asker.expect(r"^-- #lobby: (.*) \(180 users\)$")
    assert len(m.group(0)) > 4096
    asker.send("/who #nowhere")
    asker.expect(r"^!! no such room: #nowhere$")


def test_several_bind_addresses_each_listen(natterd, client, closing):
    # Two --bind addresses: two listeners, one ready line naming both, one set of rooms.
    s = natterd("--bind", "127.0.0.2")  # after the fixture's own --bind 127.0.0.1
    m = s.wait_log(r"listening on 127\.0\.0\.1:(\d+), 127\.0\.0\.2:(\d+) \(max \d+ clients\)")
    assert int(m.group(1)) == s.port
    a = client(s)
    b = closing(natlib.Client("127.0.0.2", int(m.group(2))))
    a.send("over the first")
    b.expect(r"^#lobby <%s> over the first$" % a.name)
    b.send("over the second")
    a.expect(r"^#lobby <%s> over the second$" % b.name)
    s.wait_log(r"\(2 clients\)")


def test_port_0_with_several_addresses_is_one_port(natterd):
    s = natterd("--bind", "127.0.0.2")
    m = s.wait_log(r"listening on 127\.0\.0\.1:(\d+), 127\.0\.0\.2:(\d+) ")
    assert m.group(1) == m.group(2), m.group(0)


def test_bind_a_name_listens_on_all_its_addresses(natterd, binary):
    """-b localhost used to bind only the first address the name gave."""
    addrs = sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", None, 0, socket.SOCK_STREAM, 0,
                                                           socket.AI_PASSIVE)})
    s = natterd(bind="localhost")
    m = s.wait_log(r"listening on (.*) \(max")
    got = sorted(a.rsplit(":", 1)[0].strip("[]") for a in m.group(1).split(", "))
    assert got == addrs, (got, addrs)
    if len(addrs) < 2:
        pytest.skip(f"localhost is only {addrs} here (/etc/hosts): one address checked")


def test_listen_errors_write_addresses_as_the_ready_line_does(natterd, binary):
    try:
        s = natterd(bind="::1")
    except AssertionError as e:
        pytest.skip(f"no IPv6 loopback: {e}")
    p = subprocess.run([binary("natterd"), "-b", "::1", "-p", str(s.port), "--http-port", "0"], capture_output=True, text=True,
                       timeout=10, env=natlib.sanitizer_env())
    assert p.returncode == 1 and f"listen [::1]:{s.port}: Address already in use" in p.stderr, p.stderr


def test_names_unicode_rules(natterd, client):
    """A second 'alice' made with an invisible character (U+061C, U+1BCA0) or a Cyrillic
    'а' used to pass; names are now NFC, single-script and unique by NFKC case folding."""
    s = natterd()
    a, b = client(s), client(s)
    a.nick("alice")
    for bad in ("alice\u061c", "alice\U0001bca0", "\u0430lice", "al\u200bice", "p\u03b1ypal", "alice\u3164"):
        b.send("/nick " + bad)
        b.expect(r"^!! invalid name: ")
    for same in ("ALICE", "\uff41lice", "Alice"):
        b.send("/nick " + same)
        b.expect(r"^!! name taken: ")
    b.nick("stra\u00dfe")
    c = client(s)
    c.send("/nick STRASSE")
    c.expect(r"^!! name taken: STRASSE$")
    c.send("/nick e\u0301cole")  # decomposed: kept in NFC
    c.expect(r"^-- \S+ is now known as \u00e9cole$")
    a.send("/nick \u00c9COLE")
    a.expect(r"^!! name taken: ")
    c.send("/msg ALICE hi there")
    a.expect(r"hi there")
    c.send("/nick \u0430\u043b\u0438\u0441\u0430")  # all Cyrillic: one script, fine
    c.expect(r"is now known as \u0430\u043b\u0438\u0441\u0430$")
