#!/usr/bin/env bash
# The main job on the embedded defaults: a batch of synthetic citizen
# records goes through the personalization line. A simulated card handler
# feeds blank cards (with the card timing model) into four of the project's
# own virtual readers behind the real pcscd; `cardsmith line run` keeps one
# worker per reader, personalizes and verifies every card, and journals
# every attempt in SQLite. Then the journal is queried, the report written,
# and the first good card read back. The issuer key and the local test CA
# are created in the data directory on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# What the demo leaves behind holds citizens' data: private to the user.
umask 077
cargo build --locked --release -q
CS=target/release/cardsmith
export CARDSMITH_DATA_DIR="${CARDSMITH_DATA_DIR:-$HOME/.local/share/cardsmith}"
DEMO="$CARDSMITH_DATA_DIR/demo"
COUNT="${DEMO_COUNT:-8}"
READERS="${DEMO_READERS:-4}"
# Each run is its own demo: a fresh batch and journal (the CA and key stay).
rm -rf "$DEMO"
mkdir -p "$DEMO"
JOURNAL=(--journal "$DEMO/journal.sqlite" --operator demo)

FEEDER=
cleanup() { if [ -n "$FEEDER" ]; then kill "$FEEDER" 2>/dev/null || true; wait "$FEEDER" 2>/dev/null || true; fi; }
trap cleanup EXIT

echo "\$ cardsmith sample-records --count $COUNT --out $DEMO/batch.jsonl"
"$CS" sample-records --count "$COUNT" --seed 1 --out "$DEMO/batch.jsonl"

echo "\$ cardsmith sim --line-readers $READERS --feed $DEMO/hopper --timing typical &"
"$CS" sim --line-readers "$READERS" --feed "$DEMO/hopper" --timing typical --seconds 900 >"$DEMO/feeder.log" 2>&1 &
FEEDER=$!

args=()
for i in $(seq 1 "$READERS"); do args+=(--reader "$(printf 'Cardsmith Line %02d' "$i")"); done
echo
echo "\$ cardsmith line run $DEMO/batch.jsonl ${args[*]} ${JOURNAL[*]}"
"$CS" line run "$DEMO/batch.jsonl" "${args[@]}" "${JOURNAL[@]}" --report-dir "$DEMO/report"

echo
echo "\$ cardsmith line status"
"$CS" line status "${JOURNAL[@]}"
echo
echo "\$ cardsmith line record R-000001"
"$CS" line record R-000001 "${JOURNAL[@]}"
echo
echo "\$ cardsmith line throughput"
"$CS" line throughput "${JOURNAL[@]}"
echo
echo "\$ cardsmith line rejects"
"$CS" line rejects "${JOURNAL[@]}"

cleanup
FEEDER=
serial=$("$CS" --json line record R-000001 "${JOURNAL[@]}" | sed -n 's/.*"card_serial":"\([0-9A-F]*\)".*/\1/p' | head -1)
image=$(ls "$DEMO"/hopper/card-*-"$serial".json | head -1)
echo
echo "\$ cardsmith read --sim-image $image --photo $DEMO/photo-1.jpg"
"$CS" read --sim-image "$image" --photo "$DEMO/photo-1.jpg"
echo
echo "$COUNT records personalized and verified across $READERS readers; journal $DEMO/journal.sqlite, report $DEMO/report/batch-1.html, card images in $DEMO/hopper"
