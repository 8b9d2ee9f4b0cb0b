"""End-to-end tests of natterd's IRC codec, speaking raw IRC, with plain clients in
the same rooms (docs/protocol.md, "IRC"). Every line an IrcClient reads is checked
to end in CR LF, be valid UTF-8 and fit 512 bytes without its tags."""
import re, signal, time
import pytest

import natlib


def isupport(lines):
    tokens = {}
    for l in lines:
        m = re.match(r"^:\S+ 005 \S+ (.*) :are supported by this server$", l)
        if m:
            words = m.group(1).split(" ")
            assert len(words) <= 13, l
            for w in words:
                k, _, v = w.partition("=")
                tokens[k] = v
    return tokens


def test_irc_registration_without_cap(natterd, irc):
    s = natterd("--server-name", "irc.test", "--network", "TestNet")
    c = irc(s)
    c.send("NICK alice")
    c.send("USER al 0 * :Alice Liddell")
    c.expect(r"^:irc\.test 001 alice :Welcome to the TestNet IRC Network alice!~al@natter/irc$")
    c.expect(r"^:irc\.test 002 alice :Your host is irc\.test, running version natter-")
    c.expect(r"^:irc\.test 003 alice :This server was created ")
    c.expect(r"^:irc\.test 004 alice irc\.test natter-\S+ ioZ beIiklmnostv beIklov$")
    c.expect(r"^:irc\.test 251 alice :There are 1 users")
    for num in ("254", "255", "265", "266"):
        c.expect(r"^:irc\.test %s alice " % num)
    c.expect(r"^:irc\.test 422 alice :MOTD File is missing$")
    t = isupport(c.lines)
    assert t["CASEMAPPING"] == "rfc8265" and t["CHANTYPES"] == "#" and t["NETWORK"] == "TestNet", t
    assert t["NICKLEN"] == "24" and t["PREFIX"] == "(ov)@+" and t["CHANMODES"] == "beI,k,l,imnst" and "UTF8ONLY" in t, t
    assert "PRIVMSG:4" in t["TARGMAX"] and "WHOX" not in t, t
    c.send("LUSERS")
    c.expect(r" 251 alice :There are 1 users")
    c.send("VERSION")
    c.expect(r"^:irc\.test 351 alice natter-\S+ irc\.test :")
    c.send("TIME")
    c.expect(r"^:irc\.test 391 alice irc\.test :")


def test_irc_registration_with_cap_waits_for_cap_end(natterd, irc):
    s = natterd()
    c = irc(s)
    c.send("CAP LS 302")
    c.send("NICK bob")
    c.send("USER bob 0 * :Bob")
    m = c.expect(r" CAP \* LS :(.*)$")
    advertised = m.group(1).split()
    assert set(advertised) == {"away-notify", "batch", "cap-notify", "draft/chathistory", "echo-message",
                               "labeled-response", "message-tags", "multi-prefix", "server-time", "setname",
                               "soju.im/search", "userhost-in-names"}, advertised
    c.sync("before-end")  # PING works before registration...
    assert not any(" 001 " in l for l in c.lines), c.lines  # ...but no welcome until CAP END
    c.send("CAP REQ :server-time no-such-cap")
    c.expect(r" CAP \* NAK :server-time no-such-cap$")
    c.send("CAP REQ :-cap-notify")
    c.expect(r" CAP \* NAK :-cap-notify$")  # 302 implies cap-notify, for good
    c.send("CAP REQ :server-time echo-message")
    c.expect(r" CAP \* ACK :server-time echo-message$")
    c.send("CAP LIST")
    c.expect(r" CAP \* LIST :cap-notify echo-message server-time$")
    c.send("CAP BOGUS")
    c.expect(r" 410 \* BOGUS :Invalid CAP command$")
    c.send("CAP END")
    c.expect(r" 001 bob :")
    c.send("CAP REQ :-echo-message")  # also after registration
    c.expect(r" CAP bob ACK :-echo-message$")


