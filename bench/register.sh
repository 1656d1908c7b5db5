#!/usr/bin/env bash
# Shared-register benchmark (not a test): 1, 2, 4 and 8 line stations of 8
# in-process readers on one PostgreSQL under the card timing model, journal
# time per card on PostgreSQL against SQLite, and claim latency under
# contention, with the baselines measured in the same run. It starts a
# durable (fsync on) throwaway PostgreSQL cluster and removes it after.
#
# Usage: bash bench/register.sh [--cards-per-reader N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh >&2
cargo build --release --example register_bench >&2
dir="$(mktemp -d /tmp/cardsmith-bench-pg.XXXXXX)"
trap 'bash scripts/pg-cluster.sh remove "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin="$(bash scripts/pg-cluster.sh start "$dir" "$port" durable)"
unset CARDSMITH_ISSUER_KEY
CARDSMITH_BENCH_PG="$admin" ./target/release/examples/register_bench "$@"
