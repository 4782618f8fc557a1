#!/usr/bin/env bash
# Rolling, blue/green and canary deployments against their floors, under a paced load:
#   - a stack of one web service (2 tasks of the web app, health checks every 1 s,
#     healthy threshold 2, deregistration delay 2 s), `berth up -d`,
#   - a load of about RATE req/s to `/health` through the balancer, counting every
#     answer that is not a 2xx (connection errors included),
#   - `berth deploy web` rolling (min 100 %, max 200 %: floor = both new tasks healthy,
#     2 s, plus the old ones' draining, up to the 2 s delay), then blue_green (bake 10 s), then canary (10 %, canary bake 10 s,
#     bake 10 s): the time `berth deploy` takes, against its floor: green healthy (healthy
#     threshold × interval, 2 s) plus the bakes; blue's draining ends early once it has no
#     request in flight.
# Prints a markdown table for BENCHMARKS.md.
#
#   bench/strategies.sh                 # debug binaries (cargo build --workspace --bins)
#   PROFILE=release bench/strategies.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-debug}
RATE=${RATE:-500}
PORT=${PORT:-18490}
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is in use; set PORT" >&2
    exit 2
fi
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
berth=$target/$PROFILE/berth
web=$target/$PROFILE/file-analyzer-web
[ -x "$berth" ] && [ -x "$web" ] || { echo "build berth and file-analyzer-web ($PROFILE) first" >&2; exit 2; }

tmp=$(mktemp -d)
cleanup() {
    "$berth" -f "$tmp/berth.toml" down >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

stack() {
    cat >"$tmp/berth.toml" <<TOML
[stack]
name = "strategies-bench"

[environments.local]
listen = "127.0.0.1:$PORT"
health_check_interval = "1s"
health_check_timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 2
deregistration_delay = "2s"

[load_balancer]
default_service = "web"

[services.web]
port = 80
desired_count = 2
build = { context = ".", command = "true", artifact = "$web" }
health_check = { path = "/health" }
deployment = $1
TOML
}
b() { "$berth" -f "$tmp/berth.toml" "$@"; }

# Paced load: RATE requests a second over 4 threads, each on its own keep-alive connection
# (reopened after an error); prints "ok failed" when stdin closes.
cat >"$tmp/load.py" <<'PY'
import http.client, sys, threading, time
port, rate = int(sys.argv[1]), int(sys.argv[2])
threads, stop = 4, threading.Event()
counts = [[0, 0] for _ in range(threads)]
def run(i):
    conn, period, due = None, threads / rate, time.monotonic()
    while not stop.is_set():
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            r = conn.getresponse(); r.read()
            counts[i][0 if 200 <= r.status < 300 else 1] += 1
        except Exception:
            counts[i][1] += 1
            conn = None
        due += period
        time.sleep(max(0.0, due - time.monotonic()))
ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
[t.start() for t in ts]
sys.stdin.read()
stop.set(); [t.join() for t in ts]
print(sum(c[0] for c in counts), sum(c[1] for c in counts))
PY
load() { python3 -u "$tmp/load.py" "$PORT" "$RATE"; }

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc | sed 's/^\./0./' | cut -c1-5; }

stack '{ strategy = "rolling" }'
b up -d >/dev/null

echo "| strategy | floor (healthy + bakes) | berth deploy | requests ok | failed | rate |"
echo "|---|---:|---:|---:|---:|---:|"
run() {
    local name=$1 config=$2 floor=$3
    stack "$config"
    exec 4> >(load >"$tmp/load.out")
    local start end
    start=$(now)
    sleep 1
    local deploy_start
    deploy_start=$(now)
    b deploy web >/dev/null
    end=$(now)
    sleep 1
    exec 4>&-
    # The load process prints once its stdin closes.
    for _ in $(seq 50); do [ -s "$tmp/load.out" ] && break; sleep 0.1; done
    read -r ok failed <"$tmp/load.out"
    local rate
    rate=$(echo "($ok + $failed) / ($(now) - $start)" | bc)
    echo "| $name | ${floor} s | $(elapsed "$deploy_start" "$end") s | $ok | $failed | ~$rate req/s |"
    : >"$tmp/load.out"
}
run rolling '{ strategy = "rolling", minimum_healthy_percent = 100, maximum_percent = 200 }' "2–4"
run blue_green '{ strategy = "blue_green", bake_time = "10s" }' 12
run canary '{ strategy = "canary", canary_percent = 10, canary_bake = "10s", bake_time = "10s" }' 22
