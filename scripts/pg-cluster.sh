#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, benchmarks and the multi-site
# demo: Debian's server binaries, initdb in a directory of our own, one
# port on 127.0.0.1, password (SCRAM) logins over TCP, no system service
# touched. The tests start one per test binary and remove it at the end.
#
#   pg-cluster.sh start DIR PORT [durable]   initdb (once) and start; prints
#                                            the superuser URL (password in it)
#   pg-cluster.sh stop DIR                   fast shutdown
#   pg-cluster.sh restart DIR                fast restart (same port)
#   pg-cluster.sh remove DIR                 stop and delete
#
# The superuser password is random, kept in DIR/superuser-password (600).
# With CARDSMITH_PG_TLS=1 at the first start, the cluster gets its own test
# CA (DIR/tls/ca.pem) and a server certificate for localhost and 127.0.0.1,
# and accepts TCP logins over TLS only (hostssl).
# Without "durable" the cluster runs with fsync off: it is thrown away, and
# only the tests use it that way. Benchmarks pass "durable".
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: $0 start|stop|restart|remove DIR [PORT] [durable]" >&2
  exit 2
}

pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$pgbin/initdb" ] || {
  echo "pg-cluster: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 3
}

# initdb and postgres refuse to run as root: run them as the postgres user
# that Debian's package creates.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

data="$dir/data"
case "$cmd" in
start)
  port="${3:?port}"
  durable="${4:-}"
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    pwfile="$dir/superuser-password"
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$pwfile")
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pwfile"; fi
    as_owner "$pgbin/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      echo "max_connections = 200"
      echo "shared_buffers = 64MB"
      if [ "${CARDSMITH_PG_TLS:-}" = "1" ]; then
        tls="$dir/tls"
        mkdir -p "$tls"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
          -subj "/CN=cardsmith test register CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
          -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
          -CAcreateserial -days 3 -extfile "$tls/san.ext" -out "$tls/server.crt" 2>/dev/null
        chmod 600 "$tls/server.key" "$tls/ca.key"
        chmod 644 "$tls/ca.pem"
        if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$tls"; fi
        echo "ssl = on"
        echo "ssl_cert_file = '$tls/server.crt'"
        echo "ssl_key_file = '$tls/server.key'"
      fi
      if [ "$durable" != "durable" ]; then
        echo "fsync = off"
        echo "full_page_writes = off"
      fi
    } | as_owner tee -a "$data/postgresql.conf" >/dev/null
    if [ "${CARDSMITH_PG_TLS:-}" = "1" ]; then
      as_owner sed -i 's/^host /hostssl /' "$data/pg_hba.conf"
    fi
  fi
  if ! as_owner "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$pgbin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null
  fi
  echo "postgresql://postgres:$(cat "$dir/superuser-password")@127.0.0.1:$port/postgres"
  ;;
stop)
  as_owner "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
restart)
  as_owner "$pgbin/pg_ctl" -D "$data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
  ;;
remove)
  as_owner "$pgbin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "pg-cluster: unknown command $cmd" >&2
  exit 2
  ;;
esac
