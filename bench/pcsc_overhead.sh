#!/usr/bin/env bash
# Host overhead per APDU on the real PC/SC stack (pcscd + vpcd + simulated card).
#
# Each client sends the same APDU (GET CHALLENGE, 8 bytes) to the same
# simulated card, once with N=1 and once with N APDUs; the per-APDU cost is
# (T(N) - T(1)) / (N - 1), which cancels process start-up. The card's own
# time is identical for every client, so the differences are host overhead.
# Figures are ratios against the C loop over SCardTransmit, measured in the
# same round; REPEAT rounds give the spread (min, median, max) of each ratio.
# Each time in a round is the least of INNER runs, since load from other
# processes only ever adds time.
#
# Usage: bash bench/pcsc_overhead.sh            (N=2000, REPEAT=5, INNER=3)
#        N=5000 REPEAT=7 INNER=5 bash bench/pcsc_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
N="${N:-2000}"
REPEAT="${REPEAT:-5}"
INNER="${INNER:-3}"
APDU="00 84 00 00 08"
READER="Virtual PCD 00 00"
OUT=bench/out
mkdir -p "$OUT"

cargo build --locked --release -q
CS=target/release/cardsmith
gcc -O2 -o "$OUT/transmit_loop" bench/transmit_loop.c $(pkg-config --cflags --libs libpcsclite)

# The vpcd slots are shared with the PC/SC tests: hold their lock.
exec 9>"${TMPDIR:-/tmp}/cardsmith-vpcd.lock"
flock 9

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


time_once() { # client n -> ns of one run
  local client=$1 n=$2 s e
  s=$(date +%s%N)
  case "$client" in
    c)         "$OUT/transmit_loop" "$READER" "$n" "$APDU" ;;
    cardsmith) "$CS" send --reader "$READER" --no-tlv "${CS_ARGS[@]}" >/dev/null ;;
    scriptor)  scriptor -r "$READER" "$OUT/script.$n" >/dev/null 2>&1 ;;
    opensc)    opensc-tool -r "$READER" "${OSC_ARGS[@]}" >/dev/null ;;
  esac
  e=$(date +%s%N)
  echo $((e - s))
}

time_min() { # client n -> the least ns of INNER runs: load on the machine
  # only ever adds time, so the least run is the one closest to the cost
  local best="" t
  for ((k = 0; k < INNER; k++)); do
    t=$(time_once "$1" "$2")
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
  done
  echo "$best"
}

# stats FILE -> "min median max" of the numbers in FILE
stats() {
  sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%s %s %s\n", v[1], v[int((NR + 1) / 2)], v[NR] }'
}

CLIENTS=(c cardsmith scriptor opensc)
echo "PC/SC host overhead per APDU: N=$N, $REPEAT rounds of the least of $INNER runs, APDU '$APDU', reader '$READER'"
# Each round measures every client once, one after the other, so that the
# ratios of a round compare runs made under the same load; the spread of
# the ratio over the rounds is what the machine's noise does to it.
for client in "${CLIENTS[@]}"; do : > "$OUT/per.$client"; : > "$OUT/ratio.$client"; done
for ((r = 0; r < REPEAT; r++)); do
  declare -A PER=()
  for client in "${CLIENTS[@]}"; do
    make_inputs 1
    t1=$(time_min "$client" 1)
    make_inputs "$N"
    tn=$(time_min "$client" "$N")
    PER[$client]=$(( (tn - t1) / (N - 1) ))
    echo "${PER[$client]}" >> "$OUT/per.$client"
  done
  for client in "${CLIENTS[@]}"; do
    awk -v p="${PER[$client]}" -v b="${PER[c]}" 'BEGIN { printf "%.4f\n", p / b }' >> "$OUT/ratio.$client"
  done
done
printf '%-10s %14s %24s\n' client "us/APDU (median)" "x C loop (min median max)"
for client in "${CLIENTS[@]}"; do
  read -r _ pmed _ < <(stats "$OUT/per.$client")
  read -r rmin rmed rmax < <(stats "$OUT/ratio.$client")
  awk -v c="$client" -v p="$pmed" -v a="$rmin" -v m="$rmed" -v z="$rmax" \
    'BEGIN { printf "%-10s %14.1f %8.3f %7.3f %7.3f\n", c, p / 1000, a, m, z }'
done
