# vm-test/lib.sh: helpers for the VM closet scenarios (vm-test/scenarios/*.sh). vm-test/run
# sources it before each scenario; a scenario may source it again (it loads once).
# Environment from vm-test/run: CLOSETCTL, VM_STATE, VM_SSH_CONFIG, VM_INVENTORY, VM_DIR.
#   vm_ssh GUEST CMD...        run a shell command on a guest as root (args joined like ssh)
#   vm_ssh_user USER GUEST CMD... the same as another user (key must be set up by the test)
#   vm_scp SRC... DEST         scp with the closet's ssh_config (guest:path syntax)
#   vm_ip GUEST                the guest's address
#   vm_guests                  the guests that are up
#   vm_pause GUEST / vm_resume GUEST   SIGSTOP / SIGCONT the guest's qemu
#   vm_wait_ssh GUEST [SECS]   wait until ssh answers again
#   assert_eq EXPECTED ACTUAL [MSG], assert_ne, assert_contains HAYSTACK NEEDLE [MSG],
#   assert_not_contains, assert_match STRING ERE [MSG], assert_ok CMD..., assert_fails CMD...
#   fail MSG                   fail the scenario
#   step MSG                   print a step header
#   timer_start [NAME] / timer_stop [NAME]   print "TIME NAME: Ns"
# shellcheck shell=bash
[ -z "${VM_LIB_LOADED:-}" ] || return 0
VM_LIB_LOADED=1

VM_DIR=${VM_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
export CLOSETCTL_VM_STATE=${VM_STATE:-${CLOSETCTL_VM_STATE:-/tmp/closetctl-vm}}
. "$VM_DIR/common.sh"
VM_SSH_CONFIG=${VM_SSH_CONFIG:-$VM_STATE/ssh_config}
VM_INVENTORY=${VM_INVENTORY:-$VM_STATE/inventory.toml}
CLOSETCTL=${CLOSETCTL:-$(cd "$VM_DIR/.." && pwd)/target/release/closetctl}
export VM_DIR VM_STATE VM_SSH_CONFIG VM_INVENTORY CLOSETCTL

vm_ssh() { local g=$1; shift; ssh -F "$VM_SSH_CONFIG" "$g" -- "$@" </dev/null; }
vm_ssh_user() {
    local u=$1 g=$2; shift 2
    ssh -F "$VM_SSH_CONFIG" -o User="$u" -o ControlMaster=no -o ControlPath=none "$g" -- "$@" </dev/null
}
vm_scp() { scp -q -F "$VM_SSH_CONFIG" "$@"; }
vm_ip() { vm_guest_field "$1" 2; }
vm_guests() { awk '/^Host [a-z]/ && NF == 2 { print $2 }' "$VM_SSH_CONFIG"; }
vm_qemu_pid() { cat "$VM_STATE/run/$1.pid" 2>/dev/null || fail "no pid for guest $1"; }
vm_pause() { kill -STOP "$(vm_qemu_pid "$1")"; }
vm_resume() { kill -CONT "$(vm_qemu_pid "$1")"; }
vm_wait_ssh() {
    local g=$1 limit=${2:-120} t0
    t0=$(date +%s)
    until ssh -F "$VM_SSH_CONFIG" -o ConnectTimeout=5 -o ControlMaster=no -o ControlPath=none "$g" true </dev/null 2>/dev/null; do
        [ $(( $(date +%s) - t0 )) -lt "$limit" ] || fail "$g: no ssh after ${limit}s"
        sleep 2
    done
}

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf -- '--- %s\n' "$*"; }
assert_eq() {
    [ "$1" = "$2" ] || fail "${3:-values differ}: expected [$1], got [$2]"
}
assert_ne() {
    [ "$1" != "$2" ] || fail "${3:-values equal}: both [$1]"
}
assert_contains() {
    case $1 in *"$2"*) ;; *) fail "${3:-missing text}: [$2] not in [$1]" ;; esac
}
assert_not_contains() {
    case $1 in *"$2"*) fail "${3:-unexpected text}: [$2] in [$1]" ;; *) ;; esac
}
assert_match() {
    grep -Eq -- "$2" <<<"$1" || fail "${3:-no match}: /$2/ not in [$1]"
}
assert_ok() { "$@" || fail "command failed (rc=$?): $*"; }
assert_fails() { if "$@"; then fail "command succeeded but should fail: $*"; fi; }

declare -A VM_TIMERS
timer_start() { VM_TIMERS[${1:-default}]=$(date +%s.%N); }
timer_stop() {
    local n=${1:-default}
    printf 'TIME %s: %.1fs\n' "$n" "$(echo "$(date +%s.%N) ${VM_TIMERS[$n]:-0}" | awk '{ print $1 - $2 }')"
}
