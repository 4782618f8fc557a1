#!/usr/bin/env bash
# `up` of the example stack on an empty account against moto, parallel vs sequential:
# wall time and API calls; prints the rows of the `## AWS engine` table in BENCHMARKS.md.
# A debug build: the SDK takes minutes to build in release on the project's machines, and
# the time is moto's and the calls', not berth's CPU.
#
#   bench/aws.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p berth-aws --example up_bench
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| apply | added latency per call | wall time (median) | per round (s) | calls / mutating per round |"
echo "|---|---:|---:|---|---|"
target/debug/examples/up_bench "${1:-3}"