def test_irc_commands_before_registration_get_451(natterd, irc):
    s = natterd()
    c = irc(s)
    c.send("JOIN :")
    c.expect(r"^:\S+ 451 \* :You have not registered$")
    c.send("PRIVMSG #lobby :hi")
    c.expect(r" 451 \* :You have not registered$")
    c.send("FROBNICATE")
    c.expect(r" 451 \* :You have not registered$")
    c.send("USER x 0")
    c.expect(r" 461 \* USER :Not enough parameters$")
    c.register("late")
    c.send("USER again 0 * :again")
    c.expect(r" 462 late :You may not reregister$")
    c.send("FROBNICATE")
    c.expect(r" 421 late FROBNICATE :Unknown command$")
    c.send("NICK")
    c.expect(r" 431 late :No nickname given$")


def test_irc_nick_collisions_across_codecs(natterd, client, irc):
    s = natterd()
    p = client(s)
    p.nick("alice")
    c = irc(s)
    c.send("NICK alice")
    c.expect(r" 433 \* alice :Nickname is already in use$")
    c.send("NICK ALICE")  # case-insensitive, as CASEMAPPING says
    c.expect(r" 433 \* ALICE :Nickname is already in use$")
    c.send("NICK \uff21lice")  # fullwidth A: beyond ASCII, as rfc8265 says (ascii would not)
    c.expect(r" 433 \* \S+ :Nickname is already in use$")
    for bad in ("a!b", "a@b", "+bob", "::x", "#x", "a,b"):
        c.send("NICK " + bad)
        c.expect(r" 432 \* \S+ :Erroneous nickname$")
    c.register("bob")
    p.send("/nick BOB")
    p.expect(r"^!! name taken: BOB$")
    c.send("NICK Alice")
    c.expect(r" 433 bob Alice :Nickname is already in use$")
    p.send("/nick a!b")
    p.expect(r"^!! invalid name: a!b ")


def test_irc_on_the_plain_port(natterd, client, irc):
    # An IRC client on the plain port is handed to the IRC codec by its first line:
    # it never sees a plain line, and the room never sees a guest arrive.
    s = natterd()
    p = client(s)
    c = irc(s, port=s.port)
    c.register("ircer", caps=["server-time"])
    c.send("JOIN #lobby")
    c.expect(r"^:\S+ 366 ircer #lobby ")
    assert not any(l.startswith("--") for l in c.lines), c.lines
    p.expect(r"^-- ircer joined #lobby$")
    assert not any("guest" in l and p.name not in l for l in p.lines), p.lines
    p.send("hello irc")
    c.expect(r" PRIVMSG #lobby :hello irc$")
    # nc users keep the plain protocol on the same port
    q = client(s)
    q.send("still plain")
    p.expect(r"^#lobby <%s> still plain$" % q.name)


def test_irc_client_slower_than_the_greeting(natterd, client, irc):
    # An IRC client that speaks only after the plain welcome: handed over all the same,
    # and its registration is never said in #lobby.
    s = natterd()
    p = client(s)
    c = irc(s, port=s.port)
    guest = p.expect(r"^-- (guest\d+) joined #lobby$").group(1)
    natlib.wait_until(lambda: b"joined #lobby\n" in c.buf or (c._fill(0.1) and False), what="the plain welcome")
    assert c.buf.startswith(b"-- welcome to natter, " + guest.encode()), c.buf
    c.buf = b""  # plain lines: the IRC client would show them as unknown
    c.register("late")
    p.expect(r"^-- %s quit$" % guest)
    c.send("JOIN #lobby")
    p.expect(r"^-- late joined #lobby$")
    assert not any("NICK" in l or "USER" in l for l in p.lines), p.lines


