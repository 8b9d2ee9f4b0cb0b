"""A short soak (tests/soak.py): 150 clients joining, chatting, renaming, switching
rooms and disconnecting abruptly for 5 seconds, with the full checker. `make soak`
runs the long one. NATTER_SOAK_SEED replays a run; the seed is in any failure."""
import io, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import soak  # noqa: E402


def test_soak_short(build):
    seed = os.environ.get("NATTER_SOAK_SEED")
    out = io.StringIO()
    s = soak.run(build=build, seconds=5, clients=150, seed=int(seed) if seed else None, out=out)
    assert s.nfailures == 0, f"soak failed (seed {s.seed}):\n{out.getvalue()[-6000:]}"
