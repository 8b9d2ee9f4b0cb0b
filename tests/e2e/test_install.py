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


def _make(*args, timeout=300):
    return subprocess.run(["make", "-s", "-C", ROOT] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def test_builder_flags_are_honoured(tmp_path):
    """make CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" must add to our flags, not replace them
    (it used to lose -DNATTER_VERSION and fail); -Werror only when WERROR=1 asks for it."""
    out = str(tmp_path / "b")
    cppflags = "-Wdate-time -D_FORTIFY_SOURCE=2"
    try:
        cppflags = subprocess.run(["dpkg-buildflags", "--get", "CPPFLAGS"], capture_output=True,
                                  text=True, timeout=30).stdout.strip() or cppflags
    except FileNotFoundError:
        pass
    p = _make(f"BUILD={out}", f"CPPFLAGS={cppflags}", "CFLAGS=-O1 -DNATTER_TEST_CFLAGS",
              "LDFLAGS=-Wl,--as-needed", f"{out}/options.o", f"{out}/natter.o")
    assert p.returncode == 0, p.stdout + p.stderr
    dry = _make("-n", f"BUILD={out}", "-B", "CFLAGS=-O1 -DNATTER_TEST_CFLAGS", "LDFLAGS=-Wl,-z,now",
                f"{out}/natterd")
    assert dry.returncode == 0, dry.stderr
    assert "-DNATTER_TEST_CFLAGS" in dry.stdout and "-Wl,-z,now" in dry.stdout, dry.stdout
    assert "-Werror" not in dry.stdout, "-Werror for everyone, not only CI"
    ci = _make("-n", f"BUILD={out}", "-B", "WERROR=1", f"{out}/options.o")
    assert "-Werror" in ci.stdout, ci.stdout
