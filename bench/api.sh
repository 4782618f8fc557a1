#!/usr/bin/env bash
# File Analyzer API benchmark (issues 3 and 12), every path side by side with the original's
# figures (shared/reference/file-analyzer-api.md: the original Node API can't run here, its
# source is not in the repository) and with `vipsthumbnail` on the same large JPEG.
#
# A throwaway PostgreSQL 15 (fsync on: uploads pay for a durable commit, as in production) and
# the release binary; then the same cases through `berth up` of the example stack when BERTH
# names a berth binary (release: the balancer runs inside it), for the ratio of what a user
# runs to the bare release binary. The cases, on each target:
#   - UPLOADS distinct 64×64 PNGs uploaded by UPLOAD_CLIENTS parallel clients (they also seed
#     the listing),
#   - wrk -c CONNS for DURATION on the listing (50 rows), one file's record, its download,
#     the stats summary and health,
#   - a 4000×3000 JPEG resized to 800×600, compressed and converted to WebP, ROUNDS times
#     each (median), beside `vipsthumbnail` (Debian's libvips-tools) on the same file.
# Every step is bounded (curl --max-time, wrk's duration, `timeout` on the uploads), so a run
# ends on a loaded machine; it builds nothing but what is missing or stale.
#
#   bench/api.sh
#   BERTH=target/release/berth bench/api.sh     # also through `berth up`
#   CONNS=64 DURATION=20s ROUNDS=9 bench/api.sh
#
# Prints a Markdown table for BENCHMARKS.md. Needs wrk, curl, PostgreSQL 15 binaries, vips.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-32}
DURATION=${DURATION:-8s}
UPLOADS=${UPLOADS:-400}
UPLOAD_CLIENTS=${UPLOAD_CLIENTS:-8}
ROUNDS=${ROUNDS:-5}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BERTH=${BERTH:-}
BERTH_PORT=${BERTH_PORT:-18490}

if [ "${BUILD:-1}" = 1 ]; then  # BUILD=0: use the binaries as they are
    # One package per build, as the example stack builds them: built together, cargo unifies
    # their dependencies' features and `berth up`'s own builds would compile the API again.
    cargo build --release -q -p file-analyzer-web
    cargo build --release -q -p file-analyzer-api
    cargo build --release -q -p file-analyzer-api --example upload_bench
fi
root=$(pwd)
API_BIN=$root/target/release/file-analyzer-api
UPLOAD_BIN=$root/target/release/examples/upload_bench

