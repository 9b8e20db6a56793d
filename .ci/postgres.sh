# Sourced by .ci/run: a private PostgreSQL cluster for the tests, in a temporary directory,
# reachable on a unix socket there and, with TLS only for the TLS tests, on 127.0.0.1 (no
# system service), removed on exit. Exports LEDGER_TEST_PG, the URL the PostgreSQL store tests
# create their databases from, and LEDGER_TEST_PG_TLS, the same server over TLS.

pg_bindir() {
  local d
  for d in "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")" /usr/lib/postgresql/*/bin; do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

if ! pg_bindir >/dev/null; then
  # Debian's server package, without the cluster its install would otherwise create and start.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/ledger-ci.conf
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi
PG_BIN="$(pg_bindir)"
PG_DIR="$(mktemp -d /tmp/ledger-pg.XXXXXX)"
# initdb refuses to run as root: the cluster belongs to the `postgres` user then.
PG_AS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$PG_DIR"
  PG_AS=(runuser -u postgres --)
fi
"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U ledger >"$PG_DIR/initdb.log"
# TLS for the tests of `sslmode=require`: a throwaway CA and server certificate made here, for
# this run only, on 127.0.0.1 (a free port) beside the unix socket.
command -v openssl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq openssl; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=ledger test CA" \
  -keyout "$PG_DIR/ca.key" -out "$PG_DIR/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -keyout "$PG_DIR/data/server.key" -out "$PG_DIR/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$PG_DIR/san.ext"
openssl x509 -req -in "$PG_DIR/server.csr" -CA "$PG_DIR/ca.crt" -CAkey "$PG_DIR/ca.key" -CAcreateserial \
  -days 2 -extfile "$PG_DIR/san.ext" -out "$PG_DIR/data/server.crt" 2>/dev/null
chmod 600 "$PG_DIR/data/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR/data/server.key" "$PG_DIR/data/server.crt"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-k $PG_DIR -c listen_addresses=127.0.0.1 -p $PG_PORT -c ssl=on -c max_connections=200" start >/dev/null
stop_private_postgres() {
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap stop_private_postgres EXIT
export LEDGER_TEST_PG="postgresql://ledger@localhost:$PG_PORT/postgres?host=$PG_DIR"
export LEDGER_TEST_PG_TLS="postgresql://ledger@localhost:$PG_PORT/postgres?sslmode=require&sslrootcert=$PG_DIR/ca.crt"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') for the tests: $LEDGER_TEST_PG"
