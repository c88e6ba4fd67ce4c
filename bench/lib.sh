# Helpers shared by the bench scripts; sourced, not run. The sourcing script
# sets WORK (its working directory) before calling set_aside.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# require_tools TOOL...: DCMTK's first, with the package that has them.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null && continue
        case $tool in
            storescu | storescp) die "DCMTK's $tool is not installed: these benchmarks compare telerad with DCMTK (Debian/Ubuntu: apt-get install dcmtk)" ;;
            *) die "$tool is required" ;;
        esac
    done
}

# require_free_ports PORT...: a stale server from another run would be
# measured instead of ours.
require_free_ports() {
    local port
    for port in "$@"; do
        if ss -Htln "sport = :$port" | grep -q .; then
            die "port $port is already in use (set PORT_BASE to use others)"
        fi
    done
}

# Waits until something listens on TCP port $1 (read from ss, so that the
# check itself opens no association), while process $2 is alive.
wait_listening() {
    local port=$1 pid=$2 tries=0
    until ss -Htln "sport = :$port" | grep -q .; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((++tries < 300)) || return 1
        sleep 0.05
    done
}

# Stops process $1 (if any) and waits for it.
stop_pid() {
    [[ -n $1 ]] || return 0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# A run's files are moved aside, not deleted, until the script ends: on an
# ext4 without a journal, creating an inode soon after mass deletions scans
# past recently freed ones (ext4's recently_deleted()). One profile of
# telerad taken right after earlier runs' files were deleted put 23 % of its
# CPU samples there; it was not seen again without such deletions. Deleting
# would tax the next run, whichever receiver it measures.
set_aside() {
    mkdir -p "$WORK/done"
    local dir
    for dir in "$@"; do
        [[ -e $dir ]] && mv "$dir" "$WORK/done/$(basename "$dir")-$RANDOM$RANDOM"
    done
    return 0
}
