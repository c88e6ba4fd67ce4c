#!/usr/bin/env bash
# The HTTP API against schemathesis (PyPI), longer than the test suite's
# run (tests/openapi.rs): every operation of /api/openapi.json, each phase
# (examples, coverage, fuzzing, stateful), EXAMPLES cases per operation, as
# an administrator and as a radiologist, on a fresh server of the embedded
# example configuration. Exits non-zero on any server error (5xx) or
# other failure of the not_a_server_error check.
#
# Usage:  bench/api_fuzz.sh [EXAMPLES]       EXAMPLES defaults to 100
# Environment: TELERAD [target/release/telerad], DATABASE_URL (a
# postgres://… URL of an empty database; default SQLite in the data
# folder), HTTP_PORT [18443], DICOM_PORT [11143].
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
examples="${1:-100}"
telerad="${TELERAD:-$here/../target/release/telerad}"
http_port="${HTTP_PORT:-18443}"
dicom_port="${DICOM_PORT:-11143}"
[[ -x "$telerad" ]] || die "no $telerad: cargo build --release"
command -v schemathesis >/dev/null || die "schemathesis is required: python3 -m pip install 'schemathesis>=4,<5'"
require_free_ports "$http_port" "$dicom_port"

work="$(mktemp -d)"
trap 'stop_pid "${server:-}"; rm -rf "$work"' EXIT
data=(--data-dir "$work/data")
[[ -n "${DATABASE_URL:-}" ]] && data+=(--database-url "$DATABASE_URL")
"$telerad" serve "${data[@]}" --http-port "$http_port" --dicom-port "$dicom_port" \
    >"$work/serve.log" 2>&1 &
server=$!
wait_listening "$http_port" "$server" || die "telerad did not start: $(cat "$work/serve.log")"
base="https://127.0.0.1:$http_port"

admin="$("$telerad" token create admin --name api-fuzz "${data[@]}" | tail -1)"
echo 'a password for the fuzz run' |
    "$telerad" user add reader --role radiologist --radiologist dr-nguyen "${data[@]}" >/dev/null
reader="$("$telerad" token create reader --name api-fuzz "${data[@]}" | tail -1)"
curl -sfk "$base/api/openapi.json" -H "authorization: Bearer $admin" -o "$work/openapi.json"

status=0
# schemathesis keeps a cache of findings in its working folder.
cd "$work"
for who in admin reader; do
    token="$admin"
    [[ $who == reader ]] && token="$reader"
    log "schemathesis as $who: $examples examples per operation"
    # Signing out would revoke the run's own token; the event stream stays
    # open for minutes by design.
    if NO_COLOR=1 schemathesis run "$work/openapi.json" --url "$base" --tls-verify false \
        --header "Authorization: Bearer $token" --checks not_a_server_error \
        --exclude-path /api/logout --exclude-path /api/events/stream \
        --max-examples "$examples" --workers 1 --request-timeout 30 \
        --report-dir "$work/report-$who" >"$work/$who.log" 2>&1; then
        grep -E '^(  Tested|  [0-9]+ generated|=+ .* in )' "$work/$who.log" || true
    else
        status=1
        cat "$work/$who.log" >&2
    fi
done
# A 5xx is logged by the server with its cause.
if grep -q 'error while serving a request' "$work/serve.log"; then
    log "the server answered with errors of its own:"
    grep 'error while serving a request' "$work/serve.log" >&2
    status=1
fi
exit "$status"
