#!/usr/bin/env bash
# The pages in headless Chromium (examples/pages_bench.rs through
# ChromeDriver): the worklist with 1,000 open studies (bench/worklist_data.sql
# loaded into a fresh SQLite index: 10 sites, 20 radiologists), shown whole
# to an administrator (/worklist?limit=1000) and as a radiologist's default
# first page (/worklist, 100 rows); and the reading room of a SLICES-slice
# 512x512 CT pushed with DCMTK storescu: time from opening to the first
# image drawn, until every slice is held decoded, frames per second while
# scrolling the stack (one step per animation frame) and while dragging the
# window (a rendering of the slice shown per move, one in flight).
# A fresh server and store per run; prints medians as markdown. The issue
# names no other viewer to run beside it: its targets are first image
# < 300 ms, scroll >= 30 frames/s, JavaScript < 150 kB.
#
# Usage: bench/pages.sh
# Environment: RUNS [3], SLICES [300], PORT_BASE [18600],
#   CARGO_TARGET_DIR [/tmp/target-bench]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$here/lib.sh"
runs="${RUNS:-3}"
slices="${SLICES:-300}"
port_base="${PORT_BASE:-18600}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/target-bench}"
require_tools sqlite3 jq curl /usr/bin/chromium /usr/bin/chromedriver
storescu=/usr/bin/storescu
grep -q '^\$dcmtk:' <<<"$("$storescu" --version 2>&1)" || die "$storescu is not DCMTK's"

log "building"
(cd "$repo" && cargo build -q --release --bin telerad --example pages_bench \
    && cargo build -q --release -p telerad-fixtures --bin telerad-fixtures) >&2
binary="$CARGO_TARGET_DIR/release/telerad"
bench="$CARGO_TARGET_DIR/release/examples/pages_bench"
WORK="$(mktemp -d /tmp/telerad-bench-pages.XXXXXX)"
pid=""
trap 'stop_pid "$pid"' EXIT

uid="$("$CARGO_TARGET_DIR/release/telerad-fixtures" generate --modality ct --slices "$slices" --out "$WORK/ct" | awk '{print $NF}')"
password="a password for the bench"
results=()
for ((r = 1; r <= runs; r++)); do
    dir="$WORK/run$r"
    dicom=$((port_base + 2 * r))
    http=$((dicom + 1))
    require_free_ports "$dicom" "$http"
    mkdir -p "$dir"
    {
        printf '[dicom]\nport = %s\n[http]\nbind = "127.0.0.1"\nport = %s\n' "$dicom" "$http"
        printf '[storage]\ndata_dir = "%s/data"\n[studies]\ndefault_quiet_period_secs = 1\n' "$dir"
        worklist_data_config
    } >"$dir/telerad.toml"
    serve() {
        RUST_LOG=warn "$binary" serve --config "$dir/telerad.toml" >>"$dir/stdout" 2>>"$dir/log" &
        pid=$!
        wait_listening "$http" "$pid" || die "the server did not start: $(cat "$dir/log")"
    }
    serve
    stop_pid "$pid"
    pid=""
    now_ms=$(($(date +%s) * 1000))
    # 1,001 studies, 1,000 still to read (the script's history needs one
    # signed study).
    sql="$(sed -e "s/__N__/1001/g" -e "s/__OPEN__/1000/g" -e "s/__NOW__/$now_ms/g" "$here/worklist_data.sql")"
    sqlite3 -bail "$dir/data/telerad.db" <<<"PRAGMA foreign_keys = ON; BEGIN; $sql COMMIT;"
    serve
    "$binary" user add rad --role radiologist --radiologist dr-0 --config "$dir/telerad.toml" <<<"$password" >/dev/null
    "$binary" user add boss --role admin --config "$dir/telerad.toml" <<<"$password" >/dev/null
    token="$("$binary" token create boss --name bench --config "$dir/telerad.toml")"
    "$storescu" -aet SITE_0 -aec TELERAD +sd 127.0.0.1 "$dicom" "$WORK/ct" >/dev/null
    status=""
    for _ in $(seq 600); do
        status="$(curl -sf -H "authorization: Bearer $token" "http://127.0.0.1:$http/api/studies/$uid" | jq -r .status || true)"
        [[ $status == complete ]] && break
        sleep 0.1
    done
    [[ $status == complete ]] || die "the CT never completed: $(tail "$dir/log")"
    log "run $r/$runs: study $uid"
    # The administrator sees every study: the whole worklist, and the CT
    # whoever the router gave it to.
    admin="$("$bench" "http://localhost:$http" boss "$password" "$uid" '/worklist?limit=1000')"
    reader="$("$bench" "http://localhost:$http" rad "$password" - /worklist)"
    results+=("$(jq -c --argjson r "$reader" '. + $r' <<<"$admin")")
    stop_pid "$pid"
    pid=""
done

printf '%s\n' "${results[@]}" >"$WORK/results.jsonl"
med() { printf '%.0f' "$(jq -r "$1" "$WORK/results.jsonl" | median)"; }
echo "| Measure (median of $runs runs) | Value |"
echo "|---|---|"
for view in '/worklist' '/worklist?limit=1000'; do
    key="worklist $view"
    echo "| $view: rows | $(med ".[\"$key\"].rows") |"
    echo "| $view: HTML received (ms) | $(med ".[\"$key\"].response_end") |"
    echo "| $view: first contentful paint (ms) | $(med ".[\"$key\"].first_contentful_paint") |"
    echo "| $view: interactive, DOMContentLoaded (ms) | $(med ".[\"$key\"].dom_content_loaded") |"
done
echo "| reading room, $slices slices: first image (ms) | $(med '.reading.first_image_ms') |"
echo "| reading room: every slice held (ms) | $(med '.reading.all_slices_ms') |"
echo "| reading room: scrolling (frames/s) | $(med '.reading.scroll.fps') |"
echo "| reading room: window drag (renderings/s) | $(med '.reading.window_drag.fps') |"
echo "| JavaScript shipped (bytes) | $(med '.reading.javascript_bytes') |"
log "raw results: $WORK/results.jsonl"
