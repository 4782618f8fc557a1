#!/usr/bin/env bash
# Berth's load balancer against nginx and HAProxy in front of the same two backends, with
# wrk, side by side in one run; writes the table under `## Load balancer` in BENCHMARKS.md.
#
#   bench/balancer.sh                     # 3 rounds x 4 targets x 10 s, 64 connections, 2 threads
#   DURATION=5s ROUNDS=1 bench/balancer.sh  # quicker
#
# Everything listens on 127.0.0.1 and stops when the script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
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
examples=${CARGO_TARGET_DIR:-target}/release/examples

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
berth_pid=$!

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
nginx_pid=$!

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
haproxy_pid=$!

wait_port "$BERTH"
wait_port "$NGINX"
wait_port "$HAPROXY"
# Let berth's health checks mark both targets healthy (interval 1 s, threshold 2).
sleep 2

# CPU time (user and system clock ticks, all threads) of the processes that proxy: the
# noise of a shared machine moves req/s a lot more than it moves CPU per request.
cpu_ticks() { # pid...
    local user=0 system=0 pid fields
    for pid in "$@"; do
        read -r -a fields <"/proc/$pid/stat"
        user=$((user + fields[13])) system=$((system + fields[14]))
    done
    echo "$user $system"
}
proxy_pids() { # name
    case $1 in
        direct) echo "${pids[0]}" ;;
        berth) echo "$berth_pid" ;;
        nginx) pgrep -P "$nginx_pid" | tr '\n' ' ' ;; # the workers
        haproxy) echo "$haproxy_pid" ;;
    esac
}

load_before=$(uptime | sed 's/.*load average/load average/')
# The machine is shared and noisy: interleave the four targets over several rounds and
# report medians, so a burst of someone else's work does not land on one column only.
for round in $(seq 1 "$ROUNDS"); do
    for name in direct berth nginx haproxy; do
        case $name in
            direct) port=$BACKEND1 ;; berth) port=$BERTH ;; nginx) port=$NGINX ;; haproxy) port=$HAPROXY ;;
        esac
        echo "round $round: wrk $name..." >&2
        read -r -a measured <<<"$(proxy_pids "$name")"
        before=$(cpu_ticks "${measured[@]}")
        "$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port/" \
            >"$tmp/wrk-$name-$round.txt"
        echo "$before $(cpu_ticks "${measured[@]}")" >"$tmp/cpu-$name-$round.txt"
    done
done

versions="nginx $("$NGINX_BIN" -v 2>&1 | sed 's|.*/||'), HAProxy $("$HAPROXY_BIN" -v | awk 'NR==1 {print $3}')"
export RESULTS=$tmp ROUNDS THREADS CONNECTIONS DURATION versions load_before
export CLOCK_TICKS=$(getconf CLK_TCK)
export RUN_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
# Parse wrk's output, print the section and put it in BENCHMARKS.md (replacing only our
# own `## Load balancer` section).
python3 - <<'PY'
import os, re, statistics

env = os.environ
rounds = int(env["ROUNDS"])

def millis(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

def parse(name):
    runs = []
    for r in range(1, rounds + 1):
        out = open(f"{env['RESULTS']}/wrk-{name}-{r}.txt").read()
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        socket_errors = re.search(r"Socket errors: (.*)", out)
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        u0, s0, u1, s1 = map(int, open(f"{env['RESULTS']}/cpu-{name}-{r}.txt").read().split())
        per_request = lambda ticks: ticks / int(env["CLOCK_TICKS"]) * 1e6 / requests
        runs.append({
            "user": per_request(u1 - u0),
            "system": per_request(s1 - s0),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": millis(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
            "p99": millis(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
            "errors": (int(errors.group(1)) if errors else 0),
            "socket_errors": socket_errors.group(1) if socket_errors else "",
        })
    return runs

rows = []
for name, label in [("direct", "direct (one backend, no proxy)"), ("berth", "berth"),
                    ("nginx", "nginx"), ("haproxy", "haproxy")]:
    runs = parse(name)
    median = lambda key: statistics.median(run[key] for run in runs)
    errors = sum(run["errors"] for run in runs)
    note = f"{errors} non-2xx" if errors else ""
    if any(run["socket_errors"] for run in runs):
        note = (note + "; socket errors").strip("; ")
    rows.append(
        f"| {label} | {median('rps'):.0f} | {median('p50'):.2f} ms | {median('p99'):.2f} ms | "
        + f"{median('user'):.2f} + {median('system'):.2f} µs | "
        + " / ".join(f"{run['rps']:.0f}" for run in runs)
        + f" | {note} |"
    )

section = f"""## Load balancer

{env['RUN_DATE']}: `bench/balancer.sh` — `wrk -t{env['THREADS']} -c{env['CONNECTIONS']} -d{env['DURATION']} --latency`
per run, {rounds} rounds interleaving the four targets, medians shown. `GET /` answered
`hello` by two release-built `hello_backend` examples (crates/local/examples) on 127.0.0.1;
{env['versions']}; nginx with `worker_processes auto` and upstream `keepalive 64`, HAProxy with
`roundrobin` and `http-reuse always`, berth = the `balancer` example (release, one target
group, round robin, health checks every second). All of them add `X-Forwarded-For`.
Load before the run: `{env['load_before']}` — other builds share the 2 cores, so rounds
vary; compare within the table. CPU per request: the proxy's processes' user and system time
over the run (`/proc/<pid>/stat`, all threads; nginx's workers) divided by wrk's request
count; for `direct`, the one backend's.

| target | req/s | p50 | p99 | CPU per request (user + system) | req/s per round | errors |
|---|---:|---:|---:|---:|---|---|
""" + "\n".join(rows) + "\n"
print(section)

path = "BENCHMARKS.md"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
pattern = re.compile(r"^## Load balancer\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
