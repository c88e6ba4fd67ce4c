#!/usr/bin/env bash
# A/B of two telerad builds on the receiving path: the same SLICES-slice CT
# pushed with DCMTK storescu to build A then build B, ROUNDS times
# alternated, each push to a fresh data folder and SQLite index. Prints one
# line per push (images/s, receiver CPU ms/image from /proc, start-up and
# shutdown included) and the medians. For a change's own cost, where
# bench/receive.sh (telerad beside storescp) is too coarse.
#
# Usage:  bench/receive_ab.sh BINARY_A BINARY_B
# Environment: ROUNDS [10], SLICES [300], PORT_BASE [21500],
#   FIXTURES [a telerad-fixtures binary; default: built in release]
set -euo pipefail
ROUNDS=${ROUNDS:-10}
SLICES=${SLICES:-300}
PORT_BASE=${PORT_BASE:-21500}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
[[ $# -eq 2 ]] || die "usage: $0 BINARY_A BINARY_B"
A=$1 B=$2
require_tools storescu
require_free_ports "$PORT_BASE" "$((PORT_BASE + 1))"
export TCP_NODELAY=1
WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/telerad-ab-XXXXXX")
PID=
trap 'stop_pid "$PID"; rm -rf "$WORK"' EXIT
if [[ -z ${FIXTURES:-} ]]; then
    (cd "$BENCH_DIR/.." && cargo build --release --quiet -p telerad-fixtures)
    FIXTURES=${CARGO_TARGET_DIR:-$BENCH_DIR/../target}/release/telerad-fixtures
fi
"$FIXTURES" generate --modality ct --slices "$SLICES" --out "$WORK/ct" >/dev/null 2>&1
cat >"$WORK/telerad.toml" <<TOML
[dicom]
ae_title = "TELERAD"
port = $PORT_BASE
max_pdu_length = 131072
[http]
bind = "127.0.0.1"
port = $((PORT_BASE + 1))
[storage]
data_dir = "$WORK/unused"
[studies]
default_quiet_period_secs = 20
[[sites]]
name = "bench"
ae_titles = ["STORESCU"]
allowed_networks = []
time_zone = "Europe/Paris"
TOML
tck=$(getconf CLK_TCK)
for ((r = 1; r <= ROUNDS; r++)); do
    for side in A B; do
        binary=$A
        [[ $side == B ]] && binary=$B
        data=$WORK/$side-$r
        sync
        "$binary" serve --config "$WORK/telerad.toml" --data-dir "$data" >"$data.log" 2>&1 &
        PID=$!
        wait_listening "$PORT_BASE" "$PID" || die "$side did not start: $(tail -3 "$data.log")"
        started=$(date +%s.%N)
        storescu -aec TELERAD --max-pdu 131072 127.0.0.1 "$PORT_BASE" "$WORK"/ct/* >/dev/null 2>&1
        ended=$(date +%s.%N)
        cpu=$(awk -v t="$tck" '{print ($14 + $15) / t}' "/proc/$PID/stat")
        stop_pid "$PID"
        PID=
        n=$(find "$data/studies" -name '*.dcm' | wc -l)
        [[ $n -eq $SLICES ]] || die "$side round $r stored $n of $SLICES"
        awk -v s="$side" -v a="$started" -v b="$ended" -v c="$cpu" -v n="$n" \
            'BEGIN { printf "%s %.0f %.2f\n", s, n / (b - a), c * 1000 / n }' | tee -a "$WORK/results"
        set_aside "$data"
    done
done
for side in A B; do
    ips=$(awk -v s="$side" '$1 == s {print $2}' "$WORK/results" | median)
    cpu=$(awk -v s="$side" '$1 == s {print $3}' "$WORK/results" | median)
    echo "$side: median $ips images/s, $cpu ms CPU/image ($ROUNDS pushes)"
done
