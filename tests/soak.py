#!/usr/bin/env python3
"""Soak test for natterd: hundreds of clients joining, chatting, renaming, switching
rooms and disconnecting abruptly, with a checker for what reached whom.

  python3 tests/soak.py [--build DIR] [--seconds N] [--clients N] [--seed S]

One process, one selector loop, non-blocking sockets, loopback only, spread over the
source addresses 127.0.0.1-127.0.0.20 so natterd's default --max-per-ip (64) holds.
The server runs with its defaults (rate 10 lines/s, burst 50, 16 rooms per user...).

Clients
  observers  a fifth of the clients, connected for the whole run: /nick obsN, join
             three of #r0..#r7, some stay in #lobby. They talk a little too (to their
             own rooms and to each other in private) and record every line.
  churners   the rest, constantly replaced (lives of 0.3-7 s): /nick (sometimes a
             taken or invalid name), /join (switching rooms, spelled #r3, #R3, r3),
             /part (another room, the current one, or one they are not in), messages,
             /me, //text, /msg to observers and other churners, /who, /rooms, /help.
             A few send hostile lines (ESC sequences, invalid UTF-8, C1 and bidi
             controls, NUL, 4096- and 10000-byte lines), flood past the rate limit
             (paused, never dropped), join rooms until "too many rooms", or never
             read at all.
             Each ends with bye, /quit, a half-close, an RST, or a plain close.

Every message carries "S<sender>:<seq>:<channel>:<form>" (channel: the lowercased
room the sender's model says is current, or @name for /msg), so a receiver knows
where it must have come from. The sender's model of its rooms follows the protocol
exactly: /join adds a room (unless 16 already) and makes it current, parting the
current room makes the most recently joined remaining room current.

What is checked, as lines arrive
  - every line is valid UTF-8, has no control characters (C0 but TAB, DEL, C1, bidi),
    and has one of the documented markers; no "!!" error that the client's own lines
    do not explain; no hostile payload or overlong line is ever passed on;
  - a room line comes from a room the receiver is in (by its own join/left notices),
    its room is the one in the payload, its form (<name>, * name, //) is the one sent;
  - per receiver, each sender's messages arrive in increasing seq, never twice;
  - an observer never misses one: when seq k from S arrives, every earlier message of
    S to a channel of the observer has arrived before it;
  - an observer follows who is in its rooms (from /who at the start, then join, left,
    quit and rename notices): no join of a member, no left, quit or rename of someone
    who shares none of its rooms (so no notice lost or doubled, a quit only once).
At each quiesce point (mid-run and end: churn stopped, every churner gone)
  - natterd's descriptor count is back to its value with only the observers, its log
    shows as many disconnects as connects bar the observers, /rooms lists exactly the
    rooms and sizes it listed then, every observer's notice-built member lists hold
    just the observers, and /who agrees; natterd logged nothing unexpected;
  - the server log gives each churner's disconnect reason (by its address:port); it
    must fit how the churner left (bye or /quit: quit; half-close: connection closed;
    RST: read/write error) and nothing is dropped as flooding, nor as too slow but
    the few "stallers" that never read (the kernel's buffers usually hide them);
  - "accepted" (what the server read and routed): all of a sender's messages if it
    left by bye, /quit or EOF (the server saw the goodbye, so it read everything
    before it), else those up to the highest seq that any client received. Every
    observer in the channel must have got exactly the accepted messages;
  - a churner that left gracefully got exactly the error replies its lines call for;
  - (plain build) natterd's RSS is within a bound of its value at the start, and the
    second half did not grow it more than a little beyond the first.
Then natterd gets SIGTERM and must exit 0 with no sanitizer report, and the observers
that had not said bye must get "-- server shutting down".

--break KIND deliberately corrupts what the checker sees, to show each check can fail.
Exit status 0 on success, 1 on a failed check; a summary is printed either way.
"""
import argparse, collections, errno, heapq, os, random, re, resource, selectors, socket, struct, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "e2e"))
import natlib  # noqa: E402

ADDRS = ["127.0.0.%d" % i for i in range(1, 21)]
OBS_ROOMS = ["#r%d" % i for i in range(8)]            # rooms watched by observers
ROOMS = ["#lobby"] + ["#r%d" % i for i in range(20)]   # rooms churners use
MAX_ROOMS = 16                                         # natterd's --max-rooms default
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PAYLOAD = re.compile(r"(/?)S(\d+):(\d+):(\S+):([sdmp])\Z")
JOINED = re.compile(r"-- (\S+) joined (#\S+)\Z")
LEFT = re.compile(r"-- (\S+) left (#\S+)(?: \((.*)\))?\Z")
QUIT = re.compile(r"-- (\S+) quit(?: \((.*)\))?\Z")
RENAMED = re.compile(r"-- (\S+) is now known as (\S+)\Z")
WHO = re.compile(r"-- (#\S+): (.*) \((\d+) users?\)\Z")
MAX_ANNOUNCE = 200  # natterd's default: no join/part/quit notices in bigger rooms
LOG_DISCONNECT = re.compile(r"disconnect #\d+ (\S+)(?: \S+)?: (.*)$")  # #id peer [name]: reason
QUIT_REASONS = {None, "connection closed", "read error", "write error", "too slow"}
ERRORS = [("!! name taken: ", "taken"), ("!! invalid name: ", "badnick"),
          ("!! too many rooms", "toomany"), ("!! you are not in ", "notin"),
          ("!! you are in no room", "noroom"), ("!! no such user: ", "nouser"),
          ("!! unknown command: ", "unknown"), ("!! line too long", "toolong"),
          ("!! slow down: ", "slow")]
MAYBE_ERRORS = {"taken", "nouser"}  # depend on what others did meanwhile

# Hostile lines sent as chat: each still contains HOSTILE once sanitised.
HOSTILE = [b"\x1b[31mHOSTILE red\x1b[0m", b"HOSTILE \xff\xfe\xc0\xaf\xed\xa0\x80 bad utf-8",
           "HOSTILE \u202eevil\u2066 bidi".encode(), b"\x07\x08HOSTILE bell\x7f\xc2\x85 c1",
           b"HOSTILE crlf\r", b"\x1b]0;HOSTILE title\x07", b"\x00HOSTILE nul\x1b[2J",
           b"HOSTILE " + b"y" * 4088]  # exactly 4096 bytes: the longest line allowed

