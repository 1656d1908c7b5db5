#!/usr/bin/env bash
# The whole test suite: unit tests, in-process card tests, and the tests that
# go through the real pcscd with the simulated card on the vpcd reader.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# 2 cores: build with both, run test binaries with both; PC/SC tests
# serialise themselves on a lock because the vpcd slots are shared.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --locked --workspace --all-targets
# The pcscd driver (ifd/) is its own package: its unit tests need no pcscd.
cargo test --locked --manifest-path ifd/Cargo.toml -q
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast --test-threads 2
else
  cargo test --locked --workspace --no-fail-fast -- --test-threads 2
fi
