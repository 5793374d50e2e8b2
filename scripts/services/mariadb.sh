#!/usr/bin/env bash
# MariaDB for the store tests: the Debian server on 127.0.0.1:3306 and a user
# `orchestrator_test` (@127.0.0.1 and @localhost, ALL PRIVILEGES ON *.*, since the
# tests create and drop one database `t_<uuid>` per test).
#
# Idempotent: installs `mariadb-server` only when mariadbd is missing, starts it only
# when it does not answer, and (re)creates the user with its password.
# Exports TEST_MYSQL_URL.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lock_service mariadb

MY_PORT=3306
MY_SOCKET=/run/mysqld/mysqld.sock
MY_USER=orchestrator_test
MY_PASSWORD=orchestrator_test
URL="mysql://$MY_USER:$MY_PASSWORD@127.0.0.1:$MY_PORT/mysql"
T0=$(now_ms)

ping_root() { as_root mariadb-admin --socket="$MY_SOCKET" ping; }

if [[ ! -x /usr/sbin/mariadbd ]]; then
    apt_install mariadb-server
fi

if port_open "$MY_PORT" && ping_root >/dev/null 2>&1; then
    log "MariaDB already running on 127.0.0.1:$MY_PORT"
else
    log "starting MariaDB"
    as_root mkdir -p /run/mysqld
    as_root chown mysql:mysql /run/mysqld
    # Debian's configuration already says user=mysql and bind-address=127.0.0.1; the
    # options repeat it for a machine whose configuration does not.
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd \
        -- --user=mysql --bind-address=127.0.0.1 --port="$MY_PORT" \
        || die "start-stop-daemon could not start mariadbd"
    wait_cmd 60 ping_root || die "MariaDB did not answer on $MY_SOCKET within 60 s (see /var/log/mysql/error.log)"
    wait_port "$MY_PORT" 30 || die "MariaDB did not open 127.0.0.1:$MY_PORT within 30 s"
fi

# root logs in through the socket (unix_socket or an empty password on Debian).
as_root mariadb --socket="$MY_SOCKET" -u root <<SQL || die "cannot create the user $MY_USER"
CREATE USER IF NOT EXISTS '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
CREATE USER IF NOT EXISTS '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASSWORD';
ALTER USER '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
ALTER USER '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MY_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$MY_USER'@'localhost';
FLUSH PRIVILEGES;
SQL

# Check what the tests will do: log in over TCP with the password.
MYSQL_PWD=$MY_PASSWORD mariadb --protocol=TCP -h 127.0.0.1 -P "$MY_PORT" -u "$MY_USER" -e 'select 1' mysql >/dev/null \
    || die "cannot log in as $MY_USER over 127.0.0.1:$MY_PORT"

set_env mariadb "TEST_MYSQL_URL=$URL"
log "ready in $(since "$T0"): TEST_MYSQL_URL=$(redact "$URL")"
