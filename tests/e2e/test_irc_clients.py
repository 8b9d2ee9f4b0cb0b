"""Real IRC clients against natterd, driven as a person would, each exchanging
messages with a plain client in #lobby: irssi in tmux (typing, reading the screen)
and ii (suckless; files in, files out). Skipped with the reason when absent."""
import os, re, shutil
import pytest

import natlib
from test_client import Tmux


@pytest.fixture
def irssi(closing, tmp_path):
    """irssi(server, nick, port=None): irssi in tmux, connected to the server."""
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    if not shutil.which("irssi"):
        pytest.skip("irssi is not installed (Debian package irssi)")

    def start(server, nick, port=None):
        home = tmp_path / ("irssi-" + nick)
        home.mkdir()
        (home / "config").write_text(
            'settings = {\n  core = { real_name = "Irssi Tester"; user_name = "%s"; nick = "%s"; };\n};\n'
            % (nick, nick))
        return Tmux(shutil.which("irssi"), tmp_path, closing, "--home=" + str(home), "-n", nick,
                    "-c", server.host, "-p", port or server.irc_port, width=120)
    return start


def irssi_do(t, command):
    t.type(command)
    t.keys("Enter")


@pytest.mark.parametrize("which_port", ["irc", "plain"])
def test_irssi_chats_with_a_plain_client(natterd, client, irssi, which_port):
    s = natterd()
    p = client(s)
    p.nick("pat")
    t = irssi(s, "irt", port=s.port if which_port == "plain" else None)
    s.wait_log(r"connect #\d+ 127\.0\.0\.1:\d+(?: \S+)? \(2 clients\)")
    t.wait_line(r"Welcome to the natter IRC Network irt", "irssi's welcome")
    irssi_do(t, "/join #lobby")
    p.expect(r"^-- irt joined #lobby$")
    t.wait_line(r"irt \[~irt@natter/irc\] has joined #lobby", "irssi's join line")
    p.send("hello irssi")
    t.wait_line(r"< ?@?pat> hello irssi$", "pat's line in irssi")
    irssi_do(t, "hi plain, from irssi")
    p.expect(r"^#lobby <irt> hi plain, from irssi$")
    irssi_do(t, "/me waves")
    p.expect(r"^#lobby \* irt waves$")
    p.send("/msg irt psst")
    irssi_do(t, "/msg pat back")
    p.expect(r"^\*irt\* back$")
    irssi_do(t, "/topic #lobby set by irssi")
    p.expect(r"^-- irt set the topic of #lobby: set by irssi$")
    irssi_do(t, "/nick irt2")
    p.expect(r"^-- irt is now known as irt2$")
    screen = "\n".join(t.screen())
    for bad in ("Unknown command", "not registered", "unknown mode", "Not enough parameters"):
        assert bad not in screen, screen
    irssi_do(t, "/quit see you")
    p.expect(r"^-- irt2 quit \(Quit: see you\)$")


def test_ii_chats_with_a_plain_client(natterd, client, closing, tmp_path):
    if not shutil.which("ii"):
        pytest.skip("ii is not installed (Debian package ii)")
    import subprocess
    s = natterd()
    p = client(s)
    p.nick("pat")
    base = tmp_path / "irc"
    ii = closing(subprocess.Popen(["ii", "-s", s.host, "-p", str(s.irc_port), "-n", "iiuser", "-i", str(base),
                                   "-f", "ii tester"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE))
    server_dir = base / s.host

    def write_fifo(path, line):
        fd = natlib.wait_until(lambda: _open_fifo(path), what=f"{path} to be read")
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def out_has(path, pattern):
        try:
            return re.search(pattern, path.read_text(encoding="utf-8"), re.M)
        except FileNotFoundError:
            return None

    natlib.wait_until(lambda: out_has(server_dir / "out", r" 001 |Welcome"), what="ii's registration")
    write_fifo(server_dir / "in", "/j #lobby")
    p.expect(r"^-- iiuser joined #lobby$")
    p.send("hello ii")
    natlib.wait_until(lambda: out_has(server_dir / "#lobby" / "out", r"<pat> hello ii$"), what="pat's line in ii")
    write_fifo(server_dir / "#lobby" / "in", "hi plain, from ii")
    p.expect(r"^#lobby <iiuser> hi plain, from ii$")
    p.send("/msg iiuser private")
    natlib.wait_until(lambda: out_has(server_dir / "pat" / "out", r"<pat> private$"), what="the private message")
    ii.terminate()
    ii.wait(timeout=10)
    p.expect(r"^-- iiuser quit \(connection closed\)$")


def _open_fifo(path):
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except (FileNotFoundError, OSError):
        return None
