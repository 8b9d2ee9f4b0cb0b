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
    # Not the outer make's variables (make WERROR=1 test passes WERROR down through MAKEFLAGS).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "WERROR")}
    return subprocess.run(["make", "-s", "-C", ROOT] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


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


UNIT_DIR = "lib/systemd/system"


def test_install_puts_a_unit_systemd_accepts_and_uninstall_removes_all(build, tmp_path):
    import shutil
    build = os.path.relpath(build, ROOT)
    prefix = str(tmp_path / "usr")  # a real prefix (no DESTDIR): ExecStart must name a real file
    p = _make(f"BUILD={build}", f"PREFIX={prefix}", "-o", "all", "install")
    assert p.returncode == 0, p.stdout + p.stderr
    unit = os.path.join(prefix, UNIT_DIR, "natterd.service")
    example = os.path.join(prefix, "share/doc/natter/natterd.conf.example")
    text = open(unit).read()
    for want in ("Type=notify", f"ExecStart={prefix}/bin/natterd", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
        assert want in text, f"{want} not in the unit"
    if shutil.which("systemd-analyze"):
        env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"))  # Documentation=man:natterd(8)
        v = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=60,
                           env=env)
        assert v.returncode == 0 and not v.stderr.strip(), v.stdout + v.stderr
        # (and it is a real check: a broken unit fails it)
        bad = tmp_path / "natterd-bad.service"
        bad.write_text(text.replace("Type=notify", "Type=notifyy"))
        v = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True,
                           timeout=60, env=env)
        assert v.stderr.strip(), "systemd-analyze verify accepts anything"
    # The example configuration parses, every option in it uncommented, and names every
    # key of the options table.
    natterd = os.path.join(prefix, "bin", "natterd")
    conf = tmp_path / "all.conf"
    with open(example) as f:
        lines = f.read().splitlines()
    conf.write_text("\n".join(l[1:] if l[1:2].isalpha() and l.startswith("#") else l for l in lines) + "\n")
    c = subprocess.run([natterd, "--check", "--config", str(conf)], capture_output=True, text=True, timeout=10,
                       env=natlib.sanitizer_env())
    assert c.returncode == 0 and "is good" in c.stdout, c.stdout + c.stderr
    h = subprocess.run([natterd, "--help"], capture_output=True, text=True, timeout=10, env=natlib.sanitizer_env())
    import re
    keys = set(re.findall(r"--([a-z-]+)", h.stdout)) - {"config", "check", "help", "version", "hash-password"}
    missing = [k for k in sorted(keys) if not any(l.startswith((f"#{k} =", f"{k} =")) for l in lines)]
    assert not missing, f"the example file lacks {missing}"
    u = _make(f"PREFIX={prefix}", "uninstall")
    assert u.returncode == 0, u.stdout + u.stderr
    left = [os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs]
    assert not left, f"make uninstall left {left}"
