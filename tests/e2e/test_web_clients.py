"""Real clients on natterd's WebSocket (issue 14): Kiwi IRC's irc-framework, and the page
natterd serves (web/) in headless Chromium driven by playwright-core. Each shares a room
with an nc-style plain user (natlib.Client) and, for Kiwi, an IRC-over-TCP user.

The node programs are tests/web/kiwi.js and tests/web/browser.js (npm ci --prefix
tests/web; Debian's chromium, never a downloaded one). Without node, chromium or
tests/web/node_modules these tests are skipped, with the reason. Screenshots of every
state of the page land in BUILD/web-screenshots/.
"""
import json, os, re, shutil

import pytest

import natlib
from test_tls import certs  # noqa: F401  (the module's certificates: a CA, localhost and 127.0.0.1)

WAIT = 15  # seconds for anything the browser waits for (it is slower under ASan)


def needs(browser):
    why = natlib.web_tools_missing(browser=browser)
    if why:
        pytest.skip(why)


@pytest.fixture
def shots(build):
    d = os.path.join(build, "web-screenshots")
    os.makedirs(d, exist_ok=True)
    return lambda name: os.path.join(d, name + ".png")


@pytest.fixture
def browser(closing):
    needs(True)
    return closing(natlib.Browser())


def url(server):
    assert server.http_port, "natterd logged no HTTP port"
    return f"http://127.0.0.1:{server.http_port}/"


def js(s):
    return json.dumps(s)


def log_of(room):
    return f"document.querySelector('ol.log[data-key={js(room.lower())}]')"


def texts(room):
    """JS: the text of every line in a room's log (a missing log: none)."""
    return f"[...(({log_of(room)}) || document.createElement('ol')).querySelectorAll('li')].map(l => l.textContent)"


def has_line(room, pattern):
    """JS: true when a line of the room's log matches the regex pattern."""
    return f"{texts(room)}.some(t => new RegExp({js(pattern)}).test(t))"


def wait_line(b, page, room, pattern):
    b.call("wait", page=page, js=has_line(room, pattern), timeout=WAIT)


def no_page_errors(b, *pages):
    for p in pages:
        errs = b.call("errors", page=p)
        assert errs == [], f"page {p}: {errs}"


# ==== The page's source: what the browser tests cannot see every way round ====

WEB = os.path.join(os.path.dirname(__file__), "..", "..", "web")


def test_page_source_makes_no_html_from_text_and_has_nothing_inline():
    with open(os.path.join(WEB, "app.js")) as f:
        app = f.read()
    for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                "setAttribute('style'", ".style."):
        assert bad not in app, f"web/app.js uses {bad}: text from others must go in as textContent, under the CSP"
    with open(os.path.join(WEB, "index.html")) as f:
        page = f.read()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "an inline script (the CSP forbids it)"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page), "inline style or an event attribute"
    assert "http://" not in page and "https://" not in page, "the page loads something from elsewhere"


# ==== Kiwi IRC's irc-framework ====

def test_kiwi_irc_framework_chats_with_nc_and_irc(natterd, client, irc, closing):
    needs(False)
    s = natterd()
    pat = client(s)
    pat.nick("pat")
    ivy = irc(s).register("ivy")
    ivy.send("JOIN #lobby")
    ivy.expect(r"^:\S+ 366 ivy #lobby ")
    kiwi = closing(natlib.Kiwi(f"ws://127.0.0.1:{s.http_port}/ws", "kiwi", "#lobby"))
    kiwi.expect(lambda e: e["event"] == "registered", WAIT, "registration")
    kiwi.expect(lambda e: e["event"] == "joined", WAIT, "its JOIN")
    pat.expect(r"^-- kiwi joined #lobby$")
    ivy.expect(r"^:kiwi!\S+ JOIN #lobby")

    kiwi.say("hello from kiwi <b>1</b>")
    pat.expect(r"^#lobby <kiwi> hello from kiwi <b>1</b>$")
    ivy.expect(r"^:kiwi!\S+ PRIVMSG #lobby :hello from kiwi <b>1</b>$")

    pat.send("hello kiwi, from pat")
    ev = kiwi.expect(lambda e: e["event"] == "message" and e["text"] == "hello kiwi, from pat", WAIT, "pat's line")
    assert ev["nick"] == "pat" and ev["target"] == "#lobby" and ev["type"] == "privmsg"
    ivy.send("PRIVMSG #lobby :hello kiwi, from ivy")
    ivy.send("PRIVMSG #lobby :\x01ACTION waves at kiwi\x01")
    ev = kiwi.expect(lambda e: e["event"] == "message" and e["text"] == "hello kiwi, from ivy", WAIT, "ivy's line")
    assert ev["nick"] == "ivy"
    ev = kiwi.expect(lambda e: e["event"] == "message" and e["type"] == "action", WAIT, "ivy's action")
    assert ev["text"] == "waves at kiwi"
    pat.expect(r"^#lobby \* ivy waves at kiwi$")

    kiwi.say("/quit")
    pat.expect(r"^-- kiwi quit")
    ivy.expect(r"^:kiwi!\S+ QUIT ")
    kiwi.expect(lambda e: e["event"] == "close", WAIT, "the close")


