#!/usr/bin/env bash
# Starts every service the tests need (or the ones named: up.sh postgres im) and
# writes `.services/env`, which tests and scripts/test source:
#   . .services/env
# Each service script is idempotent, so running this again is fast and only starts
# what has stopped. Exits non-zero when any service failed; that service's variables
# are then removed from .services/env, so REQUIRE_SERVICES=1 tests fail loudly.
# shellcheck disable=SC2034 # read by lib.sh for the log prefix
SERVICE_NAME=up
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(postgres mariadb im vault kafka)
if [[ $# -gt 0 ]]; then SERVICES=("$@"); else SERVICES=("${ALL[@]}"); fi

T0=$(now_ms)
failed=()
summary=()
for svc in "${SERVICES[@]}"; do
    script="$REPO_ROOT/scripts/services/$svc.sh"
    [[ -x $script ]] || die "unknown service '$svc' (known: ${ALL[*]})"
    t=$(now_ms)
    if "$script"; then
        summary+=("$(printf '%-9s ok      %s' "$svc" "$(since "$t")")")
    else
        summary+=("$(printf '%-9s FAILED  %s' "$svc" "$(since "$t")")")
        failed+=("$svc")
        clear_env "$svc"
    fi
done
write_env

log "services (took $(since "$T0") in all):"
printf '    %s\n' "${summary[@]}" >&2
log "variables in $SERVICES_DIR/env"
if [[ ${#failed[@]} -gt 0 ]]; then
    die "failed to start: ${failed[*]}"
fi