def test_irc_join_names_topic_who_whois_mode(natterd, client, irc):
    s = natterd()
    p = client(s)
    p.nick("pat")
    p.send("/topic Welcome, all")
    p.expect(r"^-- pat set the topic of #lobby: Welcome, all$")
    c = irc(s).register("ivy", user="ivy", caps=["userhost-in-names"])
    c.send("JOIN #lobby,#dev")
    c.expect(r"^:ivy!~ivy@natter/irc JOIN #lobby$")
    c.expect(r"^:\S+ 332 ivy #lobby :Welcome, all$")
    c.expect(r"^:\S+ 333 ivy #lobby pat \d+$")
    m = c.expect(r"^:\S+ 353 ivy = #lobby :(.*)$")
    # pat was first in #lobby, but nobody keeps the default room (docs/protocol.md)
    assert sorted(m.group(1).split()) == ["ivy!~ivy@natter/irc", "pat!plain@natter/plain"], m.group(0)
    c.expect(r"^:\S+ 366 ivy #lobby :End of /NAMES list\.$")
    c.expect(r"^:ivy!~ivy@natter/irc JOIN #dev$")
    c.expect(r" 353 ivy = #dev :@ivy!~ivy@natter/irc$")  # ivy made #dev: its operator
    c.expect(r" 366 ivy #dev ")
    p.expect(r"^-- ivy joined #lobby$")
    c.send("TOPIC #lobby :from irc")  # #lobby is -t: any member sets its topic
    c.expect(r"^:ivy!~ivy@natter/irc TOPIC #lobby :from irc$")
    p.expect(r"^-- ivy set the topic of #lobby: from irc$")
    c.send("TOPIC #lobby")
    c.expect(r" 332 ivy #lobby :from irc$")
    c.send("TOPIC #dev")
    c.expect(r" 331 ivy #dev :No topic is set$")
    c.send("TOPIC #nowhere :x")
    c.expect(r" 403 ivy #nowhere :No such channel$")
    c.send("WHO #lobby")
    who = [c.expect(r" 352 ivy #lobby .*$").group(0) for _ in range(2)]
    assert any(" 352 ivy #lobby plain natter/plain " in w and w.endswith(" pat H :0 pat") for w in who), who
    assert any(" ~ivy natter/irc " in w and w.endswith(":0 ivy real") for w in who), who
    c.expect(r" 315 ivy #lobby :End of WHO list$")
    c.send("WHO pat")
    c.expect(r" 352 ivy #lobby plain natter/plain \S+ pat H :0 pat$")
    c.expect(r" 315 ivy pat :End of WHO list$")
    c.send("WHOIS pat")
    c.expect(r" 311 ivy pat plain natter/plain \* :pat$")
    c.expect(r" 319 ivy pat :#lobby$")
    c.expect(r" 312 ivy pat \S+ :")
    c.expect(r" 318 ivy pat :End of /WHOIS list\.$")
    c.send("WHOIS nobody")
    c.expect(r" 401 ivy nobody :No such nick/channel$")
    c.expect(r" 318 ivy nobody :")
    c.send("MODE #lobby")
    c.expect(r" 324 ivy #lobby \+n$")
    c.send("MODE #lobby b")
    c.expect(r" 368 ivy #lobby :End of channel ban list$")
    c.send("MODE #lobby +t")  # nobody keeps #lobby: pat, its first member, could not either
    c.expect(r" 482 ivy #lobby :You're not channel operator$")
    c.send("MODE #lobby X")
    c.expect(r" 472 ivy X :is unknown mode char to me$")
    c.send("MODE ivy")
    c.expect(r" 221 ivy \+$")
    c.send("MODE ivy +i")
    c.expect(r"^:ivy MODE ivy :\+i$")
    c.send("MODE pat +i")
    c.expect(r" 502 ivy :Can't change mode for other users$")
    c.send("LIST")
    c.expect(r" 321 ivy Channel :Users  Name$")
    c.expect(r" 322 ivy #dev 1 :$")
    c.expect(r" 322 ivy #lobby 2 :from irc$")
    c.expect(r" 323 ivy :End of /LIST$")
    c.send("NAMES #dev")
    c.expect(r" 353 ivy = #dev :@ivy!~ivy@natter/irc$")
    c.send("PART #dev :done here")
    c.expect(r"^:ivy!~ivy@natter/irc PART #dev :done here$")
    c.send("PART #dev")
    c.expect(r" 403 ivy #dev :No such channel$")
    p.send("/join #solo")
    p.expect(r"^-- pat joined #solo$")  # (another connection: wait until it is done)
    c.send("PART #solo")
    c.expect(r" 442 ivy #solo :You're not on that channel$")
    c.send("JOIN 0")
    c.expect(r"^:ivy!~ivy@natter/irc PART #lobby$")
    p.expect(r"^-- ivy left #lobby$")


