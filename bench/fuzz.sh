#!/usr/bin/env bash
# Fuzzing: runs each cargo-fuzz target of fuzz/ for a fixed number of
# executions, in one process (the machine is shared), and prints a markdown
# table of executions, exec/s and findings for BENCHMARKS.md.
#
# An allocation over 256 MB, or a resident set over 256 MB, is a finding
# (-malloc_limit_mb, -rss_limit_mb): every length a peer sends must be
# checked before anything is sized from it.
#
# Usage:  bench/fuzz.sh [RUNS] [TARGET...]    RUNS defaults to 10000000
#         (10^7); TARGET defaults to every target (pdu command inspect).
# Needs cargo-fuzz (cargo install cargo-fuzz). On a stable toolchain it is
# run with RUSTC_BOOTSTRAP=1, as libFuzzer's sanitizer flags need nightly.
# Environment: CARGO_TARGET_DIR [fuzz/target], LIMIT_MB [256].
# Findings land in fuzz/artifacts/<target>/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
root="$here/.."
runs="${1:-10000000}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(pdu command inspect)
limit="${LIMIT_MB:-256}"
command -v cargo-fuzz >/dev/null || die "cargo-fuzz is required: cargo install cargo-fuzz"

cd "$root"
"$root/fuzz/seed_corpus.sh" >&2
export RUSTC_BOOTSTRAP=1
log "building the fuzz targets (release, address sanitizer)"
cargo fuzz build -O --fuzz-dir fuzz >&2

# The address sanitizer keeps 256 MB of freed memory in quarantine by
# default, which the rss limit would count as ours.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=32}"

rows=()
for target in "${targets[@]}"; do
    log "$target: $runs executions"
    out="$(mktemp)"
    status=0
    extra=()
    # The sample files are up to 220 kB: their first 32 kB hold every
    # header, and mutating whole images would cost 10x the executions.
    [[ $target == inspect ]] && extra=(-max_len=32768)
    cargo fuzz run -O --fuzz-dir fuzz "$target" -- \
        -runs="$runs" "${extra[@]}" \
        -rss_limit_mb="$limit" -malloc_limit_mb="$limit" \
        -print_final_stats=1 >"$out" 2>&1 || status=$?
    executed="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)"
    per_sec="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)"
    corpus="$(ls "fuzz/corpus/$target" | wc -l)"
    if [[ $status -eq 0 ]]; then
        findings="none"
    else
        findings="$(grep -m1 -E 'ERROR: libFuzzer|panicked at|SUMMARY' "$out" || echo "exit status $status")"
        findings="$findings (log kept in $out)"
    fi
    [[ $status -eq 0 ]] && rm -f "$out"
    rows+=("| \`$target\` | ${executed:-?} | ${per_sec:-?} | $corpus | $findings |")
done

echo
echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(rustc --version)"
echo
echo "| target | executions | exec/s | corpus files | findings |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
