#!/usr/bin/env bash
# Batch-preparation benchmark (not a test): a million records validated
# and loaded into the register, streamed (chunks, every core, one
# transaction) against today's whole-file path measured in the same run on
# a smaller batch; records per second, seconds for a million, peak RSS at
# 100,000 and at a million records. Needs about 6 GB of free disk in /tmp
# (or --dir) for the batch files; removes them after.
#
# Usage: bash bench/prep.sh [--records N] [--baseline N] [--dir DIR] [--pg]
#   --pg   also load into a throwaway PostgreSQL cluster (fsync on)
set -euo pipefail
cd "$(dirname "$0")/.."
pg=0
args=()
for a in "$@"; do
    if [ "$a" = "--pg" ]; then pg=1; else args+=("$a"); fi
done
cargo build --release --example prep_bench >&2
unset CARDSMITH_ISSUER_KEY
if [ "$pg" = 1 ]; then
    dir="$(mktemp -d /tmp/cardsmith-bench-pg.XXXXXX)"
    trap 'bash scripts/pg-cluster.sh remove "$dir"' EXIT
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    admin="$(bash scripts/pg-cluster.sh start "$dir" "$port" durable)"
    CARDSMITH_BENCH_PG="$admin" ./target/release/examples/prep_bench "${args[@]}"
else
    ./target/release/examples/prep_bench "${args[@]}"
fi
