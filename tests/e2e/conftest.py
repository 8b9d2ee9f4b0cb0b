"""Fixtures for the end-to-end tests. Each test runs once per build directory (the
build fixture of tests/conftest.py), and what a fixture starts is stopped at teardown,
pass or fail:

  natterd("--rate", "0", ...)   start natterd on 127.0.0.1, port 0 (natlib.Server);
                                at teardown every one not stopped yet gets SIGTERM and
                                must exit 0 with no sanitizer report
  client(server, greet=True)    a natlib.Client connected to it; closed at teardown
  binary("natter")              the path of a program in the build directory
  closing(thing)                a socket, process (subprocess.Popen) or anything with
                                close(), closed (killed) at teardown; returns thing
  tmp_path                      pytest's own, for temporary files

Servers are stopped before anything given to closing() (clients included) is closed,
so natterd shuts down with its clients still connected, and says goodbye to them.
"""
import pytest

import natlib


@pytest.fixture(autouse=True)
def _every_build(build):
    """Every end-to-end test depends on the build directory, so it runs once per build."""


@pytest.fixture
def binary(build):
    def path(name):
        return natlib.binary(name, build)
    return path


@pytest.fixture
def closing():
    things = []

    def register(thing):
        things.append(thing)
        return thing
    yield register
    for thing in reversed(things):
        natlib.close_quietly(thing)


@pytest.fixture
def natterd(build, closing):
    servers = []

    def start(*args, **kw):
        s = natlib.Server(*args, build=build, **kw)
        servers.append(s)
        return s
    yield start
    errors = []
    for s in servers:
        try:
            if not s.stopped:
                s.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            s.kill()  # (it has exited by now: this closes its pipe)
    if errors:
        pytest.fail("at teardown: " + "\n\n".join(errors), pytrace=False)


@pytest.fixture
def client(closing):
    def connect(server, **kw):
        return closing(natlib.Client(server.host, server.port, **kw))
    return connect


@pytest.fixture
def irc(closing):
    """irc(server, port=None): a natlib.IrcClient on the server's IRC port (or port)."""
    def connect(server, port=None, **kw):
        return closing(natlib.IrcClient(server.host, port or server.irc_port, **kw))
    return connect
