#!/usr/bin/env bash
# Web frontend throughput: wrk against the release `file-analyzer-web`, alone and in front of
# the release `file-analyzer-api` on a throwaway PostgreSQL 15 holding 20 files.
#
#   cargo build --release -p file-analyzer-web -p file-analyzer-api
#   bench/web.sh            # DURATION=10s CONNECTIONS=32 THREADS=2 by default
#
# Prints one markdown table row per case: path, requests/s, p50 and p99 latency, errors.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PGBIN=/usr/lib/postgresql/15/bin
WEB=target/release/file-analyzer-web
API=target/release/file-analyzer-api
for bin in "$WEB" "$API"; do
  [[ -x $bin ]] || { echo "missing $bin: cargo build --release -p file-analyzer-web -p file-analyzer-api" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ok() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "$1 never answered" >&2; exit 1; }

work=$(mktemp -d)
pids=()
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
[[ $(id -u) == 0 ]] && chown postgres "$work"

# PostgreSQL
pg_port=$(free_port)
as_pg "$PGBIN/initdb" -D "$work/pg" -U berth --auth=trust >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$pg_port" -U berth fileanalyzer

# API with 20 files (10 PNGs, 10 text files)
api_port=$(free_port)
PORT=$api_port DB_HOST=127.0.0.1 DB_PORT=$pg_port DB_USER=berth DB_PASSWORD= DB_NAME=fileanalyzer \
  RUST_LOG=warn "$API" >"$work/api.log" 2>&1 &
pids+=($!)
wait_ok "http://127.0.0.1:$api_port/api/health"
for i in $(seq 1 10); do
  python3 -c "
import struct, zlib, sys
w, h = 64 + $i, 48
rows = b''.join(b'\x00' + b''.join(bytes(((x * 3 + $i) % 256, (y * 5) % 256, 128)) for x in range(w)) for y in range(h))
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
sys.stdout.buffer.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))
" >"$work/img$i.png"
  curl -fsS -o /dev/null -F "file=@$work/img$i.png;type=image/png" "http://127.0.0.1:$api_port/api/files/upload"
  echo "note $i" >"$work/note$i.txt"
  curl -fsS -o /dev/null -F "file=@$work/note$i.txt;type=text/plain" "http://127.0.0.1:$api_port/api/files/upload"
done

# Web, in front of the API, and a second one with no API at all
web_port=$(free_port)
PORT=$web_port API_URL=http://127.0.0.1:$api_port RUST_LOG=warn "$WEB" >"$work/web.log" 2>&1 &
web_pid=$!; pids+=($web_pid)
lonely_port=$(free_port)
PORT=$lonely_port API_URL=http://127.0.0.1:$(free_port) RUST_LOG=warn "$WEB" >"$work/lonely.log" 2>&1 &
pids+=($!)
wait_ok "http://127.0.0.1:$web_port/health"
wait_ok "http://127.0.0.1:$lonely_port/health"
css=$(curl -fsS "http://127.0.0.1:$web_port/" | grep -o '/static/app\.[0-9a-f]*\.css' | head -1)
rss() { awk '/VmRSS/ {print int($2/1024)" MB"}' "/proc/$1/status"; }
idle_rss=$(rss "$web_pid")

run() { # label url
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${errors:-none}"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
echo
echo "| case | requests/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
run "GET /health" "http://127.0.0.1:$web_port/health"
run "GET $css (embedded, immutable)" "http://127.0.0.1:$web_port$css"
run "GET / with the API down (banner page)" "http://127.0.0.1:$lonely_port/"
run "GET / (20 files from the API, rendered)" "http://127.0.0.1:$web_port/"
run "GET /stats (summary + list scan + 2 SVG charts)" "http://127.0.0.1:$web_port/stats"
echo
echo "web RSS: idle $idle_rss, after the runs $(rss "$web_pid")"
