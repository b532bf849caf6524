# vm-test/common.sh: shared settings for the VM test closet scripts (sourced, not run).
# Defines the namespace, addresses, guest table, cache and state locations, and the
# image cache key. Every script under vm-test/ sources this file first.
# shellcheck shell=bash disable=SC2034  # settings are used by the scripts that source it

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_NS=closetctl-vm
VM_BRIDGE_IP=10.77.0.1
VM_NET=10.77.0.0/24
VM_REPO_PORT=8080
VM_CACHE=${CLOSETCTL_VM_CACHE:-/var/cache/closetctl-vm}
VM_STATE=${CLOSETCTL_VM_STATE:-/tmp/closetctl-vm}
VM_MARKER=closetctl-vm    # qemu runs with "-name closetctl-vm-<guest>"
VM_BOOT_TIMEOUT=${CLOSETCTL_VM_BOOT_TIMEOUT:-300}

# name ip memory_mib gpu_spec ("-" = none); the first N rows are brought up.
VM_GUESTS="head 10.77.0.10 1536 -
node1 10.77.0.11 1024 a100-sxm4-80gb:4
node2 10.77.0.12 1024 rtx-4090:2"

# vm_close_fds: closes every file descriptor above 2 in this shell. The closet's daemons
# (qemu -daemonize, the repository's http server) start in a subshell that calls it
# first: otherwise they inherit the fd of `flock /tmp/closetctl-closet.lock vm-test/up`
# and hold that lock for as long as the closet runs (vm-test/down under the same lock
# then waits forever), or a pipe that never closes.
vm_close_fds() {
    local fd
    for fd in /proc/self/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
}

log() { printf '[vm-test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The cache key: sha256 over the image builder and every guest file it copies.
vm_cache_key() {
    (cd "$VM_DIR" && cat build-rootfs build-image common.sh \
        && find guest -type f -print0 | LC_ALL=C sort -z | xargs -0 cat \
        && find guest -type f | LC_ALL=C sort) | sha256sum | cut -c1-16
}
vm_image_dir() { echo "$VM_CACHE/$(vm_cache_key)"; }

# vm_result_dir OUTPUT FILE...: the directory a builder script (build-image,
# build-rootfs) printed: the last line of OUTPUT, used only if it is an absolute path to
# a directory holding every FILE. Prints it; fails (printing OUTPUT to stderr) otherwise.
vm_result_dir() {
    local d f out=$1; shift
    d=$(printf '%s\n' "$out" | tail -n 1)
    case $d in /*) ;; *) d= ;; esac
    if [ -n "$d" ] && [ -d "$d" ]; then
        for f in "$@"; do [ -e "$d/$f" ] || d=; done
    else
        d=
    fi
    if [ -z "$d" ]; then
        log "expected a result directory, got: $out"
        return 1
    fi
    echo "$d"
}

# First N guest rows.
vm_guest_rows() { printf '%s\n' "$VM_GUESTS" | head -n "${1:-3}"; }
vm_guest_field() {   # vm_guest_field NAME COLUMN(1-4)
    printf '%s\n' "$VM_GUESTS" | awk -v n="$1" -v c="$2" '$1 == n { print $c }'
}

# Mirror URIs the host's apt already uses (deb822 or one-line format), printed one
# per line: the main archive first, then security if present.
vm_host_mirrors() {
    local f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            if [ -f "$f" ]; then awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f"; fi
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            if [ -f "$f" ]; then awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"; fi
        done
    } | awk '!seen[$0]++'
}
vm_main_mirror() { vm_host_mirrors | grep -v -- '-security' | head -n1; }
