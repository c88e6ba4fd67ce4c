#!/usr/bin/env bash
# Builds the commit checked out here with bench/unaudited.patch applied:
# telerad as it is, except that a request's token is checked once (the
# first caller's identity serves every later request) and no audit record
# is written. It is the "without" of bench/auth.sh, so that the two builds
# differ by authentication and audit only. Never ship it.
#
# Usage:  bench/unaudited.sh OUTPUT_BINARY
# Environment: CARGO_TARGET_DIR [/tmp/target-bench] (shared with the
#   ordinary release build: only telerad's own crates are compiled again).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
output="${1:?usage: bench/unaudited.sh OUTPUT_BINARY}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/target-bench}"
# A fixed place, so that cargo finds its earlier build of these crates.
tree=/tmp/telerad-unaudited-worktree
case "$(realpath -m "$output")/" in
"$tree"/*) die "$output is inside the worktree, which is removed at the end" ;;
esac
cleanup() { git -C "$here/.." worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"; }
cleanup
trap cleanup EXIT
git -C "$here/.." worktree add -q --detach "$tree" HEAD
git -C "$tree" apply "$here/unaudited.patch" || die "bench/unaudited.patch no longer applies to HEAD: remake it"
log "building $(git -C "$tree" rev-parse --short HEAD) without authentication and audit"
(cd "$tree" && cargo build --release --quiet -p telerad)
cp "$CARGO_TARGET_DIR/release/telerad" "$output"
log "built $output; $CARGO_TARGET_DIR/release/telerad is this build too until the next release build"
