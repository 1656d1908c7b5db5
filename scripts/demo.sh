#!/usr/bin/env bash
# The main job on the embedded defaults: a small batch of synthetic citizen
# records is personalized onto simulated blank cards, one after the other in
# the vpcd virtual reader behind the real pcscd, and each card is verified by
# reading it back. The issuer key and the local test CA are created in the
# data directory on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --locked --release -q
CS=target/release/cardsmith
export CARDSMITH_DATA_DIR="${CARDSMITH_DATA_DIR:-$HOME/.local/share/cardsmith}"
DEMO="$CARDSMITH_DATA_DIR/demo"
COUNT="${DEMO_COUNT:-3}"
READER="Virtual PCD 00 00"
mkdir -p "$DEMO"

SIM=
cleanup() { if [ -n "$SIM" ]; then kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; fi; }
trap cleanup EXIT

echo "\$ cardsmith sample-records --count $COUNT --out $DEMO/batch.jsonl"
"$CS" sample-records --count "$COUNT" --seed 1 --out "$DEMO/batch.jsonl"

n=0
while IFS= read -r line; do
  n=$((n + 1))
  printf '%s\n' "$line" > "$DEMO/record-$n.json"
  # A fresh blank card in the reader.
  "$CS" sim --fresh --image "$DEMO/card-$n.json" --slots 0 --seconds 300 >/dev/null &
  SIM=$!
  "$CS" readers --wait insert --reader "$READER" --timeout 15 >/dev/null
  echo
  echo "\$ cardsmith perso --record $DEMO/record-$n.json --reader '$READER'"
  "$CS" perso --record "$DEMO/record-$n.json" --reader "$READER"
  if [ "$n" = 1 ]; then
    echo
    echo "\$ cardsmith read --reader '$READER' --photo $DEMO/photo-1.jpg"
    "$CS" read --reader "$READER" --photo "$DEMO/photo-1.jpg"
  fi
  cleanup
  SIM=
  "$CS" readers --wait remove --reader "$READER" --timeout 15 >/dev/null
done < "$DEMO/batch.jsonl"
echo
echo "$n cards personalized and verified; card images in $DEMO, CA in $CARDSMITH_DATA_DIR/ca"
