#!/usr/bin/env bash
# A real IM 2.0.0 (Infrastructure Manager) with its Dummy cloud connector on
# 127.0.0.1:18800, following the verified recipe in shared/reference/im.md:
# a slim `--no-deps` install of IM with a pinned dependency list in the virtualenv
# `.services/im-venv`, started by a `python -c` launcher that sets `IM.config.Config`
# attributes (no im.cfg is written), working directory `.services/im` (IM writes
# tosca_cache.sqlite in its CWD), readiness on `GET /version`.
#
# Idempotent: installs only when the venv lacks the completed install marker, starts
# only when no IM answers on the port. Exports TEST_IM_URL and IM_VENV (tests that
# need their own IM spawn `$IM_VENV/bin/python` with the same launcher).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lock_service im

IM_PORT=${IM_PORT:-18800}
IM_VERSION=2.0.0
VENV="$SERVICES_DIR/im-venv"
WORK="$SERVICES_DIR/im"
PIDFILE="$WORK/im.pid"
URL="http://127.0.0.1:$IM_PORT"
# Everything IM 2.0.0 imports for the REST API, TOSCA and the Dummy connector
# (the full `pip install IM` would add 550 MB of Ansible collections and cloud SDKs).
DEPS=(fastapi==0.165.0 'uvicorn[standard]==0.54.0' pydantic==2.14.4
    python-multipart RADL==1.3.5 tosca-parser==2.15.0 requests==2.34.2 requests-cache==1.3.3
    psutil netaddr PyYAML packaging defusedxml ansible-core==2.19.14 paramiko scp
    suds-community hvac lxml xmltodict)
MARKER="$VENV/.installed-$(printf '%s\n' "IM==$IM_VERSION" "${DEPS[@]}" | sha256sum | cut -c1-16)"
T0=$(now_ms)

install_im() {
    local t
    t=$(now_ms)
    log "installing IM $IM_VERSION into $VENV (slim install, ~30 s)"
    command -v curl >/dev/null || apt_install curl
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$PYTHON is older than 3.10; IM $IM_VERSION needs 3.10+ (set PYTHON=...)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "IM==$IM_VERSION"
    # pip warns that IM requires boto3, scar, ...: those serve the EC2/Lambda
    # connectors only; the warning is expected.
    if ! "$VENV/bin/pip" install -q --disable-pip-version-check "${DEPS[@]}" >"$SERVICES_DIR/im-pip.log" 2>&1; then
        cat "$SERVICES_DIR/im-pip.log" >&2
        die "pip could not install IM's dependencies"
    fi
    "$VENV/bin/python" -c 'import IM.im_service, IM.connectors.Dummy' \
        || die "IM does not import after the install"
    touch "$MARKER"
    log "IM installed in $(since "$t")"
}

im_version() { curl -fsS --max-time 2 "$URL/version" 2>/dev/null; }

if [[ -e $MARKER ]]; then
    log "IM $IM_VERSION already installed in $VENV"
else
    install_im
fi

if pid_running "$PIDFILE" "C.REST_PORT=$IM_PORT" && [[ $(im_version) == "$IM_VERSION" ]]; then
    log "IM already running (pid $(<"$PIDFILE"))"
elif port_open "$IM_PORT"; then
    # Another checkout's IM may own the port; the Dummy IM keeps each user's
    # infrastructures apart, so it can be shared. Anything else is an error.
    if [[ $(im_version) == "$IM_VERSION" ]]; then
        log "an IM $IM_VERSION started elsewhere answers on $URL; using it (down.sh will not stop it)"
    else
        die "127.0.0.1:$IM_PORT is taken by something that is not IM $IM_VERSION"
    fi
else
    log "starting IM on $URL"
    mkdir -p "$WORK"
    # A fresh database per start: IM would otherwise reload every old infrastructure.
    rm -f "$WORK/inf.dat"
    start_daemon "$PIDFILE" "$WORK/stdout.log" "$WORK" "$VENV/bin/python" -c "
from IM.config import Config as C
C.REST_ADDRESS='127.0.0.1'; C.REST_PORT=$IM_PORT
C.DATA_DB='sqlite://$WORK/inf.dat'; C.LOG_FILE='$WORK/im.log'; C.LOG_LEVEL='DEBUG'
import IM.im_service as s; s.main()"
    if ! wait_http "$URL/version" 30; then
        tail -n 20 "$WORK/stdout.log" >&2 || true
        die "IM did not answer $URL/version within 30 s (logs in $WORK)"
    fi
    [[ $(im_version) == "$IM_VERSION" ]] || die "IM on $URL reports version '$(im_version)'"
fi

set_env im "TEST_IM_URL=$URL" "IM_VENV=$VENV"
log "ready in $(since "$T0"): TEST_IM_URL=$URL IM_VENV=$VENV"
