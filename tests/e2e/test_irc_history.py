"""Room history for IRC clients end to end (docs/protocol.md, "IRC history"):
replay on join in a chathistory batch (batch + server-time) or as server NOTICEs
(without), IRCv3 draft/chathistory (CHATHISTORY LATEST/BEFORE/AFTER/AROUND/BETWEEN
by msgid and timestamp, the CHATHISTORY= limit, FAIL replies), and plain and IRC
users reading each other's messages. The servers keep history in memory (natlib)."""
import re, time
import pytest

import natlib

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
NOTICE_TIME = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]"
HISTORY_CAPS = ["batch", "server-time", "message-tags", "draft/chathistory"]


def tags_of(line):
    """{key: value} of an IRC line's tags (values unescaped enough for these tests)."""
    if not line.startswith("@"):
        return {}
    out = {}
    for t in line[1:].split(" ", 1)[0].split(";"):
        k, _, v = t.partition("=")
        out[k] = v
    return out


def body_of(line):
    return line.split(" ", 1)[1] if line.startswith("@") else line


def read_batch(c, target, timeout=natlib.DEFAULT_WAIT):
    """Read up to 'BATCH +ref chathistory TARGET' and its end: (start line, [lines inside])."""
    return read_batch_of(c, "chathistory %s" % re.escape(target), timeout)


def read_batch_of(c, kind, timeout=natlib.DEFAULT_WAIT):
    """Read up to 'BATCH +ref KIND' (a pattern) and its end: (start line, [lines inside])."""
    m = c.expect(r"^(@\S+ )?:\S+ BATCH \+(\S+) %s$" % kind, timeout)
    start, ref = m.group(0), m.group(2)
    inside = []
    while True:
        line = c.readline(timeout)
        assert line is not None, "EOF inside a batch"
        if re.match(r"^:\S+ BATCH -%s$" % re.escape(ref), line):
            return start, inside
        assert tags_of(line).get("batch") == ref, f"a line inside batch {ref} without its tag: {line!r}"
        inside.append(line)


def messages(lines):
    """[(msgid, time, nick, target, text)] of the PRIVMSGs in lines (long ones joined)."""
    out = []
    for l in lines:
        t = tags_of(l)
        m = re.match(r"^:([^!\s]+)!\S+ PRIVMSG (\S+) :(.*)$", body_of(l))
        assert m, f"not a PRIVMSG: {l!r}"
        msgid = t.get("msgid", "")
        base = msgid.split("-")[0]
        if out and "-" in msgid and out[-1][0] == base:
            out[-1] = out[-1][:4] + (out[-1][4] + m.group(3),)
            continue
        out.append((base, t.get("time"), m.group(1), m.group(2), m.group(3)))
    return out


def texts(lines):
    return [m[4] for m in messages(lines)]


def serve(natterd, *args):
    return natterd("--server-name", "natter", *args)


def say_all(pl, words):
    """The plain client says each word in its room, each taken in before the next,
    and each in a later millisecond (for timestamp= selectors)."""
    for w in words:
        pl.send(w)
        pl.sync()
        t = time.time()
        while time.time() < t + 0.002:  # the clock moving on, not waiting for the server
            time.sleep(0.001)


def joined(c, room="#lobby"):
    c.send("JOIN " + room)
    c.expect(r" 366 %s %s :End of /NAMES list\.$" % (re.escape(c.nick), re.escape(room)))


def history_client(s, irc, nick, caps=HISTORY_CAPS, room="#lobby"):
    c = irc(s).register(nick, caps=caps)
    joined(c, room)
    return c


# ==== Replay on join ====


