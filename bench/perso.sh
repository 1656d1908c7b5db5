#!/usr/bin/env bash
# Host CPU time per card for perso + verify (the card's own time excluded),
# APDUs per card against the minimum the payload and the card's command set
# allow, and card time under the timing model (typical) against its floor.
#
# Builds the example in release and runs, in one process and one run:
#   - the baselines: one bare round trip (Channel::run + SELECT MF through the
#     same metering wrapper, card excluded) and one ECDSA P-256 verify (ring);
#   - N cards on the default simulated card (extended length);
#   - the same N cards on a simulated card without extended length (short
#     APDUs + command chaining), unless SHORT=0;
#   - the same N cards on the domestic card OS (T=0, its own profile and
#     minimums), over SCP03 and in clear, unless DOMESTIC=0.
# Every time is reported absolute and as a ratio to the baselines.
#
# Usage: bench/perso.sh [CARDS=50] [extra perso_bench args...]
#   CARDS=200 SEED=7 bench/perso.sh
#   bench/perso.sh --no-detail
# Pin to one core for steadier numbers: taskset -c 1 bench/perso.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CARDS=${CARDS:-50}
SEED=${SEED:-1}
SHORT=${SHORT:-1}
DOMESTIC=${DOMESTIC:-1}

cargo build --release --example perso_bench >&2
args=(--cards "$CARDS" --seed "$SEED")
[ "$SHORT" = 1 ] && args+=(--short)
[ "$DOMESTIC" = 1 ] && args+=(--domestic)
unset CARDSMITH_ISSUER_KEY
exec ./target/release/examples/perso_bench "${args[@]}" "$@"
