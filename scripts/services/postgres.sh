#!/usr/bin/env bash
# PostgreSQL for the store tests: the Debian cluster on 127.0.0.1:5432 and a role
# `orchestrator_test` (LOGIN CREATEDB) that the tests use to create and drop one
# database `t_<uuid>` per test.
#
# Idempotent: installs `postgresql` only when no cluster exists, starts the cluster
# only when the port is closed, and (re)creates the role with its password.
# Exports TEST_POSTGRES_URL.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lock_service postgres

PG_PORT=5432
PG_USER=orchestrator_test
PG_PASSWORD=orchestrator_test
URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
T0=$(now_ms)

newest_cluster_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

if ! command -v pg_ctlcluster >/dev/null || [[ -z $(newest_cluster_version) ]]; then
    apt_install postgresql
fi
VERSION=$(newest_cluster_version)
[[ -n $VERSION && -d /etc/postgresql/$VERSION/main ]] \
    || die "no PostgreSQL cluster '$VERSION/main' under /etc/postgresql"

if port_open "$PG_PORT"; then
    log "PostgreSQL already listening on 127.0.0.1:$PG_PORT"
else
    log "starting PostgreSQL $VERSION/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$VERSION" main start \
        || die "pg_ctlcluster failed; see /var/log/postgresql/postgresql-$VERSION-main.log"
    wait_port "$PG_PORT" 30 || die "PostgreSQL did not open 127.0.0.1:$PG_PORT within 30 s"
fi
# The socket may answer a moment after the port.
wait_cmd 30 as_user postgres psql -qAt -c 'select 1' || die "PostgreSQL does not answer on its socket"

# Create or update the role; the password is set every time so a role left by an
# older run with another password still works.
as_user postgres psql -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
        CREATE ROLE $PG_USER LOGIN CREATEDB;
    END IF;
END
\$\$;
ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
SQL

# Check what the tests will do: log in over TCP with the password.
PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -qAt -c 'select 1' >/dev/null \
    || die "cannot log in as $PG_USER over 127.0.0.1:$PG_PORT"

set_env postgres "TEST_POSTGRES_URL=$URL"
log "ready in $(since "$T0"): TEST_POSTGRES_URL=$(redact "$URL")"