BREAKS = {
    "drop": "an observer loses one message",
    "dup": "an observer gets one message twice",
    "swap": "an observer gets two messages of one sender swapped",
    "misroute": "a room line arrives with another room's name",
    "ctrl": "a line arrives with an ESC in it",
    "notice": "an observer loses one join or quit notice",
    "utf8": "a line arrives with invalid UTF-8",
    "error": "a churner gets an error it did not cause",
    "lastmsg": "the last message of a graceful sender is lost everywhere",
    "reason": "a churner's disconnect reason in the log is 'too slow'",
    "fd": "the descriptor count does not return to baseline",
    "rooms": "the final /rooms listing differs from the baseline",
    "rss": "natterd's RSS grows by 64 MiB",
}


class Fail(Exception):
    pass


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def is_asan(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


class Client:
    """One connection. The same class for observers and churners; kind says which."""

    def __init__(self, soak, cid, kind):
        self.soak, self.id, self.kind = soak, cid, kind
        self.rng = random.Random("%d:%d" % (soak.seed, cid))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        self.sock.bind((ADDRS[cid % len(ADDRS)], 0))
        # A staller never reads, with a tiny receive buffer: natterd queues for it (the
        # kernel takes megabytes first, so it is rarely dropped as too slow) and must go on.
        self.stall = kind == "churner" and self.rng.random() < 0.03
        if self.stall:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.members = {}          # observers: room -> names in it, by /who and notices
        self.who_pending = 0       # observers: /who replies to take as the truth
        self.rbuf = b""
        self.wbuf = bytearray()
        self.peer = None
        self.connecting = True
        self.state = "live"        # live, leaving (said goodbye, reading to EOF), done
        self.name = None           # as the server last told us
        self.rooms = set()         # lowercased, from our own joined/left notices
        self.order = ["#lobby"]    # model: rooms in join order, as natterd keeps them
        self.current = "#lobby"    # model: current room (None: in no room)
        self.last_seq = {}         # sender -> last seq received from it
        self.expect = collections.Counter()  # errors our lines call for
        self.got = collections.Counter()     # errors received
        self.syncs = 0             # /rooms replies received
        self.last_rooms = None
        self.got_bye = self.shutdown_seen = self.eof = False
        self.reset = False
        self.timer_gen = 0
        self.nick_n = 0
        self.chans = set()         # observers: channels they must hear completely
        self.ending = None
        self.reason = None         # the server's disconnect reason, from its log
        self.flushed_at_close = True
        self.deadline = None
        self.mask = 0
        self.half_done = False
        self.unconnected = False
        rc = self.sock.connect_ex((soak.server.host, soak.server.port))
        if rc not in (0, errno.EINPROGRESS):
            soak.fail(f"client {cid}: connect failed: {os.strerror(rc)}")
        host, port = self.sock.getsockname()  # the port is chosen by connect()
        self.peer = f"{host}:{port}"
        soak.by_peer[self.peer].append(self)  # natterd's log names it so
        self.set_mask(selectors.EVENT_WRITE | (0 if self.stall else selectors.EVENT_READ), first=True)
        if rc == 0:
            self.on_connected()

    # ---- I/O ----

    def set_mask(self, mask, first=False):
        sel = self.soak.sel
        if first or (mask and not self.mask):
            sel.register(self.sock, mask, self)
        elif mask != self.mask:
            if mask:
                sel.modify(self.sock, mask, self)
            else:
                sel.unregister(self.sock)
        self.mask = mask

    def on_connected(self):
        self.connecting = False
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.soak.fail(f"client {self.id}: connect failed: {os.strerror(err)}")
            self.close()
            return
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.soak.stats["connections"] += 1
        self.flush()

    def send(self, data):
        if self.state == "done":
            return
        self.wbuf += data if isinstance(data, (bytes, bytearray)) else data.encode()
        self.wbuf += b"\n"
        self.soak.stats["lines sent"] += 1
        if not self.connecting:
            self.flush()

    def flush(self):
        while self.wbuf:
            try:
                n = self.sock.send(self.wbuf)
            except BlockingIOError:
                break
            except OSError as e:
                self.lost(f"send: {e}")
                return
            del self.wbuf[:n]
        if not self.wbuf and self.ending == "half" and self.state == "leaving" and not self.half_done:
            self.half_done = True
            self.sock.shutdown(socket.SHUT_WR)
        want = (0 if self.stall else selectors.EVENT_READ) | \
            (selectors.EVENT_WRITE if self.wbuf or self.connecting else 0)
        self.set_mask(want)

    def on_event(self, mask):
        if self.state == "done":
            return
        if mask & selectors.EVENT_WRITE:
            if self.connecting:
                self.on_connected()
            else:
                self.flush()
        if mask & selectors.EVENT_READ and self.state != "done":
            self.on_readable()

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data, self.reset = b"", True
        if not data:
            self.eof = True
            self.on_eof()
            return
        self.soak.stats["bytes received"] += len(data)
        buf = self.rbuf + data if self.rbuf else data
        end = buf.rfind(b"\n")
        if end < 0:
            self.rbuf = buf
            if len(buf) > 65536:
                self.soak.fail(f"{self.who()}: a line of more than 64 KiB from the server")
                self.rbuf = b""
            return
        chunk, self.rbuf = buf[:end], buf[end + 1:]
        chunk = self.soak.tamper_bytes(self, chunk)
        if chunk is None:
            return
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            self.soak.fail(f"{self.who()}: invalid UTF-8 from the server ({e}): {chunk[-200:]!r}")
            text = chunk.decode("utf-8", "replace")
        m = BAD_CHARS.search(text)
        if m:
            self.soak.fail(f"{self.who()}: control character {m.group()!r} from the server in "
                           f"{text[max(0, m.start() - 80):m.start() + 80]!r}")
        for line in text.split("\n"):
            self.on_line(line)

    def on_eof(self):
        if self.state == "leaving":
            if self.ending in ("bye", "quit") and not self.got_bye:
                self.soak.fail(f"{self.who()}: connection closed without '-- bye' after {self.ending}")
            self.check_errors(exact=True)
            self.close()
        elif self.soak.stopping:
            self.close()
        else:
            self.lost("the server closed the connection" + (" (RST)" if self.reset else ""))

    def lost(self, why):
        self.soak.fail(f"{self.who()}: {why}")
        self.close()

    def close(self, rst=False):
        if self.state == "done":
            return
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.flushed_at_close = not self.wbuf
        if self.mask:
            self.soak.sel.unregister(self.sock)
        self.sock.close()
        self.state = "done"
        self.soak.on_closed(self)

    def who(self):
        return f"{self.kind} {self.id} ({self.name}, {self.peer})"

    # ---- lines from the server ----

    def on_line(self, line):
        st = self.soak.stats
        st["lines received"] += 1
        c = line[:1]
        if line.startswith("== "):
            st["history lines"] += 1  # replayed on join: history, not live, so not checked as live
        elif c == "#":
            self.on_room_line(line)
        elif line.startswith("-- "):
            self.on_notice(line)
        elif line.startswith("!! "):
            for prefix, kind in ERRORS:
                if line.startswith(prefix):
                    self.got[kind] += 1
                    st["error " + kind] += 1
                    if self.kind == "observer":
                        self.soak.fail(f"{self.who()}: an error for an observer: {line!r}")
                    break
            else:
                self.soak.fail(f"{self.who()}: unexpected error line {line!r}")
        elif line.startswith("-> *"):
            end = line.find("* ", 4)
            m = PAYLOAD.match(line[end + 2:]) if end > 0 else None
            if not m or int(m.group(2)) != self.id or m.group(5) != "p" or \
                    m.group(4) != "@" + line[4:end].lower():
                self.soak.fail(f"{self.who()}: bad private message echo {line!r}")
            else:
                self.soak.note_seen(self.id, int(m.group(3)))
        elif c == "*":
            end = line.find("* ", 1)
            m = PAYLOAD.match(line[end + 2:]) if end > 0 else None
            if not m or m.group(5) != "p" or m.group(1):
                self.soak.fail(f"{self.who()}: bad private message {line!r}")
            elif m.group(4) != "@" + (self.name or "").lower():
                self.soak.fail(f"{self.who()}: private message for {m.group(4)} reached {self.name}: {line!r}")
            else:
                self.on_message(int(m.group(2)), int(m.group(3)), m.group(4), line)
        else:
            self.soak.fail(f"{self.who()}: line without a known marker: {line[:200]!r}")

    def on_room_line(self, line):
        sp = line.find(" ")
        room, rest = line[:sp], line[sp + 1:]
        if rest[:1] == "<":
            gt = rest.find("> ")
            text, form = rest[gt + 2:], "say"
        elif rest[:2] == "* ":
            sp2 = rest.find(" ", 2)
            text, form = rest[sp2 + 1:], "me"
        else:
            self.soak.fail(f"{self.who()}: malformed room line {line[:200]!r}")
            return
        lroom = room.lower()
        if lroom not in self.rooms:
            self.soak.fail(f"{self.who()}: a line for {room}, which it is not in: {line[:200]!r}")
        m = PAYLOAD.match(text)
        if not m:
            if "HOSTILE" in text and "\x1b" not in text:
                self.soak.stats["hostile lines received"] += 1
            else:
                self.soak.fail(f"{self.who()}: unexpected text {line[:200]!r}")
            return
        slash, sid, seq, chan, k = m.groups()
        if {"s": ("say", ""), "d": ("say", "/"), "m": ("me", "")}.get(k) != (form, slash):
            self.soak.fail(f"{self.who()}: message mangled (sent as form {k}): {line!r}")
        if chan != lroom:
            self.soak.fail(f"{self.who()}: message for {chan} arrived in {room}: {line!r}")
            return
        self.on_message(int(sid), int(seq), chan, line)

    def on_message(self, sid, seq, chan, line):
        soak = self.soak
        if sid == self.id:
            soak.fail(f"{self.who()}: got its own message back: {line!r}")
            return
        sent = soak.sent.get(sid)
        if sent is None or seq < 1 or seq > len(sent) or sent[seq - 1] != chan:
            soak.fail(f"{self.who()}: a message that was never sent like this: {line!r}")
            return
        last = self.last_seq.get(sid, 0)
        if seq <= last:
            soak.fail(f"{self.who()}: {'duplicate' if seq == last else 'out of order'} "
                      f"(seq {seq} after {last}): {line!r}")
            return
        self.last_seq[sid] = seq
        soak.note_seen(sid, seq)
        if self.kind == "observer":
            chans = self.chans
            if chan not in chans:
                soak.fail(f"{self.who()}: a message for {chan}, not one of its channels: {line!r}")
            for i in range(last, seq - 1):
                if sent[i] in chans:
                    soak.fail(f"{self.who()}: missed S{sid}:{i + 1}:{sent[i]} "
                              f"(seq {seq} arrived after {last})")
            soak.stats["messages checked at observers"] += 1
        else:
            soak.stats["messages received by churners"] += 1

    def on_notice(self, line):
        """Notices keep our own name and rooms; an observer also keeps who is in its
        rooms, and checks every notice fits: no join of a member, no part or quit or
        rename of a stranger (so none lost, none twice, a quit only once)."""
        mem = self.members
        m = JOINED.match(line)
        if m:
            name, room = m.group(1), m.group(2).lower()
            if name == self.name:
                self.rooms.add(room)
            elif mem.get(room) is not None:
                self.soak.stats["notices checked at observers"] += 1
                if name in mem[room]:
                    self.soak.fail(f"{self.who()}: {name} joined {room} twice: {line!r}")
                mem[room].add(name)
                if len(mem[room]) >= MAX_ANNOUNCE:
                    mem[room] = None  # notices stop there: cannot follow it
            return
        m = QUIT.match(line)
        if m:
            why = m.group(2)
            if why not in QUIT_REASONS and not (why or "").startswith("bye from c"):
                self.soak.fail(f"{self.who()}: unexpected quit reason: {line!r}")
            if mem:
                self.soak.stats["notices checked at observers"] += 1
                self.member_left(m.group(1), line)
            return
        m = LEFT.match(line)
        if m:
            name, room = m.group(1), m.group(2).lower()
            if name == self.name:
                self.rooms.discard(room)
            elif mem.get(room) is not None:
                if name not in mem[room]:
                    self.soak.fail(f"{self.who()}: {name} left {room}, which it was not in: {line!r}")
                mem[room].discard(name)
            return
        m = RENAMED.match(line)
        if m:
            old, new = m.groups()
            if old == self.name:
                self.name = new
                if self.kind == "churner":
                    self.soak.note_name(new)
                elif self.soak.phase != "setup":
                    self.soak.fail(f"{self.who()}: an observer was renamed: {line!r}")
            elif mem:
                for room in self.member_left(old, line):
                    if new in mem[room]:
                        self.soak.fail(f"{self.who()}: two {new} in {room} after {line!r}")
                    mem[room].add(new)
            return
        m = WHO.match(line)
        if m:
            names = [n.lstrip("@+") for n in m.group(2).split(" ")]  # @ operators, + voiced
            if len(names) != int(m.group(3)):
                self.soak.fail(f"{self.who()}: /who counts wrong: {line[:300]!r}")
            room = m.group(1).lower()
            if self.who_pending and self.kind == "observer":
                self.who_pending -= 1
                known = mem.get(room, set(names))
                if known is not None and known != set(names):
                    self.soak.fail(f"{self.who()}: by the notices {room} holds {sorted(known)}, "
                                   f"/who says {sorted(names)}")
                mem[room] = set(names)
            return
        if line.startswith("-- welcome to natter, "):
            if self.name is not None:
                self.soak.fail(f"{self.who()}: a second welcome: {line!r}")
            self.name = line[22:line.index("!")]
            self.soak.note_name(self.name)
        elif line.startswith("-- rooms: "):
            self.syncs += 1
            self.last_rooms = line
        elif line.startswith("-- bye "):
            if line[7:] != self.name or self.ending not in ("bye", "quit"):
                self.soak.fail(f"{self.who()}: unexpected {line!r}")
            self.got_bye = True
        elif line == "-- server shutting down":
            self.shutdown_seen = True
        elif line.startswith("-- you are now in #"):
            if line[18:].lower() not in self.rooms:
                self.soak.fail(f"{self.who()}: switched to a room it is not in: {line!r}")
        elif line.startswith(("-- commands", "--   /")):
            pass  # /help
        elif line.startswith(("-- history of #", "-- end of history of #")):
            pass  # around a replay on join
        else:
            self.soak.fail(f"{self.who()}: unexpected notice {line!r}")

    def member_left(self, name, line):
        """name quit or was renamed: the rooms (of ours) it was in."""
        mem = self.members
        rooms = [r for r, names in mem.items() if names is not None and name in names]
        for r in rooms:
            mem[r].discard(name)
        if not rooms and None not in mem.values():
            self.soak.fail(f"{self.who()}: a notice about {name}, who shares no room with it: {line!r}")
        return rooms

    def ask_who(self):
        for room in self.order:
            self.send("/who " + room)
            self.who_pending += 1

    def check_members(self, label):
        """Once only observers are left, by our notices each room holds just them."""
        for room in self.order:
            want = {o.planned for o in self.soak.observers if room in o.order and o.state != "done"}
            have = self.members.get(room)
            if have is not None and have != want:
                self.soak.fail(f"{self.who()}: {label}: by the notices {room} holds "
                               f"{sorted(have - want)} besides the observers, lacks {sorted(want - have)}")

    def check_errors(self, exact):
        """The errors received match what our lines called for (exactly, once we know the
        server has answered everything, i.e. after EOF following a goodbye)."""
        for kind in set(self.expect) | set(self.got):
            if kind == "slow":
                continue
            want, got = self.expect[kind], self.got[kind]
            if got > want or (exact and kind not in MAYBE_ERRORS and got != want):
                self.soak.fail(f"{self.who()}: {got} '{kind}' errors, its lines called for "
                               f"{'up to ' if kind in MAYBE_ERRORS or not exact else ''}{want}")

    # ---- lines to the server, with the model of what they do ----

    def say(self, k=None):
        if self.current is None:
            self.send("NOROOM %d" % self.id)  # must never reach anyone
            self.expect["noroom"] += 1
            return
        k = k or self.rng.choice("sssdm")
        seq = self.soak.new_message(self.id, self.current)
        text = "S%d:%d:%s:%s" % (self.id, seq, self.current, k)
        self.send({"s": text, "d": "//" + text, "m": "/me " + text}[k])

    def join(self, room):
        r = self.rng.random()
        spelled = room if r < 0.5 else room.upper() if r < 0.7 else room[1:] if r < 0.9 else room[1:].upper()
        self.send(("/join " if self.rng.random() < 0.9 else "/JOIN ") + spelled)
        if room in self.order:
            self.current = room
        elif len(self.order) >= MAX_ROOMS:
            self.expect["toomany"] += 1
        else:
            self.order.append(room)
            self.current = room

    def part(self):
        rng = self.rng
        r = rng.random()
        reason = rng.choice(["", "", " gone", " see you (later)"])
        others = [x for x in self.order if x != self.current]
        if r < 0.7 and others:
            room = rng.choice(others)
            self.send("/part " + (room if rng.random() < 0.7 else room.upper()) + reason)
            self.order.remove(room)
        elif r < 0.85:
            if self.current is None:
                self.send("/part" + reason)
                self.expect["noroom"] += 1
                return
            self.send(rng.choice(["/part" + reason, "/part " + self.current + reason]))
            self.order.remove(self.current)
            self.current = self.order[-1] if self.order else None
        else:
            room = rng.choice([x for x in ROOMS if x not in self.order] or ["#nowhere"])
            self.send("/part " + room + reason)
            self.expect["notin"] += 1

    def nick(self):
        rng = self.rng
        r = rng.random()
        self.nick_n += 1
        if r < 0.5:
            self.send("/nick c%dn%d" % (self.id, self.nick_n))
        elif r < 0.65:
            self.send("/nick pool%d" % rng.randrange(8))  # taken, unless it is free
            self.expect["taken"] += 1
        elif r < 0.75:
            name = rng.choice(self.soak.observers).planned
            self.send("/nick " + (name if rng.random() < 0.5 else name.upper()))
            self.expect["taken"] += 1
        elif r < 0.88:
            self.send("/nick 名%d字%d" % (self.id, self.nick_n))
        elif r < 0.93:  # a guest name natterd is about to hand out: it must skip it
            self.send("/nick guest%d" % (self.soak.next_id + rng.randrange(1, 40)))
            self.expect["taken"] += 1
        else:
            self.send("/nick " + rng.choice(["a<b%d", "#x%d", "-x%d", "a*%d", "x,%d"]) % self.id)
            self.expect["badnick"] += 1

    def pm(self, to_churner=False):
        soak, rng = self.soak, self.rng
        if to_churner and soak.names:
            name = rng.choice(soak.names)
            if name.lower() == (self.name or "").lower():
                return
            self.expect["nouser"] += 1  # may have left or been renamed
        else:
            o = rng.choice([o for o in soak.observers if o is not self])
            name = o.planned if rng.random() < 0.7 else o.planned.upper()
        seq = soak.new_message(self.id, "@" + name.lower())
        self.send("/msg %s S%d:%d:@%s:p" % (name, self.id, seq, name.lower()))

    def misc(self):
        r = self.rng.random()
        if r < 0.3:
            self.send("/who")
            if self.current is None:
                self.expect["noroom"] += 1
        elif r < 0.5:
            self.send("/rooms")
        elif r < 0.6:
            self.send("/help")
        elif r < 0.8:
            self.send("/msg ghost%d GHOST" % self.id)
            self.expect["nouser"] += 1
        else:
            self.send("/frobnicate%d" % self.id)
            self.expect["unknown"] += 1

    def hostile(self):
        r = self.rng.random()
        self.soak.stats["hostile lines sent"] += 1
        if r < 0.1:
            self.send(b"X" * 10000)
            self.expect["toolong"] += 1
        elif r < 0.15:
            self.send(b"z" * 4097)
            self.expect["toolong"] += 1
        elif r < 0.25:
            self.send(b"/\x1b[2Jfrob")
            self.expect["unknown"] += 1
        elif r < 0.3:
            self.send(self.rng.choice([b"", b"\x1b", b"\r", b"\x00\x07"]))  # empty once sanitised
        else:
            self.send(self.rng.choice(HOSTILE))
            if self.current is None:
                self.expect["noroom"] += 1

    # ---- behaviour ----

    def schedule(self, t):
        self.timer_gen += 1
        self.soak.push_timer(t, self, self.timer_gen)

    def start_churner(self, now):
        rng = self.rng
        self.lifetime = rng.uniform(0.3, 7.0)
        self.end_at = now + self.lifetime
        self.ending = rng.choice(["bye", "quit", "half", "rst", "close"])
        self.half_done = False
        self.is_hostile = rng.random() < 0.1
        self.is_burster = rng.random() < 0.06
        self.is_hog = rng.random() < 0.06
        if self.stall:  # in every room it may, asking for /who #lobby at 8 lines/s
            self.lifetime = rng.uniform(8, 20)
            self.end_at = now + self.lifetime
            self.ending = "rst"
            self.soak.stats["stallers (never read)"] += 1
            for room in ROOMS[1:MAX_ROOMS]:
                self.join(room)
            self.schedule(now + 0.1)
            return
        self.burst_at = now + rng.uniform(0, self.lifetime) if self.is_burster else None
        if rng.random() < 0.6:  # most get to work at once, some say something first
            self.join(rng.choice(ROOMS[1:]))
        if rng.random() < 0.5:
            self.send("/part #lobby")
            self.order.remove("#lobby")
            if self.current == "#lobby":
                self.current = self.order[-1] if self.order else None
        self.schedule(now + rng.uniform(0.05, 0.3))

    def on_timer(self, now):
        if self.state == "leaving":
            self.soak.fail(f"{self.who()}: no EOF within 30 s of its {self.ending}")
            self.close()
        elif self.kind == "observer":
            self.observer_act()
        elif now >= self.end_at or self.soak.phase != "churn":
            self.finish()
        elif self.stall:
            self.send("/who #lobby")
            self.schedule(min(now + self.rng.uniform(0.105, 0.12), self.end_at))
        else:
            self.act(now)
            self.schedule(min(now + self.rng.uniform(0.1, 0.45), self.end_at))

    def act(self, now):
        rng = self.rng
        if self.burst_at and now >= self.burst_at:
            self.burst_at = None
            self.soak.stats["bursts (over the rate)"] += 1
            for _ in range(rng.randint(55, 90)):
                self.say()
            return
        if self.is_hog and rng.random() < 0.5:
            self.join(rng.choice([r for r in ROOMS if r not in self.order] or ROOMS))
            return
        if self.is_hostile and rng.random() < 0.3:
            self.hostile()
            return
        r = rng.random()
        if self.current is None and r < 0.8:
            self.join(rng.choice(ROOMS))  # mostly, but not always, rejoin at once
        elif r < 0.48:
            self.say()
        elif r < 0.62:
            self.join(rng.choice(ROOMS))
        elif r < 0.72:
            self.part()
        elif r < 0.78:
            self.nick()
        elif r < 0.88:
            self.pm()
        elif r < 0.92:
            self.pm(to_churner=True)
        else:
            self.misc()

    def finish(self):
        """Leave the way this churner was born to."""
        soak = self.soak
        if self.connecting:
            self.ending = "rst"
            self.unconnected = True  # natterd may never have seen it
        if self.ending == "close" and self.wbuf:
            self.ending = "rst"  # unsent lines: a close would not be a clean EOF anyway
        soak.stats["ending " + self.ending] += 1
        if self.ending in ("rst", "close"):
            self.check_errors(exact=False)
            self.close(rst=self.ending == "rst")
            return
        self.state = "leaving"
        if self.ending == "bye":
            self.send("bye")
        elif self.ending == "quit":
            self.send("/quit bye from c%d" % self.id)
        else:
            self.flush()  # shuts down writing once everything is sent
        self.schedule(time.monotonic() + 30)

    def observer_act(self):
        soak, rng = self.soak, self.rng
        if soak.phase in ("churn", "quiesce"):
            r = rng.random()
            if r < 0.1:
                self.pm()
            else:
                room = rng.choice(self.order)
                if room != self.current:
                    self.join(room)
                self.say()
        self.schedule(time.monotonic() + rng.uniform(0.4, 1.6))


class Soak:
    def __init__(self, build=None, seconds=60, clients=300, seed=None, breaks=(), out=sys.stdout):
        self.build = os.path.abspath(build) if build else natlib.BUILD
        self.seconds, self.nclients = seconds, clients
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1, 10 ** 9)
        self.breaks = set(breaks)
        self.out = out
        self.failures, self.nfailures = [], 0
        self.stats = collections.Counter()
        self.sent = {}              # sender id -> [channel of seq 1, of seq 2, ...]
        self.seen = {}              # sender id -> highest seq any client received
        self.names = []             # recent churner names, for /msg
        self.by_peer = collections.defaultdict(list)
        self.clients = {}
        self.observers, self.churners_done = [], []
        self.active = set()
        self.timers = []
        self.timer_n = 0
        self.next_id = 0
        self.phase = "setup"
        self.stopping = False
        self.log_rest = ""
        self.log_counts = collections.Counter()
        self.reasons = collections.Counter()
        self.tampered = set()
        self.measures = {}

    # ---- bookkeeping ----

    def say(self, text):
        print(text, file=self.out, flush=True)

    def fail(self, msg):
        self.nfailures += 1
        if len(self.failures) < 40:
            self.failures.append(msg)
            self.say("FAIL: " + msg)

    def new_message(self, sid, chan):
        lst = self.sent.setdefault(sid, [])
        lst.append(chan)
        self.stats["messages sent" + (" (private)" if chan[0] == "@" else "")] += 1
        return len(lst)

    def note_seen(self, sid, seq):
        if seq > self.seen.get(sid, 0):
            self.seen[sid] = seq

    def note_name(self, name):
        self.names.append(name)
        if len(self.names) > 64:
            del self.names[:32]

    def push_timer(self, t, client, gen):
        self.timer_n += 1
        heapq.heappush(self.timers, (t, self.timer_n, client, gen))

    def new_client(self, kind):
        self.next_id += 1
        c = Client(self, self.next_id, kind)
        self.clients[c.id] = c
        return c

    def on_closed(self, c):
        self.active.discard(c)
        if c.kind == "churner":
            self.churners_done.append(c)

    # ---- the server's log ----

    def read_log(self):
        try:
            chunk = os.read(self.server.proc.stderr.fileno(), 65536)
        except BlockingIOError:
            return
        if not chunk:
            self.sel.unregister(self.server.proc.stderr)
            return
        self.take_log(chunk.decode("utf-8", "replace"))

    def take_log(self, text):
        text = self.log_rest + text
        lines = text.split("\n")
        self.log_rest = lines.pop()
        self.server.log = (self.server.log + text)[-8000:]  # a tail, for error messages
        for line in lines:
            for mark in natlib.SANITIZER_MARKS:
                if mark in line:
                    self.fail("sanitizer report from natterd: " + line)
            # "TIME natterd: info: connect #1 ..." (or "<6>connect ..." under the journal)
            body = re.sub(r"^(<\d>|.*?natterd: (\w+: )?)", "", line)
            if body.startswith("connect "):
                self.log_counts["connect"] += 1
            elif body.startswith("disconnect "):
                self.log_counts["disconnect"] += 1
                m = LOG_DISCONNECT.match(body)
                peer, reason = (m.group(1), m.group(2)) if m else (None, body)
                short = reason.split(":")[0]
                self.reasons[short] += 1
                waiting = self.by_peer.get(peer)
                if not waiting:
                    self.fail(f"natterd logged a disconnect of an unknown peer: {line}")
                    continue
                c = waiting.pop(0)
                if not waiting:
                    del self.by_peer[peer]
                c.reason = short
            elif not body.startswith(("listening on", "listening for ", "Terminated received", "stopped", "rename #",
                                       "running as root")) and line:
                self.fail(f"natterd logged: {line}")  # epoll_ctl, accept, refused...

    # ---- the loop ----

    def pump(self, secs):
        """Run timers and socket events for up to secs seconds."""
        now = time.monotonic()
        if now > self.hard_deadline:
            raise Fail(f"the run passed its hard deadline ({self.hard_deadline - self.t0:.0f} s)")
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, c, gen = heapq.heappop(timers)
            if c.state != "done" and gen == c.timer_gen:
                c.on_timer(now)
        wait = secs if not timers else max(0.0, min(secs, timers[0][0] - time.monotonic()))
        for key, mask in self.sel.select(wait):
            if key.data is None:
                self.read_log()
            else:
                key.data.on_event(mask)

    def wait_for(self, pred, secs, what):
        deadline = time.monotonic() + secs
        while not pred():
            if time.monotonic() > deadline:
                raise Fail(f"timed out after {secs} s waiting for {what}")
            self.pump(0.05)

    def sync_observers(self, what):
        want = {o: o.syncs + 1 for o in self.observers}
        for o in self.observers:
            o.send("/rooms")
        self.wait_for(lambda: all(o.syncs >= n for o, n in want.items()), 20, what)

    # ---- phases ----

    def setup_observers(self):
        nobs = max(4, self.nclients // 5)
        for k in range(nobs):
            o = self.new_client("observer")
            o.planned = "obs%d" % k
            rooms = {OBS_ROOMS[k % len(OBS_ROOMS)], OBS_ROOMS[(k * 3 + 1) % len(OBS_ROOMS)]}
            while len(rooms) < 3:
                rooms.add(o.rng.choice(OBS_ROOMS))
            o.send("/nick " + o.planned)
            for r in sorted(rooms):
                o.join(r)
            if k % 3:  # two in three leave #lobby
                o.send("/part #lobby")
                o.order.remove("#lobby")
            o.chans = set(o.order) | {"@" + o.planned}
            self.observers.append(o)
        self.wait_for(lambda: all(o.name == o.planned and o.rooms == set(o.order) for o in self.observers),
                      30, "the observers to pick their names and rooms")
        for o in self.observers:
            o.ask_who()
        self.wait_for(lambda: not any(o.who_pending for o in self.observers), 20, "the observers' /who")
        for o in self.observers:
            o.check_members("start")
        self.sync_observers("the observers' first /rooms")
        self.base_rooms = self.observers[0].last_rooms
        for o in self.observers:
            o.schedule(time.monotonic() + o.rng.uniform(0, 1))

    def measure(self, label):
        pid = self.server.pid()
        m = {"fds": fd_count(pid), "rss_kib": natlib.rss_kib(pid), "cpu": cpu_seconds(pid)}
        if "rss" in self.breaks and label != "start":
            m["rss_kib"] += 64 * 1024
        self.measures[label] = m
        return m

    def churn(self, secs):
        self.phase = "churn"
        nchurn = self.nclients - len(self.observers)
        end = time.monotonic() + secs
        while time.monotonic() < end:
            started = 0
            while len(self.active) < nchurn and started < 25:  # top up, a few per turn
                c = self.new_client("churner")
                self.active.add(c)
                c.start_churner(time.monotonic())
                started += 1
            self.pump(0.02)

    def quiesce(self, label):
        """Stop churning, let every churner leave, and check the server is back to baseline."""
        self.phase = "quiesce"
        now = t_start = time.monotonic()
        for c in list(self.active):
            if c.state == "live":
                c.schedule(now)
        self.wait_for(lambda: not self.active, 45, "every churner to leave")
        self.stats[f"quiesce {label}: churners gone (ms)"] = int((time.monotonic() - t_start) * 1000)
        pid = self.server.pid()
        base = self.measures["start"]["fds"] + (1 if "fd" in self.breaks else 0)
        try:
            self.wait_for(lambda: fd_count(pid) == base, 20,
                          f"natterd's descriptors to return to {base}")
        except Fail as e:
            self.fail(f"{label}: {e} (now {fd_count(pid)})")
        try:  # natterd logs before it closes: it has logged every churner's disconnect
            self.wait_for(lambda: self.log_counts["connect"] - self.log_counts["disconnect"] == len(self.observers),
                          10, "natterd's log to show only the observers connected")
        except Fail as e:
            self.fail(f"{label}: {e} ({dict(self.log_counts)})")
        self.sync_observers(f"/rooms at {label}")
        for o in self.observers:
            o.check_members(label)
            o.ask_who()  # and natterd agrees
        self.wait_for(lambda: not any(o.who_pending for o in self.observers), 20, f"/who at {label}")
        listing = self.observers[0].last_rooms
        if "rooms" in self.breaks and label == "end":
            listing += " #ghost (1)"
        if listing != self.base_rooms:
            self.fail(f"{label}: /rooms is {listing!r}, was {self.base_rooms!r} with only the observers")
        self.measure(label)
        self.stats[f"quiesce {label}: all checked (ms)"] = int((time.monotonic() - t_start) * 1000)

    def check_senders(self):
        """Every accepted message reached every observer in its channel, exactly once."""
        churners = [c for c in self.churners_done]
        acc = {}
        for o in self.observers:
            acc[o.id] = len(self.sent.get(o.id, ()))
        for c in churners:
            if c.reason is None and not c.unconnected:
                self.fail(f"{c.who()}: natterd never logged its disconnect")
            want = {"bye": {"quit"}, "quit": {"quit"}, "half": {"connection closed"},
                    "rst": {"read error", "write error"},
                    "close": {"connection closed", "read error", "write error"}}[c.ending]
            if c.stall:
                want = {"too slow", "read error", "write error"}
            if c.reason is not None and c.reason not in want:
                self.fail(f"{c.who()}: left by {c.ending}, natterd says {c.reason!r}")
            if c.reason in ("quit", "connection closed") and c.flushed_at_close:
                acc[c.id] = len(self.sent.get(c.id, ()))  # natterd read it all
                self.stats["senders fully accepted"] += 1
            else:
                acc[c.id] = self.seen.get(c.id, 0)        # a prefix: up to what anyone got
                self.stats["senders accepted up to the last seen"] += 1
        if "lastmsg" in self.breaks:
            for c in churners:
                if c.ending in ("bye", "quit") and self.sent.get(c.id):
                    self.sent[c.id].append(c.order[-1] if c.order else "#lobby")
                    acc[c.id] += 1
                    break
        for sid, n in acc.items():
            sent = self.sent.get(sid, ())
            if self.seen.get(sid, 0) > len(sent):
                self.fail(f"sender {sid}: seq {self.seen[sid]} received, only {len(sent)} sent")
            self.stats["messages accepted"] += n
            for o in self.observers:
                if o.id == sid:
                    continue
                chans, start = o.chans, o.last_seq.get(sid, 0)
                for i in range(start, n):
                    if sent[i] in chans:
                        self.fail(f"{o.who()}: never got S{sid}:{i + 1}:{sent[i]} "
                                  f"(accepted {n}, last received {start})")
                        break

    def tamper_bytes(self, c, chunk):
        """--break: corrupt what one observer sees, once per kind."""
        if not self.breaks or c.kind != "observer" or self.phase != "churn":
            return chunk
        lines = chunk.split(b"\n")
        msg = re.compile(rb"#r\d+ .*S(\d+):\d+:#r")
        idx = [i for i, l in enumerate(lines) if msg.match(l)]
        held = getattr(self, "held", None)
        if held and held[0] is c:  # swap, second half: the held line goes after a later one
            later = [i for i in idx if msg.match(lines[i]).group(1) == held[1]]
            if later:
                lines.insert(later[0] + 1, held[2])
                self.held = None
                self.say(f"(--break swap: {c.who()} got two messages of S{held[1].decode()} swapped)")
                return b"\n".join(lines)
        for kind in ("drop", "dup", "swap", "misroute", "ctrl", "utf8", "notice"):
            if kind == "notice":
                idx = [i for i, l in enumerate(lines) if re.match(rb"-- \S+ (joined|quit)", l)]
            if kind not in self.breaks or kind in self.tampered or not idx:
                continue
            i = idx[0]
            if kind == "notice":
                kind = "drop"
            if kind == "swap":
                self.held = (c, msg.match(lines[i]).group(1), lines[i])
                del lines[i]
            elif kind == "drop":
                del lines[i]
            elif kind == "dup":
                lines.insert(i, lines[i])
            elif kind == "misroute":
                lines[i] = re.sub(rb"^#r\d+", b"#r1" if not lines[i].startswith(b"#r1 ") else b"#r2", lines[i])
            elif kind == "ctrl":
                lines[i] += b"\x1b[0m"
            elif kind == "utf8":
                lines[i] += b"\xc0\xaf"
            self.tampered.add("notice" if "notice" in self.breaks else kind)
            self.say(f"(--break {kind}: tampered with what {c.who()} received)")
            return b"\n".join(lines) if lines else None
        return chunk

    def run(self):
        self.t0 = time.monotonic()
        self.hard_deadline = self.t0 + self.seconds + 150
        asan = is_asan(natlib.binary("natterd", self.build))
        self.say(f"soak: seed {self.seed}, {self.seconds} s, {self.nclients} clients, "
                 f"natterd from {self.build}{' (ASan)' if asan else ''}")
        self.sel = selectors.DefaultSelector()
        # every notice is checked one by one; natterd's log is read here (pump=False)
        self.server = natlib.Server("--notice-storm", "0", build=self.build, pump=False)
        try:
            os.set_blocking(self.server.proc.stderr.fileno(), False)
            self.sel.register(self.server.proc.stderr, selectors.EVENT_READ, None)
            self.take_log(self.server.log.split("\n", 1)[1] if "\n" in self.server.log else "")
            self.setup_observers()
            self.measure("start")
            self.phase = "churn"
            for half, label in ((1, "middle"), (2, "end")):
                self.churn(self.seconds / 2)
                self.quiesce(label)
            self.phase = "final"
            self.sync_observers("the last /rooms")  # every observer's lines are in
            self.sync_observers("a second /rooms")  # and have reached every observer
            for o in self.observers:
                o.check_errors(exact=True)
            if "reason" in self.breaks:
                self.churners_done[0].reason = "too slow"
            if "error" in self.breaks:
                self.churners_done[0].got["notin"] += 1
                self.churners_done[0].check_errors(exact=True)
            self.check_senders()
            self.check_memory(asan)
            self.shut_down()
        except (Fail, AssertionError) as e:
            self.fail(str(e))
        finally:
            for c in self.clients.values():
                if c.state != "done":
                    c.sock.close()
            self.server.kill()  # (it has exited unless something failed)
        self.summary(asan)
        return self.nfailures == 0

    def check_memory(self, asan):
        s, m, e = (self.measures[k]["rss_kib"] for k in ("start", "middle", "end"))
        nconn = max(1, self.stats["connections"])
        self.stats["rss growth per connection (bytes)"] = int((e - s) * 1024 / nconn)
        if asan:
            return  # ASan's quarantine and shadow memory make RSS meaningless; LSan checks leaks
        # glibc keeps what was freed, so RSS is a high-water mark: the first half may raise
        # it (peak load), the second, the same load again, must not raise it much further.
        if e > s + 16 * 1024:
            self.fail(f"natterd's RSS grew from {s} KiB to {e} KiB (bound: +16 MiB)")
        if e > m + max(2048, (m - s) // 2):
            self.fail(f"natterd's RSS kept growing: {s} KiB at start, {m} KiB midway, {e} KiB at the end")

    def shut_down(self):
        """Half the observers say bye; natterd gets SIGTERM; the others hear it shut down."""
        self.stopping = True
        leaving = self.observers[::2]
        for o in leaving:
            o.ending, o.state = "bye", "leaving"
            o.send("bye")
            o.schedule(time.monotonic() + 30)
        self.wait_for(lambda: all(o.state == "done" for o in leaving), 20, "the observers' bye")
        self.pump(0)
        self.server.stop()  # asserts exit 0 and no sanitizer report
        self.measures["stop"] = {}
        rest = [o for o in self.observers if o.state != "done"]
        self.wait_for(lambda: all(o.state == "done" for o in rest), 10, "EOF after the shutdown")
        for o in rest:
            if not o.shutdown_seen:
                self.fail(f"{o.who()}: no '-- server shutting down' before EOF")

    def summary(self, asan):
        st = self.stats
        ms = self.measures
        say = self.say
        say(f"soak: seed {self.seed}: {st['connections']} connections "
            f"({len(self.observers)} observers, {len(self.churners_done)} churners) "
            f"in {time.monotonic() - self.t0:.1f} s")
        endings = ", ".join(f"{k[7:]} {v}" for k, v in sorted(st.items()) if k.startswith("ending "))
        say(f"  churner endings: {endings}")
        say(f"  messages sent {st['messages sent']} to rooms + {st['messages sent (private)']} private, "
            f"accepted {st['messages accepted']}; checked at observers {st['messages checked at observers']}, "
            f"received by churners {st['messages received by churners']}")
        say(f"  lines sent {st['lines sent']}, received {st['lines received']} "
            f"({st['bytes received'] / 1e6:.1f} MB); hostile sent {st['hostile lines sent']}, "
            f"seen sanitised {st['hostile lines received']}; bursts over the rate {st['bursts (over the rate)']}")
        errs = ", ".join(f"{k[6:]} {v}" for k, v in sorted(st.items()) if k.startswith("error "))
        say(f"  errors received: {errs or 'none'}; notices checked at observers {st['notices checked at observers']}")
        say(f"  stallers (never read) {st['stallers (never read)']}, dropped as too slow {self.reasons['too slow']}")
        say(f"  natterd disconnect reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())))
        for label in ("start", "middle", "end"):
            if label in ms:
                m = ms[label]
                say(f"  natterd at {label:6}: {m['fds']} fds, RSS {m['rss_kib']} KiB, CPU {m['cpu']:.2f} s")
        if "start" in ms and "end" in ms:
            say(f"  natterd CPU during churn: {ms['end']['cpu'] - ms['start']['cpu']:.2f} s; "
                f"RSS growth per connection: {st['rss growth per connection (bytes)']} bytes"
                f"{' (ASan build: RSS not checked)' if asan else ''}")
        say("  quiesce: " + ", ".join(f"{k[8:]} {v}" for k, v in sorted(st.items()) if k.startswith("quiesce ")))
        ru = resource.getrusage(resource.RUSAGE_SELF)
        say(f"  soak.py CPU: {ru.ru_utime + ru.ru_stime:.1f} s")
        if self.nfailures:
            say(f"soak: FAILED, {self.nfailures} failed checks (seed {self.seed}); first: {self.failures[0]}")
        else:
            say(f"soak: OK (seed {self.seed})")


def run(build=None, seconds=60, clients=300, seed=None, breaks=(), out=sys.stdout):
    """Run a soak; returns the Soak (ok: .nfailures == 0, details: .failures)."""
    s = Soak(build, seconds, clients, seed, breaks, out)
    s.run()
    return s


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", help="build directory holding natterd (default: $NATTER_BUILD or build)")
    ap.add_argument("--seconds", type=float, default=60, help="how long to churn (default 60)")
    ap.add_argument("--clients", type=int, default=300, help="clients at once (default 300)")
    ap.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    ap.add_argument("--break", dest="breaks", action="append", default=[], choices=sorted(BREAKS),
                    help="corrupt what the checker sees, to show a check can fail: " +
                    "; ".join(f"{k}: {v}" for k, v in BREAKS.items()))
    a = ap.parse_args(argv)
    if a.clients < 20:
        ap.error("--clients must be at least 20")
    s = run(a.build, a.seconds, a.clients, a.seed, a.breaks)
    return 0 if s.nfailures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
