#!/usr/bin/env bash
# Cost of authentication and audit on GET /api/studies/{uid}: the same
# request, with wrk on loopback, to telerad before accounts existed (no
# token checked, nothing audited) and to telerad now (a Bearer token looked
# up, and an audit record per request, written to the spool before the
# answer and chained in batches), alternately,
# in one run. Then the cost of a login (argon2id), timed one at a time.
#
# Usage:  bench/auth.sh BEFORE_BINARY AFTER_BINARY
#         (release builds of `telerad`: AFTER of this commit; BEFORE of this
#         commit with bench/unaudited.patch, made by bench/unaudited.sh, so
#         that the two differ by authentication and audit only, or of a
#         commit before the accounts, e.g. 407af2d)
# Environment: DURATION [15] seconds per wrk run, ROUNDS [3] runs of each,
#   CONNECTIONS [16], PORT_BASE [18400], LOGINS [20], POSTGRES [unset: a
#   fresh SQLite file per server; a server URL such as
#   postgres://postgres@127.0.0.1:5432/postgres: a fresh database on it per
#   server, dropped at the end].
# Prints a markdown table for BENCHMARKS.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
before="${1:?usage: bench/auth.sh BEFORE_BINARY AFTER_BINARY}"
after="${2:?usage: bench/auth.sh BEFORE_BINARY AFTER_BINARY}"
duration="${DURATION:-15}"
rounds="${ROUNDS:-3}"
connections="${CONNECTIONS:-16}"
port_base="${PORT_BASE:-18400}"
logins="${LOGINS:-20}"
require_tools wrk curl jq
WORK="$(mktemp -d /tmp/telerad-bench-auth.XXXXXX)"
postgres="${POSTGRES:-}"
databases=()
cleanup() {
    stop_pid "${pids[0]:-}"
    stop_pid "${pids[1]:-}"
    local db
    for db in "${databases[@]}"; do
        psql -q "$postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
[[ -z $postgres ]] || require_tools psql

# One server per binary, each with its own data folder and one study.
declare -a pids uids tokens ports
start_server() {
    local i=$1 binary=$2
    local dir="$WORK/server-$i" dicom=$((port_base + 2 * i)) http=$((port_base + 2 * i + 1))
    require_free_ports "$dicom" "$http"
    mkdir -p "$dir"
    local database_line=""
    if [[ -n $postgres ]]; then
        local db="telerad_bench_auth_${i}_$RANDOM$RANDOM"
        psql -q "$postgres" -c "CREATE DATABASE $db" >/dev/null
        databases+=("$db")
        database_line="database_url = \"${postgres%/*}/$db\""
    fi
    cat >"$dir/telerad.toml" <<TOML
[dicom]
port = $dicom
[http]
bind = "127.0.0.1"
port = $http
[storage]
data_dir = "$dir/data"
$database_line
[studies]
default_quiet_period_secs = 1
[[sites]]
name = "site-a"
ae_titles = ["TELERAD_SCU"]
allowed_networks = ["127.0.0.0/8"]
time_zone = "Europe/Paris"
TOML
    RUST_LOG=warn "$binary" serve --config "$dir/telerad.toml" >"$dir/stdout" 2>"$dir/log" &
    pids[$i]=$!
    wait_listening "$http" "${pids[$i]}" || die "server $i did not start: $(cat "$dir/log")"
    "$binary" push "$here/../fixtures/samples/CT_small.dcm" --to "TELERAD@127.0.0.1:$dicom" >/dev/null
    ports[$i]=$http
    tokens[$i]=""
    if [[ -s "$dir/data/initial-admin-password" ]]; then
        tokens[$i]="$("$binary" token create admin --name bench --config "$dir/telerad.toml")"
    fi
    local auth=() tries=0
    [[ -n ${tokens[$i]} ]] && auth=(-H "authorization: Bearer ${tokens[$i]}")
    until uids[$i]="$(curl -sf "${auth[@]}" "http://127.0.0.1:$http/api/studies" | jq -r '.items[0].study_instance_uid // empty')" && [[ -n ${uids[$i]} ]]; do
        ((++tries < 100)) || die "server $i never listed the study"
        sleep 0.1
    done
}
start_server 0 "$before"
start_server 1 "$after"
[[ -n ${tokens[1]} ]] || die "$after made no first administrator"

# CPU time (user + system, in clock ticks) used so far by process $1, all
# its threads.
# The fields are counted after the name's closing parenthesis: a name may
# hold spaces.
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
ticks_per_second="$(getconf CLK_TCK)"

# wrk's summary as "req/s p50_ms p99_ms cpu_us", cpu_us being the server's
# own CPU time per answered request (the database server's not included:
# with PostgreSQL it works in processes of its own).
measure() {
    local i=$1 header=()
    [[ -n ${tokens[$i]} ]] && header=(-H "authorization: Bearer ${tokens[$i]}")
    local out cpu_before cpu_after
    cpu_before="$(cpu_ticks "${pids[$i]}")"
    out="$(wrk -t2 -c"$connections" -d"${duration}s" --latency "${header[@]}" \
        "http://127.0.0.1:${ports[$i]}/api/studies/${uids[$i]}")"
    cpu_after="$(cpu_ticks "${pids[$i]}")"
    grep -q "Non-2xx" <<<"$out" && die "non-2xx answers from server $i: $out"
    local rps p50 p99 requests
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    # measure runs in $(...), where a failed command does not stop the script.
    [[ -n $rps && -n $p50 && -n $p99 && ${requests:-0} -gt 0 && -n $cpu_before && -n $cpu_after ]] ||
        die "server $i: no usable wrk output: $out"
    echo "$rps $(to_ms "$p50") $(to_ms "$p99") $(awk -v t=$((cpu_after - cpu_before)) \
        -v hz="$ticks_per_second" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
}

# Each round runs both servers, in turn, the first of a round alternating
# (ABBA...), so that a drift of the machine's speed during the run weighs on
# both alike; a round's ratio compares two runs seconds apart.
declare -a results0 results1 ratios
for ((r = 0; r < rounds; r++)); do
    order=(0 1)
    ((r % 2 == 1)) && order=(1 0)
    for i in "${order[@]}"; do
        log "round $((r + 1))/$rounds, server $i"
        line="$(measure "$i")"
        if [[ $i == 0 ]]; then results0+=("$line"); else results1+=("$line"); fi
    done
    ratios+=("$(awk -v a="${results1[r]%% *}" -v b="${results0[r]%% *}" 'BEGIN {printf "%.3f", a / b}')")
done
# Records in server $1's audit trail ("" when it cannot be read).
trail_records() {
    local trail
    trail="$("$2" audit verify --config "$WORK/server-$1/telerad.toml" 2>&1 || true)"
    grep -o '[0-9]* records' <<<"$trail" | awk '{print $1}' || true
}
# A BEFORE with accounts must be the unaudited build (its trail holds the
# start-up's few records, not one per request), and AFTER must audit (a
# copy of the unaudited build would give a ratio near 1).
if [[ -n ${tokens[0]} ]]; then
    records="$(trail_records 0 "$before")"
    [[ -n $records && $records -lt 1000 ]] ||
        die "$before audits its reads (${records:-no} records): give bench/unaudited.sh's build"
fi
records="$(trail_records 1 "$after")"
[[ -n $records && $records -ge 1000 ]] ||
    die "$after did not audit its reads (${records:-no} records): give a build of this commit"
rps0="$(column 1 "${results0[@]}")"; rps1="$(column 1 "${results1[@]}")"
p500="$(column 2 "${results0[@]}")"; p501="$(column 2 "${results1[@]}")"
p990="$(column 3 "${results0[@]}")"; p991="$(column 3 "${results1[@]}")"
cpu0="$(column 4 "${results0[@]}")"; cpu1="$(column 4 "${results1[@]}")"

# Logins, one at a time: each checks an argon2id hash.
password="$(cat "$WORK/server-1/data/initial-admin-password")"
declare -a login_ms
for ((n = 0; n < logins; n++)); do
    t="$(curl -s -o /dev/null -w '%{time_total}' -H 'content-type: application/json' \
        -d "{\"login\": \"admin\", \"password\": \"$password\"}" "http://127.0.0.1:${ports[1]}/api/login")"
    login_ms+=("$(awk -v x="$t" 'BEGIN {printf "%.1f", x * 1000}')")
done
login_median="$(printf '%s\n' "${login_ms[@]}" | median)"

echo "database: ${postgres:+PostgreSQL }${postgres:-SQLite}"
echo "| GET /api/studies/{uid}, medians of $rounds runs of ${duration} s, $connections connections | requests/s | p50 (ms) | p99 (ms) | telerad CPU µs / request |"
echo "|---|---|---|---|---|"
echo "| without authentication and audit ($before) | $rps0 | $p500 | $p990 | $cpu0 |"
echo "| token checked + audit record ($after) | $rps1 | $p501 | $p991 | $cpu1 |"
awk -v a="$rps1" -v b="$rps0" -v c="$cpu1" -v d="$cpu0" \
    'BEGIN {printf "| ratio (with / without) | %.2f | | | %.2f |\n", a / b, c / d}'
echo
echo "ratio of each round's two runs (requests/s, with / without): ${ratios[*]}; median $(printf '%s\n' "${ratios[@]}" | median)"
echo "runs (req/s p50 p99 cpu_us), without: ${results0[*]}"
echo "runs (req/s p50 p99 cpu_us), with: ${results1[*]}"
echo "login (POST /api/login, argon2id m=64 MiB t=3 p=1), median of $logins: $login_median ms"
set_aside "$WORK/server-0" "$WORK/server-1"
