#!/usr/bin/env bash
# Sending a CT over an emulated WAN: telerad's forwarder against DCMTK
# storescu.
#
# The workstation (DCMTK storescp +xa: it accepts JPEG-LS and JPEG 2000)
# runs in a network namespace behind a veth pair whose both ends are
# rate-limited by tc tbf (RATE, default 50mbit); bench/delay_proxy.py, in
# front of it, delays each direction by ONE_WAY_MS (default 15: a 30 ms
# round trip). A SLICES-slice 512x512 CT, uncompressed and as JPEG 2000
# lossless (bench/j2k_study.py, OpenJPEG's opj_compress), is sent, RUNS
# times each, interleaved, by:
#   - storescu, one association (TCP_NODELAY=1, --max-pdu 131072);
#   - 4 storescu in parallel, each a quarter of the files;
#   - telerad's forwarder (forward/examples/forward_bench.rs: a fresh
#     archive, the study enqueued, the forwarder timed from its start until
#     every job is recorded sent) over 4 associations, as stored and with
#     JPEG-LS lossless on the way (uncompressed CT only).
# Then the uncompressed CT again, to a telerad receiver (`telerad serve` in
# the namespace, a fresh data folder per run) instead of storescp: it
# negotiates an asynchronous operations window (DICOM PS3.7 D.3.3.3), which
# storescp does not, so the forwarder's window (--window 16, the default)
# is measured against none (--window 1), over 1 and 4 associations, as
# stored and with JPEG-LS; storescu (which proposes no window) for
# reference.
# storescu runs end at the newest file storescp wrote, forwarder runs when
# the last job is recorded sent; a run must deliver every file or it counts
# as a failure. Prints the link's own limit (bytes / rate) and the medians
# as markdown.
#
# Usage: sudo bench/wan.sh   (root: namespaces and qdiscs; DCMTK installed)
# Environment: RUNS [3], SLICES [300], RATE [50mbit], ONE_WAY_MS [15],
#   CARGO_TARGET_DIR [/tmp/target-bench], PORT_BASE [22400],
#   RECEIVERS ["storescp telerad"]: which of the two parts run

set -euo pipefail
RUNS=${RUNS:-3}
SLICES=${SLICES:-300}
RATE=${RATE:-50mbit}
ONE_WAY_MS=${ONE_WAY_MS:-15}
PORT_BASE=${PORT_BASE:-22400}
RECEIVERS=${RECEIVERS:-storescp telerad}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-bench}
export TCP_NODELAY=1
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
require_tools ip tc python3 cargo bc ss
# DCMTK's, by path: pynetdicom installs tools of the same names.
STORESCU=/usr/bin/storescu
STORESCP=/usr/bin/storescp
for tool in "$STORESCU" "$STORESCP"; do
    # Read whole first: with pipefail, grep -q closing the pipe early
    # would fail the check.
    banner=$("$tool" --version 2>&1 || true)
    grep -q '^\$dcmtk:' <<<"$banner" || die "$tool is not DCMTK's (apt-get install dcmtk)"
done

NS=telerad-wan
WS_PORT=$PORT_BASE
PROXY_PORT=$((PORT_BASE + 1))
WORK=$(mktemp -d /tmp/telerad-wan-XXXXXX)
WS_PID=
PROXY_PID=
cleanup() {
    stop_pid "$PROXY_PID"
    [[ -z $WS_PID ]] || ip netns exec "$NS" kill "$WS_PID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip link del wan-t 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v opj_compress >/dev/null || die "opj_compress missing (apt-get install libopenjp2-tools)"
log "building release binaries"
(cd "$REPO" && cargo build --release --quiet -p telerad-fixtures --bin telerad-fixtures &&
    cargo build --release --quiet -p telerad-forward --example forward_bench &&
    cargo build --release --quiet --bin telerad)
FORWARD_BENCH=$CARGO_TARGET_DIR/release/examples/forward_bench
TELERAD=$CARGO_TARGET_DIR/release/telerad
"$CARGO_TARGET_DIR/release/telerad-fixtures" generate --modality ct --slices "$SLICES" --out "$WORK/ct" >&2
log "writing the JPEG 2000 copy"
python3 "$BENCH_DIR/j2k_study.py" "$WORK/ct" "$WORK/ct-j2k"
bytes_of() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }

ip netns del "$NS" 2>/dev/null || true
ip link del wan-t 2>/dev/null || true
ip netns add "$NS"
ip link add wan-t type veth peer name wan-w
ip link set wan-w netns "$NS"
ip addr add 10.77.0.1/24 dev wan-t
ip link set wan-t up
ip netns exec "$NS" ip addr add 10.77.0.2/24 dev wan-w
ip netns exec "$NS" ip link set wan-w up
ip netns exec "$NS" ip link set lo up
tc qdisc add dev wan-t root tbf rate "$RATE" burst 64kb latency 100ms
ip netns exec "$NS" tc qdisc add dev wan-w root tbf rate "$RATE" burst 64kb latency 100ms

