#!/usr/bin/env bash
# Routing benchmark, end to end against the real binary and DCMTK:
#
#   (a) complete -> assignment: STUDIES small studies (4 slices of 64x64) are
#       pushed one after another to `telerad serve` (quiet period 1 s, clock
#       started on a Wednesday at 03:00 Paris time, one general radiologist on
#       the night rota, whose workstation is a DCMTK storescp); for each, the
#       difference between the study's `completed_at` and its
#       `assignment.assigned_at` (GET /api/studies/{uid}, both from telerad's
#       own clock) is the routing delay. The quiet-period sweep and the
#       router both poll every 250 ms, so this is mostly polling.
#       The studies are spread over A_SERVERS fresh servers, since the phase
#       between the two 250 ms loops is set when a server starts.
#   (b) forwarding throughput: a SLICES-slice 512x512 CT is pushed to a fresh
#       telerad; the time from the assignment (the outbox jobs' created_at,
#       written right after the assignment commits) to the last job recorded
#       sent (sent_at, written once the workstation answered; both on
#       telerad's clock) is compared with DCMTK storescu (TCP_NODELAY=1,
#       --max-pdu 131072, +sd) sending the same files straight to a fresh
#       storescp, from its start to the same newest mtime. Both storescp
#       processes are started the same way. RUNS runs each, interleaved,
#       after one unrecorded warm-up of each; every run must deliver every
#       file or it counts as a failure, not as a figure.
#
# Usage:  bench/route.sh          (from anywhere; ~5 minutes after the build)
# Environment (defaults in brackets):
#   RUNS [5]           measured forwarding runs per sender
#   STUDIES [30]       small studies for the complete -> assignment delay
#   A_SERVERS [5]      servers the small studies are spread over
#   SLICES [300]       slices of the forwarded CT
#   WS_FORK [0]        1: the workstation storescp (telerad's destination)
#                      runs with --fork, so telerad's 2 parallel associations
#                      are served at once (storescu's direct storescp never
#                      forks: it has one association)
#   FORWARD_ASSOCIATIONS [unset: telerad's default]  [forwarding]
#                      associations_per_destination
#   DB_TMPFS [0]       1: telerad's SQLite database on a tmpfs mounted inside
#                      the working directory (needs root): its fsyncs then
#                      cost nothing, which shows what they cost (a what-if,
#                      not a way to run telerad)
#   CARGO_TARGET_DIR [/tmp/target-routebench]
#   BENCH_TMP [/tmp]   parent of the working directory (telerad-rbench-*)
#   PORT_BASE [22100]  ports PORT_BASE .. PORT_BASE+3 (22000-22999 here)
#
# Prints markdown (machine, tables) on stdout, progress on stderr.
# Exit status: 0 if every run delivered every file and every study was
# assigned, 1 otherwise.

set -euo pipefail

RUNS=${RUNS:-5}
STUDIES=${STUDIES:-30}
A_SERVERS=${A_SERVERS:-5}
SLICES=${SLICES:-300}
WS_FORK=${WS_FORK:-0}
FORWARD_ASSOCIATIONS=${FORWARD_ASSOCIATIONS:-}
DB_TMPFS=${DB_TMPFS:-0}
PDU=131072
PORT_BASE=${PORT_BASE:-22100}
TELERAD_DICOM_PORT=$PORT_BASE
TELERAD_HTTP_PORT=$((PORT_BASE + 1))
WS_PORT=$((PORT_BASE + 2))
DIRECT_PORT=$((PORT_BASE + 3))
# A Wednesday night in Paris (winter time): the radiologist is on duty.
CLOCK_START=2026-03-18T03:00:00+01:00
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-routebench}
BENCH_TMP=${BENCH_TMP:-/tmp}
# storescu and storescp read this: without it DCMTK leaves Nagle's
# algorithm on and each C-STORE may stall ~40 ms on delayed ACKs.
export TCP_NODELAY=1

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

require_tools storescu storescp cargo python3 curl jq ss