def test_irc_messages_both_ways(natterd, client, irc):
    s = natterd()
    p = client(s)
    p.nick("pat")
    c = irc(s).register("ivy")
    d = irc(s).register("dan")
    for x in (c, d):
        x.send("JOIN #lobby")
        x.expect(r" 366 \S+ #lobby ")
    p.send("plain words")
    c.expect(r"^:pat!plain@natter/plain PRIVMSG #lobby :plain words$")
    c.send("PRIVMSG #lobby :irc words")
    p.expect(r"^#lobby <ivy> irc words$")
    d.expect(r"^:ivy!~u@natter/irc PRIVMSG #lobby :irc words$")
    p.send("/me waves")
    c.expect(r"^:pat!plain@natter/plain PRIVMSG #lobby :\x01ACTION waves\x01$")
    c.send("PRIVMSG #lobby :\x01ACTION bows\x01")
    p.expect(r"^#lobby \* ivy bows$")
    p.send("/msg ivy psst")
    c.expect(r"^:pat!plain@natter/plain PRIVMSG ivy :psst$")
    c.send("PRIVMSG pat :back at you")
    p.expect(r"^\*ivy\* back at you$")
    c.send("PRIVMSG pat :\x01ACTION nods\x01")  # a private action, both ways
    p.expect(r"^\*ivy\* \* ivy nods$")
    c.send("PRIVMSG dan :\x01ACTION winks\x01")
    d.expect(r"^:ivy!~u@natter/irc PRIVMSG dan :\x01ACTION winks\x01$")
    c.send("NOTICE #lobby :a notice")
    p.expect(r"^#lobby -ivy- a notice$")
    d.expect(r"^:ivy!~u@natter/irc NOTICE #lobby :a notice$")
    c.send("NOTICE pat :private notice")
    p.expect(r"^-ivy- private notice$")
    # several targets, up to TARGMAX
    c.send("PRIVMSG pat,dan :to both")
    p.expect(r"^\*ivy\* to both$")
    d.expect(r"^:ivy!~u@natter/irc PRIVMSG dan :to both$")
    c.send("PRIVMSG a,b,c,d,e :too many")
    c.expect(r" 407 ivy e :Too many recipients")
    # formatting codes pass to IRC clients, are stripped for plain ones
    c.send("PRIVMSG #lobby :\x02bold\x02 and \x0304,01red\x03 done")
    d.expect(r"^:ivy!\S+ PRIVMSG #lobby :\x02bold\x02 and \x0304,01red\x03 done$")
    p.expect(r"^#lobby <ivy> bold and red done$")
    # CTCP other than ACTION: between IRC users only
    c.send("PRIVMSG #lobby :\x01VERSION\x01")
    d.expect(r" PRIVMSG #lobby :\x01VERSION\x01$")
    c.send("PRIVMSG #lobby :after ctcp")
    p.expect(r"^#lobby <ivy> after ctcp$")
    assert not any("VERSION" in l for l in p.lines), p.lines
    # errors
    c.send("PRIVMSG nobody :x")
    c.expect(r" 401 ivy nobody :No such nick/channel$")
    c.send("PRIVMSG #nowhere :x")
    c.expect(r" 403 ivy #nowhere :No such channel$")
    p.send("/join #plainonly")
    p.expect(r"^-- pat joined #plainonly$")
    c.send("PRIVMSG #plainonly :x")
    c.expect(r" 404 ivy #plainonly :Cannot send to channel$")
    c.send("PRIVMSG")
    c.expect(r" 411 ivy :No recipient given \(PRIVMSG\)$")
    c.send("PRIVMSG #lobby")
    c.expect(r" 412 ivy :No text to send$")
    c.send("NOTICE nobody :x")  # notices get no error replies
    c.sync()
    assert not any(" 401 ivy nobody" in l for l in c.lines[-3:]), c.lines


def test_irc_long_plain_message_split_at_characters(natterd, client, irc):
    s = natterd("--max-line", "8192", "--max-outbuf", "65536")
    p = client(s)
    p.nick("pat")
    c = irc(s).register("ivy", caps=["server-time", "message-tags"])
    c.send("JOIN #lobby")
    c.expect(r" 366 ivy #lobby ")
    text = ("ab é 小明 🎉 " * 400)[:3000].strip()
    p.send(text)
    got, ids = "", []
    while len(got) < len(text):
        m = c.expect(r"^@(\S+) :pat!plain@natter/plain PRIVMSG #lobby :(.*)$")
        ids.append(dict(kv.split("=", 1) for kv in m.group(1).split(";"))["msgid"])
        got += m.group(2)
    assert got == text
    assert len(ids) >= 6 and len(set(ids)) == len(ids), ids  # every part its own msgid
    p.send("/me " + "x" * 1000)
    got = ""
    while len(got) < 1000:
        got += c.expect(r" PRIVMSG #lobby :\x01ACTION (x+)\x01$").group(1)
    assert got == "x" * 1000


