#!/usr/bin/env python3
"""natter's test runner: unit binaries and end-to-end tests, for each build dir.

Usage: tests/run.py BUILD_DIR [BUILD_DIR...]   (default: build)
       tests/run.py -k PATTERN build           (only tests whose name contains PATTERN)
With NATTER_FUZZ_SECONDS=N it also runs each libFuzzer target in build-fuzz/ for N s.

Unit tests are C programs in BUILD/tests/test_* that print TAP-like lines
("ok - name" / "not ok - name: why") and exit non-zero on failure. End-to-end tests
are functions named test_* in tests/e2e/test_*.py; they find the binaries through
the NATTER_BUILD environment variable (see tests/e2e/natlib.py). The last line is
"N passed, N failed, N skipped".
"""
import glob, importlib.util, os, re, signal, subprocess, sys, time, traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "e2e"))
TEST_TIMEOUT = int(os.environ.get("NATTER_TEST_TIMEOUT", "120"))

counts = {"passed": 0, "failed": 0, "skipped": 0}
failures = []


def report(status, name, secs, detail=""):
    counts[status] += 1
    word = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[status]
    print(f"{word} {name} ({secs:.2f}s){' ' + detail if detail and status != 'failed' else ''}", flush=True)
    if status == "failed":
        failures.append(name)
        print("    " + detail.replace("\n", "\n    ").rstrip(), flush=True)


def run_unit(build, pattern):
    for exe in sorted(glob.glob(os.path.join(build, "tests", "test_*"))):
        if exe.endswith(".d") or not os.access(exe, os.X_OK):
            continue
        base = os.path.basename(exe)
        t0 = time.time()
        try:
            p = subprocess.run([exe], capture_output=True, text=True, timeout=TEST_TIMEOUT,
                               stdin=subprocess.DEVNULL)
            out, rc = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timed out", -1
        secs = time.time() - t0
        seen = 0
        for line in out.splitlines():
            if line.startswith("ok - "):
                name = f"{build}/unit/{base}: {line[5:]}"
                if pattern in name:
                    report("passed", name, 0); seen += 1
            elif line.startswith("not ok - "):
                name = f"{build}/unit/{base}: {line[9:]}"
                report("failed", name, 0, out[-3000:]); seen += 1
        if rc != 0 and not any(l.startswith("not ok") for l in out.splitlines()):
            report("failed", f"{build}/unit/{base}", secs, f"exit {rc}\n{out[-3000:]}")
        elif seen == 0 and pattern == "":
            report("failed", f"{build}/unit/{base}", secs, "ran no test")


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout(f"test took longer than {TEST_TIMEOUT}s")


def run_e2e(build, pattern):
    import natlib
    os.environ["NATTER_BUILD"] = os.path.join(ROOT, build)
    signal.signal(signal.SIGALRM, on_alarm)
    for path in sorted(glob.glob(os.path.join(HERE, "e2e", "test_*.py"))):
        modname = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(f"{modname}_{build.replace('-', '_')}", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:
            report("failed", f"{build}/e2e/{modname}", 0, traceback.format_exc())
            continue
        for fname in sorted(n for n in dir(mod) if n.startswith("test_")):
            name = f"{build}/e2e/{modname}.{fname}"
            if pattern not in name:
                continue
            t0 = time.time()
            signal.alarm(TEST_TIMEOUT)
            try:
                getattr(mod, fname)()
                status, detail = "passed", ""
            except natlib.Skip as e:
                status, detail = "skipped", str(e)
            except BaseException as e:  # noqa: a test must never stop the runner
                if isinstance(e, KeyboardInterrupt):
                    raise
                status, detail = "failed", traceback.format_exc()
            finally:
                signal.alarm(0)
                natlib.cleanup()  # stop whatever the test left running
            report(status, name, time.time() - t0, detail)


def run_fuzz(seconds):
    """A short libFuzzer run of each target in build-fuzz/ (make fuzz-build), from the seed corpus."""
    import tempfile
    targets = sorted(glob.glob(os.path.join(ROOT, "build-fuzz", "fuzz_*")))
    if not targets:
        report("skipped", "fuzz", 0, "(no build-fuzz/fuzz_*: clang's libFuzzer is not installed)")
        return
    for exe in targets:
        name = os.path.basename(exe)[len("fuzz_"):]
        seeds = os.path.join(HERE, "fuzz", "corpus", name)
        t0 = time.time()
        with tempfile.TemporaryDirectory() as work:
            cmd = [exe, f"-max_total_time={seconds}", "-print_final_stats=1",
                   f"-artifact_prefix={work}/", work, seeds]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                               stdin=subprocess.DEVNULL)
        runs = re.search(r"stat::number_of_executed_units: (\d+)", p.stderr)
        detail = f"{runs.group(1)} inputs" if runs else ""
        if p.returncode == 0:
            report("passed", f"fuzz/{name} ({seconds}s)", time.time() - t0, detail)
        else:
            report("failed", f"fuzz/{name}", time.time() - t0, p.stderr[-4000:])


def main(argv):
    pattern = ""
    if len(argv) >= 2 and argv[0] == "-k":
        pattern, argv = argv[1], argv[2:]
    builds = argv or ["build"]
    for build in builds:
        if not os.path.isdir(os.path.join(ROOT, build)):
            print(f"run.py: no build directory {build} (run make first)", file=sys.stderr)
            return 2
        os.chdir(ROOT)
        run_unit(build, pattern)
        run_e2e(build, pattern)
    fuzz_seconds = int(os.environ.get("NATTER_FUZZ_SECONDS", "0"))
    if fuzz_seconds > 0 and pattern in "fuzz":
        run_fuzz(fuzz_seconds)
    if failures:
        print("\nfailed:\n  " + "\n  ".join(failures))
    line = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    print(line)
    return 1 if counts["failed"] or counts["passed"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
