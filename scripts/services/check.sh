#!/usr/bin/env bash
# Prints the status of each service the tests use; exits non-zero if any is down.
# Never prints passwords or tokens.
# shellcheck disable=SC2034 # read by lib.sh for the log prefix
SERVICE_NAME=check
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

down=0
row() { printf '%-10s %-5s %s\n' "$1" "$2" "$3"; [[ $2 == up ]] || down=1; }
owner() { # how this checkout relates to the process on the port
    if pid_running "$1" "$2"; then echo "pid $(<"$1"), started by this checkout"; else echo "not started by this checkout"; fi
}

if PGPASSWORD=orchestrator_test psql -h 127.0.0.1 -p 5432 -U orchestrator_test -d postgres -qAt \
    -c 'select version()' >/dev/null 2>&1; then
    row postgres up "127.0.0.1:5432, $(PGPASSWORD=orchestrator_test psql -h 127.0.0.1 -U orchestrator_test -d postgres -qAt -c 'show server_version'), role orchestrator_test logs in"
elif port_open 5432; then
    row postgres down "127.0.0.1:5432 open, but orchestrator_test cannot log in (run scripts/services/postgres.sh)"
else
    row postgres down "nothing on 127.0.0.1:5432 (run scripts/services/postgres.sh)"
fi

if v=$(MYSQL_PWD=orchestrator_test mariadb --protocol=TCP -h 127.0.0.1 -P 3306 -u orchestrator_test -N -e 'select version()' 2>/dev/null); then
    row mariadb up "127.0.0.1:3306, $v, user orchestrator_test logs in"
elif port_open 3306; then
    row mariadb down "127.0.0.1:3306 open, but orchestrator_test cannot log in (run scripts/services/mariadb.sh)"
else
    row mariadb down "nothing on 127.0.0.1:3306 (run scripts/services/mariadb.sh)"
fi

if v=$(curl -fsS --max-time 3 http://127.0.0.1:18800/version 2>/dev/null); then
    row im up "http://127.0.0.1:18800, IM $v, $(owner "$SERVICES_DIR/im/im.pid" C.REST_PORT=)"
else
    row im down "no answer on http://127.0.0.1:18800/version (run scripts/services/im.sh)"
fi

if h=$(curl -fsS --max-time 3 http://127.0.0.1:18200/v1/sys/health 2>/dev/null); then
    v=$(sed -nE 's/.*"version":"([^"]*)".*/\1/p' <<<"$h")
    row vault up "http://127.0.0.1:18200, OpenBao $v, $(owner "$SERVICES_DIR/bao/bao.pid" -dev-listen-address=)"
else
    row vault down "no healthy answer on http://127.0.0.1:18200 (run scripts/services/vault.sh)"
fi

if port_open 19092; then
    row kafka up "127.0.0.1:19092 (tansu), $(owner "$SERVICES_DIR/kafka/tansu.pid" --listener-url)"
else
    row kafka down "nothing on 127.0.0.1:19092 (run scripts/services/kafka.sh)"
fi

if [[ -f $SERVICES_DIR/env ]]; then
    echo "env file: $SERVICES_DIR/env ($(grep -c '^export' "$SERVICES_DIR/env") variables: $(sed -nE 's/^export ([A-Z_]+)=.*/\1/p' "$SERVICES_DIR/env" | tr '\n' ' '))"
else
    echo "env file: missing (run scripts/services/up.sh)"
fi
exit "$down"
