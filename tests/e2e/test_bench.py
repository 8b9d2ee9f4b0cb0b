"""natter-bench smoke tests: small runs that check zero loss, not speed.

The bench runs against natterd and against tests/tools/bcast-server, whose --drop,
--dup and --swap modes break delivery on purpose: a checker that cannot fail proves
nothing, so each kind of fault must turn the bench's exit status to 1.
"""
import json, os, re, select, subprocess
import pytest

import natlib

BENCH_TIMEOUT = 60


class Bcast:
    """tests/tools/bcast-server on 127.0.0.1 and a free port (the bcast fixture: killed at teardown)."""

    def __init__(self, exe, closing, *args):
        cmd = [exe] + list(args)
        self.proc = closing(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, env=natlib.sanitizer_env()))
        self.log = b""
        m = natlib.wait_until(self._port, what="bcast-server's listening line")
        self.port = int(m.group(1))

    def _port(self):
        r, _, _ = select.select([self.proc.stderr], [], [], 0.1)
        if r:
            self.log += os.read(self.proc.stderr.fileno(), 4096)
        assert self.proc.poll() is None, f"bcast-server exited: {self.log!r}"
        return re.search(rb"listening on 127\.0\.0\.1:(\d+)", self.log)

    def pid(self):
        return self.proc.pid

    def stop(self):
        """SIGTERM; it must exit 0 with no sanitizer report."""
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log += self.proc.stderr.read()
        text = self.log.decode("utf-8", "replace")
        for mark in natlib.SANITIZER_MARKS:
            assert mark not in text, f"sanitizer report from bcast-server:\n{text[-6000:]}"
        assert self.proc.returncode == 0, f"bcast-server exited {self.proc.returncode}: {text[-3000:]}"


@pytest.fixture
def bcast(binary, closing):
    """bcast(*args): a Bcast running the build's tests/bcast-server."""
    def start(*args):
        return Bcast(binary(os.path.join("tests", "bcast-server")), closing, *args)
    return start


@pytest.fixture
def bench(binary):
    """bench(port, *args, expect_rc=0): run natter-bench --json against port; returns the parsed report."""
    exe = binary("natter-bench")

    def run(port, *args, expect_rc=0):
        cmd = [exe, "--port", str(port), "--json"] + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=BENCH_TIMEOUT,
                           stdin=subprocess.DEVNULL, env=natlib.sanitizer_env())
        for mark in natlib.SANITIZER_MARKS:
            assert mark not in p.stderr, f"sanitizer report from natter-bench:\n{p.stderr[-6000:]}"
        assert p.returncode == expect_rc, \
            f"natter-bench {' '.join(cmd[1:])} exited {p.returncode}, wanted {expect_rc}\n{p.stdout}\n{p.stderr[-3000:]}"
        return json.loads(p.stdout)
    return run


def assert_clean(rep, clients):
    assert rep["ok"] is True, rep
    assert rep["held"] == clients and rep["lost"] == 0 and rep["failed"] == 0, rep
    assert rep["missing"] == 0 and rep["duplicated"] == 0 and rep["reordered"] == 0, rep
    assert rep["corrupt"] == 0 and rep["server_errors"] == 0, rep


def test_bench_natterd_window_one_room(natterd, bench):
    s = natterd("--rate", "0", "--max-per-ip", "0")
    rep = bench(s.port, "--clients", 30, "--messages", 200, "--server-pid", s.pid())
    assert_clean(rep, 30)
    assert rep["sent"] == 30 * 200 and rep["delivered"] == 30 * 200 * 29, rep
    assert rep["latency_us"]["samples"] == rep["delivered"], rep
    assert rep["server_cpu_s"] >= 0 and rep["server_rss_end_kb"] > 0, rep


def test_bench_natterd_rooms_rate_procs_threads(natterd, bench):
    s = natterd("--rate", "0", "--max-per-ip", "0")
    rep = bench(s.port, "--clients", 40, "--rooms", 4, "--senders", 3, "--rate", 3000,
                "--duration", 0.5, "--procs", 2, "--threads", 2)
    assert_clean(rep, 40)
    # 4 rooms x 3 senders; every message reaches the 9 other members of its room.
    assert rep["sent"] > 0 and rep["delivered"] == rep["sent"] * 9, rep


def test_bench_natterd_idle_and_broadcast(natterd, bench):
    s = natterd("--rate", "0", "--max-per-ip", "0")
    rep = bench(s.port, "--clients", 50, "--idle", 0.3, "--senders", 1, "--messages", 1,
                "--source-ips", "127.0.0.1-127.0.0.3", "--server-pid", s.pid())
    assert_clean(rep, 50)
    assert rep["idle_survivors"] == 50 and rep["delivered"] == 49, rep
    assert rep["server_rss_held_kb"] > 0, rep