def test_irc_caps_server_time_msgid_echo(natterd, client, irc):
    s = natterd()
    p = client(s)
    c = irc(s).register("ivy", caps=["server-time", "message-tags", "echo-message"])
    d = irc(s).register("dan", caps=["message-tags"])
    e = irc(s).register("eve")
    for x in (c, d, e):
        x.send("JOIN #lobby")
        x.expect(r" 366 \S+ #lobby ")
    c.send("@+draft/reply=abc;label=x PRIVMSG #lobby :tagged")
    m = c.expect(r"^@time=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z);msgid=(\S+);\+draft/reply=abc "
                 r":ivy!~u@natter/irc PRIVMSG #lobby :tagged$")  # client-only tags relayed, label not
    d_m = d.expect(r"^@msgid=(\S+);\+draft/reply=abc :ivy!~u@natter/irc PRIVMSG #lobby :tagged$")
    assert d_m.group(1) == m.group(2)  # the hub's message id, the same for everyone
    e.expect(r"^:ivy!~u@natter/irc PRIVMSG #lobby :tagged$")  # no caps: no tags
    p.expect(r"^#lobby <ivy> tagged$")
    t = time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(t) - time.timezone - time.time()) < 60
    c.send("PRIVMSG dan :private echo")
    mine = c.expect(r";msgid=(\S+) :ivy!~u@natter/irc PRIVMSG dan :private echo$").group(1)
    theirs = d.expect(r"^@msgid=(\S+) :ivy!~u@natter/irc PRIVMSG dan :private echo$").group(1)
    assert mine == theirs
    d.send("PRIVMSG #lobby :no echo for dan")
    d.sync()
    assert not any("no echo for dan" in l for l in d.lines), d.lines
    # TAGMSG: tags alone, to those who asked for message-tags
    c.send("@+typing=active;bad-key;+x=1\\s2 TAGMSG #lobby")
    c.expect(r";msgid=\S+;\+typing=active;\+x=1\\s2 :ivy!~u@natter/irc TAGMSG #lobby$")  # echoed
    d.expect(r"^@msgid=\S+;\+typing=active;\+x=1\\s2 :ivy!~u@natter/irc TAGMSG #lobby$")
    c.send("@+typing=paused TAGMSG dan")
    d.expect(r"^@msgid=\S+;\+typing=paused :ivy!~u@natter/irc TAGMSG dan$")
    c.send("TAGMSG nobody")
    c.expect(r" 401 ivy nobody :No such nick/channel$")
    c.send("PRIVMSG #lobby :after tags")
    for x in (e, p):
        x.expect(r"after tags$")
        assert not any("TAGMSG" in l or "typing" in l for l in x.lines), x.lines


def test_irc_caps_away_notify_and_away(natterd, client, irc):
    s = natterd()
    p = client(s)
    p.nick("pat")
    c = irc(s).register("ivy", caps=["away-notify"])
    d = irc(s).register("dan")
    for x in (c, d):
        x.send("JOIN #lobby")
        x.expect(r" 366 \S+ #lobby ")
    d.send("AWAY :lunch")
    d.expect(r" 306 dan :You have been marked as being away$")
    c.expect(r"^:dan!~u@natter/irc AWAY :lunch$")
    c.send("PRIVMSG dan :you there?")
    c.expect(r" 301 ivy dan :lunch$")
    c.send("WHO dan")
    c.expect(r" 352 ivy #lobby ~u natter/irc \S+ dan G :0 dan real$")
    c.send("USERHOST dan pat nobody")
    c.expect(r" 302 ivy :dan=-~u@natter/irc pat=\+plain@natter/plain$")
    c.send("ISON dan nobody PAT")
    c.expect(r" 303 ivy :dan pat$")
    p.send("/away coffee")
    p.expect(r"^-- you are marked away: coffee$")
    c.expect(r"^:pat!plain@natter/plain AWAY :coffee$")
    d.send("AWAY")
    d.expect(r" 305 dan :You are no longer marked as being away$")
    c.expect(r"^:dan!~u@natter/irc AWAY$")
    d.sync()
    assert not any(" AWAY" in l and l.startswith(":pat") for l in d.lines), d.lines  # dan has no away-notify


