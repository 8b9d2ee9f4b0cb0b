"""make install honours PREFIX and DESTDIR, and what it installs runs."""
import os, subprocess
import natlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_install_prefix_and_destdir(build, tmp_path):
    build = os.path.relpath(build, ROOT)
    dest = str(tmp_path)
    # -o: the binaries are built already; install must not rebuild them with other flags.
    p = subprocess.run(["make", "-s", "-C", ROOT, f"BUILD={build}", "PREFIX=/opt/natter",
                        f"DESTDIR={dest}", "-o", "all", "install"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    root = os.path.join(dest, "opt", "natter")
    for f in ("bin/natterd", "bin/natter", "bin/natter-bench", "share/man/man8/natterd.8",
              "share/man/man1/natter.1", "share/man/man1/natter-bench.1"):
        assert os.path.isfile(os.path.join(root, f)), f"{f} not installed under {root}"
    v = subprocess.run([os.path.join(root, "bin", "natterd"), "--version"], capture_output=True,
                       text=True, timeout=10, env=natlib.sanitizer_env())
    assert v.returncode == 0 and v.stdout.startswith("natterd "), v
