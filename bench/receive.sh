#!/usr/bin/env bash
# Receiver benchmark: telerad's C-STORE SCP against DCMTK's storescp.
#
# One run of this script, so that both receivers are measured on the same
# machine under the same conditions:
#   1. builds telerad and telerad-fixtures (release), generates one 300-slice
#      synthetic CT (512x512, 16-bit, ~525 kB per slice);
#   2. measures how many files per second the disk can make durable the way
#      telerad does (bench/fsync_probe.py), before and after step 3: the
#      bound of any receiver that fsyncs before answering success, which
#      storescp does not;
#   3. pushes that CT with DCMTK storescu to storescp and to telerad, over 1
#      association and over 4 (four storescu processes in parallel, a quarter
#      of the files each), RUNS times each, interleaved so that background
#      noise hits both receivers alike; every run starts a fresh receiver on
#      a fresh directory and must deliver every instance, or it is counted
#      as a failure and not as a figure;
#   4. reads each receiver's peak RSS (bench/rss_sampler.py);
#   5. pushes ~1 GB (2000 slices) to telerad over 8 associations and reports
#      its peak RSS and images/s;
#   6. prints the machine, the fsync limit and a markdown table of medians.
#
# Usage:  bench/receive.sh     (from anywhere; a few minutes once built, the
#                               first release build takes longer)
# Environment (defaults in brackets):
#   RUNS [5]            measured runs per receiver and association count
#   SLICES [300]        slices of the CT pushed in the comparison
#   BIG_SLICES [2000]   slices of the ~1 GB study for the memory case
#   BIG_RUNS [3]        runs of the memory case
#   CARGO_TARGET_DIR [/tmp/target-bench]  where the release binaries are built
#   BENCH_REV [unset]   build this git revision (e.g. HEAD), exported with
#                       `git archive`, instead of the working tree: work in
#                       progress in a shared checkout is then not measured
#   BENCH_TMP [/tmp]    parent of the working directory; the data directories
#                       live here, so this chooses the disk being measured
#   PORT_BASE [21100]   ports PORT_BASE .. PORT_BASE+2 are used
#   FSYNC_PROBE_FILES [300]  files per pattern in the fsync probe
#
# Exit status: 0 if every run delivered every instance, 1 otherwise.

set -euo pipefail

RUNS=${RUNS:-5}
SLICES=${SLICES:-300}
BIG_SLICES=${BIG_SLICES:-2000}
BIG_RUNS=${BIG_RUNS:-3}
BIG_ASSOCIATIONS=8
ASSOCIATION_COUNTS=(1 4)
PDU=131072
PORT_BASE=${PORT_BASE:-21100}
STORESCP_PORT=$PORT_BASE
TELERAD_DICOM_PORT=$((PORT_BASE + 1))
TELERAD_HTTP_PORT=$((PORT_BASE + 2))
FSYNC_PROBE_FILES=${FSYNC_PROBE_FILES:-300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-bench}
BENCH_TMP=${BENCH_TMP:-/tmp}

# DCMTK's storescu leaves Nagle's algorithm on unless told otherwise; with
# delayed ACKs on the receiving side every C-STORE then stalls ~40 ms. Both
# storescu and storescp read this variable, so it is exported for all.
export TCP_NODELAY=1

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

# --- prerequisites ----------------------------------------------------------

require_tools storescu storescp cargo python3 curl jq ss
[[ $RUNS -ge 1 ]] || die "RUNS must be at least 1"
require_free_ports "$STORESCP_PORT" "$TELERAD_DICOM_PORT" "$TELERAD_HTTP_PORT"

WORK=$(mktemp -d "$BENCH_TMP/telerad-bench-XXXXXX")
RESULTS=$WORK/results.tsv
SERVER_PID=
SAMPLER_PID=