def test_irc_cap_labeled_response_and_batch(natterd, client, irc):
    s = natterd()
    p = client(s)
    c = irc(s)
    c.send("CAP LS 302")
    c.send("CAP REQ :labeled-response")
    c.expect(r" CAP \* NAK :labeled-response$")  # needs batch
    c.register("ivy", caps=["batch", "labeled-response", "echo-message", "message-tags"])
    c.send("@label=p1 PING :x")
    c.expect(r"^@label=p1 :\S+ PONG \S+ :x$")  # one line: the label on it
    c.send("@label=j\\s2 JOIN #lobby")  # several: a batch; the label escaped back as it came
    m = c.expect(r"^@label=j\\s2 :\S+ BATCH \+(\S+) labeled-response$")
    ref = m.group(1)
    c.expect(r"^@batch=%s;msgid=\S+ :ivy!~u@natter/irc JOIN #lobby$" % ref)
    c.expect(r"^@batch=%s :\S+ 353 ivy = #lobby :" % ref)
    c.expect(r"^@batch=%s :\S+ 366 ivy #lobby " % ref)
    c.expect(r"^:\S+ BATCH -%s$" % ref)
    c.send("@label=n3 PONG :x")
    c.expect(r"^@label=n3 :\S+ ACK$")  # nothing to say: ACK
    c.send("@label=m4 PRIVMSG #lobby :hello")
    c.expect(r"^@label=m4;msgid=\S+ :ivy!~u@natter/irc PRIVMSG #lobby :hello$")  # the echo carries it
    p.expect(r"^#lobby <ivy> hello$")
    d = irc(s).register("dan", caps=["message-tags"])
    d.send("@label=zz PING :y")
    d.expect(r"^:\S+ PONG \S+ :y$")  # without the capability, no label
    c.send("@label=q5 QUIT :done")
    c.expect(r"^@label=q5 ERROR :Closing link: \(Quit: done\)$")
    c.expect_eof()


def test_irc_cap_setname(natterd, client, irc):
    s = natterd()
    p = client(s)
    c = irc(s).register("ivy", caps=["setname"])
    d = irc(s).register("dan", caps=["setname"])
    e = irc(s).register("eve")
    for x in (c, d, e):
        x.send("JOIN #lobby")
        x.expect(r" 366 \S+ #lobby ")
    d.send("SETNAME :Daniel Q. Public")
    d.expect(r"^:dan!~u@natter/irc SETNAME :Daniel Q\. Public$")  # the changer too
    c.expect(r"^:dan!~u@natter/irc SETNAME :Daniel Q\. Public$")
    c.send("WHOIS dan")
    c.expect(r" 311 ivy dan ~u natter/irc \* :Daniel Q\. Public$")
    d.send("SETNAME :" + "n" * 300)
    c.expect(r"^:dan!\S+ SETNAME :n{100}$")  # cut to 100 bytes
    d.send("SETNAME :")
    d.expect(r"^:\S+ FAIL SETNAME INVALID_REALNAME :")
    for x in (e, p):
        x.send("PING :z" if x is e else "/rooms")
        x.expect(r"PONG \S+ :z$" if x is e else r"^-- rooms:")
        assert not any("SETNAME" in l for l in x.lines), x.lines


def test_irc_cap_userhost_in_names_off(natterd, irc):
    s = natterd()
    c = irc(s).register("ivy", caps=[])
    c.send("JOIN #lobby")
    c.expect(r" 353 ivy = #lobby :ivy$")  # first in #lobby, and still no operator of it


