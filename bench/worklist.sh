#!/usr/bin/env bash
# The worklist under load: with STUDIES studies (forms, assignments,
# reports) in the database, GET /api/worklist for a radiologist's default
# view (their studies and the pool of their five licensed sites) and for a
# site's view (a clinician of one site), with wrk on loopback; each request
# also commits its audit record, as in service. The issue names no other
# server to run beside it: the target is p99 < 20 ms on this machine.
# On the same studies, QIDO-RS (GET /dicom-web/studies) as a viewer lists
# them: a site's newest, by Patient ID, by a patient name's start
# (issue #11's "QIDO-RS p99 at 100,000 studies").
#
# Usage:  bench/worklist.sh [BINARY]   (default: target/release/telerad)
# Environment: STUDIES [100000], OPEN [2000] of them still to read,
#   DURATION [15] seconds per wrk run, ROUNDS [3], CONNECTIONS [8] for the
#   loaded runs (each view is also measured with 1 connection: latency
#   unloaded, the radiologist clicking alone),
#   PORT_BASE [18500], POSTGRES [unset: SQLite; a server URL such as
#   postgres://postgres@127.0.0.1:5432/postgres: a fresh database on it,
#   dropped at the end].
# Prints a markdown table for BENCHMARKS.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
binary="${1:-$here/../target/release/telerad}"
studies="${STUDIES:-100000}"
open="${OPEN:-2000}"
duration="${DURATION:-15}"
rounds="${ROUNDS:-3}"
connections="${CONNECTIONS:-8}"
port_base="${PORT_BASE:-18500}"
postgres="${POSTGRES:-}"
require_tools wrk curl jq
[[ -x $binary ]] || die "no telerad binary at $binary (cargo build --release)"
WORK="$(mktemp -d /tmp/telerad-bench-worklist.XXXXXX)"
database=""
pid=""
cleanup() {
    stop_pid "$pid"
    if [[ -n $database ]]; then
        psql -q "$postgres" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

dir="$WORK/server"
dicom=$port_base
http=$((port_base + 1))
require_free_ports "$dicom" "$http"
mkdir -p "$dir"
database_line=""
if [[ -n $postgres ]]; then
    require_tools psql
    database="telerad_bench_worklist_$RANDOM$RANDOM"
    psql -q "$postgres" -c "CREATE DATABASE $database" >/dev/null
    database_line="database_url = \"${postgres%/*}/$database\""
else
    require_tools sqlite3
fi
{
    cat <<TOML
[dicom]
port = $dicom
[http]
bind = "127.0.0.1"
port = $http
[storage]
data_dir = "$dir/data"
$database_line
TOML
    worklist_data_config
} >"$dir/telerad.toml"

serve() {
    RUST_LOG=warn "$binary" serve --config "$dir/telerad.toml" >>"$dir/stdout" 2>>"$dir/log" &
    pid=$!
    wait_listening "$http" "$pid" || die "the server did not start: $(cat "$dir/log")"
}

# A first start migrates the schema and syncs sites and radiologists.
serve
stop_pid "$pid"
pid=""
now_ms=$(($(date +%s) * 1000))
sql="$(sed -e "s/__N__/$studies/g" -e "s/__OPEN__/$open/g" -e "s/__NOW__/$now_ms/g" "$here/worklist_data.sql")"
log "generating $studies studies"
started=$(date +%s)
if [[ -n $postgres ]]; then
    url="${postgres%/*}/$database"
    psql -q -v ON_ERROR_STOP=1 "$url" <<<"$sql"
    for table in studies assignments request_forms reports report_versions; do
        psql -q "$url" -c "SELECT setval(pg_get_serial_sequence('$table', 'id'), (SELECT MAX(id) FROM $table))" >/dev/null
    done
    # What autovacuum does after a bulk load, done now rather than mid-run.
    psql -q "$url" -c "ANALYZE" >/dev/null
else
    sqlite3 -bail "$dir/data/telerad.db" <<<"PRAGMA foreign_keys = ON; BEGIN; $sql COMMIT;"
fi
log "generated in $(($(date +%s) - started)) s"
serve

password="a password for the bench"
"$binary" user add rad --role radiologist --radiologist dr-0 --config "$dir/telerad.toml" <<<"$password" >/dev/null
"$binary" user add clin --role clinician --site site-3 --config "$dir/telerad.toml" <<<"$password" >/dev/null
rad="$("$binary" token create rad --name bench --config "$dir/telerad.toml")"
clin="$("$binary" token create clin --name bench --config "$dir/telerad.toml")"

url="http://127.0.0.1:$http/api/worklist?limit=50"
declare -A views=([radiologist]="$rad" [site]="$clin")
for view in radiologist site; do
    count="$(curl -sf -H "authorization: Bearer ${views[$view]}" "$url" | jq '.items | length')"
    [[ $count -gt 0 ]] || die "the $view view is empty"
    log "$view view: $count items on the first page"
done

measure() {
    local token=$1 clients=$2 target=${3:-$url} out threads=2
    ((clients > 1)) || threads=1
    out="$(wrk -t"$threads" -c"$clients" -d"${duration}s" --latency -H "authorization: Bearer $token" "$target")"
    grep -q "Non-2xx" <<<"$out" && die "non-2xx answers: $out"
    local rps p50 p99
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

# Site 3 holds the studies whose number ends in 3.
qido="http://127.0.0.1:$http/dicom-web/studies"
declare -A searches=(
    [newest]="$qido?limit=50"
    [patient_id]="$qido?PatientID=P54323"
    [patient_name]="$qido?PatientName=PATIENT%5E5432*&limit=50"
)
for search in newest patient_id patient_name; do
    count="$(curl -sf -H "authorization: Bearer $clin" "${searches[$search]}" | jq 'length')"
    [[ $count -gt 0 ]] || die "the QIDO-RS search $search found nothing"
    log "QIDO-RS $search: $count studies"
done

declare -a radiologist site radiologist1 site1 newest patient_id patient_name
for ((r = 0; r < rounds; r++)); do
    log "round $((r + 1))/$rounds"
    radiologist1+=("$(measure "$rad" 1)")
    site1+=("$(measure "$clin" 1)")
    radiologist+=("$(measure "$rad" "$connections")")
    site+=("$(measure "$clin" "$connections")")
    newest+=("$(measure "$clin" "$connections" "${searches[newest]}")")
    patient_id+=("$(measure "$clin" "$connections" "${searches[patient_id]}")")
    patient_name+=("$(measure "$clin" "$connections" "${searches[patient_name]}")")
done

backend=SQLite
[[ -z $postgres ]] || backend=PostgreSQL
echo "database: $backend; $studies studies, $open open; ${duration} s x $rounds rounds, medians"
echo "| GET /api/worklist?limit=50 | connections | requests/s | p50 (ms) | p99 (ms) |"
echo "|---|---|---|---|---|"
row() { local name=$1 clients=$2; shift 2; echo "| $name | $clients | $(column 1 "$@") | $(column 2 "$@") | $(column 3 "$@") |"; }
row "radiologist's default view" 1 "${radiologist1[@]}"
row "radiologist's default view" "$connections" "${radiologist[@]}"
row "a site's view (clinician)" 1 "${site1[@]}"
row "a site's view (clinician)" "$connections" "${site[@]}"
echo
echo "| GET /dicom-web/studies (a clinician of one site) | connections | requests/s | p50 (ms) | p99 (ms) |"
echo "|---|---|---|---|---|"
row "newest 50 (limit=50)" "$connections" "${newest[@]}"
row "PatientID=P54323" "$connections" "${patient_id[@]}"
row "PatientName=PATIENT^5432* (limit=50)" "$connections" "${patient_name[@]}"
echo
echo "runs (req/s p50 p99), radiologist x1: ${radiologist1[*]}; x$connections: ${radiologist[*]}"
echo "runs (req/s p50 p99), site x1: ${site1[*]}; x$connections: ${site[*]}"
set_aside "$dir"
