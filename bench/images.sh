#!/usr/bin/env bash
# The example stack from images against the same from processes, side by side in one run:
#   - the same two binaries both ways (a Dockerfile per app that copies the binary onto
#     debian:bookworm-slim, as e2e's image fixture does), so the difference is the container
#     path alone: the engine's `run` per task, its network and cgroup limits;
#   - `berth up -d` until every target is healthy (after a first up that built the images
#     and initialised PostgreSQL), GET /api/files and GET / through the balancer (wrk), the
#     RSS of each task's app process and, for containers, of the engine processes per task.
# Prints a markdown table for BENCHMARKS.md ("Images").
#
#   bench/images.sh                    # debug binaries (cargo build --workspace --bins)
#   PROFILE=release bench/images.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-debug}
PORT=${PORT:-18470}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
ENGINE=${BERTH_CONTAINER_ENGINE:-podman}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
"$ENGINE" info >/dev/null 2>&1 || { echo "$ENGINE does not answer: run scripts/container-setup" >&2; exit 2; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is in use; set PORT" >&2
    exit 2
fi
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}/$PROFILE
berth=$target/berth
for bin in berth file-analyzer-api file-analyzer-web; do
    [ -x "$target/$bin" ] || { echo "build $bin ($PROFILE) first" >&2; exit 2; }
done

tmp=$(mktemp -d)
cleanup() {
    for mode in processes images; do
        [ -f "$tmp/$mode/berth.toml" ] && "$berth" -f "$tmp/$mode/berth.toml" down >/dev/null 2>&1 || true
    done
    "$ENGINE" rmi --force "localhost/bench-images/backend-repo" "localhost/bench-images/frontend-repo" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

api_line='build = { context = "../..", command = "cargo build --release -p file-analyzer-api", artifact = "target/release/file-analyzer-api", dockerfile = "apps/api/Dockerfile" }'
web_line='build = { context = "../..", command = "cargo build --release -p file-analyzer-web", artifact = "target/release/file-analyzer-web", dockerfile = "apps/web/Dockerfile" }'
grep -qF "$api_line" examples/file-analyzer/berth.toml && grep -qF "$web_line" examples/file-analyzer/berth.toml \
    || { echo "the example stack changed: update bench/images.sh" >&2; exit 2; }

# $1: mode; the example with a free listener and builds that use the same binaries.
stack() {
    local dir=$tmp/$1 api web
    mkdir -p "$dir"
    if [ "$1" = processes ]; then
        api="build = { context = \".\", command = \"true\", artifact = \"$target/file-analyzer-api\" }"
        web="build = { context = \".\", command = \"true\", artifact = \"$target/file-analyzer-web\" }"
    else
        for app in api web; do
            cp "$target/file-analyzer-$app" "$dir/file-analyzer-$app"
            printf 'FROM docker.io/library/debian:bookworm-slim\nCOPY file-analyzer-%s /app\nUSER 10001\nENTRYPOINT ["/app"]\n' \
                "$app" >"$dir/Dockerfile.$app"
        done
        api='build = { context = ".", dockerfile = "Dockerfile.api" }'
        web='build = { context = ".", dockerfile = "Dockerfile.web" }'
    fi
    python3 - "$dir/berth.toml" "$PORT" "$api_line" "$api" "$web_line" "$web" <<'PY'
import sys
out, port, api_old, api_new, web_old, web_new = sys.argv[1:]
text = open("examples/file-analyzer/berth.toml").read()
text = text.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{port}"')
text = text.replace(api_old, api_new).replace(web_old, web_new)
text = text.replace('repository = "backend-repo"', 'repository = "bench-images/backend-repo"')
text = text.replace('repository = "frontend-repo"', 'repository = "bench-images/frontend-repo"')
open(out, "w").write(text)
PY
}

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc | sed 's/^\./0./' | cut -c1-5; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
# Sum of RSS (MB) of a process and its descendants.
tree_rss() {
    local total=0 p
    for p in $1 $(pgrep -P "$1" 2>/dev/null); do
        total=$(echo "$total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)" | bc)
    done
    echo "$total" | awk '{printf "%.1f", $1/1024}'
}
rps() { wrk -t2 -c16 -d"$DURATION" "http://127.0.0.1:$PORT$1" | awk '/Requests\/sec/ {printf "%.0f", $2}'; }

declare -A up_s files_rps page_rps app_rss engine_rss
for mode in processes images; do
    stack "$mode"
    b() { "$berth" -f "$tmp/$mode/berth.toml" "$@"; }
    echo "$mode: first up (builds, initdb)..." >&2
    b up -d >/dev/null
    b down >/dev/null
    runs=()
    for _ in $(seq "$ROUNDS"); do
        start=$(now)
        b up -d >/dev/null
        runs+=("$(elapsed "$start" "$(now)")")
        b down >/dev/null
    done
    up_s[$mode]=$(printf '%s, ' "${runs[@]}" | sed 's/, $//')
    b up -d >/dev/null
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/files" || { echo "$mode: the stack does not serve" >&2; exit 1; }
    files_rps[$mode]=$(rps /api/files)
    page_rps[$mode]=$(rps /)
    # Each task's pid in berth's status: the app itself, or the engine's `run` client.
    pids=$(b status --output json | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    for t in s["tasks"]:
        if t["lastStatus"] == "RUNNING":
            print(s["serviceName"], t["pid"])')
    apps=() engines=()
    while read -r service pid; do
        if [ "$mode" = processes ]; then
            apps+=("${service%-service} $(rss_mb "$pid")")
        else
            engines+=("$(tree_rss "$pid")")
        fi
    done <<<"$pids"
    if [ "$mode" = images ]; then
        filter="label=berth.state=$tmp/$mode/.berth"
        for name in $("$ENGINE" ps --filter "$filter" --format '{{.Names}}'); do
            pid=$("$ENGINE" inspect --format '{{.State.Pid}}' "$name")
            conmon=$("$ENGINE" inspect --format '{{.State.ConmonPid}}' "$name")
            apps+=("$(rss_mb "$pid")")
            engines+=("conmon $(rss_mb "$conmon")")
        done
    fi
    app_rss[$mode]=$(printf '%s; ' "${apps[@]}" | sed 's/; $//')
    engine_rss[$mode]=$(printf '%s; ' "${engines[@]:-–}" | sed 's/; $//')
    b down >/dev/null
done

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load average: $(cut -d' ' -f1-3 /proc/loadavg), PROFILE=$PROFILE, $ENGINE $("$ENGINE" --version | awk '{print $3}')"
echo
echo "| | processes | images |"
echo "|---|---|---|"
echo "| \`berth up -d\` to healthy, $ROUNDS runs (s) | ${up_s[processes]} | ${up_s[images]} |"
echo "| GET /api/files through the balancer (wrk -c16 $DURATION) | ${files_rps[processes]} req/s | ${files_rps[images]} req/s |"
echo "| GET / through the balancer | ${page_rps[processes]} req/s | ${page_rps[images]} req/s |"
echo "| app RSS per task (MB) | ${app_rss[processes]} | ${app_rss[images]} |"
echo "| engine processes per task (MB: the \`run\` client's tree; conmon) | – | ${engine_rss[images]} |"