def test_irc_nick_and_quit_seen_by_both(natterd, client, irc):
    s = natterd()
    p = client(s)
    p.nick("pat")
    c = irc(s).register("ivy")
    d = irc(s).register("dan")
    for x in (c, d):
        x.send("JOIN #lobby")
        x.expect(r" 366 \S+ #lobby ")
    c.send("NICK ivy2")
    c.expect(r"^:ivy!~u@natter/irc NICK :ivy2$")
    d.expect(r"^:ivy!~u@natter/irc NICK :ivy2$")
    p.expect(r"^-- ivy is now known as ivy2$")
    p.send("/nick pat2")
    c.expect(r"^:pat!plain@natter/plain NICK :pat2$")
    c.send("QUIT :gone fishing")
    c.expect(r"^ERROR :Closing link: \(Quit: gone fishing\)$")
    c.expect_eof()
    d.expect(r"^:ivy2!~u@natter/irc QUIT :Quit: gone fishing$")
    p.expect(r"^-- ivy2 quit \(Quit: gone fishing\)$")
    d.send("WHOWAS ivy2")
    d.expect(r" 314 dan ivy2 ~u natter/irc \* :ivy real$")
    d.expect(r" 369 dan ivy2 :End of WHOWAS$")
    d.send("WHOWAS never")
    d.expect(r" 406 dan never :There was no such nickname$")
    p.send("bye")
    d.expect(r"^:pat2!plain@natter/plain QUIT :")
    d.sock.close()  # a vanished IRC client: the plain side hears it quit
    q = client(s)
    e = irc(s).register("eve")
    e.send("JOIN #lobby")
    e.expect(r" 366 eve #lobby ")
    e.sock.close()
    q.expect(r"^-- eve quit \(connection closed\)$")


def test_irc_password(natterd, irc):
    s = natterd("--irc-password", "sesame")
    c = irc(s)
    c.send("PASS wrong")
    c.send("NICK x")
    c.send("USER x 0 * :x")
    c.expect(r" 464 \* :Password incorrect$")
    c.expect(r"^ERROR :Closing link: \(Bad password\)$")
    c.expect_eof()
    irc(s).register("y", password="sesame")
    n = irc(s)
    n.send("NICK z")
    n.send("USER z 0 * :z")
    n.expect(r" 464 \* :Password incorrect$")


def test_irc_motd(natterd, irc, tmp_path):
    motd = tmp_path / "motd"
    motd.write_text("Hello there\n\x1b[31mno escapes\nlast line\n")
    s = natterd("--irc-motd", str(motd))
    c = irc(s).register("ivy")
    assert any(re.search(r" 375 ivy :- \S+ Message of the day - $", l) for l in c.lines), c.lines
    body = [l.split(" :- ", 1)[1] for l in c.lines if " 372 ivy " in l]
    assert body == ["Hello there", "[31mno escapes", "last line"], body
    c.send("MOTD")
    c.expect(r" 376 ivy :End of /MOTD command\.$")
    # SIGHUP rereads the file (a reload hook); a file that has gone keeps the MOTD in use
    motd.write_text("fresh words\n")
    mark = len(s.drain_log())
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"reloaded ", start=mark)
    c.send("MOTD")
    c.expect(r" 372 ivy :- fresh words$")
    motd.unlink()
    mark = len(s.drain_log())
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"--irc-motd \S+; keeping the MOTD in use", start=mark)
    c.send("MOTD")
    c.expect(r" 372 ivy :- fresh words$")


def test_irc_motd_is_the_motd_line_without_a_file(natterd, irc):
    s = natterd("--motd", "be \x1b[31mkind")
    c = irc(s).register("ivy")
    assert " 372 ivy :- be [31mkind" in "\n".join(c.lines), c.lines
    c.send("MOTD")
    c.expect(r" 372 ivy :- be \[31mkind$")


