#!/usr/bin/env bash
# Installs and starts what cardsmith needs on Debian: the PC/SC daemon with
# the vsmartcard virtual reader, the PC/SC headers, and the third-party
# clients the tests compare against, and the project's own pcscd driver for
# more simulated readers (ifd/). Safe to run again: it installs only what is
# missing or changed, and (re)starts pcscd only if it is not running or its
# driver or configuration changed.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# chromium, chromium-driver and fonts-noto-core: the browser pages (the
# programme view, the counter in a browser) are tested in headless Chromium,
# and Noto has the Persian (Arabic-script) faces. gnutls-bin (p11tool),
# libengine-pkcs11-openssl and openssh: the PKCS#11 module is tested with them.
PKGS=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc python3-pyscard pkg-config gcc openssl tmux postgresql sqlite3 libssl-dev
  chromium chromium-driver fonts-noto-core gnutls-bin libengine-pkcs11-openssl openssh-server openssh-client)
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

# The cardsmith line readers: more simulated readers than vpcd's two, for
# tests and benchmarks that run one worker per reader. vpcd's driver cannot
# serve extra reader.conf entries (pcscd gives every extra entry of a driver
# the same Lun unless the driver claims TAG_IFD_SIMULTANEOUS_ACCESS), so the
# project has its own driver, ifd/: one reader per entry, each a TCP port
# speaking the vpcd protocol, so the simulated-card client works unchanged.
#
# CARDSMITH_LINE_READERS: pcscd has a fixed table of reader contexts for all
# drivers together, PCSCLITE_MAX_READERS_CONTEXTS = 16 in pcsc-lite 1.9.9
# (PCSC/pcsclite.h; pcscd drops a 17th reader silently). vpcd takes two, one
# per slot, which leaves 14. Keep in step with LINE_READERS and
# LINE_BASE_PORT in sim/src/line_readers.rs.
CARDSMITH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARDSMITH_LINE_READERS=14
CARDSMITH_LINE_BASE_PORT=35970
CARDSMITH_IFD_SO=/usr/lib/pcsc/drivers/serial/libcardsmith_ifd.so
CARDSMITH_IFD_CONF=/etc/reader.conf.d/cardsmith-line

cargo build --release --locked --quiet \
  --manifest-path "$CARDSMITH_ROOT/ifd/Cargo.toml" --target-dir "$CARDSMITH_ROOT/ifd/target"

cardsmith_line_conf() {
  echo "# Written by cardsmith scripts/setup.sh: simulated card readers, one TCP"
  echo "# port each (vpcd protocol), served by the cardsmith-ifd driver."
  echo "#"
  echo "# vpcd's own entry comes first: pcscd reads reader.conf.d in directory"
  echo "# order, which is not alphabetical, and vpcd must get the first reader"
  echo "# numbers whichever file pcscd reads first (tests address vpcd as reader"
  echo "# 0). pcscd ignores the second copy of the entry as a duplicate."
  if [ -f /etc/reader.conf.d/vpcd ]; then
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' /etc/reader.conf.d/vpcd || true
  fi
  local i
  for ((i = 0; i < CARDSMITH_LINE_READERS; i++)); do
    printf '\nFRIENDLYNAME "Cardsmith Line %02d"\nDEVICENAME   127.0.0.1:%d\nLIBPATH      %s\n' \
      $((i + 1)) $((CARDSMITH_LINE_BASE_PORT + i)) "$CARDSMITH_IFD_SO"
  done
}

cardsmith_line_changed=0
if ! cmp -s "$CARDSMITH_ROOT/ifd/target/release/libcardsmith_ifd.so" "$CARDSMITH_IFD_SO"; then
  echo "setup: installing $CARDSMITH_IFD_SO"
  # A new file renamed over the old one: pcscd may have the old one mapped.
  $SUDO install -D -m 0644 "$CARDSMITH_ROOT/ifd/target/release/libcardsmith_ifd.so" "$CARDSMITH_IFD_SO.new"
  $SUDO mv -f "$CARDSMITH_IFD_SO.new" "$CARDSMITH_IFD_SO"
  cardsmith_line_changed=1
fi
if ! cardsmith_line_conf | cmp -s - "$CARDSMITH_IFD_CONF"; then
  echo "setup: writing $CARDSMITH_IFD_CONF ($CARDSMITH_LINE_READERS readers)"
  # pcscd skips hidden files, so the temporary name is never read as config.
  cardsmith_line_conf | $SUDO tee /etc/reader.conf.d/.cardsmith-line.new >/dev/null
  $SUDO chmod 0644 /etc/reader.conf.d/.cardsmith-line.new
  $SUDO mv -f /etc/reader.conf.d/.cardsmith-line.new "$CARDSMITH_IFD_CONF"
  cardsmith_line_changed=1
fi

# pcscd loads drivers and reader.conf.d only at start: restart it for a new
# driver or configuration. PC/SC tests hold this lock for their whole run,
# so wait for a running test instead of pulling pcscd from under it.
if [ "$cardsmith_line_changed" = 1 ] && pgrep -x pcscd >/dev/null 2>&1; then
  echo "setup: restarting pcscd for the new driver or configuration"
  cardsmith_lock="${TMPDIR:-/tmp}/cardsmith-vpcd.lock"
  if [ -e "$cardsmith_lock" ]; then
    exec {cardsmith_lock_fd}<"$cardsmith_lock"
    flock -w 900 "$cardsmith_lock_fd"
  fi
  $SUDO pkill -x pcscd || true
  for _ in $(seq 1 100); do
    pgrep -x pcscd >/dev/null 2>&1 || break
    sleep 0.1
  done
  if pgrep -x pcscd >/dev/null 2>&1; then
    echo "setup: pcscd did not stop" >&2
    exit 1
  fi
  if [ -n "${cardsmith_lock_fd:-}" ]; then
    # The daemon must not inherit the lock: it would hold it for good.
    $SUDO pcscd {cardsmith_lock_fd}<&-
  else
    $SUDO pcscd
  fi
fi

# pcscd: start it unless it runs. vpcd listens on 35963/35964 once loaded,
# the line readers on their ports.
if ! pgrep -x pcscd >/dev/null 2>&1; then
  echo "setup: starting pcscd"
  $SUDO pcscd
fi
cardsmith_wait_port() {
  local _
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}
if ! cardsmith_wait_port 35963; then
  echo "setup: pcscd runs but the vpcd virtual reader is not listening on 127.0.0.1:35963" >&2
  exit 1
fi
for port in "$CARDSMITH_LINE_BASE_PORT" $((CARDSMITH_LINE_BASE_PORT + CARDSMITH_LINE_READERS - 1)); do
  if ! cardsmith_wait_port "$port"; then
    echo "setup: pcscd runs but the cardsmith line reader is not listening on 127.0.0.1:$port" \
      "(is pcscd older than the driver? run: pkill -x pcscd; pcscd)" >&2
    exit 1
  fi
done
# Tests may run now that the readers are back.
if [ -n "${cardsmith_lock_fd:-}" ]; then
  exec {cardsmith_lock_fd}<&-
  unset cardsmith_lock_fd
fi
