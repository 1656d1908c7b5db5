#!/usr/bin/env bash
# Host overhead per APDU on the real PC/SC stack (pcscd + vpcd + simulated card).
#
# Each client sends the same APDU (GET CHALLENGE, 8 bytes) to the same
# simulated card, once with N=1 and once with N APDUs; the per-APDU cost is
# (T(N) - T(1)) / (N - 1), which cancels process start-up. The card's own
# time is identical for every client, so the differences are host overhead.
# Figures are ratios against the C loop over SCardTransmit, measured in the
# same run. Each measurement is the median of REPEAT runs.
#
# Usage: bash bench/pcsc_overhead.sh            (N=2000, REPEAT=3)
#        N=5000 REPEAT=5 bash bench/pcsc_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
N="${N:-2000}"
REPEAT="${REPEAT:-3}"
APDU="00 84 00 00 08"
READER="Virtual PCD 00 00"
OUT=bench/out
mkdir -p "$OUT"

cargo build --locked --release -q
CS=target/release/cardsmith
gcc -O2 -o "$OUT/transmit_loop" bench/transmit_loop.c $(pkg-config --cflags --libs libpcsclite)

DATA=$(mktemp -d)
"$CS" sim --fresh --data-dir "$DATA" --slots 0 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; wait $SIM 2>/dev/null || true; rm -rf "$DATA"' EXIT
"$CS" readers --wait insert --reader 0 --timeout 15 >/dev/null

# Inputs for N APDUs.
make_inputs() {
  local n=$1
  : > "$OUT/script.$n"
  CS_ARGS=(); OSC_ARGS=()
  for ((i = 0; i < n; i++)); do
    echo "$APDU" >> "$OUT/script.$n"
    CS_ARGS+=("$APDU"); OSC_ARGS+=(-s "$APDU")
  done
}


time_ns() { # client n -> median ns of REPEAT runs
  local client=$1 n=$2 t=()
  make_inputs "$n" # build inputs outside the timed region
  for ((r = 0; r < REPEAT; r++)); do
    local s e
    s=$(date +%s%N)
    case "$client" in
      c)         "$OUT/transmit_loop" "$READER" "$n" "$APDU" ;;
      cardsmith) "$CS" send --reader "$READER" --no-tlv "${CS_ARGS[@]}" >/dev/null ;;
      scriptor)  scriptor -r "$READER" "$OUT/script.$n" >/dev/null 2>&1 ;;
      opensc)    opensc-tool -r "$READER" "${OSC_ARGS[@]}" >/dev/null ;;
    esac
    e=$(date +%s%N)
    t+=($((e - s)))
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p"
}

echo "PC/SC host overhead per APDU: N=$N, median of $REPEAT, APDU '$APDU', reader '$READER'"
declare -A PER
for client in c cardsmith scriptor opensc; do
  t1=$(time_ns "$client" 1)
  tn=$(time_ns "$client" "$N")
  PER[$client]=$(( (tn - t1) / (N - 1) ))
done
base=${PER[c]}
printf '%-10s %12s %10s\n' client "us/APDU" "x C loop"
for client in c cardsmith scriptor opensc; do
  awk -v c="$client" -v p="${PER[$client]}" -v b="$base" \
    'BEGIN { printf "%-10s %12.1f %10.2f\n", c, p / 1000, p / b }'
done
