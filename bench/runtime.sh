#!/usr/bin/env bash
# What a user waits for with the embedded runtime, on a copy of the example stack
# (examples/file-analyzer/berth.toml) whose services run the release binaries:
#   - `berth up -d` until every target is healthy (PostgreSQL start included),
#   - `kill -9` of a backend task until the service is steady again with 2 tasks,
#   - `berth down` (deregister, drain, stop tasks, balancer, PostgreSQL).
# Prints a markdown table for the `## Runtime` section of BENCHMARKS.md.
#
#   bench/runtime.sh            # 3 rounds
#   ROUNDS=5 bench/runtime.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18480}
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is in use; set PORT" >&2
    exit 2
fi

echo "building release binaries..." >&2
cargo build --release -q -p berth-cli -p file-analyzer-api -p file-analyzer-web
root=$(pwd)
berth=$root/target/release/berth

tmp=$(mktemp -d)
cleanup() {
    "$berth" -f "$tmp/berth.toml" down >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# The example with a free listener and builds that only point at the release binaries.
sed -e "s|listen = \"127.0.0.1:8080\"|listen = \"127.0.0.1:$PORT\"|" \
    -e "s|build = { context = \"../..\", command = \"cargo build --release -p file-analyzer-web\", artifact = \"target/release/file-analyzer-web\", dockerfile = \"apps/web/Dockerfile\" }|build = { context = \".\", command = \"true\", artifact = \"$root/target/release/file-analyzer-web\" }|" \
    -e "s|build = { context = \"../..\", command = \"cargo build --release -p file-analyzer-api\", artifact = \"target/release/file-analyzer-api\", dockerfile = \"apps/api/Dockerfile\" }|build = { context = \".\", command = \"true\", artifact = \"$root/target/release/file-analyzer-api\" }|" \
    examples/file-analyzer/berth.toml >"$tmp/berth.toml"
grep -q "artifact = \"$root/target/release/file-analyzer-api\"" "$tmp/berth.toml" \
    || { echo "the example stack changed: update bench/runtime.sh" >&2; exit 2; }
b() { "$berth" -f "$tmp/berth.toml" "$@"; }
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc | sed 's/^\./0./' | cut -c1-5; }

backend_pid() {
    b status --output json | python3 -c '
import json, sys
d = json.load(sys.stdin)
b = [s for s in d["services"] if s["serviceName"] == "backend-service"][0]
print([t["pid"] for t in b["tasks"] if t["lastStatus"] == "RUNNING"][0])'
}
backend_steady() {
    b status --output json | python3 -c '
import json, sys
d = json.load(sys.stdin)
b = [s for s in d["services"] if s["serviceName"] == "backend-service"][0]
sys.exit(0 if b["steadyState"] and b["runningCount"] == 2 else 1)'
}

# A first up snapshots the images into the registry and initialises PostgreSQL.
b up -d >/dev/null
b down >/dev/null

ups=() replacements=() downs=()
for _ in $(seq "$ROUNDS"); do
    start=$(now)
    b up -d >/dev/null
    up=$(now)
    pid=$(backend_pid)
    killed=$(now)
    kill -9 "$pid"
    sleep 0.2
    until backend_steady; do sleep 0.1; done
    healed=$(now)
    stop=$(now)
    b down >/dev/null
    stopped=$(now)
    ups+=("$(elapsed "$start" "$up")")
    replacements+=("$(elapsed "$killed" "$healed")")
    downs+=("$(elapsed "$stop" "$stopped")")
done

join() { local out; out=$(printf '%s, ' "$@"); echo "${out%, }"; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| step | runs (s) |"
echo "|---|---|"
echo "| \`berth up -d\` until every target is healthy (PostgreSQL start included) | $(join "${ups[@]}") |"
echo "| \`kill -9\` of a backend task until the service is steady again with 2 tasks | $(join "${replacements[@]}") |"
echo "| \`berth down\` (drain, stop tasks, balancer, PostgreSQL) | $(join "${downs[@]}") |"
