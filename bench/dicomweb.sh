#!/usr/bin/env bash
# DICOMweb benchmark: telerad's WADO-RS against Orthanc's DICOMweb plugin,
# the same files, in one run.
#
#   1. builds telerad and telerad-fixtures (release) and generates one
#      SLICES-slice synthetic CT (512x512, 16-bit, uncompressed);
#   2. starts telerad (SQLite, fresh data folder) and Orthanc (Debian's
#      `orthanc` and `orthanc-dicomweb`, default DICOMweb settings, fresh
#      storage), and pushes the CT to each with DCMTK storescu; waits until
#      telerad has the study complete and its first frames rendered ahead
#      (what a radiologist opening it finds);
#   3. ROUNDS times, alternating the servers so that noise hits both alike:
#      - `/metadata` of the series (DICOM JSON of every instance), one
#        request, timed by curl;
#      - every instance's frame 1 as application/octet-stream, one request
#        after the other over one kept-alive connection, timed whole;
#      - one rendered frame (JPEG, the middle slice), one request: the wait
#        for a viewer's first picture;
#      - every instance rendered as JPEG, one connection, timed whole;
#      - every instance rendered at a window asked for the first time
#        (`window=C,80,linear`, C new at each round): what dragging the
#        window over a stack costs once its slices are decoded;
#   4. prints the machine and a markdown table of medians, with the ratio
#      Orthanc ÷ telerad (above 1: telerad is faster).
#
# Usage:  bench/dicomweb.sh
# Environment (defaults in brackets):
#   ROUNDS [7]        measured rounds per server (after one warm-up round)
#   SLICES [300]      slices of the CT
#   CARGO_TARGET_DIR [/tmp/target-bench]
#   BENCH_TMP [/tmp]  parent of the working directory
#   PORT_BASE [21300] ports PORT_BASE .. PORT_BASE+3 are used
#
# Exit status: 0 if every request of every round succeeded.

set -euo pipefail

ROUNDS=${ROUNDS:-7}
SLICES=${SLICES:-300}
PORT_BASE=${PORT_BASE:-21300}
TELERAD_DICOM=$PORT_BASE
TELERAD_HTTP=$((PORT_BASE + 1))
ORTHANC_DICOM=$((PORT_BASE + 2))
ORTHANC_HTTP=$((PORT_BASE + 3))
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-bench}
BENCH_TMP=${BENCH_TMP:-/tmp}
export TCP_NODELAY=1

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

require_tools cargo curl jq ss Orthanc dcmdump
# DCMTK's, by path: pynetdicom installs a storescu of the same name.
STORESCU=/usr/bin/storescu
banner=$("$STORESCU" --version 2>&1 || true)
grep -q '^\$dcmtk:' <<<"$banner" || die "$STORESCU is not DCMTK's (apt-get install dcmtk)"
DICOMWEB_PLUGIN=${DICOMWEB_PLUGIN:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}
[[ -f $DICOMWEB_PLUGIN ]] || die "Orthanc's DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
require_free_ports "$TELERAD_DICOM" "$TELERAD_HTTP" "$ORTHANC_DICOM" "$ORTHANC_HTTP"

