#!/usr/bin/env bash
# The programme's shared register in one command: a throwaway PostgreSQL
# cluster (Debian's server, its own directory and port), the register's
# schema and roles, a login for each line station, two counters (Tehran
# office 1021 and the Dubai consulate AE-DXB) and a supervisor, then three
# line stations as separate processes working one batch together (each
# with in-process simulated readers under the card timing model). Station
# line2 is killed mid-batch and resumed. The good cards are shipped to the
# offices their records name, and the register is queried and audited.
# Passwords never appear on a command line: they are in a password file.
# The cluster is removed at the end; run it again at will.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# What the demo leaves behind holds citizens' data: private to the user.
umask 077
cargo build --locked --release -q
CS="$PWD/target/release/cardsmith"
export CARDSMITH_DATA_DIR="${CARDSMITH_DATA_DIR:-$HOME/.local/share/cardsmith}"
DEMO="$CARDSMITH_DATA_DIR/demo-register"
COUNT="${DEMO_COUNT:-18}"
rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 700 "$DEMO"

PGDIR="$(mktemp -d /tmp/cardsmith-register.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/pg-cluster.sh remove "$PGDIR"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADMIN_URL="$(bash scripts/pg-cluster.sh start "$PGDIR" "$PORT" durable)"
SUPERPW="${ADMIN_URL#postgresql://postgres:}"
SUPERPW="${SUPERPW%%@*}"
ADMIN_PSQL=(psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres)
export PGPASSFILE="$DEMO/pgpass"
(umask 077 && : >"$PGPASSFILE")
echo "127.0.0.1:$PORT:*:postgres:$SUPERPW" >>"$PGPASSFILE"
"${ADMIN_PSQL[@]}" -d postgres -c "CREATE DATABASE register"
url() { echo "postgresql://$1@127.0.0.1:$PORT/register"; }

echo "\$ cardsmith journal migrate --journal $(url postgres)"
"$CS" journal migrate --journal "$(url postgres)"
for spec in line1:line: line2:line: line3:line: counter_1021:counter:1021 counter_dxb:counter:AE-DXB supervisor:supervisor:; do
  IFS=: read -r login role office <<<"$spec"
  pw="$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')"
  (umask 077 && echo "$pw" >"$DEMO/$login.pw")
  echo "127.0.0.1:$PORT:register:$login:$pw" >>"$PGPASSFILE"
  args=("$login" --role "$role" --password-file "$DEMO/$login.pw" --journal "$(url postgres)")
  [ -n "$office" ] && args+=(--office "$office")
  echo "\$ cardsmith journal grant ${args[*]}"
  "$CS" journal grant "${args[@]}"
done

echo
echo "\$ cardsmith sample-records --count $COUNT --seed 3 --out $DEMO/batch.jsonl"
"$CS" sample-records --count "$COUNT" --seed 3 --out "$DEMO/batch.jsonl"

station() { # name, then line arguments
  local name="$1"
  shift
  "$CS" line "$@" --journal "$(url "$name")" --station "$name" --operator "op-$name" \
    --sim-readers 3 --timing typical --lease 5s --plain --report-dir "$DEMO/report-$name" \
    >"$DEMO/$name.log" 2>&1
}
echo
echo "\$ cardsmith line run $DEMO/batch.jsonl --journal $(url line1) --station line1 --sim-readers 3 &"
station line1 run "$DEMO/batch.jsonl" &
pids+=($!)
until "$CS" --json line status --journal "$(url supervisor)" >/dev/null 2>&1; do sleep 0.3; done
BATCH=$("$CS" --json line status --journal "$(url supervisor)" | sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -1)
for s in line2 line3; do
  echo "\$ cardsmith line resume --batch $BATCH --journal $(url $s) --station $s --sim-readers 3 &"
  station "$s" resume --batch "$BATCH" &
  pids+=($!)
done
sleep 6
echo "(line2 is killed mid-batch, then resumed)"
pkill -KILL -f -- "--station line2" || true
sleep 1
station line2 resume --batch "$BATCH" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()

echo
echo "\$ cardsmith line status --batch $BATCH --journal $(url supervisor)"
"$CS" line status --batch "$BATCH" --journal "$(url supervisor)"
echo
echo "attempts by station and outcome (psql):"
"${ADMIN_PSQL[@]}" -d register -c "SELECT station, outcome, COUNT(*) FROM attempts GROUP BY 1, 2 ORDER BY 1, 2"
echo "records on more than one good card (must be none):"
"${ADMIN_PSQL[@]}" -d register -c "SELECT record_id, COUNT(*) FROM attempts WHERE outcome = 'good' GROUP BY 1 HAVING COUNT(*) > 1"

echo
# Every good card goes to the office its record names (domestic offices
# and consulates alike).
for office in $(python3 -c 'import json,sys; print("\n".join(sorted({json.loads(l)["issuing_office"]["code"] for l in open(sys.argv[1]) if l.strip()})))' "$DEMO/batch.jsonl"); do
  echo "\$ cardsmith activate ship --office $office --batch $BATCH --journal $(url line1)"
  "$CS" activate ship --office "$office" --batch "$BATCH" --journal "$(url line1)" --station line1 --operator dispatcher
done
echo
echo "cards shipped, by office (psql):"
"${ADMIN_PSQL[@]}" -d register -c "SELECT office, COUNT(*) AS cards, MIN(login) AS shipped_by FROM shipments GROUP BY 1 ORDER BY 1"
echo
echo "a counter may not claim line work: the database refuses it"
PGAPPNAME=demo psql -X -q -h 127.0.0.1 -p "$PORT" -U counter_dxb -d register \
  -c "UPDATE records SET state = 'in_progress' WHERE batch_id = $BATCH" 2>&1 || true
echo
echo "\$ cardsmith journal audit --journal $(url supervisor)"
"$CS" journal audit --journal "$(url supervisor)"
echo
echo "$COUNT records across three stations on one register; logs and reports in $DEMO"