def test_irc_motd_unreadable_is_a_startup_error(binary):
    import subprocess
    p = subprocess.run([binary("natterd"), "--port", "0", "--irc-port", "0", "--http-port", "0", "--irc-motd", "/nonexistent/motd"],
                       capture_output=True, text=True, timeout=10, env=natlib.sanitizer_env())
    assert p.returncode == 1 and "--irc-motd /nonexistent/motd" in p.stderr, p
    p = subprocess.run([binary("natterd"), "--server-name", "bad name"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--server-name" in p.stderr, p


def test_irc_ping_both_ways_and_idle_timeout(natterd, irc):
    s = natterd("--idle-timeout", "2")
    c = irc(s).register("ivy")
    c.send("PING :12345")
    c.expect(r"^:\S+ PONG \S+ :12345$")
    c.expect(r"^PING :\S+$", timeout=10)  # silent for half the idle timeout: the server asks
    c.expect(r"^ERROR :Closing link: ivy \(Ping timeout: 2 seconds\)$", timeout=10)
    c.expect_eof()
    d = irc(s).register("dan")
    d.expect(r"^PING :(\S+)$", timeout=10)
    d.send("PONG :x")  # answering keeps it
    d.expect(r"^PING :", timeout=10)
    d.send("PONG :x")
    d.sync()


def test_irc_flood_control_worded_as_irc(natterd, irc):
    s = natterd("--rate", "1", "--burst", "3")
    c = irc(s).register("ivy")
    c.send("".join("PING :p%d\r\n" % i for i in range(8)))
    c.expect(r"^:\S+ NOTICE ivy :\*\*\* Slow down: more than 1 lines a second, reading paused$")
    c.expect(r" PONG \S+ :p7$", timeout=20)  # nothing lost


def test_irc_bare_newline_and_hostile_bytes(natterd, client, irc):
    s = natterd("--max-line", "1024")
    p = client(s)
    c = irc(s)
    c.send(b"NICK ivy\nUSER u 0 * :ivy\n")  # bare \n ends lines too
    c.expect(r" 001 ivy ")
    c.send(b"JOIN #lobby\n")
    c.expect(r" 366 ivy #lobby ")
    c.send(b"PRIVMSG #lobby :esc\x1b[2J nul\x00 bad\xff\xfe cr\rend\r\n")
    m = p.expect(r"^#lobby <ivy> esc")
    assert "\x1b" not in m.string and "\x00" not in m.string and "\ufffd" in m.string, repr(m.string)
    c.send(b"@" + b"a=" + b"x" * 5000 + b" PRIVMSG #lobby :huge tags\r\n")
    c.expect(r" 417 ivy :Input line was too long$")
    c.send(b"PRIVMSG #lobby :" + b"y" * 3000 + b"\r\n")
    c.expect(r" 417 ivy :Input line was too long$")
    for junk in (b"\r\n", b"   \r\n", b"@only-tags\r\n", b":prefix-only\r\n", b"@t :p\r\n", b"\x00\x01\x02\r\n",
                 b"PRIVMSG " + b" ".join(b"p%d" % i for i in range(30)) + b"\r\n", b"MODE\r\n", b"WHO\r\n",
                 b"JOIN ,,,\r\n", b"PART ,\r\n", b"TOPIC\r\n", b"PRIVMSG ,,, :x\r\n", b"CAP\r\n", b"NICK :\r\n"):
        c.send(junk)
    c.send(b"@tag=v :ivy!x@y PRIVMSG #lobby :still here\r\n")  # a prefix from a client is ignored
    p.expect(r"^#lobby <ivy> still here$")
    # found by fuzz_irc: replies must never cut a UTF-8 character (readline decodes strictly)
    c.send("MODE #lobby \u00e9")
    c.expect(r" 472 ivy \? :is unknown mode char to me$")  # shown as ?: never a part, nor a control character
    c.send("QUIT :" + "\u00e9" * 300)
    c.expect(r"^ERROR :Closing link: \(Quit: \u00e9+\)$")
    p.expect(r"^-- ivy quit \(Quit: \u00e9+\)$")


def test_irc_listings_are_bounded_and_storms_summed(natterd, irc, client):
    # The hub's bounded listings (--max-list) reach IRC as NAMES/WHO/LIST that say
    # how many were left out; a notice storm reaches IRC as one server NOTICE.
    s = natterd("--max-list", "2", "--notice-storm", "2", "--connect-rate", "0")
    c = irc(s)
    c.register("ivy")
    c.send("JOIN #lobby")
    c.expect(r" 366 ivy #lobby ")
    for _ in range(3):
        client(s)  # each is in #lobby once it has its welcome
    c.send("NAMES #lobby")
    c.expect(r"^:\S+ 353 ivy = #lobby :\S+ \S+$")
    c.expect(r"^:\S+ NOTICE ivy :\*\*\* 2 of 4 users shown")
    c.expect(r" 366 ivy #lobby ")
    c.send("WHO #lobby")
    c.expect(r"^:\S+ NOTICE ivy :\*\*\* 2 of 4 users shown")
    c.expect(r" 315 ivy #lobby ")
    # 3 joins with --notice-storm 2: the third is folded into the window's summary
    c.expect(r"^:\S+ NOTICE #lobby :\*\*\* \d+ joined, \d+ left in the last 10 s$", timeout=20)
