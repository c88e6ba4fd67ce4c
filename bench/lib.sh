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

# to_ms VALUE: one of wrk's latencies (123.45us, 1.2ms, 1.5s) in ms.
to_ms() {
    local v=$1
    case $v in
        *us) awk -v x="${v%us}" 'BEGIN {printf "%.3f", x / 1000}' ;;
        *ms) awk -v x="${v%ms}" 'BEGIN {printf "%.3f", x}' ;;
        *s) awk -v x="${v%s}" 'BEGIN {printf "%.3f", x * 1000}' ;;
    esac
}

# median: of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# column N LINE...: the median of the Nth field of the lines.
column() { local n=$1; shift; printf '%s\n' "$@" | awk -v n="$n" '{print $n}' | median; }

# The 10 sites and 20 radiologists (each licensed for 5 sites) that
# bench/worklist_data.sql refers to, as configuration tables on stdout.
worklist_data_config() {
    local s r k
    for s in 0 1 2 3 4 5 6 7 8 9; do
        printf '[[sites]]\nname = "site-%s"\nae_titles = ["SITE_%s"]\nallowed_networks = []\ntime_zone = "Europe/Paris"\n' "$s" "$s"
    done
    for r in $(seq 0 19); do
        printf '[[radiologists]]\nid = "dr-%s"\nname = "Dr %s"\nsubspecialties = ["general", "neuro"]\nsites = [' "$r" "$r"
        for k in 0 1 2 3 4; do printf '"site-%s",' $(((r + k) % 10)); done
        printf ']\nmax_open_studies = 100\n'
    done
}