# Whatever happens, stop what we started (by PID) and remove the data.
cleanup() {
    stop_pid "$SAMPLER_PID"
    stop_pid "$SERVER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. binaries and the study ----------------------------------------------

if [[ -n ${BENCH_REV:-} ]]; then
    SRC=$WORK/src
    mkdir "$SRC"
    # Resolved once: HEAD may move while we build.
    rev=$(git -C "$REPO" rev-parse --verify "$BENCH_REV^{commit}") || die "unknown revision $BENCH_REV"
    git -C "$REPO" archive "$rev" | tar -x -C "$SRC"
    SRC_DESC="${rev:0:7} (git archive of $BENCH_REV)"
else
    SRC=$REPO
    SRC_DESC="the working tree (not a git checkout)"
    # Say whether the binary measured is the commit or the commit plus
    # uncommitted changes (read-only git commands).
    if head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null); then
        SRC_DESC=$head
        if ! git --no-optional-locks -C "$REPO" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md' ||
            [[ -n $(git -C "$REPO" ls-files --others --exclude-standard -- . ':!bench' ':!BENCHMARKS.md') ]]; then
            SRC_DESC+=" + uncommitted changes in the working tree"
        fi
    fi
fi
log "building release binaries of $SRC_DESC in $CARGO_TARGET_DIR"
(cd "$SRC" && cargo build --release --quiet -p telerad -p telerad-fixtures)
TELERAD=$CARGO_TARGET_DIR/release/telerad
FIXTURES=$CARGO_TARGET_DIR/release/telerad-fixtures

