#!/usr/bin/env bash
# Installs and starts what cardsmith needs on Debian: the PC/SC daemon with
# the vsmartcard virtual reader, the PC/SC headers, and the third-party
# clients the tests compare against. Safe to run again: it installs only
# what is missing and starts pcscd only if it is not running.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PKGS=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc python3-pyscard pkg-config gcc openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: cargo (Rust 1.85 or newer) is required; install it with rustup" >&2
    exit 1
  fi
fi

# pcscd: start it unless it runs. vpcd listens on 35963/35964 once loaded.
if ! pgrep -x pcscd >/dev/null 2>&1; then
  echo "setup: starting pcscd"
  $SUDO pcscd
fi
for _ in $(seq 1 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/35963) 2>/dev/null; then break; fi
  sleep 0.1
done
if ! (exec 3<>/dev/tcp/127.0.0.1/35963) 2>/dev/null; then
  echo "setup: pcscd runs but the vpcd virtual reader is not listening on 127.0.0.1:35963" >&2
  exit 1
fi
