#!/usr/bin/env bash
# Decoding a CT's frames: telerad's viewer decoder against the peers' own
# decoders, whole processes, one after the other, RUNS rounds, medians.
#
# A SLICES-slice 512x512 CT (telerad-fixtures) is copied as JPEG 2000
# lossless (bench/j2k_study.py: OpenJPEG's opj_compress, code streams kept)
# and as JPEG-LS lossless (DCMTK's dcmcjpls, CharLS inside). Then:
#   - telerad, JPEG 2000: viewer-api/examples/decode_frames.rs on the DICOM
#     copy (file read, data set parsed, frame decoded by OpenJPEG through
#     dicom-pixeldata, as WADO-RS does for uncompressed frames);
#   - OpenJPEG's opj_decompress -ImgDir on the bare code streams (one
#     process, each frame written out as RAWL);
#   - telerad, JPEG-LS: the same example on the JPEG-LS copy (telerad's own
#     decoder);
#   - DCMTK: dcmdjpls once per file (one process per file: its start-up and
#     file writing are in its time; dcmconv on the uncompressed files, the
#     same process and file work without decoding, is timed beside it);
#   - telerad on the uncompressed copy: reading and parsing alone.
# All three copies must decode to the same bytes (FNV-1a printed by the
# example) or the script stops.
#
# Usage: bench/decode.sh   (DCMTK, libopenjp2-tools, pydicom)
# Environment: RUNS [5], SLICES [100], CARGO_TARGET_DIR [/tmp/target-bench]

set -euo pipefail
RUNS=${RUNS:-5}
SLICES=${SLICES:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-bench}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
require_tools cargo python3 opj_decompress opj_compress
for tool in /usr/bin/dcmcjpls /usr/bin/dcmdjpls /usr/bin/dcmconv; do
    banner=$("$tool" --version 2>&1 || true)
    grep -q '^\$dcmtk:' <<<"$banner" || die "$tool is not DCMTK's (apt-get install dcmtk)"
done

WORK=$(mktemp -d /tmp/telerad-decode-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log "building release binaries"
(cd "$REPO" && cargo build --release --quiet -p telerad-fixtures --bin telerad-fixtures &&
    cargo build --release --quiet -p telerad-viewer-api --example decode_frames)
DECODE=$CARGO_TARGET_DIR/release/examples/decode_frames
"$CARGO_TARGET_DIR/release/telerad-fixtures" generate --modality ct --slices "$SLICES" --out "$WORK/ct" >&2
log "writing the JPEG 2000 and JPEG-LS copies"
python3 "$BENCH_DIR/j2k_study.py" "$WORK/ct" "$WORK/j2k" "$WORK/codestreams"
mkdir -p "$WORK/jls"
for f in "$WORK"/ct/*; do /usr/bin/dcmcjpls "$f" "$WORK/jls/$(basename "$f")"; done
reference=$("$DECODE" "$WORK/ct")
for copy in j2k jls; do
    [[ $("$DECODE" "$WORK/$copy") == "$reference" ]] || die "the $copy copy decodes differently"
done
log "all copies decode to the same bytes: $reference"

# seconds NAME COMMAND...: one timed run, appended to RESULTS.
RESULTS=$WORK/results.tsv
: >"$RESULTS"
seconds() {
    local name=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || die "$name failed"
    t1=$(date +%s.%N)
    printf '%s\t%s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" >>"$RESULTS"
}
opj_batch() {
    rm -rf "$WORK/opj" && cp -r "$WORK/codestreams" "$WORK/opj"
    opj_decompress -ImgDir "$WORK/opj" -OutFor RAWL
}
per_file() {
    local tool=$1 dir=$2 f
    for f in "$dir"/*; do "$tool" "$f" "$WORK/out.dcm"; done
}
for ((r = 1; r <= RUNS; r++)); do
    seconds telerad-j2k "$DECODE" "$WORK/j2k"
    seconds opj_decompress opj_batch
    seconds telerad-jls "$DECODE" "$WORK/jls"
    seconds dcmdjpls per_file /usr/bin/dcmdjpls "$WORK/jls"
    seconds dcmconv per_file /usr/bin/dcmconv "$WORK/ct"
    seconds telerad-native "$DECODE" "$WORK/ct"
    log "round $r done"
done

echo
echo "$(uname -n), $(nproc) cores; $SLICES-slice 512x512 CT; $RUNS rounds, medians (min-max)."
echo
echo "| what | seconds for $SLICES frames |"
echo "|---|---|"
for name in telerad-j2k opj_decompress telerad-jls dcmdjpls dcmconv telerad-native; do
    values=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$RESULTS")
    m=$(median <<<"$values")
    lo=$(sort -g <<<"$values" | head -1)
    hi=$(sort -g <<<"$values" | tail -1)
    echo "| $name | $m ($lo-$hi) |"
done