# ==== The page in Chromium ====

def test_browser_users_and_nc_share_a_room(natterd, client, browser, shots):
    s = natterd()
    pat = client(s)
    pat.nick("pat")
    b = browser
    b.call("open", page="a", url=url(s))
    b.call("shot", page="a", path=shots("login"))
    assert b.call("login", page="a", name="alice") == "app"
    wait_line(b, "a", "#lobby", r"^The beginning of #lobby$")
    pat.expect(r"^-- alice joined #lobby$")

    # A taken name is explained, and the prompt asks again.
    b.call("open", page="b", url=url(s))
    why = b.call("login", page="b", name="ALICE")
    assert why.startswith("error: ") and "taken" in why and "ALICE" in why, why
    b.call("shot", page="b", path=shots("name-taken"))
    assert b.call("login", page="b", name="has space") == "error: A name has no spaces."
    why = b.call("login", page="b", name="#hash")  # the server's 432
    assert why.startswith('error: The server does not take "#hash" as a name: 1 to 24'), why
    assert b.call("login", page="b", name="bob") == "app"
    pat.expect(r"^-- bob joined #lobby$")
    wait_line(b, "a", "#lobby", r"bob joined #lobby$")

    # HTML from anyone is text.
    b.call("say", page="a", text="hello <b>html</b> & <img src=x onerror=alert(1)>")
    pat.expect(r"^#lobby <alice> hello <b>html</b> & <img src=x onerror=alert\(1\)>$")
    wait_line(b, "b", "#lobby", r"alicehello <b>html</b> & <img src=x")
    assert b.call("eval", page="b", js=f"{log_of('#lobby')}.querySelectorAll('b, img').length") == 0
    pat.send("pat says <i>hi</i> to bob")
    wait_line(b, "b", "#lobby", r"patpat says <i>hi</i> to bob$")
    wait_line(b, "a", "#lobby", r"patpat says <i>hi</i> to bob$")
    # bob was named: that line stands out for bob, not for alice.
    assert b.call("eval", page="b", js=f"[...{log_of('#lobby')}.querySelectorAll('li.mention')].length") == 1
    assert b.call("eval", page="a", js=f"[...{log_of('#lobby')}.querySelectorAll('li.mention')].length") == 0
    # The same name has the same colour on both pages.
    colour = f"{log_of('#lobby')}.querySelector('li[data-nick=pat] .nick').className"
    assert b.call("eval", page="a", js=colour) == b.call("eval", page="b", js=colour)

    # The terminal client's commands: /me, /msg (a private conversation), /topic, /join, /part.
    b.call("say", page="b", text="/me waves")
    pat.expect(r"^#lobby \* bob waves$")
    wait_line(b, "a", "#lobby", r"^\d\d:\d\d\* bobwaves$")
    b.call("say", page="b", text="/msg alice psst, alice")
    wait_line(b, "b", "alice", r"bobpsst, alice$")
    badge = "document.querySelector('.buffers li:nth-child(3) .badge')"
    assert b.call("wait", page="a", js=f"{badge} && !{badge}.hidden && {badge}.textContent", timeout=WAIT) == "1"
    pat.send("/msg alice from pat, privately")
    wait_line(b, "a", "pat", r"patfrom pat, privately$")
    b.call("shot", page="a", path=shots("unread"))
    b.call("eval", page="a", js="document.querySelector('.buffers li:nth-child(3) button').click()")
    wait_line(b, "a", "bob", r"bobpsst, alice$")
    b.call("say", page="a", text="hi bob, privately")
    wait_line(b, "b", "alice", r"alicehi bob, privately$")
    # alice is in bob's conversation: what pat says in #lobby is unread there, after a marker.
    pat.send("said while alice looked away")
    lobby_badge = "document.querySelector('.buffers li:nth-child(2) .badge')"
    assert b.call("wait", page="a", js=f"!{lobby_badge}.hidden && {lobby_badge}.textContent", timeout=WAIT) == "1"
    b.call("eval", page="a", js="document.querySelector('.buffers li:nth-child(2) button').click()")
    marker = f"{log_of('#lobby')}.querySelector('li.marker')"
    assert b.call("wait", page="a", js=f"{marker} && {marker}.nextElementSibling.textContent", timeout=WAIT) \
        .endswith("said while alice looked away")
    assert b.call("eval", page="a", js=f"{lobby_badge}.hidden")
    b.call("shot", page="a", path=shots("new-messages-marker"))
    # Notifications: never asked for on their own (the button asks); once granted, being
    # named elsewhere makes one. (The page's Notification is replaced by a recorder.)
    assert b.call("eval", page="a", js="Notification.permission") == "default"
    assert b.call("eval", page="a", js="!document.getElementById('notify').hidden")
    b.call("eval", page="a", js="window.seen = []; window.Notification = class { static get permission() "
           "{ return 'granted'; } constructor(t, o) { window.seen.push(t + ': ' + o.body); } close() {} }")
    b.call("eval", page="a", js="document.querySelector('.buffers li:nth-child(4) button').click()")
    b.call("eval", page="b", js="document.querySelector('.buffers li:nth-child(2) button').click()")
    b.call("say", page="b", text="alice: look here")
    assert b.call("wait", page="a", js="window.seen.length && window.seen", timeout=WAIT) == ["bob in #lobby: alice: look here"]
    # The keyboard: Alt+Up and Alt+Down go through the rooms and conversations.
    b.call("eval", page="a", js="document.getElementById('input').focus()")
    b.call("press", page="a", key="Alt+ArrowUp")
    assert b.call("eval", page="a", js="document.getElementById('title').textContent") == "bob"
    b.call("press", page="a", key="Alt+ArrowUp")
    assert b.call("eval", page="a", js="document.getElementById('title').textContent") == "#lobby"
    # Labelled for screen readers: every field has a label, messages are a polite live log.
    assert b.call("eval", page="a", js="[...document.querySelectorAll('input')].every(i => i.labels.length > 0)")
    assert b.call("eval", page="a", js=f"{log_of('#lobby')}.getAttribute('role') + ' ' + "
                  f"{log_of('#lobby')}.getAttribute('aria-live')") == "log polite"
    b.call("say", page="b", text="/join #dev")
    wait_line(b, "b", "#dev", r"^The beginning of #dev$")
    pat.send("/join #dev")
    pat.expect(r"^-- pat joined #dev$")
    b.call("say", page="b", text="/topic #dev the web room")
    pat.expect(r"^-- bob set the topic of #dev: the web room$")
    b.call("wait", page="b", js="document.getElementById('topic').textContent === 'the web room'", timeout=WAIT)
    pat.send("hello #dev")
    wait_line(b, "b", "#dev", r"pathello #dev$")
    b.call("say", page="b", text="/who")
    wait_line(b, "b", "#dev", r"#dev: .*pat.* \(2 users\)$")
    b.call("shot", page="b", path=shots("room"))
    b.call("say", page="b", text="/part")
    pat.expect(r"^-- bob left #dev$")
    b.call("wait", page="b", js=f"!{log_of('#dev')}", timeout=WAIT)
    b.call("say", page="b", text="/nosuch")
    wait_line(b, "b", "#lobby", r"unknown command: /nosuch")
    b.call("say", page="b", text="/nick bobby")
    pat.expect(r"^-- bob is now known as bobby$")
    b.call("wait", page="b", js="document.getElementById('status').textContent === 'connected as bobby'", timeout=WAIT)
    wait_line(b, "a", "#lobby", r"bob is now known as bobby$")
    wait_line(b, "a", "bobby", r"bob is now known as bobby$")  # the conversation follows the name

    # A phone, in the dark: the room list folds behind a button.
    b.call("open", page="c", url=url(s), width=390, height=740, scheme="dark")
    assert b.call("login", page="c", name="carol") == "app"
    wait_line(b, "c", "#lobby", r"^The beginning of #lobby$")
    assert b.call("eval", page="c", js="getComputedStyle(document.getElementById('side')).display") == "none"
    assert b.call("eval", page="c", js="getComputedStyle(document.body).backgroundColor") != "rgb(251, 251, 250)"
    pat.send("/join #lobby")
    pat.expect(r"^-- you are now in #lobby$")
    pat.send("hello carol")
    wait_line(b, "c", "#lobby", r"pathello carol$")
    b.call("shot", page="c", path=shots("phone-dark"))
    b.call("eval", page="c", js="document.getElementById('menu').click()")
    assert b.call("eval", page="c", js="getComputedStyle(document.getElementById('side')).display") != "none"
    b.call("shot", page="c", path=shots("phone-rooms"))
    # Joining with the form, leaving with the button.
    b.call("eval", page="c", js="document.getElementById('join-name').value = 'dev'; "
           "document.getElementById('join-form').requestSubmit()")
    pat.expect(r"^-- carol joined #dev$")
    wait_line(b, "c", "#dev", r"topic: the web room$")
    assert b.call("eval", page="c", js="getComputedStyle(document.getElementById('side')).display") == "none"
    b.call("eval", page="c", js="document.getElementById('leave').click()")
    pat.expect(r"^-- carol left #dev$")
    b.call("wait", page="c", js=f"!{log_of('#dev')} && document.getElementById('title').textContent === '#lobby'",
           timeout=WAIT)
    no_page_errors(b, "a", "b", "c")