python3 "$BENCH_DIR/delay_proxy.py" "$PROXY_PORT" 10.77.0.2 "$WS_PORT" "$ONE_WAY_MS" &
PROXY_PID=$!
wait_listening "$PROXY_PORT" "$PROXY_PID" || die "the delay proxy did not start"

RESULTS=$WORK/results.tsv
: >"$RESULTS"
# run NAME COMMAND...: one delivery through the WAN to a fresh storescp.
# A command that prints a number of seconds on its last line of output
# (the forwarder's) is timed by it; any other, from its start to the
# newest file storescp wrote.
run() {
    local name=$1 dir=$WORK/ws-$1-$RANDOM t0 t1 count
    shift
    mkdir -p "$dir"
    ip netns exec "$NS" "$STORESCP" --fork +xa --max-pdu 131072 -aet WS -od "$dir" "$WS_PORT" >"$dir.log" 2>&1 &
    WS_PID=$!
    local tries=0
    until ip netns exec "$NS" ss -Htln "sport = :$WS_PORT" | grep -q .; do
        ((++tries < 100)) || die "storescp did not start: $(cat "$dir.log")"
        sleep 0.05
    done
    t0=$(date +%s.%N)
    "$@" >"$dir.sender.out" 2>"$dir.sender.log" || log "FAILURE: $name sender: $(tail -2 "$dir.sender.log")"
    t1=$(find "$dir" -type f -printf '%T@\n' | sort -n | tail -1)
    local own
    own=$(tail -1 "$dir.sender.out")
    if [[ $own =~ ^[0-9]+\.[0-9]+$ ]]; then
        t0=0
        t1=$own
    fi
    local received
    received=$(bytes_of "$dir")
    count=$(find "$dir" -type f | wc -l)
    kill "$WS_PID" 2>/dev/null || true
    wait "$WS_PID" 2>/dev/null || true
    WS_PID=
    if [[ $count -ne $SLICES ]]; then
        log "FAILURE: $name delivered $count of $SLICES"
        return
    fi
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    log "$name: $secs s, $received bytes received"
    printf '%s\t%s\t%s\n' "$name" "$secs" "$received" >>"$RESULTS"
}

# run_to_telerad NAME COMMAND...: one delivery through the WAN to a fresh
# telerad receiver; timed by the command's last line (the forwarder's) or
# from its start to the receiver's newest stored file (storescu's).
run_to_telerad() {
    local name=$1 dir=$WORK/hub-$1-$RANDOM t0 t1 count
    shift
    mkdir -p "$dir/data"
    cat >"$dir/telerad.toml" <<EOF
[dicom]
ae_title = "WS"
bind = "0.0.0.0"
port = $WS_PORT

[http]
bind = "127.0.0.1"
port = $((PORT_BASE + 2))

[storage]
data_dir = "$dir/data"
database_url = "sqlite://$dir/index.db?mode=rwc"

[[sites]]
name = "spoke"
ae_titles = ["TELERAD", "STORESCU"]
allowed_networks = []
time_zone = "Europe/Paris"
EOF
    ip netns exec "$NS" "$TELERAD" serve --config "$dir/telerad.toml" >"$dir.log" 2>&1 &
    WS_PID=$!
    local tries=0
    until ip netns exec "$NS" ss -Htln "sport = :$WS_PORT" | grep -q .; do
        ((++tries < 200)) || die "telerad serve did not start: $(tail -5 "$dir.log")"
        sleep 0.05
    done
    t0=$(date +%s.%N)
    "$@" >"$dir.sender.out" 2>"$dir.sender.log" || log "FAILURE: $name sender: $(tail -2 "$dir.sender.log")"
    t1=$(find "$dir/data/studies" -name '*.dcm' -printf '%T@\n' | sort -n | tail -1)
    local own
    own=$(tail -1 "$dir.sender.out")
    if [[ $own =~ ^[0-9]+\.[0-9]+$ ]]; then
        t0=0
        t1=$own
    fi
    count=$(find "$dir/data/studies" -name '*.dcm' | wc -l)
    kill "$WS_PID" 2>/dev/null || true
    wait "$WS_PID" 2>/dev/null || true
    WS_PID=
    if [[ $count -ne $SLICES ]]; then
        log "FAILURE: $name delivered $count of $SLICES"
        return
    fi
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    log "$name: $secs s"
    printf '%s\t%s\t%s\n' "$name" "$secs" "-" >>"$RESULTS"
}

