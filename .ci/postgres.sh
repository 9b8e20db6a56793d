# Sourced by .ci/run: a private PostgreSQL cluster for the tests, in a temporary directory,
# reachable only on a unix socket there (no TCP, no system service), removed on exit.
# Exports LEDGER_TEST_PG, the URL the PostgreSQL store tests create their databases from.

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
"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-k $PG_DIR -c listen_addresses='' -c max_connections=200" start >/dev/null
stop_private_postgres() {
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap stop_private_postgres EXIT
export LEDGER_TEST_PG="postgresql://ledger@localhost/postgres?host=$PG_DIR"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') for the tests: $LEDGER_TEST_PG"
