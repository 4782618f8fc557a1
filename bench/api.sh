#!/usr/bin/env bash
# File Analyzer API benchmark (issue 3): a throwaway PostgreSQL 15, the release binary,
# 200 PNG uploads by 8 parallel clients (which also seed the listing), then wrk at 32
# connections for 10 s on GET /api/files (50 rows) and GET /api/health, with the API's RSS
# read from /proc idle, under load and after.
#
#   bench/api.sh                 # defaults below
#   CONNS=64 DURATION=20s bench/api.sh
#
# Then the large-JPEG paths (issue 12): a 4000×3000 JPEG resized to 800×600, compressed and
# converted through the API, ROUNDS times each (median), beside `vipsthumbnail` (Debian's
# libvips-tools) on the same file in the same run.
#
#   PROFILE=berth bench/api.sh   # the binaries `berth up` runs (default: release)
#
# Prints a Markdown table for BENCHMARKS.md. Needs wrk, curl, PostgreSQL 15 binaries, vips.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-32}
DURATION=${DURATION:-10s}
UPLOADS=${UPLOADS:-200}
UPLOAD_CLIENTS=${UPLOAD_CLIENTS:-8}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

export RUSTC_WRAPPER=${RUSTC_WRAPPER:-$(command -v sccache || true)}
PROFILE=${PROFILE:-release}
ROUNDS=${ROUNDS:-9}
cargo build --profile "$PROFILE" -q -p file-analyzer-api --bin file-analyzer-api --example upload_bench
API_BIN=target/$PROFILE/file-analyzer-api
UPLOAD_BIN=target/$PROFILE/examples/upload_bench

work=$(mktemp -d /tmp/berth-bench-api.XXXXXX)
api_pid=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true
    as_pg "$PG_BIN/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$api_pid/status"; }

# PostgreSQL with its defaults (fsync on): uploads pay for a durable commit, as in production.
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

# Uploads (these also seed the files the listing reads).
upload_json=$("$UPLOAD_BIN" "$base" "$UPLOADS" "$UPLOAD_CLIENTS")
rows=$(curl -fs "$base/api/files?limit=50" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["count"], d["total"])')

# A photo-like 4000×3000 JPEG (blurred noise, three different bands) at quality 90.
for band in r g b; do
    vips gaussnoise "$work/$band.v" 4000 3000 --mean 128 --sigma 60
    vips gaussblur "$work/$band.v" "$work/${band}b.v" 1.5
    vips cast "$work/${band}b.v" "$work/${band}c.v" uchar
done
vips bandjoin "$work/rc.v $work/gc.v $work/bc.v" "$work/rgb.v"
vips jpegsave "$work/rgb.v" "$work/large.jpg" --Q 90
large_id=$(curl -fs -F "file=@$work/large.jpg;type=image/jpeg" "$base/api/files/upload" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
# Median milliseconds of ROUNDS runs of a command; the last output's size in bytes.
median_ms() {
    local times=() start
    for _ in $(seq "$ROUNDS"); do
        start=$(date +%s%N)
        "$@" >/dev/null
        times+=($(( ($(date +%s%N) - start) / 1000000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
api_op() { curl -fs -o "$work/out" -H 'Content-Type: application/json' -d "$2" "$base/api/files/$large_id/$1"; }
size_of() { stat -c %s "$work/out"; }
resize_ms=$(median_ms api_op resize '{"width":800,"height":600}'); resize_bytes=$(size_of)
compress_ms=$(median_ms api_op compress '{}'); compress_bytes=$(size_of)
convert_ms=$(median_ms api_op convert '{"format":"webp","width":800}'); convert_bytes=$(size_of)
vips_thumb() { vipsthumbnail "$work/large.jpg" -s 800x600 -o "$work/out.jpg[Q=80]" && cp "$work/out.jpg" "$work/out"; }
vips_ms=$(median_ms vips_thumb); vips_bytes=$(size_of)

# wrk on one path while sampling RSS; prints "req/s avg_latency p99 max_rss_kb".
load() {
    local path=$1 out="$work/wrk.out" max=0 rss
    wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$base$path" >"$out" 2>&1 &
    local wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        rss=$(rss_kb); [ "$rss" -gt "$max" ] && max=$rss
        sleep 0.5
    done
    wait "$wrk_pid"
    local rps lat p99 errors
    rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
    lat=$(awk '/^ +Latency/ {print $2; exit}' "$out")
    p99=$(awk '/^ +99%/ {print $2}' "$out")
    errors=$(grep -E "Non-2xx|Socket errors" "$out" | tr '\n' ' ' || true)
    echo "$rps $lat $p99 $max ${errors:-none}"
}
read -r list_rps list_lat list_p99 list_rss list_err <<<"$(load '/api/files')"
read -r health_rps health_lat health_p99 health_rss health_err <<<"$(load '/api/health')"
read -r stats_rps stats_lat stats_p99 stats_rss stats_err <<<"$(load '/api/files/stats/summary')"
sleep 2
rss_after=$(rss_kb)

up() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$upload_json" "$1"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f MB", kb / 1024 }'; }
cat <<EOF2

Run: \`PROFILE=$PROFILE bench/api.sh\` (CONNS=$CONNS DURATION=$DURATION UPLOADS=$UPLOADS UPLOAD_CLIENTS=$UPLOAD_CLIENTS ROUNDS=$ROUNDS), $(date -u '+%Y-%m-%d %H:%M UTC')
Load before: $(uptime | sed 's/.*load average/load average/')
Listing rows (count total): $rows

| Measure | Rust API | Original (reference) |
|---|---|---|
| GET /api/files (50 rows), wrk -c$CONNS -d$DURATION | $list_rps req/s (avg $list_lat, p99 $list_p99) | 1,400–1,700 req/s |
| GET /api/health, wrk -c$CONNS -d$DURATION | $health_rps req/s (avg $health_lat, p99 $health_p99) | ~10,000 req/s |
| GET /api/files/stats/summary, wrk -c$CONNS -d$DURATION | $stats_rps req/s (avg $stats_lat, p99 $stats_p99) | 4,523 req/s (reference, side by side) |
| $UPLOADS PNG uploads (64×64), $UPLOAD_CLIENTS clients | $(up uploads_per_s) uploads/s (p50 $(up p50_ms) ms, p99 $(up p99_ms) ms, failures $(up failures)) | ~150 uploads/s |
| 4000×3000 JPEG → 800×600 resize (median of $ROUNDS) | $resize_ms ms, $resize_bytes bytes | vipsthumbnail (same run): $vips_ms ms, $vips_bytes bytes; sharp 41 ms (reference) |
| 4000×3000 JPEG compress (quality 80) | $compress_ms ms, $compress_bytes bytes | – |
| 4000×3000 JPEG → 800 wide WebP convert | $convert_ms ms, $convert_bytes bytes | – |
| RSS idle (after start) | $(mb "$rss_idle") | 66 MB |
| RSS peak under load | $(mb "$(( list_rss > health_rss ? list_rss : health_rss ))") | 150 MB |
| RSS after load | $(mb "$rss_after") | – |

wrk errors: list: $list_err; health: $health_err; stats: $stats_err
EOF2
