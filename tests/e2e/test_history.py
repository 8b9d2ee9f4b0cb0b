"""Room history (SQLite) end to end: replay on join, /history, /search, private
messages, restart and kill -9 survival (with a checker), retention, databases natterd
must refuse, and a disk that fills while it runs."""
import os, re, resource, shutil, signal, sqlite3, subprocess, tempfile, time
import pytest

import natlib

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
EXIT_HISTORY = 3


def history_block(cl, room, timeout=natlib.DEFAULT_WAIT):
    """Read up to '-- history of ROOM: N messages' and its end; the entry lines."""
    m = cl.expect(r"^-- history of %s: (\d+) messages?$" % re.escape(room), timeout)
    lines = []
    while True:
        line = cl.readline(timeout)
        assert line is not None, "EOF inside a history block"
        if line == "-- end of history of %s" % room:
            break
        lines.append(line)
    assert len(lines) == int(m.group(1)), lines
    return lines


def texts(lines, room="#lobby"):
    """The message texts of '== TIME #room <who> text' lines."""
    out = []
    for l in lines:
        m = re.match(r"^== %s %s <[^>]+> (.*)$" % (TIME, re.escape(room)), l)
        assert m, f"not a history line of {room}: {l!r}"
        out.append(m.group(1))
    return out


def _varint(data, off):
    v = shift = 0
    while True:
        c = data[off]
        off += 1
        v |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return v, off


def unpack(data):
    """A chunk's messages (schema 2, history.c "Packing"): [(id, time_ms, kind, from, to, text)]."""
    out, off, mid, t = [], 0, 0, 0
    while off < len(data):
        kind = data[off]
        off += 1
        did, off = _varint(data, off)
        dt, off = _varint(data, off)
        lens = []
        for _ in range(3):
            n, off = _varint(data, off)
            lens.append(n)
        mid += did
        t += -(dt >> 1) - 1 if dt & 1 else dt >> 1
        strs = []
        for n in lens:
            strs.append(data[off:off + n].decode("utf-8", "replace"))
            off += n
        out.append((mid, t, kind) + tuple(strs))
    return out


def pack(msgs):
    """The reverse of unpack: [(id, time_ms, kind, from, to, text)] as a chunk's data."""
    def varint(v):
        b = bytearray()
        while v >= 0x80:
            b.append((v & 0x7f) | 0x80)
            v >>= 7
        b.append(v)
        return bytes(b)
    out, pid, pt = bytearray(), 0, 0
    for mid, t, kind, frm, to, text in msgs:
        dt = t - pt
        out.append(kind)
        out += varint(mid - pid) + varint(((-dt - 1) << 1) | 1 if dt < 0 else dt << 1)
        parts = [x.encode() for x in (frm, to, text)]
        for x in parts:
            out += varint(len(x))
        for x in parts:
            out += x
        pid, pt = mid, t
    return bytes(out)


