#!/usr/bin/env bash
# Prepares the local PostgreSQL and MariaDB for dbgov's integration tests. Idempotent.
# - starts them if they are down (commands from the machine's docs);
# - adds password-authenticated pg_hba lines for members of two group roles, so that the
#   gateway's upstream SCRAM-SHA-256 and md5 paths are tested against the real server;
# - turns on TLS with a self-signed certificate, so upstream TLS is tested too.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if ! pg_up; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! mysqladmin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do mysqladmin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && break; sleep 1; done
fi

if [ "$(id -u)" != "0" ] || [ ! -d /etc/postgresql ]; then
  echo "note: not root (or no local PostgreSQL config): skipping the pg_hba/TLS preparation; the upstream SCRAM/md5/TLS tests need it (see scripts/ci-setup-db.sh)" >&2
  exit 0
fi
PGV=$(ls /etc/postgresql | sort -n | tail -1)
HBA=/etc/postgresql/$PGV/main/pg_hba.conf
CONFDIR=/etc/postgresql/$PGV/main
if ! grep -q 'dbgov-test' "$HBA"; then
  tmp=$(mktemp)
  {
    echo '# dbgov-test: password auth for the gateway upstream-auth tests'
    echo 'host all +dbgov_scram 127.0.0.1/32 scram-sha-256'
    echo 'host all +dbgov_md5 127.0.0.1/32 md5'
    cat "$HBA"
  } >"$tmp"
  cat "$tmp" >"$HBA"
  rm -f "$tmp"
fi
if [ ! -f "$CONFDIR/dbgov-test.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=localhost' \
    -keyout "$CONFDIR/dbgov-test.key" -out "$CONFDIR/dbgov-test.crt" >/dev/null 2>&1
  chown postgres:postgres "$CONFDIR/dbgov-test.key" "$CONFDIR/dbgov-test.crt"
  chmod 600 "$CONFDIR/dbgov-test.key"
fi
psql -h 127.0.0.1 -U postgres -d postgres -qAt <<SQL >/dev/null
DO \$\$BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dbgov_scram') THEN CREATE ROLE dbgov_scram NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dbgov_md5') THEN CREATE ROLE dbgov_md5 NOLOGIN; END IF;
END\$\$;
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$CONFDIR/dbgov-test.crt';
ALTER SYSTEM SET ssl_key_file = '$CONFDIR/dbgov-test.key';
ALTER SYSTEM SET max_connections = 300;
SELECT pg_reload_conf();
SQL
# max_connections needs a restart; do it only when the running value is lower.
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -qAtc 'show max_connections')" -lt 300 ]; then
  pg_ctlcluster --skip-systemctl-redirect "$PGV" main restart
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
echo "databases ready: postgres ssl=$(psql -h 127.0.0.1 -U postgres -d postgres -qAtc 'show ssl'), mariadb $(mysql -h 127.0.0.1 -uroot -N -e 'select version()')"
