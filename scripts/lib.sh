# Shared helpers of scripts/test and scripts/demo (sourced, not run).
# Installs Debian packages when missing, builds, and runs throwaway PostgreSQL clusters on a
# private socket directory and port. PostgreSQL refuses to run as root, so as root the cluster
# runs as the `postgres` OS user.

set -euo pipefail

DFD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DFD_PG_MAJOR=15
DFD_PACKAGES=(postgresql-$DFD_PG_MAJOR postgresql-server-dev-$DFD_PG_MAJOR build-essential
              libssl-dev libjansson-dev libmicrohttpd-dev libpq-dev libcurl4-openssl-dev
              pkg-config python3 python3-aiosmtpd libipc-run-perl curl clang-format openssl docker-compose)

dfd_log() { printf '==> %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
dfd_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

dfd_install_deps() {
    local missing=()
    for p in "${DFD_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        dfd_log "installing ${missing[*]}"
        dfd_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        dfd_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # node and npm (for s3rver in the tests) may come from elsewhere than Debian, whose npm
    # package would then conflict: install Debian's only when there is no npm at all
    if ! command -v npm >/dev/null 2>&1; then
        dfd_log "installing nodejs npm"
        dfd_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        dfd_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    export PG_CONFIG=/usr/lib/postgresql/$DFD_PG_MAJOR/bin/pg_config
    export PATH=/usr/lib/postgresql/$DFD_PG_MAJOR/bin:$PATH
}

dfd_build_and_install() {
    # DFD_SKIP_BUILD=1: use what is installed (several benchmarks sharing one build)
    if [ -n "${DFD_SKIP_BUILD:-}" ]; then return 0; fi
    dfd_log "building"
    make -C "$DFD_ROOT" -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
    dfd_as_root make -C "$DFD_ROOT" -s install PG_CONFIG="$PG_CONFIG" >/dev/null
}

# Runs a command as the cluster's OS user.
dfd_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# dfd_start_cluster DIR PORT: a new cluster under DIR, listening on DIR/sock and 127.0.0.1:PORT.
# Exports PGHOST, PGPORT, PGUSER for the clients.
dfd_start_cluster() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        chmod 755 "$dir"
    fi
    dfd_as_pg initdb -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    dfd_as_pg mkdir -p "$dir/sock"
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = 150
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
max_prepared_transactions = 10
CONF
    dfd_as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; return 1; }
    export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres
}

dfd_stop_cluster() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && dfd_as_pg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# A free TCP port on 127.0.0.1, outside the ephemeral range (gateway/ports.py says why).
dfd_free_port() {
    python3 "$DFD_ROOT/gateway/ports.py"
}

# What every benchmark starts with: the packages, the build (DFD_SKIP_BUILD=1 skips it) and a
# throwaway cluster under /tmp that is stopped and removed on exit. Sets work and PGDATABASE.
dfd_bench_cluster() {
    dfd_install_deps
    dfd_build_and_install
    work=$(mktemp -d /tmp/defendable-bench.XXXXXX)
    chmod 755 "$work"
    trap 'dfd_stop_cluster "$work"; rm -rf "$work"; dfd_bench_restore_autogroup' EXIT
    dfd_bench_no_autogroup
    dfd_start_cluster "$work" "$(dfd_free_port)"
    export PGDATABASE=postgres
}

# The machine a benchmark ran on, as its first line of output.
# Session autogroups (kernel.sched_autogroup_enabled) schedule each session as one group: the
# cluster, which pg_ctl starts in a session of its own, then competes as one task against the
# load generator and the gateway, and on the 2-core machine of docs/benchmarks.md a runnable
# backend waited up to 1.3 s for a CPU (/proc/PID/schedstat) while its gateway request stalled.
# Every benchmark turns them off for its run, before the cluster starts, and puts the setting
# back at exit (they also moved append's single-session rate: docs/benchmarks.md);
# BENCH_AUTOGROUP=keep leaves the machine as it is.
DFD_AUTOGROUP_WAS=""
dfd_bench_no_autogroup() {
    local f=/proc/sys/kernel/sched_autogroup_enabled
    [ "${BENCH_AUTOGROUP:-off}" = off ] && [ -r "$f" ] && [ "$(cat "$f")" = 1 ] || return 0
    if dfd_as_root sh -c "echo 0 > $f" 2>/dev/null; then
        DFD_AUTOGROUP_WAS=1
        echo "scheduler: session autogroups off for this run, restored at exit (BENCH_AUTOGROUP=keep: leave them on)"
    else
        echo "scheduler: session autogroups on ($f is not writable here)"
    fi
}
dfd_bench_restore_autogroup() {
    [ "$DFD_AUTOGROUP_WAS" = 1 ] || return 0
    dfd_as_root sh -c "echo 1 > /proc/sys/kernel/sched_autogroup_enabled" 2>/dev/null || true
    DFD_AUTOGROUP_WAS=""
}

dfd_bench_machine() {
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
}