def test_browser_scrollback_and_reconnect(natterd, client, browser, shots, tmp_path):
    db = str(tmp_path / "web.db")
    opts = ("--db", db, "--history", "10", "--rate", "0")
    s = natterd(*opts)
    port = s.http_port
    pat = client(s)
    pat.nick("pat")
    for i in range(1, 61):
        pat.send(f"seed {i}")
    pat.sync()
    b = browser
    b.call("open", page="a", url=url(s), height=600)
    assert b.call("login", page="a", name="alice") == "app"
    seeds = f"{texts('#lobby')}.filter(t => /seed \\d+$/.test(t)).length"
    # The newest page first (the page asks for 50), the oldest not yet.
    wait_line(b, "a", "#lobby", r"patseed 60$")
    assert b.call("eval", page="a", js=seeds) == 50
    assert not b.call("eval", page="a", js=has_line("#lobby", r"patseed 10$"))
    b.call("shot", page="a", path=shots("history-newest"))
    # Scrolling up loads the older ones, and then says it is the beginning.
    b.call("eval", page="a", js=f"{log_of('#lobby')}.scrollTop = 0")
    wait_line(b, "a", "#lobby", r"patseed 1$")
    assert b.call("eval", page="a", js=seeds) == 60
    # The view stays where it was: the line that was at the top is still in sight.
    in_view = (f"(() => {{ const log = {log_of('#lobby')}; const li = [...log.querySelectorAll('li')]"
               f".find(l => l.textContent.endsWith('patseed 11')); const y = li.offsetTop - log.scrollTop; "
               f"return y >= 0 && y < 100; }})()")
    assert b.call("eval", page="a", js=in_view), "the view jumped when older lines came in above it"
    b.call("eval", page="a", js=f"{log_of('#lobby')}.scrollTop = 0")
    wait_line(b, "a", "#lobby", r"^The beginning of #lobby$")
    b.call("shot", page="a", path=shots("history-older"))
    # /search asks natterd's SEARCH and lists what it found where it was asked.
    b.call("say", page="a", text="/search seed 42")
    wait_line(b, "a", "#lobby", r'search for "seed 42": 1 found$')
    wait_line(b, "a", "#lobby", r"#lobby <pat> seed 42$")
    b.call("shot", page="a", path=shots("search"))

    # The server restarts. While the page is away, pat says things (natterd runs
    # without its web port, so the page cannot be back before they are said) ...
    s.stop()
    b.call("wait", page="a", js="document.getElementById('status').textContent.includes('reconnecting')", timeout=WAIT)
    b.call("shot", page="a", path=shots("disconnected"))
    s2 = natterd(*opts, "--no-web")
    pat2 = client(s2)
    pat2.nick("pat")
    for i in range(1, 6):
        pat2.send(f"gap {i}")
    pat2.sync()
    s2.stop()
    # ... and the page, back, fills the gap from history, without doubling anything.
    s3 = natterd(*opts, "--http-port", str(port))
    b.call("wait", page="a", js="document.getElementById('status').textContent === 'connected as alice'", timeout=45)
    wait_line(b, "a", "#lobby", r"patgap 5$")
    pat3 = client(s3)
    pat3.nick("pat")
    pat3.send("live after the restart")
    wait_line(b, "a", "#lobby", r"patlive after the restart$")
    ids = b.call("eval", page="a", js=f"[...{log_of('#lobby')}.querySelectorAll('li[data-id]')].map(l => l.dataset.id)")
    assert len(ids) == len(set(ids)), "a message shown twice"
    lines = b.call("eval", page="a", js=f"{texts('#lobby')}.filter(t => /pat(seed|gap) \\d+$/.test(t)).map(t => t.replace(/^.*pat/, ''))")
    assert lines == [f"seed {i}" for i in range(1, 61)] + [f"gap {i}" for i in range(1, 6)], lines
    # Where alice left off is marked: before what came while she was away.
    marker = f"{log_of('#lobby')}.querySelector('li.marker')"
    assert b.call("eval", page="a", js=f"{marker} && {marker}.nextElementSibling.textContent").endswith("gap 1")
    b.call("shot", page="a", path=shots("reconnected"))
    no_page_errors(b, "a")

    # Closed and opened again, the page remembers where alice left off.
    b.call("reload", page="a")
    pat3.expect(r"^-- alice quit")  # (so the name is free again)
    pat3.send("said while the page was closed")
    pat3.sync()
    assert b.call("eval", page="a", js="document.getElementById('login-name').value") == "alice"
    assert b.call("login", page="a", name="alice") == "app"
    wait_line(b, "a", "#lobby", r"patsaid while the page was closed$")
    assert b.call("wait", page="a", js=f"{marker} && {marker}.nextElementSibling.textContent",
                  timeout=WAIT).endswith("said while the page was closed")
    b.call("shot", page="a", path=shots("reopened"))


@pytest.mark.skipif(not shutil.which("openssl"), reason="no openssl command (Debian package openssl) for the certificate")
def test_browser_over_https_speaks_wss(natterd, client, browser, shots, certs):  # noqa: F811
    s = natterd("--tls-cert", certs["good"][0], "--tls-key", certs["good"][1])
    assert s.https_port, "natterd logged no HTTPS port"
    pat = client(s)
    pat.nick("pat")
    b = browser
    # (The test CA is not the browser's: it is told to take the certificate.)
    b.call("open", page="a", url=f"https://localhost:{s.https_port}/", insecure=True)
    assert b.call("login", page="a", name="sec") == "app"
    # An https page may only open wss://: being in the room is the proof, and the
    # server says the connection is TLS (+Z).
    pat.expect(r"^-- sec joined #lobby$")
    b.call("say", page="a", text="/quote MODE sec")
    wait_line(b, "a", "#lobby", r"your modes: \+\S*Z")
    b.call("say", page="a", text="over wss")
    pat.expect(r"^#lobby <sec> over wss$")
    b.call("shot", page="a", path=shots("https"))
    no_page_errors(b, "a")
