"""natter's test suite under pytest (Debian's python3-pytest and python3-pytest-timeout).

  make test                                   everything, both builds, one summary line
  make test-e2e K='nick and build-asan'       a subset of the end-to-end tests (-k)
  /usr/bin/python3 -m pytest tests/e2e/test_server.py::test_nick_rules --build=build

What is collected (pytest.ini lists tests/unit, tests/e2e, tests/fuzz):
  - tests/unit/test_NAME.c: the C unit-test program BUILD/tests/test_NAME of each build
    directory is run while collecting; every "ok - CHECK" / "not ok - CHECK: why" line
    it prints is one test, tests/unit/test_NAME.c::CHECK[BUILD]. A program that exits
    non-zero without a "not ok" line, prints no check, or is not built is one failed
    test, tests/unit/test_NAME.c::test_NAME[BUILD].
  - tests/e2e/test_*.py: every test runs once per build directory, test_x[BUILD]
    (the session-scoped build fixture; the other fixtures are in tests/e2e/conftest.py).
  - tests/fuzz/test_fuzz.py: a short libFuzzer run of each build-fuzz/fuzz_* target.

--build=DIR (repeatable) picks the build directories; the default is build and
build-asan at the top of the sources, those that exist. Write it as one word: with no
test path given, pytest would take the DIR of "--build DIR" for a test path before it
has read this file. Each test has NATTER_TEST_TIMEOUT seconds (default 120; --timeout or
PYTEST_TIMEOUT win), setup and teardown included.

After pytest's own summary the last line is "N passed, N failed" (", N skipped" when
some were), where a test counts once: failed if its setup, call or teardown failed (so
a server's unclean exit at teardown fails the test), else skipped if it was skipped,
else passed; a module that does not import counts as one failed test. The exit status
is non-zero when anything failed or nothing passed.
"""
import os, re, subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_BUILDS = ("build", "build-asan")
DEFAULT_TIMEOUT = 120


def pytest_addoption(parser):
    parser.addoption("--build", action="append", dest="natter_builds", metavar="DIR",
                     help="a build directory to test (repeatable; default: build and build-asan, "
                          "those that exist)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Before pytest-timeout reads its settings: NATTER_TEST_TIMEOUT, unless --timeout or
    # PYTEST_TIMEOUT says otherwise.
    if config.getoption("timeout", None) is None and not os.environ.get("PYTEST_TIMEOUT"):
        config.option.timeout = float(os.environ.get("NATTER_TEST_TIMEOUT", DEFAULT_TIMEOUT))
    given = config.getoption("natter_builds")
    if given:
        builds = [(os.path.normpath(d), os.path.abspath(d)) for d in given]
    else:
        dirs = [d for d in DEFAULT_BUILDS if os.path.isdir(os.path.join(ROOT, d))] or ["build"]
        builds = [(d, os.path.join(ROOT, d)) for d in dirs]
    config.natter_builds = builds  # [(test id, absolute path)]


# ==== The build directory: every test that uses it runs once per --build ====

def pytest_generate_tests(metafunc):
    if "build" in metafunc.fixturenames:
        builds = metafunc.config.natter_builds
        metafunc.parametrize("build", [path for _, path in builds], ids=[name for name, _ in builds],
                             indirect=True, scope="session")


@pytest.fixture(scope="session")
def build(request):
    """The absolute path of the build directory this test runs against."""
    return request.param


# ==== C unit tests: one pytest item per check line ====

def pytest_collect_file(file_path, parent):
    if (str(file_path.parent) == os.path.join(HERE, "unit") and file_path.name.startswith("test_")
            and file_path.suffix == ".c"):
        return UnitSource.from_parent(parent, path=file_path)
    return None


class UnitFailure(Exception):
    pass


class UnitSource(pytest.File):
    """tests/unit/test_NAME.c: runs BUILD/tests/test_NAME for each build directory."""

    def collect(self):
        prog = self.path.stem
        timeout = self.config.getoption("timeout", None) or DEFAULT_TIMEOUT
        for bname, bpath in self.config.natter_builds:
            exe = os.path.join(bpath, "tests", prog)
            if not os.access(exe, os.X_OK):
                yield UnitCheck.from_parent(self, name=f"{prog}[{bname}]", why=f"{exe} is not built")
                continue
            try:
                p = subprocess.run([exe], capture_output=True, text=True, timeout=timeout,
                                   stdin=subprocess.DEVNULL, cwd=ROOT, errors="replace")
                out, rc = p.stdout + p.stderr, p.returncode
            except subprocess.TimeoutExpired:
                out, rc = f"timed out after {timeout:g}s", -1
            seen, failed, names = 0, False, set()
            for line in out.splitlines():
                if line.startswith("ok - "):
                    check, why = line[5:], None
                elif line.startswith("not ok - "):
                    check, why, failed = self.check_name(line[9:]), line + "\n\n" + out[-3000:], True
                else:
                    continue
                seen += 1
                name = f"{check}[{bname}]"
                n = 2
                while name in names:  # the same check twice: still two tests
                    name = f"{check} ({n})[{bname}]"
                    n += 1
                names.add(name)
                yield UnitCheck.from_parent(self, name=name, why=why)
            if rc != 0 and not failed:
                yield UnitCheck.from_parent(self, name=f"{prog}[{bname}]",
                                            why=f"{exe}: exit {rc}\n{out[-3000:]}")
            elif seen == 0:
                yield UnitCheck.from_parent(self, name=f"{prog}[{bname}]", why=f"{exe} ran no test\n{out[-3000:]}")

    def check_name(self, text):
        """The check's name in "not ok - NAME: why": the longest string in the source that
        fits (a name may hold ": " too), else up to the first ": "."""
        if not hasattr(self, "_literals"):
            src = self.path.read_text(errors="replace")
            self._literals = sorted({m.group(1) for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', src)},
                                    key=len, reverse=True)
        for lit in self._literals:
            if lit and text.startswith(lit + ": "):
                return lit
        return text.split(": ", 1)[0]


class UnitCheck(pytest.Item):
    """One check of a unit-test program; why is None when it passed."""

    def __init__(self, *, why, **kw):
        super().__init__(**kw)
        self.why = why

    def runtest(self):
        if self.why is not None:
            raise UnitFailure(self.why)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, UnitFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


# ==== Counting, and the summary line that must end the output ====

_outcomes = {}  # nodeid -> "passed" | "failed" | "skipped"
_broken = []    # collection errors: each counts as one failed test


def pytest_collectreport(report):
    if report.failed:
        _broken.append(report.nodeid)


def pytest_runtest_logreport(report):
    was = _outcomes.get(report.nodeid)
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and was != "failed":
        _outcomes[report.nodeid] = "skipped"
    elif report.passed and report.when == "call" and was is None:
        _outcomes[report.nodeid] = "passed"


def _counts():
    n = {"passed": 0, "failed": len(_broken), "skipped": 0}
    for outcome in _outcomes.values():
        n[outcome] += 1
    return n


def pytest_sessionfinish(session, exitstatus):
    n = _counts()
    if (n["failed"] or not n["passed"]) and exitstatus == 0:
        session.exitstatus = 1


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    n = _counts()
    line = f"{n['passed']} passed, {n['failed']} failed"
    if n["skipped"]:
        line += f", {n['skipped']} skipped"
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(line)
    else:
        print(line, flush=True)
