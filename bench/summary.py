#!/usr/bin/env python3
"""One line per natter-bench --json report read from stdin (used by bench/run.sh)."""
import json, sys

r = json.loads(sys.stdin.read())
lat = r["latency_us"]
parts = [
    f"held {r['held']}/{r['clients']} refused {r['refused']}",
    f"delivered {r['delivered']} missing {r['missing']} dup {r['duplicated']} reord {r['reordered']}",
    f"{r['delivered_per_s'] / 1e6:.2f}M msgs/s",
    f"p50 {lat['p50'] / 1e3:.3f} p99 {lat['p99'] / 1e3:.3f} p99.9 {lat['p999'] / 1e3:.3f} max {lat['max'] / 1e3:.3f} ms",
    f"server {r['server_ns_per_msg']:.0f} ns/msg, {r['server_cpu_s']:.2f} s cpu",
    f"bench {r['bench_cpu_s']:.2f} s cpu",
]
if r["server_rss_per_conn"]:
    parts.append(f"server rss {r['server_rss_held_kb'] / 1024:.1f} MB, {r['server_rss_per_conn']:.0f} B/conn")
print("   " + "  |  ".join(parts) + ("" if r["ok"] else "  |  FAIL"))