log "generating a $SLICES-slice CT"
"$FIXTURES" generate --modality ct --slices "$SLICES" --out "$WORK/ct" >&2
mapfile -t CT_FILES < <(find "$WORK/ct" -type f | sort)
[[ ${#CT_FILES[@]} -eq $SLICES ]] || die "expected $SLICES generated files, found ${#CT_FILES[@]}"
CT_BYTES=$(du -cb "${CT_FILES[@]}" | tail -1 | cut -f1)

# telerad's configuration: the calling AE titles storescu uses must belong to
# a site. The quiet period is the default one.
cat >"$WORK/telerad.toml" <<EOF
[dicom]
ae_title = "TELERAD"
port = $TELERAD_DICOM_PORT
max_pdu_length = $PDU

[http]
port = $TELERAD_HTTP_PORT

[storage]
data_dir = "$WORK/telerad-unused"

[studies]
default_quiet_period_secs = 20

[[sites]]
name = "bench"
ae_titles = ["STORESCU", "BENCH1", "BENCH2", "BENCH3", "BENCH4", "BENCH5", "BENCH6", "BENCH7", "BENCH8"]
allowed_networks = []
time_zone = "Europe/Paris"
EOF
"$TELERAD" check-config "$WORK/telerad.toml" >&2

# --- helpers ----------------------------------------------------------------

# push CALLED_AE PORT ASSOCIATIONS LOG_PREFIX FILE...
# Runs ASSOCIATIONS storescu processes at once, each with every
# ASSOCIATIONS-th file, and prints the wall time in seconds from the start of
# the first to the end of the last. Returns 1 if any storescu failed.
push() {
    local called=$1 port=$2 associations=$3 prefix=$4
    shift 4
    local files=("$@") pids=() k i started ended failed=0
    started=$(date +%s.%N)
    for ((k = 0; k < associations; k++)); do
        local share=()
        for ((i = k; i < ${#files[@]}; i += associations)); do
            share+=("${files[i]}")
        done
        storescu -aet "BENCH$((k + 1))" -aec "$called" --max-pdu "$PDU" \
            127.0.0.1 "$port" "${share[@]}" >"$prefix.storescu$((k + 1)).log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    ended=$(date +%s.%N)
    awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.3f\n", b - a }'
    return $failed
}

# Starts the RSS sampler on process $1, writing to file $2 (see
# bench/rss_sampler.py), and returns once it is watching.
start_sampler() {
    local tries=0
    rm -f "$2.ready"
    python3 "$BENCH_DIR/rss_sampler.py" "$1" 20 "$2.ready" >"$2" &
    SAMPLER_PID=$!
    until [[ -e $2.ready ]]; do
        ((++tries < 200)) || die "the RSS sampler did not start"
        sleep 0.01
    done
}

# Stops it; its output is "root_hwm child_hwm tree_peak children" in kB.
stop_sampler() {
    kill -TERM "$SAMPLER_PID"
    wait "$SAMPLER_PID" || true
    SAMPLER_PID=
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=
}

# CPU time used so far by process $1 and the children it has reaped, in
# clock ticks (utime + stime + cutime + cstime, /proc/PID/stat).
process_ticks() {
    awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"
}

# "busy total" clock ticks of the whole machine, all cores (/proc/stat):
# how loaded the 2 cores were during a run, by us and by anyone else.
machine_ticks() {
    awk '/^cpu / { total = 0; for (i = 2; i <= NF; i++) total += $i; print total - $5 - $6, total }' /proc/stat
}
CLK_TCK=$(getconf CLK_TCK)

# measured_push CALLED_AE PORT ASSOCIATIONS LOG_PREFIX FILE...
# push, plus the receiver's (SERVER_PID) CPU seconds and the machine's busy
# percentage over the same interval. Prints "seconds cpu_seconds busy_pct".
measured_push() {
    local p0 p1 m0 m1 secs status=0
    p0=$(process_ticks "$SERVER_PID")
    m0=$(machine_ticks)
    secs=$(push "$@") || status=1
    # A receiver that died during the push has no CPU figure left to read;
    # the run fails on its instance count anyway.
    p1=$(process_ticks "$SERVER_PID" 2>/dev/null) || p1=$p0
    m1=$(machine_ticks)
    awk -v s="$secs" -v p0="$p0" -v p1="$p1" -v hz="$CLK_TCK" -v m0="$m0" -v m1="$m1" 'BEGIN {
        split(m0, a, " "); split(m1, b, " ")
        printf "%s %.2f %.0f\n", s, (p1 - p0) / hz, 100 * (b[1] - a[1]) / (b[2] - a[2]) }'
    return $status
}

# record RECEIVER ASSOCIATIONS RUN "SECONDS CPU BUSY" IMAGES BYTES SAMPLER_FILE OK
record() {
    local rss
    rss=$(tr ' ' '\t' <"$7")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4// /$'\t'}" "$5" "$6" "$rss" "$8" >>"$RESULTS"
}

# Shows the end of a failed run's logs, which are removed with $WORK.
show_logs() {
    local f
    for f in "$1".*log; do
        [[ -s $f ]] || continue
        log "--- tail of $f"
        tail -5 "$f" >&2
    done
}

# run_storescp ASSOCIATIONS RUN [record|warmup]
# storescp serves one association at a time; with several senders, --fork
# gives each association its own child process, as a site would run it.
run_storescp() {
    local associations=$1 run=$2 mode=${3:-record}
    local out=$WORK/storescp-$associations-$run prefix=$WORK/storescp-$associations-$run
    local args=(--max-pdu "$PDU" -aet STORESCP -od "$out") secs ok=1 count
    ((associations > 1)) && args+=(--fork)
    mkdir -p "$out"
    sync # the previous run's data is not written back during this one
    storescp "${args[@]}" "$STORESCP_PORT" >"$prefix.server.log" 2>&1 &
    SERVER_PID=$!
    wait_listening "$STORESCP_PORT" "$SERVER_PID" || { show_logs "$prefix"; die "storescp did not start"; }
    start_sampler "$SERVER_PID" "$prefix.rss"
    secs=$(measured_push STORESCP "$STORESCP_PORT" "$associations" "$prefix" "${CT_FILES[@]}") || ok=0
    stop_sampler
    stop_server
    count=$(find "$out" -type f | wc -l)
    if [[ $count -ne $SLICES ]]; then
        ok=0
        log "FAILURE: storescp, $associations association(s), run $run: $count of $SLICES instances arrived"
        show_logs "$prefix"
    fi
    [[ $mode == record ]] && record storescp "$associations" "$run" "$secs" "$SLICES" "$CT_BYTES" "$prefix.rss" "$ok"
    log "storescp  x$associations run $run: (s, CPU s, busy %) $secs, $count/$SLICES files, RSS (root child tree n) $(cat "$prefix.rss")"
    set_aside "$out"
}

# Counts what telerad stored: files under DATA/studies, and the instance
# count its own API reports. Prints "files api_count".
telerad_counts() {
    local data=$1 files api token
    files=$(find "$data/studies" -type f -name '*.dcm' | wc -l)
    # The API answers signed-in callers only: the first administrator's
    # token, made after the measured push.
    token=$("$TELERAD" token create admin --name bench --config "$WORK/telerad.toml" --data-dir "$data")
    api=$(curl -fsS -H "authorization: Bearer $token" "http://127.0.0.1:$TELERAD_HTTP_PORT/api/studies?limit=1000" |
        jq '[.items[].instance_count] | add // 0')
    echo "$files $api"
}

start_telerad() {
    local data=$1 prefix=$2 tries=0
    "$TELERAD" serve --config "$WORK/telerad.toml" --data-dir "$data" >"$prefix.server.log" 2>&1 &
    SERVER_PID=$!
    until curl -fsS -o /dev/null "http://127.0.0.1:$TELERAD_HTTP_PORT/healthz" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null && ((++tries < 300)) || { show_logs "$prefix"; die "telerad did not start"; }
        sleep 0.05
    done
    wait_listening "$TELERAD_DICOM_PORT" "$SERVER_PID" || { show_logs "$prefix"; die "telerad does not listen for DICOM"; }
}

# run_telerad ASSOCIATIONS RUN [record|warmup|big]
# A fresh data directory (and so a fresh SQLite database) every run.
run_telerad() {
    local associations=$1 run=$2 mode=${3:-record}
    local data=$WORK/telerad-$associations-$run prefix=$WORK/telerad-$associations-$run
    local files=("${CT_FILES[@]}") expected=$SLICES bytes=$CT_BYTES name=telerad secs ok=1 counts
    if [[ $mode == big ]]; then
        files=("${BIG_FILES[@]}") expected=$BIG_SLICES bytes=$BIG_BYTES name=telerad-1GB
    fi
    sync
    start_telerad "$data" "$prefix"
    start_sampler "$SERVER_PID" "$prefix.rss"
    secs=$(measured_push TELERAD "$TELERAD_DICOM_PORT" "$associations" "$prefix" "${files[@]}") || ok=0
    stop_sampler
    counts=$(telerad_counts "$data") || counts="? ?"
    stop_server
    if [[ $counts != "$expected $expected" ]]; then
        ok=0
        log "FAILURE: telerad, $associations association(s), run $run: files, API count = $counts, expected $expected"
        show_logs "$prefix"
    fi
    [[ $mode != warmup ]] && record "$name" "$associations" "$run" "$secs" "$expected" "$bytes" "$prefix.rss" "$ok"
    log "$name x$associations run $run: (s, CPU s, busy %) $secs, files/API $counts of $expected, RSS (root child tree n) $(cat "$prefix.rss")"
    set_aside "$data"
}

# --- 2. the machine, and its fsync limit -----------------------------------

machine_facts() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- CPU: $(nproc) cores online, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "- memory: $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)"
    echo "- kernel: $(uname -sr)"
    echo "- data directory's file system: $(findmnt -no FSTYPE,SOURCE,OPTIONS -T "$WORK" | tr -s ' ')"
    # An ext4 without a journal makes fsync cheaper than the usual one with
    # (no journal commit), and directory fsyncs less meaningful: say which.
    local source
    source=$(findmnt -no SOURCE -T "$WORK")
    if [[ $(findmnt -no FSTYPE -T "$WORK") == ext4 ]]; then
        if compgen -G "/proc/fs/jbd2/$(basename "$source")-*" >/dev/null; then
            echo "- ext4 journal: yes"
        else
            echo "- ext4 journal: **none** (no /proc/fs/jbd2/$(basename "$source")-*)"
        fi
    fi
    echo "- DCMTK: $(storescu --version | head -1 | sed 's/^\$dcmtk: //; s/ \$$//')"
    echo "- telerad: $SRC_DESC, $(rustc --version)"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}
MACHINE=$(machine_facts)

# Measured before and after the comparison: the disk is shared with whatever
# else runs on the machine, and its fsync latency moves with their writes.
fsync_probe() {
    log "measuring the fsync limit of $(findmnt -no TARGET -T "$WORK") ($FSYNC_PROBE_FILES files of 512 kB per pattern)"
    python3 "$BENCH_DIR/fsync_probe.py" "$WORK" "$FSYNC_PROBE_FILES" 512 4
}
FSYNC_BEFORE=$(fsync_probe)
log "fsync probe:"$'\n'"$FSYNC_BEFORE"

# --- 3 and 4. the comparison ------------------------------------------------

# One unrecorded run of each receiver: binaries and the study into the page
# cache, SQLite's first-run costs out of the figures.
log "warm-up"
run_storescp 1 0 warmup
run_telerad 1 0 warmup

for ((run = 1; run <= RUNS; run++)); do
    for associations in "${ASSOCIATION_COUNTS[@]}"; do
        run_storescp "$associations" "$run"
        run_telerad "$associations" "$run"
    done
done

FSYNC_AFTER=$(fsync_probe)
log "fsync probe:"$'\n'"$FSYNC_AFTER"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 5. ~1 GB over 8 associations, telerad only ------------------------------

log "generating a $BIG_SLICES-slice CT for the memory case"
"$FIXTURES" generate --modality ct --slices "$BIG_SLICES" --out "$WORK/big" >&2
mapfile -t BIG_FILES < <(find "$WORK/big" -type f | sort)
[[ ${#BIG_FILES[@]} -eq $BIG_SLICES ]] || die "expected $BIG_SLICES generated files, found ${#BIG_FILES[@]}"
BIG_BYTES=$(du -cb "${BIG_FILES[@]}" | tail -1 | cut -f1)
for ((run = 1; run <= BIG_RUNS; run++)); do
    run_telerad "$BIG_ASSOCIATIONS" "$run" big
done

# --- 6. report --------------------------------------------------------------

echo
echo "## Machine"
echo
echo "$MACHINE"
echo "- load average after the comparison: $LOAD_AFTER"
echo
echo "## fsync limit of the data directory's disk"
echo
echo "512 kB files made durable per second (bench/fsync_probe.py), one writer unless"
echo "stated, before and after the comparison runs:"
echo
echo "| pattern | fsyncs per file | files/s before | ms per file | files/s after | ms per file |"
echo "|---|---|---|---|---|---|"
paste <(echo "$FSYNC_BEFORE") <(echo "$FSYNC_AFTER") | awk -F'\t' '{
    n = ($1 == "file") ? 1 : ($1 == "file+dir") ? 2 : 3
    printf "| %s | %d | %s | %s | %s | %s |\n", $1, n, $2, $3, $5, $6 }'
echo
python3 - "$RESULTS" "$SLICES" "$BIG_SLICES" <<'EOF'
import statistics
import sys

results, slices, big_slices = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = {}
for line in open(results):
    (recv, assoc, run, secs, cpu, busy, images, nbytes,
     root_hwm, child_hwm, tree, kids, ok) = line.rstrip("\n").split("\t")
    runs.setdefault((recv, int(assoc)), []).append(dict(
        secs=float(secs), cpu=float(cpu), busy=float(busy), images=int(images),
        bytes=int(nbytes), root_hwm=int(root_hwm), child_hwm=int(child_hwm),
        tree=int(tree), kids=int(kids), ok=ok == "1"))
TARGETS = {1: 0.8, 4: 1.0}  # telerad / storescp, images/s, per association count


def mb(kb):
    """VmHWM and VmRSS are in kB of 1024 bytes; MB here are 10^6 bytes."""
    return f"{kb * 1024 / 1e6:.0f} MB"


def summary(key):
    """Medians over the runs that delivered every instance."""
    good = [r for r in runs.get(key, []) if r["ok"]]
    if not good:
        return None
    ips = [r["images"] / r["secs"] for r in good]
    med = lambda f: statistics.median(f(r) for r in good)
    return dict(
        n=len(good), total=len(runs[key]),
        ips=statistics.median(ips), lo=min(ips), hi=max(ips),
        mbs=med(lambda r: r["bytes"] / 1e6 / r["secs"]),
        cpu_ms=med(lambda r: 1000 * r["cpu"] / r["images"]),
        busy=med(lambda r: r["busy"]),
        root=med(lambda r: r["root_hwm"]), root_max=max(r["root_hwm"] for r in good),
        child=max(r["child_hwm"] for r in good),
        tree=med(lambda r: r["tree"]), tree_max=max(r["tree"] for r in good),
        kids=max(r["kids"] for r in good))


print(f"## Receiving {slices} CT slices: medians\n")
print("| receiver | associations | good runs | images/s (min–max) | MB/s | peak RSS "
      "| receiver CPU ms/image | machine busy | telerad ÷ storescp | target |")
print("|---|---|---|---|---|---|---|---|---|---|")
for assoc in sorted({a for (n, a) in runs if n in ("storescp", "telerad")}):
    base = summary(("storescp", assoc))
    for name in ("storescp", "telerad"):
        r = summary((name, assoc))
        if r is None:
            print(f"| {name} | {assoc} | 0/{len(runs.get((name, assoc), []))} | – | – | – | – | – | | |")
            continue
        forked = name == "storescp" and assoc > 1
        rss = f"{mb(r['tree'])} ¹" if forked else mb(r["root"])
        cpu = f"{r['cpu_ms']:.2f}" + (" ²" if forked else "")
        ratio = target = ""
        if name == "telerad" and base is not None:
            x = r["ips"] / base["ips"]
            ratio = f"**{x:.2f}×**"
            target = f"≥ {TARGETS.get(assoc, 1.0)}×: " + ("met" if x >= TARGETS.get(assoc, 1.0) else "not met")
        print(f"| {name} | {assoc} | {r['n']}/{r['total']} | {r['ips']:.0f} ({r['lo']:.0f}–{r['hi']:.0f}) "
              f"| {r['mbs']:.0f} | {rss} | {cpu} | {r['busy']:.0f} % | {ratio} | {target} |")
print()
for assoc in sorted(a for (n, a) in runs if n == "storescp" and a > 1):
    r = summary(("storescp", assoc))
    if r:
        print(f"¹ storescp --fork, {assoc} associations: sum of VmRSS over the parent and its children, "
              f"sampled every 20 ms (median {mb(r['tree'])}, max {mb(r['tree_max'])}); the parent's "
              f"VmHWM is {mb(r['root'])}, the largest child VmHWM seen {mb(r['child'])} "
              f"({r['kids']} children).  ")
        print(f"² storescp --fork: the parent's CPU plus that of the children it had reaped when "
              f"the last storescu ended; may miss a child still exiting.")
print()
print("Peak RSS is the median over the runs of the receiver's VmHWM (exact, from the kernel); "
      "max over the runs:", ", ".join(
          f"{n} x{a} {mb(summary((n, a))['root_max'])}"
          for (n, a) in sorted(runs) if summary((n, a)) and not (n == "storescp" and a > 1)
          and n != "telerad-1GB") + ".")

big = summary(("telerad-1GB", 8))
print(f"\n## telerad receiving ~1 GB ({big_slices} slices) over 8 associations\n")
if big:
    gb = runs[("telerad-1GB", 8)][0]["bytes"] / 1e9
    verdict = "met" if big["root_max"] * 1024 < 150e6 else "not met"
    print(f"- {gb:.2f} GB per run, {big['n']}/{big['total']} good runs")
    print(f"- images/s: median {big['ips']:.0f} ({big['lo']:.0f}–{big['hi']:.0f}), "
          f"{big['mbs']:.0f} MB/s; telerad CPU {big['cpu_ms']:.2f} ms/image; machine busy {big['busy']:.0f} %")
    print(f"- peak RSS (VmHWM): median {mb(big['root'])}, max {mb(big['root_max'])}; "
          f"target < 150 MB (max of the runs): {verdict}")
else:
    print("- no good run")

print("\n## Every run: seconds (receiver CPU seconds, machine busy %)\n")
for key in sorted(runs):
    each = ", ".join(f"{r['secs']:.2f} ({r['cpu']:.2f}, {r['busy']:.0f} %)"
                     + ("" if r["ok"] else " FAILED") for r in runs[key])
    print(f"- {key[0]} x{key[1]}: {each}")
EOF

if awk -F'\t' '$13 != 1 { bad = 1 } END { exit !bad }' "$RESULTS"; then
    log "some runs did not deliver every instance: they are excluded from the figures"
    exit 1
fi
