# shellcheck shell=bash
# Shared helpers for the service scripts: paths, logging, waiting for a port or an
# HTTP endpoint, pid files, package installs and the `.services/env` file.
#
# Sourced, never run. Every service script writes its variables to
# `.services/env.d/<service>.env`; `write_env` then joins all fragments into
# `.services/env`, so starting a single service also refreshes that file.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SERVICES_DIR="$REPO_ROOT/.services"
ENV_DIR="$SERVICES_DIR/env.d"
mkdir -p "$ENV_DIR"

# The Python used to create the IM and OpenBao virtualenvs (IM 2.0.0 needs >= 3.10).
PYTHON=${PYTHON:-python3}

_svc_name=${SERVICE_NAME:-$(basename "${0%.sh}")}

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "$_svc_name" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Milliseconds since the epoch, for timings.
now_ms() { date +%s%3N; }
since() { echo "$(( ($(now_ms) - $1) ))ms"; }

# Hides the password of a URL such as postgres://user:pass@host/db before it is logged.
redact() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"; }

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT TIMEOUT_SECONDS
wait_port() {
    local port=$1 timeout=${2:-30} start
    start=$(now_ms)
    until port_open "$port"; do
        (( $(now_ms) - start < timeout * 1000 )) || return 1
        sleep 0.1
    done
}

# wait_http URL TIMEOUT_SECONDS: waits for a 2xx answer.
wait_http() {
    local url=$1 timeout=${2:-30} start
    start=$(now_ms)
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        (( $(now_ms) - start < timeout * 1000 )) || return 1
        sleep 0.2
    done
}

# wait_cmd TIMEOUT_SECONDS COMMAND...: waits until COMMAND succeeds.
wait_cmd() {
    local timeout=$1 start
    shift
    start=$(now_ms)
    until "$@" >/dev/null 2>&1; do
        (( $(now_ms) - start < timeout * 1000 )) || return 1
        sleep 0.2
    done
}

# pid_running PIDFILE PATTERN: true when the pid file names a live process whose
# command line contains PATTERN (guards against a recycled pid).
pid_running() {
    local pidfile=$1 pattern=$2 pid cmdline
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$pattern"* ]]
}

# start_daemon PIDFILE LOGFILE WORKDIR COMMAND...: starts COMMAND detached from this
# shell (own session, no inherited stdin/stdout), so it outlives the script and does
# not hold the caller's pipes open.
start_daemon() {
    local pidfile=$1 logfile=$2 workdir=$3
    shift 3
    mkdir -p "$workdir" "$(dirname "$logfile")" "$(dirname "$pidfile")"
    rm -f "$pidfile"
    # Every process in the chain execs the next, and the redirections cover the whole
    # subshell, so nothing keeps the caller's stdout open (a pipe such as
    # `up.sh | tail` would otherwise never end). The inner shell writes its own pid
    # and then becomes the server, so the pid file names the server whether or not
    # setsid had to fork.
    (
        cd "$workdir" || exit 1
        exec 9>&- # the service lock (lock_service) must not outlive this script
        exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@"
    ) </dev/null >>"$logfile" 2>&1 &
    wait_cmd 5 test -s "$pidfile" || die "could not start $1"
}

# stop_pidfile PIDFILE PATTERN NAME: SIGTERM, wait up to 15 s, then SIGKILL.
stop_pidfile() {
    local pidfile=$1 pattern=$2 name=$3 pid i
    if ! pid_running "$pidfile" "$pattern"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(<"$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop after 15 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# lock_service NAME: one run of a service script at a time per checkout (two
# terminals, or up.sh beside a single script), so an install is never done twice at
# once. The lock is released when the script exits.
lock_service() {
    exec 9>"$SERVICES_DIR/.$1.lock"
    flock -w 600 9 || die "another run of $1.sh holds $SERVICES_DIR/.$1.lock"
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# Runs a command as another system user (postgres, mysql).
as_user() {
    local user=$1
    shift
    if [[ $(id -u) -eq 0 ]]; then runuser -u "$user" -- "$@"; else sudo -n -u "$user" "$@"; fi
}

_apt_updated=0
# apt_install PACKAGE...: installs Debian packages, refreshing the lists once.
apt_install() {
    log "installing Debian packages: $*"
    if [[ $_apt_updated -eq 0 ]]; then
        as_root apt-get update -qq
        _apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# set_env SERVICE VAR=VALUE...: records the service's variables and rebuilds .services/env.
set_env() {
    local service=$1 kv
    shift
    : >"$ENV_DIR/$service.env.tmp"
    for kv in "$@"; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$ENV_DIR/$service.env.tmp"
    done
    mv "$ENV_DIR/$service.env.tmp" "$ENV_DIR/$service.env"
    write_env
}

clear_env() {
    rm -f "$ENV_DIR/$1.env"
    write_env
}

write_env() {
    local f
    {
        echo "# Written by scripts/services; source it: . .services/env"
        for f in "$ENV_DIR"/*.env; do
            [[ -e $f ]] && cat "$f"
        done
    } >"$SERVICES_DIR/env.tmp"
    mv "$SERVICES_DIR/env.tmp" "$SERVICES_DIR/env"
}
