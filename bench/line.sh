#!/usr/bin/env bash
# Personalization-line benchmark (not a test): cards per hour with 1, 2, 4,
# 8 and 16 readers under the card timing model ('typical'), scaling against
# linear, the line's CPU per card against the engine's own host CPU per
# card, and the journal's overhead per card, with the baselines measured in
# the same run.
#
# Usage: bash bench/line.sh [--pcscd] [--cards-per-reader N]
#   --pcscd   also run 1, 2, 4, 8 and 14 readers through the real pcscd on
#             the project's line readers (scripts/setup.sh installs them),
#             the cards fed by a `cardsmith sim --feed` process of their own
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example line_bench --bin cardsmith >&2
unset CARDSMITH_ISSUER_KEY CARDSMITH_SCP03_KEYS
# The line readers are shared with the PC/SC tests: hold their lock.
exec flock "${TMPDIR:-/tmp}/cardsmith-vpcd.lock" ./target/release/examples/line_bench "$@"
