"""The fuzz smoke run of make test: each libFuzzer target in build-fuzz/ (make fuzz-build)
for NATTER_FUZZ_SECONDS seconds from its seed corpus tests/fuzz/corpus/NAME, crashes
and new inputs kept in tmp_path. `make fuzz` is the long run (see the Makefile)."""
import glob, os, re, subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SECONDS = int(os.environ.get("NATTER_FUZZ_SECONDS", "0"))
TARGETS = sorted(p for p in glob.glob(os.path.join(ROOT, "build-fuzz", "fuzz_*")) if os.access(p, os.X_OK))


def targets():
    if not TARGETS:
        return [pytest.param(None, id="fuzz", marks=pytest.mark.skip(
            reason="no build-fuzz/fuzz_*: clang's libFuzzer is not installed"))]
    # The run itself takes SECONDS: allow for it beyond the usual per-test timeout.
    return [pytest.param(exe, id=os.path.basename(exe)[len("fuzz_"):],
                         marks=pytest.mark.timeout(SECONDS + 180)) for exe in TARGETS]


@pytest.mark.parametrize("exe", targets())
def test_fuzz_smoke(exe, tmp_path):
    if SECONDS <= 0:
        pytest.skip("NATTER_FUZZ_SECONDS is not set (make test sets it)")
    name = os.path.basename(exe)[len("fuzz_"):]
    seeds = os.path.join(HERE, "corpus", name)
    cmd = [exe, f"-max_total_time={SECONDS}", "-print_final_stats=1",
           f"-artifact_prefix={tmp_path}/", str(tmp_path), seeds]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 120,
                       stdin=subprocess.DEVNULL, errors="replace")
    runs = re.search(r"stat::number_of_executed_units: (\d+)", p.stderr)
    print(f"fuzz_{name}: {SECONDS}s, {runs.group(1) if runs else '?'} inputs")
    assert p.returncode == 0, p.stderr[-4000:]