def db_texts(path, room="#lobby"):
    """What the database holds for room, in id order: text, or ('GAP', lost)."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        rows = [(m[0], m[5]) for (data,) in con.execute("SELECT data FROM chunks WHERE target = ?", (room,))
                for m in unpack(data)]
        rows += [(i, ("GAP", lost)) for i, lost in con.execute("SELECT id, lost FROM gaps WHERE target = ?", (room,))]
    finally:
        con.close()
    return [what for _, what in sorted(rows)]


def test_replay_on_join(natterd, client):
    s = natterd()
    a = client(s)
    a.nick("alice")
    a.send("first words")
    a.send("/me waves")
    a.send("third")
    a.sync()
    b = client(s)
    lines = history_block(b, "#lobby")
    assert re.match(r"^== %s #lobby <alice> first words$" % TIME, lines[0]), lines
    assert re.match(r"^== %s #lobby \* alice waves$" % TIME, lines[1]), lines
    assert re.match(r"^== %s #lobby <alice> third$" % TIME, lines[2]), lines
    a.send("live now")
    b.expect(r"^#lobby <alice> live now$")  # live lines keep their own form
    # A new room replays its own history, and nothing of another.
    a.send("/join #dev")
    a.send("in dev")
    a.sync()
    b.send("/join #dev")
    assert texts(history_block(b, "#dev"), "#dev") == ["in dev"]
    # Joining a room one is in already only switches to it: no replay.
    b.send("/join #lobby")
    b.expect(r"^-- you are now in #lobby$")
    b.sync()
    assert not any(l.startswith("-- history of #lobby") for l in b.lines[-3:]), b.lines


def test_replay_count_and_off(natterd, client):
    s = natterd("--history", "2")
    a = client(s)
    for i in range(5):
        a.send("m%d" % i)
    a.sync()
    b = client(s)
    assert texts(history_block(b, "#lobby")) == ["m3", "m4"]
    b.send("/history 4")
    assert texts(history_block(b, "#lobby")) == ["m1", "m2", "m3", "m4"]

    off = natterd("--history", "0")
    a = client(off)
    a.send("not kept")
    a.sync()
    b = client(off)
    b.send("/history")
    b.expect(r"^!! history is off on this server$")
    b.send("/search kept")
    b.expect(r"^!! history is off on this server$")
    assert not any(l.startswith(("-- history", "== ")) for l in b.lines), b.lines
    off.stop()
    assert "history in" not in off.log  # no database opened at all


def test_history_command(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.nick("alice")
    for i in range(3):
        a.send("line %d" % i)
    b.expect(r"^#lobby <alice> line 2$")
    b.send("/history")
    assert texts(history_block(b, "#lobby")) == ["line 0", "line 1", "line 2"]
    b.send("/history 1")
    assert texts(history_block(b, "#lobby")) == ["line 2"]
    b.send("/history #LOBBY 2")  # room names without case, as everywhere
    assert texts(history_block(b, "#LOBBY"), "#lobby") == ["line 1", "line 2"]
    a.send("/join #dev")
    a.sync()
    b.send("/history #dev")
    b.expect(r"^!! you are not in #dev$")  # only rooms one is in
    b.send("/join #quiet")
    b.send("/history")
    b.expect(r"^-- no history of #quiet$")
    for bad in ("/history 0", "/history x y z", "/history 5 6", "/history #lobby -1"):
        b.send(bad)
        b.expect(r"^!! usage: /history \[#room\|NAME\] \[N\]")
    b.send("/history 100000")  # capped, not refused
    b.expect(r"^-- no history of #quiet$")


def test_private_messages(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.nick("alice"); b.nick("bob")
    a.send("/msg bob psst")
    b.expect(r"^\*alice\* psst$")
    b.send("/history alice")
    b.expect(r"^!! private messages are not kept on this server$")

    s2 = natterd("--history-private")
    a, b, c = client(s2), client(s2), client(s2)
    a.nick("alice"); b.nick("bob"); c.nick("carol")
    a.send("/msg bob psst")
    b.expect(r"^\*alice\* psst$")
    b.send("/msg ALICE hi back")
    a.expect(r"^\*bob\* hi back$")
    a.send("/history bob")
    m = a.expect(r"^-- history of bob: 2 messages$")
    a.expect(r"^== %s -> \*bob\* psst$" % TIME)
    a.expect(r"^== %s \*bob\* hi back$" % TIME)
    b.send("/history alice")
    b.expect(r"^== %s \*alice\* psst$" % TIME)
    b.expect(r"^== %s -> \*alice\* hi back$" % TIME)
    c.send("/history alice")  # carol's own conversation with alice: empty
    c.expect(r"^-- no history of alice$")
    c.send("/search psst")
    c.expect(r'^-- search for "psst": nothing found$')
    # Private messages never appear in a room's history.
    d = client(s2)
    d.sync()
    assert not any("psst" in l for l in d.lines), d.lines


def test_search(natterd, client):
    s = natterd()
    a, b = client(s), client(s)
    a.nick("alice")
    a.send("the quick brown fox")
    a.send("a quick word")
    a.send("/join #secret")
    a.send("quick secret plans")
    a.sync()
    b.send("/search quick")
    b.expect(r'^-- search for "quick": 2 results$')
    b.expect(r"^== %s #lobby <alice> the quick brown fox$" % TIME)
    b.expect(r"^== %s #lobby <alice> a quick word$" % TIME)
    b.expect(r"^-- end of search$")
    b.send("/search quick fox")
    b.expect(r'^-- search for "quick fox": 1 result$')
    b.send("/search brown word")  # both words are in #lobby, never in one message
    b.expect(r'^-- search for "brown word": nothing found$')
    b.send("/search secret")  # not in #secret: nothing of it
    b.expect(r'^-- search for "secret": nothing found$')
    b.send('/search "fox" OR NEAR( * : ^')  # FTS5 syntax is just text
    b.expect(r'^-- search for .*nothing found$')
    b.send("/search")
    b.expect(r"^!! usage: /search words$")
    a.send("/search secret")
    a.expect(r'^-- search for "secret": 1 result$')


def test_search_is_rate_limited(natterd, client):
    s = natterd("--rate", "1", "--burst", "20")
    a = client(s)
    for _ in range(6):
        a.send("/search anything")
    a.expect(r"^!! slow down")  # each search costs 10 lines of flood control


def test_restart_keeps_history(natterd, client, tmp_path):
    db = str(tmp_path / "natter.db")
    s = natterd("--db", db)
    a = client(s)
    a.nick("alice")
    for i in range(5):
        a.send("before restart %d" % i)
    a.sync()
    s.stop()
    assert (os.stat(db).st_mode & 0o077) == 0, "the database must be private (0600)"
    s = natterd("--db", db)
    b = client(s)
    assert texts(history_block(b, "#lobby")) == ["before restart %d" % i for i in range(5)]
    b.send("after restart")
    b.sync()
    s.stop()
    assert db_texts(db)[-2:] == ["before restart 4", "after restart"]  # ids keep ascending


# Schema 1 exactly as natterd before schema 2 created it (one row per message).
SCHEMA_V1 = """
CREATE TABLE messages(id INTEGER PRIMARY KEY, target TEXT NOT NULL COLLATE NOCASE, time_ms INTEGER NOT NULL,
 kind INTEGER NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL DEFAULT '', text TEXT NOT NULL,
 lost INTEGER NOT NULL DEFAULT 0);
