#!/usr/bin/env python3
"""A healthy pair of natter clients, for the hardening tests: run as a separate
process (so the attacker's Python does not stall it), two clients join a room of
their own and each sends numbered, timestamped lines at a steady pace; each
reports what it received from the other, with the latency of every line.

usage: healthy_pair.py HOST PORT ROOM SECONDS RATE
Prints "ready" once both are in ROOM, then, after SECONDS, one JSON line:
{"sent": [na, nb], "got": [from b at a, from a at b], "bad": [...], "lat_ms": [...],
 "p99_ms": ..., "max_ms": ..., "other": [lines that were neither]}.
"""
import json, os, re, select, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlib  # noqa: E402


def main():
    host, port, room, seconds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
    a, b = natlib.Client(host, port), natlib.Client(host, port)
    for c in (a, b):
        c.send("/join " + room)
        c.expect(r"^-- %s joined %s$" % (re.escape(c.name), re.escape(room)))
        c.send("/part #lobby")
        c.expect(r"^-- %s left #lobby" % re.escape(c.name))
    a.expect(r"^-- %s joined %s$" % (re.escape(b.name), re.escape(room)))
    print("ready", flush=True)
    pair = [a, b]
    sent = [0, 0]
    got = [0, 0]
    bad = []
    lat = []
    other = []
    rx = re.compile(r"^%s <(\S+)> (\d+) (\d+)$" % re.escape(room))
    t0 = time.monotonic()
    step = 1.0 / rate
    next_send = t0
    end = t0 + seconds
    drain_until = None
    while True:
        now = time.monotonic()
        if now < end and now >= next_send:
            for i, c in enumerate(pair):
                c.send("%d %d" % (sent[i], time.monotonic_ns()))
                sent[i] += 1
            next_send += step
        if now >= end and drain_until is None:
            drain_until = now + 10
        if drain_until is not None and (got[0] >= sent[1] and got[1] >= sent[0] or now > drain_until):
            break
        wait = max(0.0, min(next_send - now, 0.05)) if now < end else 0.05
        r, _, _ = select.select([c.sock for c in pair], [], [], wait)
        for i, c in enumerate(pair):
            if c.sock not in r:
                continue
            c._fill(0)
            while b"\n" in c.buf:
                line = c.readline()
                m = rx.match(line)
                if not m:
                    other.append(line)
                    continue
                n, ts = int(m.group(2)), int(m.group(3))
                if n != got[i]:
                    bad.append(line)
                got[i] = n + 1
                lat.append((time.monotonic_ns() - ts) / 1e6)
            if c.eof:
                other.append("EOF")
                drain_until = 0
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    print(json.dumps({"sent": sent, "got": got, "bad": bad, "p99_ms": p99, "max_ms": lat[-1] if lat else None,
                      "n": len(lat), "other": other[:20]}), flush=True)
    a.close()
    b.close()


if __name__ == "__main__":
    main()
