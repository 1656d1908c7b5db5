#!/usr/bin/env bash
# The main job on the embedded defaults: a simulated blank card on the vpcd
# virtual reader, seen through the real pcscd by `readers`, `atr` and `send`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --locked --release -q
CS=target/release/cardsmith
DATA="${CARDSMITH_DATA_DIR:-$HOME/.local/share/cardsmith}"

"$CS" sim --fresh --data-dir "$DATA" --slots 0 --seconds 120 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; wait $SIM 2>/dev/null || true' EXIT
"$CS" readers --wait insert --reader 0 --timeout 15 >/dev/null

run() { echo; echo "\$ cardsmith $*"; "$CS" "$@"; }
run readers
run atr --reader 0
# SELECT MF, GET CHALLENGE; create a DF and an EF, write it and read it back.
run send --reader 0 '00 A4 00 04 02 3F 00 00' '00 84 00 00 08'
run send --reader 0 \
  '00 E0 00 00 1A 62 18 82 01 38 83 02 DF 01 84 07 A0 00 00 00 01 02 03 8A 01 03 8C 03 03 00 00' \
  '00 E0 00 00 13 62 11 80 02 01 00 82 01 01 83 02 EF 01 8A 01 03 8C 01 00' \
  '00 D6 00 00 0B 68 65 6C 6C 6F 20 63 61 72 64 21' \
  '00 B0 00 00 0B'
# A PIN with 3 tries: a wrong PIN leaves 2 (63C2).
run send --reader 0 --secret '00 DA 01 01 0C 80 04 31 32 33 34 81 01 03 83 01 04'
run send --reader 0 --secret '00 20 00 01 04 39 39 39 39' || echo "(exit $?: the card answered an error status, as expected)"