# SET is the folder of the CT being sent: uncompressed or JPEG 2000, whose
# syntax storescu proposes with PROPOSE (its default proposes only
# uncompressed syntaxes; it never compresses on its own).
# shellcheck disable=SC2086 # PROPOSE is empty or one option
storescu_one() { "$STORESCU" $PROPOSE -aet STORESCU -aec WS --max-pdu 131072 127.0.0.1 "$PROXY_PORT" "$SET"/*; }
storescu_four() {
    local i pids=()
    for i in 0 1 2 3; do
        "$STORESCU" $PROPOSE -aet STORESCU -aec WS --max-pdu 131072 127.0.0.1 "$PROXY_PORT" \
            $(find "$SET" -type f | sort | awk -v k="$i" 'NR % 4 == k') &
        pids+=($!)
    done
    local ok=0
    for i in "${pids[@]}"; do wait "$i" || ok=1; done
    return $ok
}
forwarder_four() { "$FORWARD_BENCH" --to "WS@127.0.0.1:$PROXY_PORT" --associations 4 "$SET"; }
forwarder_four_jls() { "$FORWARD_BENCH" --to "WS@127.0.0.1:$PROXY_PORT" --associations 4 --compress "$SET"; }
# forwarder N WINDOW [--compress]: N associations, an operations window.
# shellcheck disable=SC2086 # $3 is empty or one option
forwarder() {
    "$FORWARD_BENCH" --to "WS@127.0.0.1:$PROXY_PORT" --associations "$1" --window "$2" ${3:-} "$SET"
}

for ((r = 1; r <= RUNS; r++)); do
  if [[ " $RECEIVERS " == *" storescp "* ]]; then
    SET=$WORK/ct PROPOSE=
    run storescu-1 storescu_one
    run storescu-4 storescu_four
    run telerad-4 forwarder_four
    run telerad-4-jpeg-ls forwarder_four_jls
    SET=$WORK/ct-j2k PROPOSE=-xv
    run j2k-storescu-1 storescu_one
    run j2k-storescu-4 storescu_four
    run j2k-telerad-4 forwarder_four
  fi
  if [[ " $RECEIVERS " == *" telerad "* ]]; then
    SET=$WORK/ct PROPOSE=
    run_to_telerad hub-storescu-1 storescu_one
    run_to_telerad hub-storescu-4 storescu_four
    run_to_telerad hub-telerad-1-w1 forwarder 1 1
    run_to_telerad hub-telerad-1-w16 forwarder 1 16
    run_to_telerad hub-telerad-4-w1 forwarder 4 1
    run_to_telerad hub-telerad-4-w16 forwarder 4 16
    run_to_telerad hub-telerad-1-w1-jls forwarder 1 1 --compress
    run_to_telerad hub-telerad-1-w16-jls forwarder 1 16 --compress
    run_to_telerad hub-telerad-4-w16-jls forwarder 4 16 --compress
  fi
done

rate_bits=$(echo "$RATE" | sed -e 's/mbit$/*1000000/' -e 's/kbit$/*1000/' | bc)
limit() { awk -v b="$1" -v r="$rate_bits" 'BEGIN { printf "%.1f", b * 8 / r }'; }
echo
echo "$(uname -n), $(nproc) cores; $SLICES-slice 512x512 CT, link $RATE each way + $ONE_WAY_MS ms each way (tbf + delay proxy); $RUNS runs each, medians."
echo "The link's own limit: uncompressed $(bytes_of "$WORK/ct") bytes, $(limit "$(bytes_of "$WORK/ct")") s; JPEG 2000 $(bytes_of "$WORK/ct-j2k") bytes, $(limit "$(bytes_of "$WORK/ct-j2k")") s."
echo
if [[ " $RECEIVERS " == *" storescp "* ]]; then
echo "| CT as stored | sender | seconds (median) | images/s | bytes received |"
echo "|---|---|---|---|---|"
for name in storescu-1 storescu-4 telerad-4 telerad-4-jpeg-ls j2k-storescu-1 j2k-storescu-4 j2k-telerad-4; do
    m=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$RESULTS" | median)
    b=$(awk -F'\t' -v n="$name" '$1 == n { print $3 }' "$RESULTS" | median)
    case $name in j2k-*) set_name="JPEG 2000" ;; *) set_name=uncompressed ;; esac
    echo "| $set_name | ${name#j2k-} | $m | $(awk -v s="$SLICES" -v m="$m" 'BEGIN { if (m > 0) printf "%.0f", s / m }') | $b |"
done
fi
if [[ " $RECEIVERS " == *" telerad "* ]]; then
echo
echo "To a telerad receiver (uncompressed CT; w: the operations window telerad proposes):"
echo
echo "| sender | seconds (median) | images/s |"
echo "|---|---|---|"
for name in hub-storescu-1 hub-storescu-4 hub-telerad-1-w1 hub-telerad-1-w16 hub-telerad-4-w1 hub-telerad-4-w16 \
    hub-telerad-1-w1-jls hub-telerad-1-w16-jls hub-telerad-4-w16-jls; do
    m=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$RESULTS" | median)
    echo "| ${name#hub-} | $m | $(awk -v s="$SLICES" -v m="$m" 'BEGIN { if (m > 0) printf "%.0f", s / m }') |"
done
fi