def test_bench_natterd_server_full(natterd, bench):
    s = natterd("--rate", "0", "--max-per-ip", "0", "--max-clients", "5")
    rep = bench(s.port, "--clients", 6, "--senders", 0, "--expect-refused", 1)
    assert rep["held"] == 5 and rep["refused"] == 1, rep
    # The same run without --expect-refused is a failure.
    rep = bench(s.port, "--clients", 6, "--senders", 0, expect_rc=1)
    assert rep["refused"] == 1 and rep["ok"] is False, rep


def test_bench_natterd_irc_and_mixed_rooms(natterd, bench):
    # IRC clients on the IRC port, on the plain port (handed over), and rooms mixing
    # IRC with plain clients: every message once, in order, whatever its codecs.
    s = natterd("--rate", "0", "--max-per-ip", "0")
    rep = bench(s.port, "--clients", 30, "--messages", 100, "--irc", "--irc-port", s.irc_port)
    assert_clean(rep, 30)
    assert rep["irc_every"] == 1 and rep["delivered"] == 30 * 100 * 29, rep
    rep = bench(s.port, "--clients", 40, "--rooms", 4, "--messages", 50, "--irc-every", 2, "--size", 700)
    assert_clean(rep, 40)
    assert rep["delivered"] == 40 * 50 * 9, rep  # 700-byte messages: IRC lines split, plain ones not


def test_bench_bcast_server_clean(bench, bcast):
    b = bcast()
    rep = bench(b.port, "--clients", 30, "--rooms", 3, "--messages", 300, "--server-pid", b.pid())
    assert_clean(rep, 30)
    assert rep["delivered"] == 30 * 300 * 9, rep
    b.stop()


def test_bench_fails_on_loss(bench, bcast):
    b = bcast("--drop", "997")
    rep = bench(b.port, "--clients", 20, "--messages", 200, "--drain", 0.5, expect_rc=1)
    assert rep["ok"] is False and rep["missing"] > 0, rep
    b.stop()


def test_bench_fails_on_duplicates(bench, bcast):
    b = bcast("--dup", "997")
    rep = bench(b.port, "--clients", 20, "--messages", 200, expect_rc=1)
    assert rep["ok"] is False and rep["duplicated"] > 0 and rep["missing"] == 0, rep
    b.stop()


def test_bench_fails_on_reordering(bench, bcast):
    # Order is checked per sender: with one sender, every swap the server makes shows.
    b = bcast("--swap", "97")
    rep = bench(b.port, "--clients", 20, "--senders", 1, "--rate", 20000, "--messages", 300, "--drain", 0.5,
                expect_rc=1)
    assert rep["ok"] is False and rep["reordered"] > 0, rep
    b.stop()


def test_bench_usage_and_unreachable_server(binary):
    p = subprocess.run([binary("natter-bench"), "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--source-ips" in p.stdout, p
    p = subprocess.run([binary("natter-bench"), "--clients", "7", "--rooms", "2"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "multiple of --rooms" in p.stderr, p
    # A port nobody listens on: a closed socket of our own gives a free one.
    import socket
    sk = socket.socket()
    sk.bind(("127.0.0.1", 0))
    port = sk.getsockname()[1]
    sk.close()
    p = subprocess.run([binary("natter-bench"), "--port", str(port), "--clients", "3"],
                       capture_output=True, text=True, timeout=BENCH_TIMEOUT, env=natlib.sanitizer_env())
    assert p.returncode == 2 and "Connection refused" in p.stderr, (p.stdout, p.stderr)
    for mark in natlib.SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr


def test_bench_numbers_are_strict_with_plain_ranges(binary):
    """-c nan used to fail with an empty reason; 1e3 and 2.5 were taken; ranges read 1e+09."""
    exe = binary("natter-bench")
    for args, msg in ((["-c", "nan"], "--clients: 'nan' is not a whole number from 1 to 10000000"),
                      (["-c", "1e3"], "--clients: '1e3' is not a whole number from 1 to 10000000"),
                      (["-c", "2.5"], "--clients: '2.5' is not a whole number from 1 to 10000000"),
                      (["-p", "0x50"], "--port: '0x50' is not a whole number from 1 to 65535"),
                      (["--rate", "inf"], "--rate: 'inf' is not a number from 0.001 to 1000000000"),
                      (["--rate", "-5"], "--rate: '-5' is not a number from 0.001 to 1000000000"),
                      (["-d", "1e3"], "--duration: '1e3' is not a number from 0.001 to 86400"),
                      (["-d", ".5"], "--duration: '.5' is not a number from 0.001 to 86400"),
                      (["-m", "1e15"], "--messages: '1e15' is not a whole number from 1 to 1000000000000000")):
        p = subprocess.run([exe] + args, capture_output=True, text=True, timeout=30, env=natlib.sanitizer_env())
        assert p.returncode == 2 and p.stderr.startswith(f"natter-bench: {msg}\n"), (args, p.stderr)
