#!/usr/bin/env bash
# Throughput of the local stores (log sinks and queries, parameter store, registry push),
# release build; prints the rows of the `## Local stores` table in BENCHMARKS.md.
#
#   bench/stores.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p berth-local --example stores_bench
artifact=$(mktemp)
trap 'rm -f "$artifact"' EXIT
head -c $((64 * 1024 * 1024)) /dev/urandom >"$artifact"

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| operation | time | rate |"
echo "|---|---:|---:|"
target/release/examples/stores_bench "$artifact"
