#!/usr/bin/env bash
# Stops the servers that up.sh started from this checkout (IM, OpenBao, tansu, found by
# their pid files under .services/) and removes their variables from .services/env.
# The Debian PostgreSQL and MariaDB servers are shared with the machine and left
# running; so is an IM or OpenBao that another checkout started.
# shellcheck disable=SC2034 # read by lib.sh for the log prefix
SERVICE_NAME=down
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_pidfile "$SERVICES_DIR/im/im.pid" "C.REST_PORT=" "IM"
clear_env im
stop_pidfile "$SERVICES_DIR/bao/bao.pid" "-dev-listen-address=" "OpenBao"
clear_env vault
stop_pidfile "$SERVICES_DIR/kafka/tansu.pid" "--listener-url" "tansu"
clear_env kafka
log "stopped IM, OpenBao and tansu (if this checkout had started them); databases left running"