work=$(mktemp -d /tmp/berth-bench-api.XXXXXX)
api_pid=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
b() { "$BERTH" -f "$work/stack/berth.toml" "$@"; }
cleanup() {
    [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true
    [ -n "$BERTH" ] && [ -f "$work/stack/berth.toml" ] && timeout 120 "$BERTH" -f "$work/stack/berth.toml" down >/dev/null 2>&1 || true
    as_pg "$PG_BIN/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$api_pid/status"; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')

# A photo-like 4000×3000 JPEG (blurred noise, three different bands) at quality 90.
for band in r g b; do
    vips gaussnoise "$work/$band.v" 4000 3000 --mean 128 --sigma 60
    vips gaussblur "$work/$band.v" "$work/${band}b.v" 1.5
    vips cast "$work/${band}b.v" "$work/${band}c.v" uchar
done
vips bandjoin "$work/rc.v $work/gc.v $work/bc.v" "$work/rgb.v"
vips jpegsave "$work/rgb.v" "$work/large.jpg" --Q 90
rm -f "$work"/*.v

# Median milliseconds of ROUNDS runs of a command (the output of the last is $work/out).
median_ms() {
    local times=() start
    for _ in $(seq "$ROUNDS"); do
        start=$(date +%s%N)
        "$@" >/dev/null
        times+=($(( ($(date +%s%N) - start) / 1000000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
size_of() { stat -c %s "$work/out"; }

# wrk on one URL while sampling the API's RSS (direct run only); prints
# "req/s avg_latency p99 max_rss_kb errors".
wrk_run() {
    local url=$1 out="$work/wrk.out" max=0 rss
    wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s --latency "$url" >"$out" 2>&1 &
    local wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        if [ -n "$api_pid" ]; then rss=$(rss_kb); [ "$rss" -gt "$max" ] && max=$rss; fi
        sleep 0.5
    done
    wait "$wrk_pid"
    local rps lat p99 errors
    rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$out")
    lat=$(awk '/^ +Latency/ {print $2; exit}' "$out")
    p99=$(awk '/^ +99%/ {print $2}' "$out")
    errors=$(grep -E "Non-2xx|Socket errors" "$out" | tr ' \n' '_ ' || true)
    echo "$rps $lat $p99 $max ${errors:-none}"
}

# Every case against one base URL; results go to $work/<label>.* files.
run_cases() {
    local label=$1 base=$2
    timeout 300 "$UPLOAD_BIN" "$base" "$UPLOADS" "$UPLOAD_CLIENTS" "$3" >"$work/$label.upload"
    local id
    id=$(curl -fs --max-time 30 "$base/api/files?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
    wrk_run "$base/api/files" >"$work/$label.list"
    wrk_run "$base/api/files/$id" >"$work/$label.get"
    wrk_run "$base/api/files/$id/download" >"$work/$label.download"
    wrk_run "$base/api/files/stats/summary" >"$work/$label.stats"
    wrk_run "$base/api/health" >"$work/$label.health"
    local large
    large=$(curl -fs --max-time 120 -F "file=@$work/large.jpg;type=image/jpeg" "$base/api/files/upload" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
    api_op() { curl -fs --max-time 120 -o "$work/out" -H 'Content-Type: application/json' -d "$2" "$base/api/files/$large/$1"; }
    echo "$(median_ms api_op resize '{"width":800,"height":600}') $(size_of)" >"$work/$label.resize"
    echo "$(median_ms api_op compress '{}') $(size_of)" >"$work/$label.compress"
    echo "$(median_ms api_op convert '{"format":"webp","width":800}') $(size_of)" >"$work/$label.convert"
}

# The release binary on its own PostgreSQL.
[ "$(id -u)" = 0 ] && chown postgres "$work"
pg_port=$(free_port)
as_pg "$PG_BIN/initdb" -D "$work/data" -U bench --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/pg.log" -w \
    -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U bench fileanalyzer
api_port=$(free_port)
PORT=$api_port DB_HOST=127.0.0.1 DB_PORT=$pg_port DB_NAME=fileanalyzer DB_USER=bench \
    DB_PASSWORD=unused FRONTEND_URL=http://localhost:3000 \
    "$API_BIN" >"$work/api.log" 2>&1 &
api_pid=$!
base="http://127.0.0.1:$api_port"
for _ in $(seq 1 200); do
    curl -fs "$base/api/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "$base/api/health/ready" >/dev/null
sleep 1
rss_idle=$(rss_kb)
run_cases direct "$base" 0
sleep 2
rss_after=$(rss_kb)
rss_peak=$(cat "$work"/direct.{list,get,download,stats,health} | awk '$4 > m { m = $4 } END { print m }')
kill "$api_pid" && wait "$api_pid" 2>/dev/null || true
api_pid=""
as_pg "$PG_BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null

vips_thumb() { vipsthumbnail "$work/large.jpg" -s 800x600 -o "$work/out.jpg[Q=80]" && cp "$work/out.jpg" "$work/out"; }
echo "$(median_ms vips_thumb) $(size_of)" >"$work/vips"

# The example stack through `berth up`: same apps, built as the example builds them, behind
# the balancer, on berth's own PostgreSQL.
if [ -n "$BERTH" ]; then
    BERTH=$(realpath "$BERTH")
    mkdir "$work/stack"
    sed -e "s|listen = \"127.0.0.1:8080\"|listen = \"127.0.0.1:$BERTH_PORT\"|" \
        -e "s|context = \"../..\"|context = \"$root\"|" \
        examples/file-analyzer/berth.toml >"$work/stack/berth.toml"
    grep -q "context = \"$root\"" "$work/stack/berth.toml" \
        || { echo "the example stack changed: update bench/api.sh" >&2; exit 2; }
    timeout 1800 "$BERTH" -f "$work/stack/berth.toml" up -d >"$work/berth-up.log" 2>&1 \
        || { cat "$work/berth-up.log" >&2; exit 1; }
    run_cases berth "http://127.0.0.1:$BERTH_PORT" 100000
fi

# Table: each row is one case; `field N FILE` reads the Nth word of a result file.
field() { [ -f "$work/$2" ] && cut -d' ' -f"$1" "$work/$2" || echo "–"; }
upload_field() { [ -f "$work/$2.upload" ] && python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/$2.upload" "$1" || echo "–"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f×", a / b; else print "–" }'; }
wrk_row() {
    local name=$1 case=$2 original=$3
    local d b
    d=$(field 1 "direct.$case"); b=$(field 1 "berth.$case")
    echo "| $name | $d req/s (p99 $(field 3 "direct.$case")) | $original | $(ratio "$d" "$original") | $b req/s (p99 $(field 3 "berth.$case")) | $(ratio "$b" "$d") |"
}
ms_row() {
    local name=$1 case=$2 original=$3
    local d b
    d=$(field 1 "direct.$case"); b=$(field 1 "berth.$case")
    echo "| $name | $d ms, $(field 2 "direct.$case") B | $original | | $b ms | $(ratio "$d" "$b") |"
}
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f MB", kb / 1024 }'; }
du=$(upload_field uploads_per_s direct); bu=$(upload_field uploads_per_s berth)
cat <<EOF2

Run: \`$([ -n "$BERTH" ] && echo "BERTH=… ")bench/api.sh\` (CONNS=$CONNS DURATION=$DURATION UPLOADS=$UPLOADS UPLOAD_CLIENTS=$UPLOAD_CLIENTS ROUNDS=$ROUNDS), $started_at
Load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)

| Case | Release binary | Original (reference) | ours / original | \`berth up\` (balancer, 2 tasks) | berth up speed / release |
|---|---|---|---|---|---|
$(wrk_row "GET /api/files (50 rows)" list 1222)
$(wrk_row "GET /api/files/:id" get 3474)
$(wrk_row "GET /api/files/:id/download" download 2432)
$(wrk_row "GET /api/files/stats/summary" stats 4523)
$(wrk_row "GET /api/health" health 7165)
| $UPLOADS PNG uploads, $UPLOAD_CLIENTS clients | $du uploads/s (p50 $(upload_field p50_ms direct) ms, p99 $(upload_field p99_ms direct) ms, failures $(upload_field failures direct)) | 533 | $(ratio "$du" 533) | $bu uploads/s (failures $(upload_field failures berth)) | $(ratio "$bu" "$du") |
$(ms_row "4000×3000 JPEG → 800×600 resize (median of $ROUNDS)" resize "sharp 41 ms; vipsthumbnail here: $(field 1 vips) ms, $(field 2 vips) B")
$(ms_row "4000×3000 JPEG compress (quality 80)" compress –)
$(ms_row "4000×3000 JPEG → 800 wide WebP" convert –)
| RSS idle / peak under wrk / after | $(mb "$rss_idle") / $(mb "$rss_peak") / $(mb "$rss_after") | 73 / 165 MB | | | |

wrk errors (direct): $(for c in list get download stats health; do echo -n "$c: $(field 5- "direct.$c"); "; done)
EOF2
