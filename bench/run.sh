#!/usr/bin/env bash
# bench/run.sh - the benchmark scenarios of docs/PERFORMANCE.md, each against a fresh
# server: natterd (flood control off) and the trivial broadcast server the bench is
# calibrated with. `make bench` runs it; it is not part of `make test`.
#
# usage: bench/run.sh [BUILD_DIR] [natterd|bcast|both]   (defaults: build both)
# Reports go to stdout and, as JSON lines, to $BENCH_OUT (default BUILD_DIR/bench-results.jsonl).
# Every run is bounded: the bench has its own deadlines and `timeout` backs them up.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WHICH=${2:-both}
OUT=${BENCH_OUT:-$BUILD/bench-results.jsonl}
BENCH=$BUILD/natter-bench
NATTERD_ARGS=(--bind 127.0.0.1 --port 0 --irc-port 0 --http-port 0 --rate 0 --max-per-ip 0 --connect-rate 0)
CAPACITY=19900 # connections natterd is allowed in scenario 5 (20,000 descriptors, minus spares)

server_pid=""
server_log=$(mktemp)
state_dir=$(mktemp -d) # natterd's history database: a fresh one for every server
trap 'stop_server; rm -f "$server_log"; rm -rf "$state_dir"' EXIT

start_server() { # kind [extra args...]; sets server_pid and port
    local kind=$1; shift
    : >"$server_log"
    case $kind in
    natterd) rm -f "$state_dir"/natter.db*
             "$BUILD/natterd" "${NATTERD_ARGS[@]}" --db "$state_dir/natter.db" "$@" 2>"$server_log" </dev/null & ;;
    bcast) "$BUILD/tests/bcast-server" "$@" 2>"$server_log" </dev/null & ;;
    esac
    server_pid=$!
    for _ in $(seq 200); do # poll for the listening line, at most 10 s
        port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$server_log" | head -1)
        http_port=$(sed -n 's/.*listening for HTTP on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$server_log" | head -1)
        [ -n "$port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench/run.sh: $kind did not start:" >&2
    cat "$server_log" >&2
    exit 2
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# scenario NAME KIND "server args" bench args...
scenario() {
    local name=$1 kind=$2 sargs=$3; shift 3
    # shellcheck disable=SC2086
    start_server "$kind" $sargs
    echo "== $name vs $kind: natter-bench $* --server-pid PID"
    local json rc=0
    local args=("$@")
    args=("${args[@]/@HTTP@/$http_port}") # the HTTP port, known once the server is up (--ws)
    json=$(timeout 600 "$BENCH" --port "$port" --server-pid "$server_pid" --json "${args[@]}") || rc=$?
    echo "$json" | python3 bench/summary.py || echo "   (no report; exit $rc)"
    stop_server
    if [ "$kind" = natterd ] && [ -f "$state_dir/natter.db" ] && command -v sqlite3 >/dev/null; then
        # History: every message sent must be in the database (rows = messages, not deliveries).
        local rows sent
        rows=$(sqlite3 "$state_dir/natter.db" "SELECT coalesce(sum(n), 0) FROM chunks" 2>/dev/null || echo "?")
        sent=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])' 2>/dev/null || echo "?")
        echo "   history: $rows of $sent messages sent persisted$(grep -q 'not recorded' "$server_log" && echo ', SOME NOT RECORDED')"
        [ "$rows" = "$sent" ] || rc=1
    fi
    echo "{\"scenario\":\"$name\",\"server\":\"$kind\",\"exit\":$rc,\"report\":${json:-null}}" >>"$OUT"
    stop_server
    [ $rc -eq 0 ] || failures=$((failures + 1))
}

run_all() { # KIND
    local kind=$1 full="" cap_clients=$CAPACITY refused=0
    if [ "$kind" = natterd ]; then
        full="--max-clients $CAPACITY"
        cap_clients=$((CAPACITY + 1)) # one more than allowed: it must get "!! server full"
        refused=1
    fi
    scenario "1 one room, 100 clients all sending, window 16" "$kind" "" --clients 100 --window 16 --duration 5
    scenario "2 one room, 1000 clients, 10 senders" "$kind" "" --clients 1000 --senders 10 --duration 5
    if [ "$kind" = natterd ]; then # IRC clients (on the plain port, handed over), and rooms half IRC
        scenario "1i IRC: one room, 100 IRC clients" "$kind" "" --clients 100 --window 16 --duration 5 --irc
        scenario "1m mixed: one room, 50 plain + 50 IRC" "$kind" "" --clients 100 --window 16 --duration 5 \
            --irc-every 2
        scenario "2i IRC: one room, 1000 IRC clients, 10 senders" "$kind" "" --clients 1000 --senders 10 \
            --duration 5 --irc
        scenario "2m mixed: 500 plain + 500 IRC, 10 senders" "$kind" "" --clients 1000 --senders 10 \
            --duration 5 --irc-every 2
        scenario "1w WebSocket: one room, 100 IRC-over-WebSocket clients" "$kind" "" --clients 100 --window 16 \
            --duration 5 --ws --irc-port @HTTP@
        scenario "2w WebSocket: one room, 1000 IRC-over-WebSocket clients, 10 senders" "$kind" "" --clients 1000 \
            --senders 10 --duration 5 --ws --irc-port @HTTP@
    fi
    scenario "3a latency, 100 clients, 200 msgs/s" "$kind" "" --clients 100 --rate 200 --duration 10
    scenario "3b latency, 1000 clients, 20 msgs/s" "$kind" "" --clients 1000 --rate 20 --duration 10
    scenario "4 1000 rooms of 10, everyone chatting" "$kind" "" --clients 10000 --rooms 1000 --duration 5
    if [ "$kind" = natterd ]; then # the same three with history off (natterd records every room message by default)
        scenario "1 (history off)" "$kind" "--history 0" --clients 100 --window 16 --duration 5
        scenario "2 (history off)" "$kind" "--history 0" --clients 1000 --senders 10 --duration 5
        scenario "4 (history off)" "$kind" "--history 0" --clients 10000 --rooms 1000 --duration 5
    fi
    scenario "5 capacity: idle, then one broadcast" "$kind" "$full" --clients $cap_clients \
        --expect-refused $refused --idle 10 --senders 1 --messages 1 --procs 2 \
        --source-ips 127.0.0.1-127.0.0.4
}

failures=0
: >"$OUT"
case $WHICH in
natterd | bcast) run_all "$WHICH" ;;
both) run_all bcast; run_all natterd ;;
*) echo "usage: bench/run.sh [BUILD_DIR] [natterd|bcast|both]" >&2; exit 2 ;;
esac
echo "bench/run.sh: $failures scenario(s) failed; JSON reports in $OUT"
[ $failures -eq 0 ]
