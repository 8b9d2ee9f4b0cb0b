"""Hardening, second round (issue 9): the attacks that still hurt healthy users.

Each test is one of the issue's reproductions, scaled to run in seconds, and
measures what the healthy clients saw: a pair of clients in a room of their own
(tests/e2e/healthy_pair.py, a separate process so that the attacker's Python does
not stall it) exchanging numbered lines loses nothing and, where the issue asks,
sees a p99 latency under 50 ms; memory is the server's RSS plus the kernel's memory for
natterd's sockets (ss -tm; /proc/net/sockstat, machine-wide, where ss is missing).
"""
import json, os, re, resource, shutil, socket, subprocess, sys, time

import pytest

import natlib

PAIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "healthy_pair.py")
PAGE = os.sysconf("SC_PAGE_SIZE")
P99_MS = 50


def is_asan(build):
    return "asan" in os.path.basename(os.path.normpath(build))


def no_rss_under_asan(build):
    if is_asan(build):
        pytest.skip("memory bound: ASan's shadow memory and quarantine make natterd's RSS meaningless")


def p99_bound(build):
    # ASan and UBSan make natterd several times slower: the same work takes longer.
    return P99_MS * 4 if is_asan(build) else P99_MS


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kernel_tcp_kib(s=None):
    """The kernel's TCP memory in KiB: of natterd's sockets (every state, orphans
    included) from ss(8)'s skmem, receive + send queues + forward allocation +
    options; without ss, machine-wide from /proc/net/sockstat ("TCP: ... mem N" pages)."""
    if s is not None and shutil.which("ss"):
        out = subprocess.run(["ss", "-tmnH", "state", "all", "( sport = :%d )" % s.port],
                             capture_output=True, text=True, timeout=30).stdout
        total = 0
        for m in re.finditer(r"skmem:\(([^)]*)\)", out):
            f = dict(re.match(r"([a-z]+)(\d+)", kv).groups() for kv in m.group(1).split(","))
            total += sum(int(f.get(k, 0)) for k in ("r", "w", "f", "o"))
        return total // 1024
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                v = line.split()
                return int(v[v.index("mem") + 1]) * PAGE // 1024
    return 0