CREATE TABLE by_target(target TEXT NOT NULL COLLATE NOCASE, id INTEGER NOT NULL,
 PRIMARY KEY (target, id)) WITHOUT ROWID;
CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='id');
CREATE TABLE meta(key TEXT PRIMARY KEY, value);
INSERT INTO meta(key, value) VALUES ('fts_upto', 0), ('target_upto', 0);
CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
 DELETE FROM by_target WHERE target = old.target AND id = old.id;
 INSERT INTO messages_fts(messages_fts, rowid, text) SELECT 'delete', old.id, old.text
  WHERE old.kind != 4 AND old.id <= (SELECT value FROM meta WHERE key = 'fts_upto'); END;
PRAGMA user_version = 1;
"""


def test_schema_1_migrated(natterd, client, tmp_path):
    """A database of the old layout (a row per message) is moved to chunks at start, once, and
    reads as before: replay, /history, a gap row, /search, private messages."""
    db = str(tmp_path / "natter.db")
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.executescript(SCHEMA_V1)
    t = int((time.time() - 3600) * 1000)
    rows = [((t << 16) + 2 * i, "#lobby", t, 1, "old%d" % (i % 2), "", "old words %d" % i, 0) for i in range(300)]
    rows.insert(150, ((t << 16) + 299, "#lobby", t, 4, "", "", "", 7))  # a gap of 7, after the 150th
    rows += [(((t + 2) << 16) + i, "#Other", t + 2, 2, "zed", "", "waves %d" % i, 0) for i in range(3)]
    rows += [(((t + 3) << 16), "ann bob", t + 3, 3, "ann", "bob", "psst", 0)]
    con.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("INSERT INTO by_target SELECT target, id FROM messages")
    con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    con.execute("UPDATE meta SET value = (SELECT max(id) FROM messages)")
    con.close()

    s = natterd("--db", db, "--history-private")
    natlib.wait_until(lambda: "schema upgraded to version 2" in s.log, what="the upgrade logged")
    a = client(s)
    got = texts(history_block(a, "#lobby"))
    assert got == ["old words %d" % i for i in range(250, 300)], got
    a.send("/history #lobby 1000")
    lines = history_block(a, "#lobby")
    assert len(lines) == 301 and re.match(r"^== %s #lobby -- 7 messages not recorded here$" % TIME, lines[150]), \
        lines[148:153]
    a.send("/join #other")
    assert [l.split(" ", 2)[2] for l in history_block(a, "#other")] == ["#Other * zed waves %d" % i for i in range(3)]
    a.send("/search words 299")
    a.expect(r'^-- search for "words 299": 1 result$')
    a.expect(r"^== %s #lobby <old1> old words 299$" % TIME)
    a.nick("ann")
    a.send("/history bob")
    a.expect(r"^-- history of bob: 1 message$")
    s.stop()
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        assert "messages" not in names and "by_target" not in names and "chunks" in names, names
    finally:
        con.close()
    assert len(db_texts(db)) == 301
    s = natterd("--db", db)  # once: no second upgrade
    client(s).sync()
    assert "schema upgraded" not in s.log
    s.stop()


def test_default_db_in_state_directory(binary, tmp_path):
    """Without --db: natter.db in $STATE_DIRECTORY (systemd's StateDirectory=), else here."""
    env = natlib.sanitizer_env()
    env["STATE_DIRECTORY"] = str(tmp_path / "state")
    os.mkdir(tmp_path / "state")
    for state, where in ((True, tmp_path / "state" / "natter.db"), (False, tmp_path / "natter.db")):
        if not state:
            del env["STATE_DIRECTORY"]
        proc = subprocess.Popen([binary("natterd"), "--bind", "127.0.0.1", "--port", "0", "--http-port", "0"], cwd=str(tmp_path),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        log = b""
        try:
            deadline = time.time() + natlib.DEFAULT_WAIT
            while b"listening on" not in log and time.time() < deadline and proc.poll() is None:
                log += os.read(proc.stderr.fileno(), 4096)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log += proc.stderr.read()
            proc.stderr.close()
        assert proc.returncode == 0, log
        assert ("history in %s (" % ("natter.db" if not state else where)).encode() in log, log
        assert os.path.exists(where)


def test_kill9_loses_nothing_before_the_last_commit(natterd, client, tmp_path):
    """A checker: after kill -9, history is what the room heard, in order, up to some
    point (the last committed batch) with nothing missing before it; what the observer
    received is the same sequence up to another point."""
    db = str(tmp_path / "natter.db")
    s = natterd("--db", db, "--rate", "0", "--max-outbuf", str(16 << 20))
    sender, observer = client(s), client(s)
    sender.nick("sender")
    n = 30000
    sender.send("".join("k%d\n" % i for i in range(n)).encode())
    natlib.wait_until(lambda: (observer._fill(0.05), observer.buf.count(b"\n") > 1000)[1], what="1000 lines received")
    natlib.wait_until(lambda: db_texts(db), what="a first batch committed")  # (a reader beside the writer: WAL)
    os.kill(s.pid(), signal.SIGKILL)
    s.kill()
    observer.expect_eof()
    got = [l for l in observer.lines if l.startswith("#lobby <sender> ")]
    received = [l.split("> ", 1)[1] for l in got]
    sent = ["k%d" % i for i in range(n)]
    assert received == sent[:len(received)], "the observer's lines are not a prefix of what was sent"
    held = db_texts(db)
    assert held == sent[:len(held)], \
        f"history is not a prefix of what was said (a gap or a reordering): {held[:5]}...{held[-5:]}"
    assert len(held) > 0, "nothing committed at all"
    # Restarted, the server replays the same and goes on after it.
    s = natterd("--db", db, "--history", "5")
    c = client(s)
    assert texts(history_block(c, "#lobby"))[-5:] == held[-5:]
    c.send("after the crash")
    c.sync()
    s.stop()
    assert db_texts(db) == held + ["after the crash"]


def test_retention_max_per_room(natterd, client):
    s = natterd("--history-max", "3")
    a = client(s)
    for i in range(6):
        a.send("r%d" % i)
    a.send("/join #other")
    a.send("o0")
    a.sync()

    def kept():
        a.send("/history #lobby 50")
        return texts(history_block(a, "#lobby"))
    natlib.wait_until(lambda: kept() == ["r3", "r4", "r5"], what="the room trimmed to its newest 3")
    a.send("/history #other 50")
    assert texts(history_block(a, "#other"), "#other") == ["o0"]


def test_retention_days(natterd, client, tmp_path):
    db = str(tmp_path / "natter.db")
    s = natterd("--db", db)
    a = client(s)
    a.send("recent")
    a.sync()
    s.stop()
    con = sqlite3.connect(db)
    old_ms = int((time.time() - 3 * 86400) * 1000)
    # two old messages and one just inside the limit, in one chunk: the chunk is cut, not dropped whole
    new_ms = int((time.time() - 1 * 86400) * 1000)
    con.execute("INSERT INTO chunks(id, target, last_id, n, data) VALUES (?, '#lobby', ?, 3, ?)",
                (old_ms << 16, new_ms << 16, pack([(old_ms << 16, old_ms, 1, "x", "", "old"),
                                                   ((old_ms << 16) + 1, old_ms, 1, "x", "", "older"),
                                                   (new_ms << 16, new_ms, 1, "x", "", "yesterday")])))
    con.commit()
    con.close()
    s = natterd("--db", db, "--history-days", "2")

    def gone():
        return db_texts(db) == ["yesterday", "recent"]
    natlib.wait_until(gone, what="the 3-day-old messages deleted")
    s.stop()


def start_failing(build, *args, **kw):
    """Run natterd expecting it to refuse to start: (exit code, stderr)."""
    cmd = [natlib.binary("natterd", build), "--bind", "127.0.0.1", "--port", "0", "--http-port", "0"] + list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60, env=natlib.sanitizer_env(), **kw)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def test_corrupt_database_refused(build, tmp_path):
    db = tmp_path / "natter.db"
    db.write_bytes(b"this is not a database, just some text " * 200)
    rc, err = start_failing(build, "--db", str(db))
    assert rc == EXIT_HISTORY and "not a natter database, or damaged" in err, (rc, err)
    assert db.read_bytes().startswith(b"this is not"), "the file must be left as it was"


def test_newer_schema_refused(build, natterd, tmp_path):
    db = str(tmp_path / "natter.db")
    natterd("--db", db).stop()
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 42")
    con.close()
    rc, err = start_failing(build, "--db", db)
    assert rc == EXIT_HISTORY and "schema version 42 is newer" in err, (rc, err)


def test_locked_database_refused(build, natterd, tmp_path):
    db = str(tmp_path / "natter.db")
    natterd("--db", db).stop()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    try:
        rc, err = start_failing(build, "--db", db)
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert rc == EXIT_HISTORY and "locked" in err and "another natterd" in err, (rc, err)


def test_unwritable_database_refused(build, natterd, tmp_path):
    db = tmp_path / "natter.db"
    natterd("--db", str(db)).stop()
    if os.getuid() == 0:
        # root writes anything: run natterd as nobody, the file staying root's 0600... made 0644
        # nobody must reach both the binary and the file: a clone or pytest's base directory
        # may be 0700, so both go to a world-readable directory of their own.
        open_dir = tempfile.mkdtemp(prefix="natter-ro-", dir="/tmp")
        try:
            os.chmod(open_dir, 0o755)
            exe = os.path.join(open_dir, "natterd")
            shutil.copy2(natlib.binary("natterd", build), exe)
            ro_db = os.path.join(open_dir, "natter.db")
            shutil.copy2(db, ro_db)
            os.chmod(ro_db, 0o644)
            cmd = [exe, "--bind", "127.0.0.1", "--port", "0", "--http-port", "0", "--db", ro_db]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=60, env=natlib.sanitizer_env(),
                               preexec_fn=lambda: (os.setgroups([]), os.setgid(65534), os.setuid(65534)))
            rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
        finally:
            shutil.rmtree(open_dir, ignore_errors=True)
    else:
        os.chmod(db, 0o444)
        rc, err = start_failing(build, "--db", str(db))
    assert rc == EXIT_HISTORY and ("not writable" in err or "readonly" in err or "permissions" in err), (rc, err)
    rc, err = start_failing(build, "--db", str(tmp_path / "no" / "such" / "dir.db"))
    assert rc == EXIT_HISTORY and "cannot create" in err, (rc, err)