WORK=$(mktemp -d "$BENCH_TMP/telerad-dicomweb-XXXXXX")
TELERAD_PID=
ORTHANC_PID=
cleanup() {
    stop_pid "$TELERAD_PID"
    stop_pid "$ORTHANC_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. binaries and the study ----------------------------------------------

log "building release binaries in $CARGO_TARGET_DIR"
(cd "$REPO" && cargo build --release --quiet -p telerad -p telerad-fixtures)
TELERAD=$CARGO_TARGET_DIR/release/telerad
FIXTURES=$CARGO_TARGET_DIR/release/telerad-fixtures
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
git -C "$REPO" diff --quiet HEAD -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null || REV+=" + uncommitted changes"

log "generating a $SLICES-slice CT"
"$FIXTURES" generate --modality ct --slices "$SLICES" --out "$WORK/ct" >&2
mapfile -t CT_FILES < <(find "$WORK/ct" -type f | sort)
[[ ${#CT_FILES[@]} -eq $SLICES ]] || die "expected $SLICES files, found ${#CT_FILES[@]}"

# --- 2. the two servers, each with the study --------------------------------

mkdir -p "$WORK/telerad"
cat >"$WORK/telerad/telerad.toml" <<TOML
[dicom]
port = $TELERAD_DICOM
[http]
bind = "127.0.0.1"
port = $TELERAD_HTTP
[storage]
data_dir = "$WORK/telerad/data"
[studies]
default_quiet_period_secs = 1
[[sites]]
name = "bench"
ae_titles = ["STORESCU"]
allowed_networks = ["127.0.0.0/8"]
time_zone = "Europe/Paris"
TOML
RUST_LOG=warn,telerad_viewer_api=info "$TELERAD" serve --config "$WORK/telerad/telerad.toml" >"$WORK/telerad/stdout" 2>"$WORK/telerad/log" &
TELERAD_PID=$!
wait_listening "$TELERAD_HTTP" "$TELERAD_PID" || die "telerad did not start: $(cat "$WORK/telerad/log")"
TOKEN=$("$TELERAD" token create admin --name bench --config "$WORK/telerad/telerad.toml")

mkdir -p "$WORK/orthanc/storage"
cat >"$WORK/orthanc/orthanc.json" <<JSON
{
  "Name": "bench",
  "StorageDirectory": "$WORK/orthanc/storage",
  "IndexDirectory": "$WORK/orthanc/storage",
  "HttpPort": $ORTHANC_HTTP,
  "DicomPort": $ORTHANC_DICOM,
  "DicomAet": "ORTHANC",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "StorageCompression": false,
  "Plugins": ["$DICOMWEB_PLUGIN"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" }
}
JSON
Orthanc "$WORK/orthanc/orthanc.json" >"$WORK/orthanc/log" 2>&1 &
ORTHANC_PID=$!
wait_listening "$ORTHANC_HTTP" "$ORTHANC_PID" || die "Orthanc did not start: $(tail -5 "$WORK/orthanc/log")"
wait_listening "$ORTHANC_DICOM" "$ORTHANC_PID" || die "Orthanc's DICOM port did not open"

log "pushing the CT to both"
"$STORESCU" -aet STORESCU -aec TELERAD 127.0.0.1 "$TELERAD_DICOM" "${CT_FILES[@]}" >"$WORK/push-telerad.log" 2>&1
"$STORESCU" -aet STORESCU -aec ORTHANC 127.0.0.1 "$ORTHANC_DICOM" "${CT_FILES[@]}" >"$WORK/push-orthanc.log" 2>&1

STUDY=$(dcmdump +P 0020,000d "${CT_FILES[0]}" | sed -E 's/.*\[([0-9.]+)\].*/\1/')
SERIES=$(dcmdump +P 0020,000e "${CT_FILES[0]}" | sed -E 's/.*\[([0-9.]+)\].*/\1/')
mapfile -t SOPS < <(for f in "${CT_FILES[@]}"; do dcmdump +P 0008,0018 "$f" | sed -E 's/.*\[([0-9.]+)\].*/\1/'; done)

TELERAD_URL="http://127.0.0.1:$TELERAD_HTTP/dicom-web"
ORTHANC_URL="http://127.0.0.1:$ORTHANC_HTTP/dicom-web"
AUTH=(-H "authorization: Bearer $TOKEN")
count() { # URL [curl args]: instances of the series' metadata
    curl -sf "${@:2}" -H 'accept: application/dicom+json' "$1/studies/$STUDY/series/$SERIES/metadata" | jq length
}
tries=0
until [[ $(count "$TELERAD_URL" "${AUTH[@]}" || echo 0) == "$SLICES" ]]; do
    ((++tries < 200)) || die "telerad never had the $SLICES instances"
    sleep 0.1
done
[[ $(count "$ORTHANC_URL") == "$SLICES" ]] || die "Orthanc does not have the $SLICES instances"
# As a radiologist would open it: after the completion, once telerad has
# rendered the first frames ahead (its log says so).
tries=0
until grep -q "first frames rendered ahead" "$WORK/telerad/log"; do
    ((++tries < 600)) || die "telerad never rendered the study ahead"
    sleep 0.1
done
log "telerad: $(grep -o 'frames=[0-9]* ms=[0-9]*' "$WORK/telerad/log" | tail -1) rendered ahead"

# A curl configuration that fetches RESOURCE of every instance in turn
# with ACCEPT.
each_config() { # URL AUTH_HEADER RESOURCE ACCEPT
    local sop
    for sop in "${SOPS[@]}"; do
        printf 'url = "%s/studies/%s/series/%s/instances/%s/%s"\noutput = "/dev/null"\n' "$1" "$STUDY" "$SERIES" "$sop" "$3"
    done
    printf 'header = "accept: %s"\n' "$4"
    [[ -n $2 ]] && printf 'header = "%s"\n' "$2"
    printf 'fail\nsilent\n'
}
OCTETS='multipart/related; type=\"application/octet-stream\"'
each_config "$TELERAD_URL" "authorization: Bearer $TOKEN" frames/1 "$OCTETS" >"$WORK/frames-telerad.curl"
each_config "$ORTHANC_URL" "" frames/1 "$OCTETS" >"$WORK/frames-orthanc.curl"
each_config "$TELERAD_URL" "authorization: Bearer $TOKEN" rendered image/jpeg >"$WORK/rendered-telerad.curl"
each_config "$ORTHANC_URL" "" rendered image/jpeg >"$WORK/rendered-orthanc.curl"
# Round R's window: a center never asked before, so no picture is cached.
window_config() { # URL AUTH_HEADER ROUND
    each_config "$1" "$2" "rendered?window=$((100 + $3)),80,linear" image/jpeg
}
MIDDLE=${SOPS[$((SLICES / 2))]}

# --- 3. rounds --------------------------------------------------------------

# Seconds taken by the requests of curl configuration $1; prints
# "seconds bytes".
timed() {
    local started ended bytes
    started=$(date +%s.%N)
    bytes=$(curl -K "$1" -w '%{size_download}\n' | awk '{s += $1} END {print s}')
    ended=$(date +%s.%N)
    awk -v a="$started" -v b="$ended" -v n="$bytes" 'BEGIN { printf "%.4f %s\n", b - a, n }'
}

# One round on one server (NAME telerad or orthanc):
# "metadata_ms frames_s frames_bytes first_rendered_ms rendered_s window_s".
# ROUND_NO (set by the caller: round runs in a subshell) picks the window.
ROUND_NO=0
round() { # URL NAME [curl args]
    local meta first auth=""
    [[ $2 == telerad ]] && auth="authorization: Bearer $TOKEN"
    window_config "$1" "$auth" "$ROUND_NO" >"$WORK/window-$2.curl"
    meta=$(curl -sf "${@:3}" -o /dev/null -w '%{time_total}' -H 'accept: application/dicom+json' \
        "$1/studies/$STUDY/series/$SERIES/metadata")
    first=$(curl -sf "${@:3}" -o /dev/null -w '%{time_total}' -H 'accept: image/jpeg' \
        "$1/studies/$STUDY/series/$SERIES/instances/$MIDDLE/rendered")
    local frames rendered windowed
    frames=$(timed "$WORK/frames-$2.curl")
    rendered=$(timed "$WORK/rendered-$2.curl")
    windowed=$(timed "$WORK/window-$2.curl")
    awk -v m="$meta" -v f="$frames" -v r1="$first" -v r="$rendered" -v w="$windowed" \
        'BEGIN { split(f, fa, " "); split(r, ra, " "); split(w, wa, " "); printf "%.2f %s %s %.2f %s %s\n", m * 1000, fa[1], fa[2], r1 * 1000, ra[1], wa[1] }'
}

declare -a T O
log "warm-up round"
round "$TELERAD_URL" telerad "${AUTH[@]}" >/dev/null
round "$ORTHANC_URL" orthanc >/dev/null
for ((r = 0; r < ROUNDS; r++)); do
    log "round $((r + 1))/$ROUNDS"
    ROUND_NO=$((r + 1))
    if ((r % 2 == 0)); then
        T+=("$(round "$TELERAD_URL" telerad "${AUTH[@]}")")
        O+=("$(round "$ORTHANC_URL" orthanc)")
    else
        O+=("$(round "$ORTHANC_URL" orthanc)")
        T+=("$(round "$TELERAD_URL" telerad "${AUTH[@]}")")
    fi
done

# --- 4. report --------------------------------------------------------------

t_meta=$(column 1 "${T[@]}")
o_meta=$(column 1 "${O[@]}")
t_frames=$(column 2 "${T[@]}")
o_frames=$(column 2 "${O[@]}")
t_bytes=$(column 3 "${T[@]}")
o_bytes=$(column 3 "${O[@]}")
t_first=$(column 4 "${T[@]}")
o_first=$(column 4 "${O[@]}")
t_rendered=$(column 5 "${T[@]}")
o_rendered=$(column 5 "${O[@]}")
t_window=$(column 6 "${T[@]}")
o_window=$(column 6 "${O[@]}")
fps() { awk -v n="$SLICES" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "telerad $REV; Orthanc $(Orthanc --version 2>&1 | head -1 | awk '{print $NF}') with its DICOMweb plugin ($(dpkg-query -W -f '${Version}' orthanc-dicomweb 2>/dev/null || echo '?'))"
echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$SLICES-slice CT 512x512x16 bit, medians of $ROUNDS rounds after a warm-up"
echo
echo "| measurement | telerad | Orthanc | Orthanc ÷ telerad |"
echo "|---|---|---|---|"
echo "| series /metadata ($SLICES instances), ms | $t_meta | $o_meta | **$(ratio "$o_meta" "$t_meta")×** |"
echo "| frame 1 of every instance, one connection: frames/s | $(fps "$t_frames") | $(fps "$o_frames") | **$(ratio "$o_frames" "$t_frames")×** |"
echo "| same, MB/s of frames | $(mbps "$t_bytes" "$t_frames") | $(mbps "$o_bytes" "$o_frames") | |"
echo "| one rendered frame (JPEG, middle slice), ms | $t_first | $o_first | **$(ratio "$o_first" "$t_first")×** |"
echo "| every instance rendered (JPEG), one connection: frames/s | $(fps "$t_rendered") | $(fps "$o_rendered") | **$(ratio "$o_rendered" "$t_rendered")×** |"
echo "| every instance at a new window (JPEG), one connection: frames/s | $(fps "$t_window") | $(fps "$o_window") | **$(ratio "$o_window" "$t_window")×** |"