# The API gives times as RFC 3339 UTC strings ("2026-03-29T01:30:00.25Z");
# jq's fromdateiso8601 takes no fraction of a second, so it is added apart.
MS='def ms: . as $t | (($t | capture("\\.(?<f>[0-9]+)Z$")) // {f: ""}) as $c
    | (($t | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) * 1000) + (($c.f + "000")[0:3] | tonumber);'

[[ $RUNS -ge 1 && $STUDIES -ge 1 && $A_SERVERS -ge 1 ]] || die "RUNS, STUDIES and A_SERVERS must be at least 1"
require_free_ports "$TELERAD_DICOM_PORT" "$TELERAD_HTTP_PORT" "$WS_PORT" "$DIRECT_PORT"

WORK=$(mktemp -d "$BENCH_TMP/telerad-rbench-XXXXXX")
SERVER_PID=
WS_PID=
DB_MOUNT=
FORWARDS=$WORK/forwards.tsv
DELAYS=$WORK/delays.tsv
: >"$FORWARDS"
: >"$DELAYS"

cleanup() {
    stop_pid "$SERVER_PID"
    stop_pid "$WS_PID"
    [[ -z $DB_MOUNT ]] || umount "$DB_MOUNT" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binaries and studies -----------------------------------------------------

SRC_DESC="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
if ! git --no-optional-locks -C "$REPO" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null; then
    SRC_DESC+=" + uncommitted changes in the working tree"
fi
if [[ $DB_TMPFS == 1 ]]; then
    mkdir "$WORK/db"
    mount -t tmpfs -o size=512m tmpfs "$WORK/db" || die "cannot mount a tmpfs for DB_TMPFS=1 (root needed)"
    DB_MOUNT=$WORK/db
fi

log "building release binaries of $SRC_DESC in $CARGO_TARGET_DIR"
(cd "$REPO" && cargo build --release --quiet -p telerad -p telerad-fixtures)
TELERAD=$CARGO_TARGET_DIR/release/telerad
FIXTURES=$CARGO_TARGET_DIR/release/telerad-fixtures

log "generating a $SLICES-slice CT and $STUDIES small studies"
"$FIXTURES" generate --modality ct --slices "$SLICES" --out "$WORK/ct" >&2
mapfile -t CT_FILES < <(find "$WORK/ct" -type f | sort)
[[ ${#CT_FILES[@]} -eq $SLICES ]] || die "expected $SLICES generated files, found ${#CT_FILES[@]}"
CT_BYTES=$(du -cb "${CT_FILES[@]}" | tail -1 | cut -f1)
for ((i = 1; i <= STUDIES; i++)); do
    "$FIXTURES" generate --modality ct --slices 4 --rows 64 --columns 64 --out "$WORK/small/$i" >/dev/null
done

# The study UID of the files under $1 (the generator's study UID is in every
# file; dcmdump is DCMTK's).
study_uid_of() {
    dcmdump +P StudyInstanceUID "$(find "$1" -type f | head -1)" | sed -n 's/.*\[\(.*\)\].*/\1/p' | head -1
}

cat >"$WORK/telerad.toml" <<EOF
[dicom]
ae_title = "TELERAD"
bind = "127.0.0.1"
port = $TELERAD_DICOM_PORT
max_pdu_length = $PDU

[http]
bind = "127.0.0.1"
port = $TELERAD_HTTP_PORT

[storage]
data_dir = "$WORK/unused"

[studies]
default_quiet_period_secs = 1

[[sites]]
name = "bench"
ae_titles = ["TELERAD_SCU"]
allowed_networks = []
time_zone = "Europe/Paris"

[[radiologists]]
id = "dr-night"
name = "Dr Night"
subspecialties = ["general"]
sites = ["bench"]
max_open_studies = 1000
[radiologists.workstation]
ae_title = "WS"
host = "127.0.0.1"
port = $WS_PORT

[rota]
time_zone = "Europe/Paris"

[[rota.shifts]]
radiologist = "dr-night"
role = "primary"
subspecialty = "general"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

$([[ -n $FORWARD_ASSOCIATIONS ]] && printf '[forwarding]\nassociations_per_destination = %s\n' "$FORWARD_ASSOCIATIONS")

[sla]
stat = { acknowledge_secs = 86400, preliminary_secs = 86400 }
urgent = { acknowledge_secs = 86400, preliminary_secs = 86400 }
routine = { acknowledge_secs = 86400, preliminary_secs = 86400 }
EOF
"$TELERAD" check-config "$WORK/telerad.toml" >&2

# --- helpers ------------------------------------------------------------------

# start_storescp PORT DIR LOG [--fork]: sets WS_PID.
start_storescp() {
    local port=$1 dir=$2 logfile=$3
    shift 3
    mkdir -p "$dir"
    storescp --max-pdu "$PDU" -aet WS "$@" -od "$dir" "$port" >"$logfile" 2>&1 &
    WS_PID=$!
    wait_listening "$port" "$WS_PID" || die "storescp did not start (see $logfile)"
}

start_telerad() {
    local data=$1 tries=0 db=()
    [[ -n $DB_MOUNT ]] && db=(--database-url "sqlite://$DB_MOUNT/$(basename "$data").db?mode=rwc")
    "$TELERAD" serve --config "$WORK/telerad.toml" --data-dir "$data" --clock-start "$CLOCK_START" "${db[@]}" \
        >"$data.log" 2>&1 &
    SERVER_PID=$!
    until curl -fsS -o /dev/null "http://127.0.0.1:$TELERAD_HTTP_PORT/healthz" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null && ((++tries < 300)) || { tail -5 "$data.log" >&2; die "telerad did not start"; }
        sleep 0.05
    done
    wait_listening "$TELERAD_DICOM_PORT" "$SERVER_PID" || die "telerad does not listen for DICOM"
}

push_to_telerad() {
    "$TELERAD" push "$@" --to "TELERAD@127.0.0.1:$TELERAD_DICOM_PORT" >/dev/null 2>&1
}

files_in() { find "$1" -type f | wc -l; }

# Newest file modification time under $1, in seconds since the epoch.
newest_mtime() { find "$1" -type f -printf '%T@\n' | sort -n | tail -1; }
oldest_mtime() { find "$1" -type f -printf '%T@\n' | sort -n | head -1; }

# wait_files DIR COUNT TIMEOUT_S: 0 once DIR holds COUNT files.
wait_files() {
    local deadline=$((SECONDS + $3))
    while (($(files_in "$1") < $2)); do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# CPU ticks used so far by process $1 (utime + stime).
process_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# --- (a) complete -> assignment -----------------------------------------------

A_FAIL=0
per_server=$(((STUDIES + A_SERVERS - 1) / A_SERVERS))
for ((server = 1; server <= A_SERVERS; server++)); do
    data=$WORK/a-$server
    start_storescp "$WS_PORT" "$WORK/a-ws-$server" "$WORK/a-ws-$server.log"
    start_telerad "$data"
    first=$(((server - 1) * per_server + 1))
    last=$((server * per_server < STUDIES ? server * per_server : STUDIES))
    uids=()
    for ((i = first; i <= last; i++)); do
        push_to_telerad "$WORK/small/$i" || { log "FAILURE: push of small study $i"; A_FAIL=1; }
        uids+=("$(study_uid_of "$WORK/small/$i")")
    done
    for uid in "${uids[@]}"; do
        row=
        for ((try = 0; try < 100; try++)); do
            row=$(curl -fsS "http://127.0.0.1:$TELERAD_HTTP_PORT/api/studies/$uid" |
                jq -r "$MS"' select(.assignment != null and .completed_at != null) |
                    "\(.completed_at | ms)\t\(.assignment.assigned_at | ms)\t\(.assignment.state)"' 2>/dev/null) || true
            [[ -n $row ]] && break
            sleep 0.1
        done
        if [[ -z $row || $row != *assigned ]]; then
            log "FAILURE: study $uid was not assigned ($row)"
            A_FAIL=1
            continue
        fi
        printf '%s\t%s\n' "$server" "$row" >>"$DELAYS"
    done
    log "(a) server $server: $((last - first + 1)) studies, delays (ms): $(awk -F'\t' -v s="$server" '$1 == s { printf "%d ", $3 - $2 }' "$DELAYS")"
    stop_pid "$SERVER_PID"
    SERVER_PID=
    stop_pid "$WS_PID"
    WS_PID=
done

# --- (b) forwarding throughput ------------------------------------------------

# storescu_run RUN [record|warmup]
storescu_run() {
    local run=$1 mode=${2:-record} dir=$WORK/direct-$1 t0 t1 secs count ok=1 cpu
    sync
    start_storescp "$DIRECT_PORT" "$dir" "$dir.storescp.log"
    t0=$(date +%s.%N)
    # bash's time: "wall user sys" of storescu alone.
    cpu=$( { TIMEFORMAT='%R %U %S'; time storescu -aet STORESCU -aec WS --max-pdu "$PDU" +sd \
        127.0.0.1 "$DIRECT_PORT" "$WORK/ct" >"$dir.storescu.log" 2>&1; } 2>&1 ) || ok=0
    t1=$(newest_mtime "$dir")
    stop_pid "$WS_PID"
    WS_PID=
    count=$(files_in "$dir")
    [[ $count -eq $SLICES ]] || { ok=0; log "FAILURE: storescu run $run: $count of $SLICES files"; tail -5 "$dir.storescu.log" >&2; }
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    log "storescu run $run: $secs s to the last file ($count/$SLICES), storescu wall/user/sys $cpu"
    [[ $mode == record ]] && printf 'storescu\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$secs" "$(echo "$cpu" | awk '{ print $2 + $3 }')" "$count" "$ok" "-" >>"$FORWARDS"
    set_aside "$dir"
}

# telerad_run RUN [record|warmup]
telerad_run() {
    local run=$1 mode=${2:-record} data=$WORK/b-$1 ws=$WORK/ws-$1 count ok=1 p0 p1 jobs enq done_at t1 secs first gaps fork=()
    [[ $WS_FORK == 1 ]] && fork=(--fork)
    sync
    start_storescp "$WS_PORT" "$ws" "$ws.storescp.log" "${fork[@]}"
    start_telerad "$data"
    push_to_telerad --associations 1 "$WORK/ct" || { ok=0; log "FAILURE: push to telerad, run $run"; }
    # The receive is over: what telerad spends from here is routing and
    # forwarding (and its idle loops).
    p0=$(process_ticks "$SERVER_PID")
    wait_files "$ws" "$SLICES" 120 || { ok=0; log "FAILURE: the workstation got $(files_in "$ws") of $SLICES files"; }
    sleep 0.3 # the last C-STORE-RSP and record_sent
    p1=$(process_ticks "$SERVER_PID")
    jobs=$(curl -fsS "http://127.0.0.1:$TELERAD_HTTP_PORT/api/forwards?limit=1000" | jq '.items')
    stop_pid "$SERVER_PID"
    SERVER_PID=
    stop_pid "$WS_PID"
    WS_PID=
    count=$(files_in "$ws")
    [[ $count -eq $SLICES ]] || ok=0
    [[ $(jq '[.[] | select(.state == "sent")] | length' <<<"$jobs") -eq $SLICES ]] ||
        { ok=0; log "FAILURE: telerad run $run: $(jq -c '[.[].state] | group_by(.) | map({(.[0]): length}) | add' <<<"$jobs") jobs"; }
    # created_at and sent_at are on telerad's clock, which --clock-start
    # sets months away from the file times: the time is taken between them
    # (from the first enqueue to the last job recorded sent, a few ms after
    # its file was written), and the first file's delay from the spread of
    # the file times.
    enq=$(jq "$MS"' [.[].created_at | ms] | min / 1000' <<<"$jobs")
    done_at=$(jq "$MS"' [.[].sent_at | ms] | max / 1000' <<<"$jobs")
    t1=$(newest_mtime "$ws")
    secs=$(awk -v a="$enq" -v b="$done_at" 'BEGIN { printf "%.3f", b - a }')
    first=$(awk -v s="$secs" -v t1="$t1" -v t0="$(oldest_mtime "$ws")" 'BEGIN { printf "%.3f", s - (t1 - t0) }')
    # Gaps between consecutive sent_at (ms): median, and the largest ones
    # (batch boundaries: claim, association set-up).
    gaps=$(jq -r "$MS"' [.[].sent_at | ms] | sort | [range(1; length) as $i | .[$i] - .[$i - 1]] | sort |
        "\(.[length / 2 | floor]) \(.[-1]) \(.[-2]) \(.[-3]) \(map(select(. >= 5)) | length)"' <<<"$jobs")
    log "telerad  run $run: $secs s from enqueue to the last job sent ($count/$SLICES files), first file after $first s, CPU $(((p1 - p0) * 1000 / CLK_TCK)) ms, sent_at gaps ms (median max 2nd 3rd n>=5ms) $gaps"
    [[ $mode == record ]] && printf 'telerad\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$secs" \
        "$(awk -v t="$((p1 - p0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')" "$count" "$ok" \
        "$first ${gaps// /,}" >>"$FORWARDS"
    set_aside "$data" "$ws"
}

log "(b) warm-up"
storescu_run 0 warmup
telerad_run 0 warmup
for ((run = 1; run <= RUNS; run++)); do
    storescu_run "$run"
    telerad_run "$run"
done

# --- report ---------------------------------------------------------------------

fsync_ms=$(python3 - "$WORK" <<'EOF'
import os, statistics, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
times = []
for _ in range(200):
    os.write(fd, b"x" * 8192)
    t = time.perf_counter()
    os.fsync(fd)
    times.append((time.perf_counter() - t) * 1000)
os.close(fd)
os.unlink(path)
print(f"{statistics.median(times):.2f}")
EOF
)

echo "## Machine"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- CPU: $(nproc) cores online, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- memory: $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)"
echo "- kernel: $(uname -sr)"
echo "- file system of the working directory: $(findmnt -no FSTYPE,SOURCE -T "$WORK" | tr -s ' '); median fsync of an 8 kB append: $fsync_ms ms"
echo "- DCMTK: $(storescu --version | head -1 | sed 's/^\$dcmtk: //; s/ \$$//')"
echo "- telerad: $SRC_DESC, $(rustc --version)"
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$DELAYS" "$FORWARDS" "$SLICES" "$CT_BYTES" "$STUDIES" "$WS_FORK" "$FORWARD_ASSOCIATIONS" "$DB_TMPFS" <<'EOF'
import math
import statistics
import sys

delays_file, forwards_file = sys.argv[1], sys.argv[2]
slices, ct_bytes, studies, ws_fork = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
assoc, db_tmpfs = sys.argv[7], sys.argv[8] == "1"


def pct(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


delays = []
per_server = {}
for line in open(delays_file):
    server, completed, assigned, _state = line.rstrip("\n").split("\t")
    d = int(assigned) - int(completed)
    delays.append(d)
    per_server.setdefault(server, []).append(d)
print("## Complete → assignment\n")
print(f"{len(delays)} of {studies} small studies assigned (4 slices of 64×64 each, pushed one after another, "
      f"over {len(per_server)} fresh servers). Delay = `assignment.assigned_at − completed_at`, "
      "both from telerad's clock. The quiet-period sweep marks a study complete every 250 ms and the "
      "router looks for events every 250 ms (`service::TICK`): the delay is mostly the wait for "
      "the router's next tick, 0–250 ms, plus the decision itself.\n")
if delays:
    print("| studies | median | p99 | min | max |")
    print("|---|---|---|---|---|")
    print(f"| {len(delays)} | {statistics.median(delays):.0f} ms | {pct(delays, 99)} ms | {min(delays)} ms | {max(delays)} ms |")
    print("\nPer server (the phase between the two 250 ms loops is fixed at start-up): " + "; ".join(
        f"server {s}: median {statistics.median(v):.0f} ms ({min(v)}–{max(v)})" for s, v in sorted(per_server.items())))

runs = {}
for line in open(forwards_file):
    sender, run, secs, cpu, count, ok, extra = line.rstrip("\n").split("\t")
    runs.setdefault(sender, []).append(dict(secs=float(secs), cpu=float(cpu), count=int(count), ok=ok == "1", extra=extra))
print(f"\n## Forwarding {slices} CT slices ({ct_bytes / 1e6:.1f} MB) to a DCMTK storescp\n")
print("telerad: from the assignment (the forward jobs' `created_at`) to the last job recorded sent "
      "(`sent_at`, written once the workstation's storescp answered; both on telerad's clock). storescu: from its start (`storescu +sd --max-pdu 131072`, TCP_NODELAY=1, "
      "one association) to the newest file written by a fresh storescp. "
      + ("The workstation storescp runs with --fork (telerad opens 2 associations per destination)."
         if ws_fork else "Both storescp run without --fork, as started for the routing test: one association at a time.")
      + (f" telerad's [forwarding] associations_per_destination = {assoc}." if assoc else "")
      + (" telerad's SQLite database on a tmpfs (what-if: fsyncs cost nothing)." if db_tmpfs else "")
      + "\n")
print("| sender | good runs | seconds, median (min–max) | images/s | MB/s | sender CPU s (median) | telerad ÷ storescu | target |")
print("|---|---|---|---|---|---|---|---|")
summary = {}
for sender in ("storescu", "telerad"):
    rs = runs.get(sender, [])
    good = [r for r in rs if r["ok"]]
    if not good:
        print(f"| {sender} | 0/{len(rs)} | – | – | – | – | | |")
        continue
    secs = [r["secs"] for r in good]
    med = statistics.median(secs)
    summary[sender] = med
    ratio = target = ""
    if sender == "telerad" and "storescu" in summary:
        x = summary["storescu"] / med
        ratio = f"**{x:.2f}×**"
        target = "≥ 0.9×: " + ("met" if x >= 0.9 else "not met")
    print(f"| {sender} | {len(good)}/{len(rs)} | {med:.2f} ({min(secs):.2f}–{max(secs):.2f}) | {slices / med:.0f} "
          f"| {ct_bytes / 1e6 / med:.0f} | {statistics.median(r['cpu'] for r in good):.2f} | {ratio} | {target} |")
pairs = [s["secs"] / t["secs"] for s, t in zip(runs.get("storescu", []), runs.get("telerad", []))
         if s["ok"] and t["ok"]]
print("\nThe ratio is images/s of telerad over images/s of storescu (medians). telerad's CPU is the whole "
      "server process between the end of the push and the last file (routing, forwarding, idle loops).")
if pairs:
    # Each storescu run is followed by a telerad run: on a machine whose speed drifts, the ratio
    # within each pair is steadier than the ratio of the two medians.
    print(f"\nRun by run (storescu run k ÷ telerad run k, interleaved pairs): median "
          f"**{statistics.median(pairs):.2f}×**, range {min(pairs):.2f}–{max(pairs):.2f}, "
          f"{sum(p >= 0.9 for p in pairs)} of {len(pairs)} pairs ≥ 0.9×.")
print("\n### Every run\n")
for sender, rs in sorted(runs.items()):
    for i, r in enumerate(rs, 1):
        extra = ""
        if sender == "telerad" and r["extra"] != "-":
            first, gaps = r["extra"].split(" ", 1)
            g = gaps.split(",")
            extra = (f"; first file {float(first) * 1000:.0f} ms after the enqueue; gaps between "
                     f"consecutive sent_at: median {g[0]} ms, largest {g[1]}, {g[2]}, {g[3]} ms, {g[4]} gaps ≥ 5 ms")
        print(f"- {sender} run {i}: {r['secs']:.2f} s, {r['count']}/{slices} files, CPU {r['cpu']:.2f} s"
              + ("" if r["ok"] else " FAILED") + extra)
EOF

status=0
[[ $A_FAIL -eq 0 ]] || status=1
awk -F'\t' '$6 != 1 { bad = 1 } END { exit bad }' "$FORWARDS" || status=1
exit $status
