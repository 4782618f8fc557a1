#!/usr/bin/env bash
# Berth's load balancer against nginx and HAProxy in front of the same two backends, with
# wrk, side by side in one run; writes the table under `## Load balancer` in BENCHMARKS.md.
#
#   bench/balancer.sh            # 10 s per run, 64 connections, 2 wrk threads
#   DURATION=5s bench/balancer.sh
#
# Everything listens on 127.0.0.1 and stops when the script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
BASE_PORT=${BASE_PORT:-18080}
BACKEND1=$((BASE_PORT + 1))
BACKEND2=$((BASE_PORT + 2))
BERTH=$((BASE_PORT + 10))
NGINX=$((BASE_PORT + 11))
HAPROXY=$((BASE_PORT + 12))
WRK=${WRK:-/usr/bin/wrk}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
HAPROXY_BIN=${HAPROXY_BIN:-/usr/sbin/haproxy}

for tool in "$WRK" "$NGINX_BIN" "$HAPROXY_BIN"; do
    [[ -x $tool ]] || { echo "missing $tool (apt-get install wrk nginx haproxy)" >&2; exit 2; }
done
for port in $BACKEND1 $BACKEND2 $BERTH $NGINX $HAPROXY; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is in use; set BASE_PORT" >&2
        exit 2
    fi
done

echo "building release examples..." >&2
cargo build --release -q -p berth-local --example hello_backend --example balancer
examples=target/release/examples

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

wait_port() { # port
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

"$examples/hello_backend" "127.0.0.1:$BACKEND1" & pids+=($!)
"$examples/hello_backend" "127.0.0.1:$BACKEND2" & pids+=($!)
wait_port "$BACKEND1"
wait_port "$BACKEND2"

"$examples/balancer" "127.0.0.1:$BERTH" "127.0.0.1:$BACKEND1" "127.0.0.1:$BACKEND2" & pids+=($!)

cat >"$tmp/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    upstream backends {
        server 127.0.0.1:$BACKEND1;
        server 127.0.0.1:$BACKEND2;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF
"$NGINX_BIN" -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!)

cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    option forwardfor
    timeout connect 10s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$HAPROXY
    default_backend be
backend be
    balance roundrobin
    http-reuse always
    server s1 127.0.0.1:$BACKEND1
    server s2 127.0.0.1:$BACKEND2
EOF
"$HAPROXY_BIN" -f "$tmp/haproxy.cfg" -db & pids+=($!)

wait_port "$BERTH"
wait_port "$NGINX"
wait_port "$HAPROXY"
# Let berth's health checks mark both targets healthy (interval 1 s, threshold 2).
sleep 2

load_before=$(uptime | sed 's/.*load average/load average/')
declare -A rps p50 p99
run() { # name port
    echo "wrk $1..." >&2
    local out
    out=$("$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$2/")
    echo "$out" >"$tmp/wrk-$1.txt"
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "$1: non-2xx responses" >&2
        grep 'Non-2xx' <<<"$out" >&2
    fi
    rps[$1]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    p50[$1]=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99[$1]=$(awk '$1 == "99%" {print $2}' <<<"$out")
}
run direct "$BACKEND1"
run berth "$BERTH"
run nginx "$NGINX"
run haproxy "$HAPROXY"

versions="nginx $("$NGINX_BIN" -v 2>&1 | sed 's|.*/||'), HAProxy $("$HAPROXY_BIN" -v | awk 'NR==1 {print $3}')"
section=$(
    cat <<EOF
## Load balancer

$(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/balancer.sh\` (\`wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency\`,
\`GET /\` answered \`hello\` by two release-built \`hello_backend\` examples on 127.0.0.1; $versions;
nginx with \`worker_processes auto\` and upstream \`keepalive 64\`, HAProxy with \`roundrobin\` and
\`http-reuse always\`, berth = \`examples/balancer\` (release, one target group, round robin).
"direct" is wrk against one backend, without a proxy.
Load before the run: \`$load_before\`.

| | req/s | p50 | p99 |
|---|---:|---:|---:|
| direct (one backend) | ${rps[direct]} | ${p50[direct]} | ${p99[direct]} |
| berth | ${rps[berth]} | ${p50[berth]} | ${p99[berth]} |
| nginx | ${rps[nginx]} | ${p50[nginx]} | ${p99[nginx]} |
| haproxy | ${rps[haproxy]} | ${p50[haproxy]} | ${p99[haproxy]} |
EOF
)
echo "$section"

# Replace our section of BENCHMARKS.md (up to the next `## ` heading), keep the others.
SECTION="$section" python3 - <<'EOF'
import os, re
path = "BENCHMARKS.md"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
section = os.environ["SECTION"].rstrip() + "\n"
pattern = re.compile(r"^## Load balancer\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
EOF