def more_files(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n:
        pytest.skip(f"needs {n} open files")


class Pair:
    """The healthy pair, started (and ready) now; result() waits for its report."""

    def __init__(self, closing, s, seconds, room="#pair", rate=10):
        self.p = closing(subprocess.Popen([sys.executable, PAIR, s.host, str(s.port), room, str(seconds), str(rate)],
                                          stdout=subprocess.PIPE, text=True))
        line = self.p.stdout.readline()
        assert line.strip() == "ready", line

    def result(self, s=None, watch=None):
        """The report; meanwhile natterd's log is read (a full stderr pipe would
        stall it) and watch() is called every 0.1 s."""
        while not select_wait(self.p.stdout, 0.1):
            if s is not None:
                s.drain_log()
            if watch:
                watch()
        out = self.p.stdout.readline()
        self.p.wait(timeout=30)
        assert out, "the healthy pair did not report"
        return json.loads(out)


def check_pair(r, p99_ms=None):
    assert r["got"] == [r["sent"][1], r["sent"][0]] and not r["bad"], \
        f"the healthy pair lost or reordered lines: {r}"
    assert not any(l.startswith("!!") or l == "EOF" for l in r["other"]), f"the healthy pair was told: {r['other']}"
    if p99_ms is not None:
        assert r["p99_ms"] < p99_ms, f"the healthy pair's p99 was {r['p99_ms']:.1f} ms (max {r['max_ms']:.1f}): {r}"


def make_rooms(s, client, n_clients, per_client, prefix="room_with_long_name_"):
    """n_clients clients, each in per_client rooms with long names (all distinct)."""
    makers = []
    for i in range(n_clients):
        m = client(s)
        m.send("".join("/join #%s%03d_%04d\n" % (prefix, i, j) for j in range(per_client)))
        makers.append(m)
    for i, m in enumerate(makers):
        m.expect(r"^-- %s joined #%s%03d_%04d$" % (re.escape(m.name), prefix, i, per_client - 1), timeout=60)
    return makers


# What these tests measure is connections' memory: room history (kept in memory,
# --db :memory:, by the test servers) would count too.
NO_HISTORY = ("--history", "0")

# ==== 1. Listing amplification ====

def test_listing_amplification_is_bounded(natterd, client, closing, build):
    # 20 askers send 10 /rooms each and never read, with 20,000 rooms of long names.
    # Before: every reply named every room (~1 MB), all made in one loop turn; the
    # pair waited, and the server grew by the replies. Now: 100 rooms per reply,
    # listings share a per-turn budget with fan-out, each costs its size.
    s = natterd(*NO_HISTORY, "--max-rooms", "1000", "--max-per-ip", "0", "--burst", "2000")
    make_rooms(s, client, 20, 999)
    rss0, k0 = natlib.rss_kib(s.pid()), kernel_tcp_kib(s)
    pair = Pair(closing, s, seconds=4)
    askers = []
    for _ in range(20):
        a = closing(socket.create_connection((s.host, s.port)))
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        askers.append(a)
    for a in askers:
        a.sendall(b"/rooms\n" * 10)
    peak = 0

    def measure():
        nonlocal peak
        peak = max(peak, natlib.rss_kib(s.pid()) - rss0 + kernel_tcp_kib(s) - k0)
    r = pair.result(s, measure)
    check_pair(r, p99_bound(build))
    # 20 askers, each holding at most --max-outbuf (256 KiB) and its socket buffers.
    assert is_asan(build) or peak < 20 * 1024, f"server RSS + kernel TCP memory grew by {peak} KiB"
    c = client(s)
    c.send("/rooms long_name_007")
    c.expect(r"^-- rooms \"long_name_007\": #room_with_long_name_007_0000 \(1\) .* \.\.\. "
             r"\(100 of 999 rooms; /rooms TEXT lists those whose names contain TEXT\)$")


def select_wait(f, timeout):
    import select
    r, _, _ = select.select([f], [], [], timeout)
    return bool(r)


# ==== 2. A normal reader is not dropped for asking ====

@pytest.mark.parametrize("max_list", ["100", "100000"])
def test_a_reader_that_asks_for_a_big_listing_is_not_dropped(natterd, client, max_list):
    # 5,000 rooms; the reader asks for /rooms while its room keeps talking. With
    # --max-list 100000 the reply (~200 KB) is bigger than --max-outbuf (64 KiB):
    # a listing never makes a client that reads look too slow.
    s = natterd("--max-rooms", "1000", "--max-per-ip", "0", "--burst", "2000", "--max-outbuf", "65536",
                "--max-list", max_list)
    make_rooms(s, client, 5, 999)
    reader, talker = client(s), client(s)
    reader.send("/rooms")
    for i in range(200):
        talker.send("chat %d" % i)
    m = reader.expect(r"^-- rooms: (.*)$", timeout=30)
    if max_list == "100":
        assert m.group(1).endswith("(100 of 4996 rooms; /rooms TEXT lists those whose names contain TEXT)"), \
            m.group(1)[-200:]
    else:
        assert m.group(1).count(" (") == 4996 and "..." not in m.group(1)
    for i in range(200):
        reader.expect(r"^#lobby <%s> chat %d$" % (talker.name, i))
    assert not any("too slow" in l or l.startswith("!!") for l in reader.lines), natlib.short(reader.lines[-5:])
    assert "too slow" not in s.drain_log()


# ==== 3. Join/quit storms ====

def churn(s, n):
    """Connect and close n times from 127.0.0.1, as fast as possible; returns the refusals seen."""
    refused = 0
    for _ in range(n):
        c = socket.create_connection((s.host, s.port))
        c.settimeout(5)
        try:
            c.sendall(b"\n")  # a first line: the welcome at once, not after the IRC wait (protocol.md)
            data = c.recv(4096)
        except OSError:
            data = b""
        if b"too many new connections" in data:
            refused += 1
        c.close()
    return refused


def test_connect_rate_per_address(natterd, client, closing):
    # The defaults: 6 new connections a minute from one address, 20 at once.
    s = natterd("--connect-rate", "6", "--connect-burst", "20")
    member = client(s)  # (its own connection is the first of the 20)
    pair = Pair(closing, s, seconds=2)  # two more
    refused = churn(s, 300)
    assert refused >= 300 - 17, f"only {refused} of 300 refused"
    c = client(s, greet=False)
    c.expect(r"^!! too many new connections from your address, try again in a minute$")
    c.expect_eof()
    # another address has its own allowance
    d = closing(socket.create_connection((s.host, s.port), source_address=("127.0.0.2", 0), timeout=5))
    assert b"welcome" in d.recv(4096)
    check_pair(pair.result(s))
    member.sync()
    notices = [l for l in member.lines if re.match(r"^-- guest\d+ (joined|quit)", l)]
    assert len(notices) <= 2 * 20, natlib.short(notices[-5:])
    assert s.drain_log().count("connecting too fast") < 30, "every refusal was logged"


def test_join_quit_storm_is_summed_up(natterd, client, closing):
    # No connect limit: 300 connections come and go. The room's members get the
    # first 10 notices of the window, then one summary per 10 s window.
    s = natterd("--connect-rate", "0")
    member = client(s)
    pair = Pair(closing, s, seconds=2)
    churn(s, 300)
    member.sync()
    summary = re.compile(r"^-- #lobby: (\d+) joined, (\d+) left in the last 10 s$")

    def summed():
        ms = [summary.match(l) for l in member.lines]
        return (sum(int(m.group(1)) for m in ms if m), sum(int(m.group(2)) for m in ms if m))
    # the summaries may come before the sync's answer, or up to a window after it
    def enough():
        member._fill(0.2)
        while b"\n" in member.buf:
            member.readline(0)
        return sum(summed()) >= 600 - 20
    natlib.wait_until(enough, timeout=30, what="the storm's summaries")
    joined, left = summed()
    singles = [l for l in member.lines if re.match(r"^-- guest\d+ (joined|quit)", l)]
    # (the pair's own joins and parts are in the window too)
    assert len(singles) <= 2 * 10 and 600 <= len(singles) + joined + left <= 600 + 4, (len(singles), joined, left)
    check_pair(pair.result(s))
    member.send("/who")
    member.expect(r"^-- #lobby: %s \(1 user\)$" % member.name)


# ==== 4. One big room does not starve the others ====

def test_a_big_busy_room_does_not_delay_a_small_one(natterd, closing, binary, build):
    # 300 members in #lobby (natter-bench, reading), 150 of them sending as fast
    # as the server takes it (32 messages in flight each: 1.4M deliveries in
    # flight). Before, a loop turn fanned out everything that had arrived: the
    # pair waited ~70-140 ms here (seconds in the issue). Now a turn's fan-out has
    # a budget (--turn-fanout, 10 ms), the heavy room's senders wait for the next
    # turn, and the pair in its room of two is served every turn. (natter-bench
    # runs niced: it stands for attackers on other machines, and must not take the
    # CPU that the server and the pair need on this one.)
    s = natterd("--max-per-ip", "0", "--rate", "0")
    pair = Pair(closing, s, seconds=6, rate=20)
    bench = closing(subprocess.Popen(
        ["nice", "-n", "15", binary("natter-bench"), "--port", str(s.port), "--json", "-c", "300", "-s", "150",
         "-w", "32", "-d", "4", "--drain", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    r = pair.result(s)
    while bench.poll() is None:
        s.drain_log()
        time.sleep(0.1)
    out, err = bench.communicate(timeout=120)
    rep = json.loads(out)
    assert rep["missing"] == 0 and rep["duplicated"] == 0 and rep["reordered"] == 0, rep
    check_pair(r, p99_bound(build))


# ==== 5. Dropped slow readers keep no kernel memory ====

def test_dropped_slow_readers_free_kernel_memory(natterd, client, closing, build):
    # 20 clients that never read, in a room that talks: natterd drops them as too
    # slow, with a reset, so the kernel frees their buffers at once; while they
    # stall, what they cost is bounded by --max-outbuf and --sndbuf.
    s = natterd(*NO_HISTORY, "--rate", "0")
    rss0, k0 = natlib.rss_kib(s.pid()), kernel_tcp_kib(s)
    stalled = []
    for _ in range(20):
        c = client(s)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.append(c)
    talker, reader = client(s), client(s)
    pair = Pair(closing, s, seconds=2)
    payload = "w" * 3000
    peak = 0
    for i in range(3000):  # 9 MB through the room
        talker.send("%d %s" % (i, payload))
        while reader._fill(0):
            pass
        if i % 100 == 0:
            peak = max(peak, natlib.rss_kib(s.pid()) - rss0 + kernel_tcp_kib(s) - k0)
    natlib.wait_until(lambda: s.drain_log().count("too slow") >= 20, timeout=30, what="20 drops")
    check_pair(pair.result(s))
    # per stalled client: --max-outbuf (256 KiB) + one message + --sndbuf (64 KiB, doubled by Linux)
    bound = 20 * (256 + 4 + 128 + 16)
    assert is_asan(build) or peak < bound + 8 * 1024, f"grew by {peak} KiB while stalled, bound {bound}"
    # the resets free the kernel's buffers at once, not in minutes
    natlib.wait_until(lambda: kernel_tcp_kib(s) - k0 < 4 * 1024, timeout=5,
                      what=f"kernel TCP memory to return (grown {kernel_tcp_kib(s) - k0} KiB)")


# ==== 6. Queue accounting counts what messages cost ====

def read_past_echoes(c):
    """Read and drop what c was sent up to the answer to its /rooms."""
    tail = b""
    c.sock.settimeout(60)
    while not (tail.endswith(b"\n") and tail.rsplit(b"\n", 2)[-2].startswith(b"-- rooms: ")):
        chunk = c.sock.recv(1 << 20)
        assert chunk, "EOF"
        tail = (tail + chunk)[-8192:]


def test_queued_messages_cost_what_they_hold(natterd, client, build):
    # 650,000 private messages of 7 bytes ("*s* x000123", 12 bytes a line) to one
    # reader that never reads, under an 8 MiB --max-outbuf: 7.8 MB of lines.
    # Before: a 32-byte allocation and an 8-byte ring slot per message were not
    # counted, so ~4 MB of counted backlog (after the ~4 MB the kernel's
    # autotuned send buffer took) held ~16 MB. Now each message counts
    # what it costs, and small ones queued behind a blocked writer are copied
    # into 4 KiB chunks: the backlog costs about its bytes.
    no_rss_under_asan(build)
    s = natterd(*NO_HISTORY, "--rate", "0", "--max-outbuf", str(8 << 20))
    victim = client(s)
    victim.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    victim.nick("victim")
    sender = client(s)
    sender.nick("s")
    rss0, k0 = natlib.rss_kib(s.pid()), kernel_tcp_kib(s)
    peak = 0
    for k in range(65):
        sender.send("".join("/msg victim x%06d\n" % i for i in range(k * 10000, (k + 1) * 10000)) + "/rooms\n")
        read_past_echoes(sender)  # (so that its own queue stays small)
        peak = max(peak, natlib.rss_kib(s.pid()) - rss0 + kernel_tcp_kib(s) - k0)
    peak = max(peak, natlib.rss_kib(s.pid()) - rss0 + kernel_tcp_kib(s) - k0)
    assert "too slow" not in s.drain_log()
    # what is queued (7.8 MB, within --max-outbuf) + its socket buffers (2 x --sndbuf) + 3 MiB of slack
    bound = 7800 + 128 + 3072
    assert peak < bound, f"grew by {peak} KiB for 7.8 MB of queued lines (bound {bound})"


# ==== 7. Overlong input costs tokens; partial lines cost what they hold ====

def test_a_line_without_end_is_read_at_the_rate(natterd, client, closing):
    s = natterd()
    a, b = client(s), client(s)
    a.sock.setblocking(False)
    junk = b"x" * (1 << 20)
    c0, t0 = cpu_seconds(s.pid()), time.time()
    sent = 0
    while time.time() - t0 < 3:
        try:
            sent += a.sock.send(junk)
        except BlockingIOError:
            a._fill(0.01)
        except ConnectionError:
            break
    cpu = cpu_seconds(s.pid()) - c0
    assert cpu < 0.5, f"natterd spent {cpu:.2f} s of CPU on {sent} bytes without a newline"
    assert sent < 16 << 20, f"natterd took {sent} bytes of one endless line in 3 s"
    a.sock.setblocking(True)
    b.send("/who")
    b.expect(r"^-- #lobby: ")


def test_partial_lines_cost_what_they_hold_and_give_it_back(natterd, client, closing, build):
    # 700 connections each hold an unfinished line of 4,000 bytes, between
    # clients that stay (so the heap cannot just shrink from its top when they go).
    no_rss_under_asan(build)
    more_files(1000)
    s = natterd(*NO_HISTORY, "--max-per-ip", "0")
    base = natlib.rss_kib(s.pid())
    holders, stayers = [], []
    for i in range(700):
        holders.append(closing(socket.create_connection((s.host, s.port))))
        if i % 10 == 0:
            stayers.append(client(s))
    for k in range(4):  # grown in pieces, as a slow client sends it
        for c in holders:
            c.sendall(b"p" * 1000)
    stayers[-1].sync()
    natlib.wait_until(lambda: s.drain_log().count("connect ") >= 770, what="everyone connected")
    held = natlib.rss_kib(s.pid()) - base
    # 4,000 bytes kept per connection (a 4,000-byte buffer), plus ~340 bytes of bookkeeping
    assert held < 770 * 6, f"700 partial lines of 4,000 bytes hold {held} KiB"
    for c in holders:
        c.close()
    natlib.wait_until(lambda: s.drain_log().count("disconnect") >= 700, timeout=30, what="700 disconnects")
    natlib.wait_until(lambda: natlib.rss_kib(s.pid()) - base < 1536, timeout=5,
                      what=f"RSS to return (still {natlib.rss_kib(s.pid()) - base} KiB over)")


# ==== 8. An empty line is no sign of life ====

def test_an_empty_first_line_does_not_dodge_the_login_timeout(natterd, client):
    s = natterd("--login-timeout", "1")
    a, b = client(s), client(s)
    a.send("")
    a.send("\x07\x1b")  # (sanitises to nothing, too)
    b.send("/who")
    a.expect(r"^!! nothing received for 1 seconds, disconnected$", timeout=5)
    a.expect_eof()
    b.expect(r"^-- #lobby: ")