def test_replay_on_join_without_batch_is_server_notices(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    pl.nick("alice")
    say_all(pl, ["first words"])
    pl.send("/me waves")
    pl.sync()
    say_all(pl, ["third"])
    b = irc(s).register("bob")
    b.send("JOIN #lobby")
    b.expect(r" 366 bob #lobby :")
    first = b.expect(r"^:\S+ NOTICE #lobby :(.*)$").group(1)
    second = b.expect(r"^:\S+ NOTICE #lobby :(.*)$").group(1)
    third = b.expect(r"^:\S+ NOTICE #lobby :(.*)$").group(1)
    assert re.match(r"^%s <alice> first words$" % NOTICE_TIME, first), first
    assert re.match(r"^%s \* alice waves$" % NOTICE_TIME, second), second
    assert re.match(r"^%s <alice> third$" % NOTICE_TIME, third), third
    # The NOTICEs come from the server, not from alice: no client shows them as her words.
    assert all(re.match(r"^:natter NOTICE #lobby :\[", l) for l in b.lines if "NOTICE #lobby" in l), b.lines
    say_all(pl, ["live now"])
    b.expect(r"^:alice!plain@natter/plain PRIVMSG #lobby :live now$")


def test_replay_on_join_in_a_batch_with_server_time(natterd, client, irc):
    s = serve(natterd, "--history", "2")
    pl = client(s)
    pl.nick("alice")
    say_all(pl, ["one", "two", "three"])
    b = irc(s).register("bob", caps=["batch", "server-time", "message-tags"])
    b.send("JOIN #lobby")
    b.expect(r" 366 bob #lobby :")
    start, inside = read_batch(b, "#lobby")
    assert start.startswith(":natter BATCH +"), start
    assert texts(inside) == ["two", "three"], inside  # --history 2: the last two
    for l in inside:
        t = tags_of(l)
        assert re.match("^%s$" % ISO, t["time"]) and re.match(r"^[0-9a-f]+$", t["msgid"]), l
        assert body_of(l).startswith(":alice!plain@natter/plain PRIVMSG #lobby :"), l
    # server-time without message-tags: the batch, no msgid
    c = irc(s).register("carol", caps=["batch", "server-time"])
    c.send("JOIN #lobby")
    _, inside = read_batch(c, "#lobby")
    assert texts(inside) == ["two", "three"] and all("msgid" not in tags_of(l) for l in inside), inside
    # batch without server-time: notices, as without batch (no time, no telling)
    d = irc(s).register("dave", caps=["batch"])
    d.send("JOIN #lobby")
    d.expect(r"^:natter NOTICE #lobby :%s <alice> two$" % NOTICE_TIME)
    d.expect(r"^:natter NOTICE #lobby :%s <alice> three$" % NOTICE_TIME)
    assert not any(" BATCH " in l for l in d.lines), d.lines


def test_no_replay_when_the_client_asks_with_chathistory(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    say_all(pl, ["before"])
    c = history_client(s, irc, "bob")
    c.sync("after-join")
    assert not any(" BATCH " in l or "before" in l for l in c.lines), c.lines
    c.send("CHATHISTORY LATEST #lobby * 10")
    _, inside = read_batch(c, "#lobby")
    assert texts(inside) == ["before"], inside


def test_long_message_replayed_in_parts_with_their_msgids(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    long_text = ("word%03d " % 0) + " ".join("w%04d" % i for i in range(300))  # ~1800 bytes
    pl.send(long_text)
    pl.sync()
    c = irc(s).register("bob", caps=["batch", "server-time", "message-tags"])
    c.send("JOIN #lobby")
    _, inside = read_batch(c, "#lobby")
    assert len(inside) >= 4, inside
    ids = [tags_of(l)["msgid"] for l in inside]
    assert ids[1:] == ["%s-%d" % (ids[0], i) for i in range(2, len(ids) + 1)], ids
    assert texts(inside) == [long_text]
    b = irc(s).register("nob")
    b.send("JOIN #lobby")
    parts = []
    while "".join(parts) != long_text:
        m = b.expect(r"^:natter NOTICE #lobby :%s <guest\d+> (.*)$" % NOTICE_TIME)  # every part marked
        parts.append(m.group(1))
        assert len(parts) < 10, parts


# ==== CHATHISTORY ====


def ten_messages(s, client, irc):
    """A plain user says m0..m9 in #lobby; an IRC client with the history caps,
    which knows their (msgid, time) from LATEST *."""
    pl = client(s)
    pl.nick("alice")
    words = ["m%d" % i for i in range(10)]
    say_all(pl, words)
    c = history_client(s, irc, "bob")
    c.send("CHATHISTORY LATEST #lobby * 50")
    _, inside = read_batch(c, "#lobby")
    got = messages(inside)
    assert [g[4] for g in got] == words, got
    assert all(g[2] == "alice" and g[3] == "#lobby" for g in got), got
    return pl, c, got


def ask(c, command, target="#lobby"):
    c.send(command)
    return texts(read_batch(c, target)[1])


def test_chathistory_isupport_and_cap(natterd, irc):
    s = serve(natterd)
    c = irc(s)
    c.send("CAP LS 302")
    assert "draft/chathistory" in c.expect(r" CAP \* LS :(.*)$").group(1).split()
    c.send("CAP REQ :draft/chathistory batch")
    c.expect(r" CAP \* ACK :draft/chathistory batch$")
    c.send("NICK bob")
    c.send("USER b 0 * :b")
    c.send("CAP END")
    c.expect(r" 376 | 422 ")
    assert re.search(r" CHATHISTORY=128 ", " ".join(c.lines)), c.lines  # --max-outbuf 256 KiB / 2 KiB
    s2 = serve(natterd, "--max-outbuf", "40960")
    c2 = irc(s2).register("bob")
    assert re.search(r" CHATHISTORY=20 ", " ".join(c2.lines)), c2.lines


def test_chathistory_selectors_by_msgid(natterd, client, irc):
    s = serve(natterd)
    _, c, got = ten_messages(s, client, irc)
    mid = lambda i: "msgid=" + got[i][0]
    assert ask(c, "CHATHISTORY LATEST #lobby * 3") == ["m7", "m8", "m9"]
    assert ask(c, "CHATHISTORY LATEST #lobby %s 10" % mid(7)) == ["m8", "m9"]  # newer than the point
    assert ask(c, "CHATHISTORY BEFORE #lobby %s 3" % mid(5)) == ["m2", "m3", "m4"]
    assert ask(c, "CHATHISTORY BEFORE #lobby %s 100" % mid(2)) == ["m0", "m1"]
    assert ask(c, "CHATHISTORY AFTER #lobby %s 2" % mid(5)) == ["m6", "m7"]
    assert ask(c, "CHATHISTORY AFTER #lobby %s 5" % mid(9)) == []
    assert ask(c, "CHATHISTORY AROUND #lobby %s 4" % mid(5)) == ["m3", "m4", "m5", "m6"]
    assert ask(c, "CHATHISTORY BETWEEN #lobby %s %s 10" % (mid(2), mid(6))) == ["m3", "m4", "m5"]
    assert ask(c, "CHATHISTORY BETWEEN #lobby %s %s 2" % (mid(2), mid(6))) == ["m3", "m4"]  # from a's side
    assert ask(c, "CHATHISTORY BETWEEN #lobby %s %s 2" % (mid(6), mid(2))) == ["m4", "m5"]  # a is the newer
    assert ask(c, "chathistory latest #LOBBY * 1") == ["m9"]  # case as IRC has it
    # the msgid of the second part of a long message stands for the message
    assert ask(c, "CHATHISTORY AFTER #lobby %s-2 1" % mid(3)) == ["m4"]


def test_chathistory_selectors_by_timestamp(natterd, client, irc):
    s = serve(natterd)
    _, c, got = ten_messages(s, client, irc)
    times = [g[1] for g in got]
    words = [g[4] for g in got]
    ts = lambda i: "timestamp=" + times[i]
    # A timestamp stands for every message of its millisecond: exclusive, as msgids are.
    before5 = [w for w, t in zip(words, times) if t < times[5]]
    after5 = [w for w, t in zip(words, times) if t > times[5]]
    assert ask(c, "CHATHISTORY BEFORE #lobby %s 3" % ts(5)) == before5[-3:]
    assert ask(c, "CHATHISTORY AFTER #lobby %s 3" % ts(5)) == after5[:3]
    assert ask(c, "CHATHISTORY LATEST #lobby %s 50" % ts(5)) == after5
    between = [w for w, t in zip(words, times) if times[1] < t < times[8]]
    assert ask(c, "CHATHISTORY BETWEEN #lobby %s %s 50" % (ts(1), ts(8))) == between
    around = ask(c, "CHATHISTORY AROUND #lobby %s 4" % ts(5))
    assert len(around) == 4 and around == words[words.index(around[0]):][:4] and "m5" in around, around
    # a timestamp without its fraction, and mixed selectors
    assert ask(c, "CHATHISTORY BEFORE #lobby timestamp=2000-01-01T00:00:00Z 5") == []
    assert ask(c, "CHATHISTORY AFTER #lobby timestamp=2000-01-01T00:00:00Z 2") == ["m0", "m1"]
    assert ask(c, "CHATHISTORY BETWEEN #lobby timestamp=2000-01-01T00:00:00.5Z msgid=%s 50" % got[3][0]) == \
        ["m0", "m1", "m2"]


def test_chathistory_limit_is_clamped_to_the_isupport_value(natterd, client, irc):
    s = serve(natterd, "--max-outbuf", "40960")  # CHATHISTORY=20
    pl = client(s)
    words = ["n%02d" % i for i in range(25)]
    say_all(pl, words)
    c = history_client(s, irc, "bob")
    assert ask(c, "CHATHISTORY LATEST #lobby * 1000") == words[-20:]
    assert ask(c, "CHATHISTORY LATEST #lobby * 1") == words[-1:]


def test_chathistory_errors(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    pl.send("/join #other")
    pl.expect(r"joined #other")
    c = history_client(s, irc, "bob")
    fails = [
        ("CHATHISTORY", r" 461 bob CHATHISTORY :Not enough parameters$"),
        ("CHATHISTORY FOO #lobby * 10", r"^:natter FAIL CHATHISTORY UNKNOWN_COMMAND FOO :Unknown command$"),
        ("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z 10",
         r"^:natter FAIL CHATHISTORY NEED_MORE_PARAMS TARGETS :Missing parameters$"),
        ("CHATHISTORY TARGETS msgid=1a timestamp=2100-01-01T00:00:00Z 10",
         r"^:natter FAIL CHATHISTORY INVALID_PARAMS msgid=1a :Invalid timestamp$"),
        ("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z x",
         r"^:natter FAIL CHATHISTORY INVALID_PARAMS x :Invalid limit$"),
        ("CHATHISTORY LATEST #lobby *", r"^:natter FAIL CHATHISTORY NEED_MORE_PARAMS LATEST :Missing parameters$"),
        ("CHATHISTORY BETWEEN #lobby * 10", r"^:natter FAIL CHATHISTORY NEED_MORE_PARAMS BETWEEN :"),
        ("CHATHISTORY BEFORE #lobby * 10", r"^:natter FAIL CHATHISTORY INVALID_PARAMS \* :Invalid message reference$"),
        ("CHATHISTORY BEFORE #lobby msgid=zz 10", r"^:natter FAIL CHATHISTORY INVALID_PARAMS msgid=zz :"),
        ("CHATHISTORY BEFORE #lobby msgid=0 10", r"^:natter FAIL CHATHISTORY INVALID_PARAMS msgid=0 :"),
        ("CHATHISTORY BEFORE #lobby timestamp=yesterday 10", r"^:natter FAIL CHATHISTORY INVALID_PARAMS timestamp=yesterday :"),
        ("CHATHISTORY BEFORE #lobby timestamp=2026-13-01T00:00:00Z 10", r" FAIL CHATHISTORY INVALID_PARAMS timestamp="),
        ("CHATHISTORY BEFORE #lobby foo=1 10", r"^:natter FAIL CHATHISTORY INVALID_PARAMS foo=1 :"),
        ("CHATHISTORY LATEST #lobby * 0", r"^:natter FAIL CHATHISTORY INVALID_PARAMS 0 :Invalid limit$"),
        ("CHATHISTORY LATEST #lobby * -3", r"^:natter FAIL CHATHISTORY INVALID_PARAMS -3 :Invalid limit$"),
        ("CHATHISTORY LATEST #lobby * many", r"^:natter FAIL CHATHISTORY INVALID_PARAMS many :Invalid limit$"),
        ("CHATHISTORY LATEST #nope * 10",
         r"^:natter FAIL CHATHISTORY INVALID_TARGET LATEST #nope :Messages could not be retrieved$"),
        ("CHATHISTORY LATEST #other * 10",  # it exists, bob is not in it
         r"^:natter FAIL CHATHISTORY INVALID_TARGET LATEST #other :Messages could not be retrieved$"),
        ("CHATHISTORY LATEST bad!nick * 10", r"^:natter FAIL CHATHISTORY INVALID_TARGET LATEST bad!nick :"),
    ]
    for cmd, rx in fails:
        c.send(cmd)
        c.expect(rx)
    c.sync("after-fails")
    assert not any(" BATCH " in l for l in c.lines), c.lines
    u = irc(s)
    u.send("CHATHISTORY LATEST #lobby * 10")
    u.expect(r" 451 \* :You have not registered$")


def test_chathistory_is_labeled(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    say_all(pl, ["hello"])
    c = history_client(s, irc, "bob", caps=HISTORY_CAPS + ["labeled-response"])
    c.send("@label=q1 CHATHISTORY LATEST #lobby * 5")
    start, inside = read_batch(c, "#lobby")
    assert start.startswith("@label=q1 :natter BATCH +"), start
    assert texts(inside) == ["hello"]
    c.send("@label=q2 CHATHISTORY LATEST #nope * 5")
    c.expect(r"^@label=q2 :natter FAIL CHATHISTORY INVALID_TARGET LATEST #nope ")
    c.sync("labels")
    assert not any(re.search(r":natter ACK$", l) for l in c.lines), c.lines  # one answer per label, not an ACK as well


def test_chathistory_without_batch_reads_as_notices(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    pl.nick("alice")
    say_all(pl, ["old one"])
    c = irc(s).register("bob")
    joined(c)
    c.expect(r"^:natter NOTICE #lobby :%s <alice> old one$" % NOTICE_TIME)  # the replay
    c.send("CHATHISTORY LATEST #lobby * 5")
    c.expect(r"^:natter NOTICE #lobby :%s <alice> old one$" % NOTICE_TIME)
    c.send("CHATHISTORY BEFORE #lobby timestamp=2000-01-01T00:00:00Z 5")
    c.expect(r"^:natter NOTICE #lobby :\*\*\* No history of #lobby$")


def test_history_off_offers_no_chathistory(natterd, irc):
    s = serve(natterd, "--history", "0")
    c = irc(s)
    c.send("CAP LS 302")
    assert "draft/chathistory" not in c.expect(r" CAP \* LS :(.*)$").group(1).split()
    c.send("CAP REQ :draft/chathistory")
    c.expect(r" CAP \* NAK :draft/chathistory$")  # not offered, not taken
    c.send("NICK bob")
    c.send("USER b 0 * :b")
    c.send("CAP END")
    c.expect(r" 376 | 422 ")
    c.nick = "bob"
    assert not any("CHATHISTORY=" in l for l in c.lines), c.lines
    joined(c)
    c.send("CHATHISTORY LATEST #lobby * 5")
    c.expect(r"^:natter FAIL CHATHISTORY MESSAGE_ERROR LATEST #lobby :History is off on this server$")


# ==== Both ways round ====


def test_plain_and_irc_read_each_others_history(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    pl.nick("alice")
    say_all(pl, ["from plain"])
    c = history_client(s, irc, "bob")
    c.send("PRIVMSG #lobby :from irc")
    c.send("PRIVMSG #lobby :\x01ACTION waves\x01")
    pl.expect(r"<bob> from irc$")
    pl.expect(r"\* bob waves$")
    c.send("CHATHISTORY LATEST #lobby * 10")
    _, inside = read_batch(c, "#lobby")
    got = messages(inside)
    assert [(g[2], g[4]) for g in got] == [("alice", "from plain"), ("bob", "from irc"), ("bob", "\x01ACTION waves\x01")]
    assert body_of(inside[1]).startswith(":bob!~u@natter/irc PRIVMSG #lobby :"), inside
    pl.send("/history")
    pl.expect(r"^-- history of #lobby: 3 messages$")
    pl.expect(r"^== %s #lobby <alice> from plain$" % ISO)
    pl.expect(r"^== %s #lobby <bob> from irc$" % ISO)
    pl.expect(r"^== %s #lobby \* bob waves$" % ISO)
    # a later plain client's replay on join holds the IRC user's words too
    late = client(s)
    late.expect(r"^== %s #lobby <bob> from irc$" % ISO)


def test_private_history_both_ways(natterd, client, irc):
    s = serve(natterd, "--history-private")
    pl = client(s)
    pl.nick("alice")
    c = irc(s).register("bob", caps=HISTORY_CAPS)
    pl.send("/msg bob hello bob")
    c.expect(r"^@\S+ :alice!plain@natter/plain PRIVMSG bob :hello bob$")
    c.send("PRIVMSG alice :hi alice")
    pl.expect(r"^\*bob\* hi alice$")
    c.send("CHATHISTORY LATEST alice * 10")
    _, inside = read_batch(c, "alice")
    assert [body_of(l) for l in inside] == [":alice!plain@natter/plain PRIVMSG bob :hello bob",
                                            ":bob!~u@natter/irc PRIVMSG alice :hi alice"], inside
    c.send("CHATHISTORY LATEST ALICE * 10")  # nicks without case
    assert len(read_batch(c, "ALICE")[1]) == 2
    pl.send("/history bob")
    pl.expect(r"^-- history of bob: 2 messages$")
    pl.expect(r"^== %s -> \*bob\* hello bob$" % ISO)
    pl.expect(r"^== %s \*bob\* hi alice$" % ISO)


def read_targets(c, timeout=natlib.DEFAULT_WAIT):
    """Read a draft/chathistory-targets batch: [(target, time)]."""
    out = []
    for line in read_batch_of(c, "draft/chathistory-targets", timeout)[1]:
        t = re.match(r"^:natter CHATHISTORY TARGETS (\S+) (%s)$" % ISO, body_of(line))
        assert t, line
        out.append((t.group(1), t.group(2)))
    return out


def test_chathistory_targets(natterd, client, irc):
    """TARGETS: the rooms bob is in and his private conversations with messages between two
    times, each with the time of its newest message there, oldest first, `limit` of them from
    the first time's side; nothing of rooms he is not in, nor of others' conversations."""
    s = serve(natterd, "--history-private")
    pl, carol = client(s), client(s)
    pl.nick("alice")
    carol.nick("carol")
    c = history_client(s, irc, "bob", caps=HISTORY_CAPS + ["labeled-response"])
    joined(c, "#dev")
    carol.send("/join #secret")
    carol.expect(r"joined #secret")
    carol.send("secret words")
    carol.send("/msg alice not bob's")
    pl.expect(r"not bob's")
    t0 = time.time()
    say_all(pl, ["in the lobby"])
    pl.send("/join #dev")
    pl.expect(r"joined #dev")
    say_all(pl, ["in dev"])
    pl.send("/msg bob psst")
    c.expect(r"PRIVMSG bob :psst$")
    carol.send("/msg Bob from carol")
    c.expect(r"PRIVMSG bob :from carol$")
    c.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z 50")
    got = read_targets(c)
    assert [t for t, _ in got] == ["#lobby", "#dev", "alice", "carol"], got
    times = [w for _, w in got]
    assert times == sorted(times), times
    # the newest message of #lobby was said after t0: its time is the line's
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 - 1))
    assert all(w >= when for w in times), (times, when)
    c.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z 2")
    assert [t for t, _ in read_targets(c)] == ["#lobby", "#dev"]  # from the first time's side
    c.send("CHATHISTORY TARGETS timestamp=2100-01-01T00:00:00Z timestamp=2000-01-01T00:00:00Z 2")
    assert [t for t, _ in read_targets(c)] == ["alice", "carol"]  # backwards: the newest
    # between: only what has a message after the time of #dev's newest
    c.send("CHATHISTORY TARGETS timestamp=%s timestamp=2100-01-01T00:00:00Z 50" % times[1])
    assert [t for t, _ in read_targets(c)] == ["alice", "carol"]
    c.send("CHATHISTORY TARGETS timestamp=2100-01-01T00:00:00Z timestamp=2200-01-01T00:00:00Z 50")
    assert read_targets(c) == []
    c.send("@label=t1 CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z 1")
    c.expect(r"^@label=t1 :natter BATCH \+\S+ draft/chathistory-targets$")
    c.sync("labels")
    assert not any(re.search(r":natter ACK$", l) for l in c.lines), c.lines


def test_chathistory_targets_without_private_history(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    pl.nick("alice")
    c = history_client(s, irc, "bob")
    pl.send("/msg bob psst")
    c.expect(r"PRIVMSG bob :psst$")
    say_all(pl, ["hello"])
    c.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z 50")
    assert [t for t, _ in read_targets(c)] == ["#lobby"]


def test_private_history_off_gives_an_empty_batch(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    pl.nick("alice")
    c = irc(s).register("bob", caps=HISTORY_CAPS)
    pl.send("/msg bob not kept")
    c.expect(r"PRIVMSG bob :not kept$")
    c.send("CHATHISTORY LATEST alice * 10")
    assert read_batch(c, "alice")[1] == []


def test_an_answer_bigger_than_the_output_queue_keeps_the_newest(natterd, client, irc):
    s = serve(natterd, "--max-outbuf", "40960")  # half of it, 20 KiB, for one answer
    pl = client(s)
    words = ["big%02d " % i + "x" * 1800 for i in range(20)]
    say_all(pl, words)
    c = history_client(s, irc, "bob")
    got = ask(c, "CHATHISTORY LATEST #lobby * 20")
    assert 3 <= len(got) < 20 and got == words[-len(got):], [g[:5] for g in got]
    got = ask(c, "CHATHISTORY AFTER #lobby timestamp=2000-01-01T00:00:00Z 20")  # the oldest asked for
    assert 3 <= len(got) < 20 and got == words[:len(got)], [g[:5] for g in got]
    c.sync("still here")


# ==== SEARCH (soju.im/search) ====


def read_search(c, timeout=natlib.DEFAULT_WAIT):
    """Read a soju.im/search batch: its PRIVMSG lines."""
    return read_batch_of(c, r"soju\.im/search", timeout)[1]


def test_search(natterd, client, irc):
    """SEARCH text=...: what the rooms the user is in hold, every word in one message, in a
    soju.im/search batch with time and msgid; in=#room narrows it; nothing of a room the
    user is not in; FTS5 syntax is just words."""
    s = serve(natterd)
    pl = client(s)
    pl.nick("alice")
    say_all(pl, ["the quick brown fox", "a quick word", "slow words"])
    pl.send("/join #secret")
    pl.expect(r"joined #secret")
    say_all(pl, ["quick secret plans"])
    pl.send("/join #dev")
    pl.expect(r"joined #dev")
    say_all(pl, ["quick in dev"])
    c = history_client(s, irc, "bob", caps=HISTORY_CAPS + ["soju.im/search"])
    joined(c, "#dev")
    c.send("SEARCH text=quick")
    got = read_search(c)
    assert [body_of(l) for l in got] == [":alice!plain@natter/plain PRIVMSG #lobby :the quick brown fox",
                                         ":alice!plain@natter/plain PRIVMSG #lobby :a quick word",
                                         ":alice!plain@natter/plain PRIVMSG #dev :quick in dev"], got
    assert all(re.match(ISO, tags_of(l)["time"]) and tags_of(l)["msgid"] for l in got), got
    c.send(r"SEARCH text=quick\sfox")  # escaped as a tag value
    assert [body_of(l).split(" :", 1)[1] for l in read_search(c)] == ["the quick brown fox"]
    c.send("SEARCH :text=quick fox;limit=5")  # or spaces as they are
    assert len(read_search(c)) == 1
    c.send("SEARCH text=brown word")  # both in #lobby, never in one message
    assert read_search(c) == []
    c.send("SEARCH in=#dev;text=quick")
    assert [body_of(l).split(" :", 1)[1] for l in read_search(c)] == ["quick in dev"]
    c.send("SEARCH text=quick;limit=1")  # the newest
    assert [body_of(l).split(" :", 1)[1] for l in read_search(c)] == ["quick in dev"]
    c.send("SEARCH text=secret")
    assert read_search(c) == []
    c.send('SEARCH :text="fox" OR NEAR( * : ^')
    assert read_search(c) == []
    c.send("SEARCH in=#secret;text=quick")  # exists, bob is not in it
    c.expect(r"^:natter FAIL SEARCH INVALID_TARGET #secret :Messages could not be retrieved$")
    c.send("SEARCH in=alice;text=quick")
    c.expect(r"^:natter FAIL SEARCH INVALID_TARGET alice :")
    c.send("SEARCH in=#lobby")
    c.expect(r"^:natter FAIL SEARCH INVALID_PARAMS text :Nothing to search for$")
    c.send("SEARCH text=x;limit=0")
    c.expect(r"^:natter FAIL SEARCH INVALID_PARAMS limit :Invalid limit$")
    c.send("SEARCH")
    c.expect(r" 461 bob SEARCH :Not enough parameters$")


def test_search_without_batch_is_server_notices(natterd, client, irc):
    s = serve(natterd)
    pl = client(s)
    pl.nick("alice")
    say_all(pl, ["find me here"])
    c = irc(s).register("bob")
    joined(c)
    c.send("SEARCH text=find")
    line = c.expect(r"^:natter NOTICE bob :(.*)$").group(1)
    assert re.match(r"^%s #lobby <alice> find me here$" % NOTICE_TIME, line), line
    c.send("SEARCH text=nowhere")
    c.expect(r'^:natter NOTICE bob :\*\*\* Search for "nowhere": nothing found$')


def test_search_is_rate_limited_and_off_without_history(natterd, client, irc):
    s = serve(natterd, "--rate", "1", "--burst", "20")
    c = history_client(s, irc, "bob")
    for _ in range(6):
        c.send("SEARCH text=anything")
    c.expect(r"^:natter NOTICE bob :\*\*\* Slow down: ")  # each search costs 10 lines of flood control
    off = serve(natterd, "--history", "0")
    d = irc(off).register("dan")
    d.send("SEARCH text=x")
    d.expect(r"^:natter FAIL SEARCH MESSAGE_ERROR :History is off on this server$")
    d.send("CAP LS 302")
    assert "soju.im/search" not in d.expect(r" CAP dan LS :(.*)$").group(1)