def test_full_disk_logged_once_chat_goes_on_gap_marked(natterd, client, tmp_path):
    """A file-size limit (RLIMIT_FSIZE) stands for a full disk: writes past it fail.
    Chat goes on, the failure is logged once, and once writing works again (the limit
    raised with prlimit) history marks the gap where messages were not recorded."""
    if not hasattr(resource, "prlimit"):
        pytest.skip("no resource.prlimit to lift the file-size limit again")
    db = str(tmp_path / "natter.db")
    limit = 512 * 1024  # (a new database of 16 KiB pages takes about 200 KiB before any message)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    s = natterd("--db", db, "--rate", "0", preexec_fn=small_files)
    a, b = client(s), client(s)
    a.nick("alice")
    big = "x" * 3000
    i = 0
    deadline = time.time() + 60
    while "cannot write" not in s.drain_log():
        assert time.time() < deadline, "the file-size limit never made a write fail: " + s.log[-2000:]
        a.send("fill %d %s" % (i, big))
        b.expect(r"^#lobby <alice> fill %d " % i)  # chat goes on
        i += 1
    # Keep the disk full past natterd's retry (1 s): what it held meanwhile is lost.
    k, until = 0, time.time() + 2.5
    while time.time() < until:  # still going, and logged once only
        a.send("during %d" % k)
        b.expect(r"^#lobby <alice> during %d$" % k)
        k += 1
        time.sleep(0.02)
    during = k
    a.sync()
    assert s.drain_log().count("cannot write") == 1, s.log
    resource.prlimit(s.pid(), resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    a.send("after the disk has room")

    def recovered():
        a.send("/history 500")
        m = a.expect(r"^-- (no history of #lobby|history of #lobby: \d+ messages?)$")
        lines = []
        while m.group(1) != "no history of #lobby":
            line = a.readline()
            if line == "-- end of history of #lobby":
                break
            lines.append(line)
        return any("after the disk has room" in l for l in lines) and lines
    lines = natlib.wait_until(recovered, timeout=30, what="history written again")
    assert "writing %s again" % db in s.drain_log()
    gap = [l for l in lines if re.match(r"^== %s #lobby -- \d+ messages? not recorded here$" % TIME, l)]
    assert gap, lines
    s.stop()
    held = db_texts(db)
    assert held[-1] == "after the disk has room"
    # The checker: every message said is in history in order, or counted by a gap
    # row where it would have been; nothing else is there.
    said = ["fill %d %s" % (n, big) for n in range(i)] + ["during %d" % n for n in range(during)]
    p = 0
    for row in held[:-1]:
        if isinstance(row, tuple):
            p += row[1]
        else:
            assert p < len(said) and row == said[p], f"history row {row[:40]!r} where {said[p][:40]!r} was said"
            p += 1
    assert p == len(said), f"history accounts for {p} messages, {len(said)} were said"
