#!/usr/bin/env python3
"""OPER attempts as fast as natterd answers them, from N IRC connections, for the
docs/PERFORMANCE.md row "OPER flood": natter-bench runs alongside and reports the
room's latency. Usage: bench/oper-flood.py HOST IRCPORT NAME PASSWORD N SECONDS [RATE].
Each connection sends its next OPER once the last is answered, at most RATE a
second (default 10, natterd's default --rate; 0: no limit).
Prints how many checks succeeded (each one a real Argon2id verification on the
server's worker thread) and how many were refused because the queue was full."""
import select, socket, sys, time


def main():
    host, port, name, password, n, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
    rate = float(sys.argv[7]) if len(sys.argv) > 7 else 10.0
    gap = 1.0 / rate if rate > 0 else 0.0
    due = {}  # connection -> when its next OPER may go
    socks, bufs = [], {}
    for i in range(n):
        s = socket.create_connection((host, port))
        s.sendall(f"NICK flood{i}\r\nUSER f 0 * :f\r\n".encode())
        socks.append(s)
        bufs[s] = b""
    ok = busy = 0
    ready = set()
    deadline = time.time() + secs
    while time.time() < deadline:
        now = time.time()
        for s, t in list(due.items()):
            if t <= now:
                s.sendall(f"OPER {name} {password}\r\n".encode())
                del due[s]
        r, _, _ = select.select(socks, [], [], min([0.5] + [max(t - now, 0) for t in due.values()]))
        for s in r:
            data = s.recv(65536)
            if not data:
                sys.exit("server closed a connection")
            bufs[s] += data
            while b"\n" in bufs[s]:
                line, bufs[s] = bufs[s].split(b"\n", 1)
                if b" 001 " in line or b" 381 " in line or b"Too many operator logins" in line:
                    ok += b" 381 " in line
                    busy += b"Too many" in line
                    due[s] = time.time() + gap
    print(f"oper flood: {ok} checks succeeded, {busy} refused (queue full), {n} connections, {secs:.0f} s")


if __name__ == "__main__":
    main()
