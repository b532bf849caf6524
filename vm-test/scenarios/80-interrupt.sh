#!/usr/bin/env bash
# vm-test/scenarios/80-interrupt.sh: interrupted applies on real guests (issue 13). Runs
# after every other scenario on the shared closet. Four interruptions, each followed by
# the next apply (with `closetctl unlock` only where closetctl itself prints that
# command), which must converge:
#   A. SIGINT while rsync installs on every guest (the install of every step's
#      packages, `step packages`, before the steps): the install finishes, no step
#      starts (lab-tools had only its package), every lock is released, exit 130;
#   B. SIGKILL while a handler runs (a 40 s handler after a file write): the locks are
#      reported stale with the unlock command, unlock ends the handler still running on
#      the guests, the next plan shows the handler as owed, and apply runs it exactly once;
#   C. the guest paused during the install of every step's packages (a 40 s install
#      limit): node1 is reported timed out with the op that was running, the others
#      converge; after the guest resumes, its stale lock is cleared as told and the install finishes;
#   D. node1's tap taken down during a MUNGE key rotation (README's procedure).
# Then, with the cluster's own tools: `munge -n | unmunge` across every pair of hosts,
# no closetctl temp file under /etc, no lock or owed record left, sinfo idle with GRES.
set -euo pipefail
. "$VM_DIR/lib.sh"

DIR=$VM_STATE/interrupt
rm -rf "$DIR"
mkdir -p "$DIR/playbooks" "$DIR/templates"
INV=$DIR/inventory.toml
# The closet's inventory without Tailscale (no key here), with the shared secrets.
awk '/^\[+tailscale[].]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$VM_INVENTORY" \
    | awk '{ print } /^\[cluster\]$/ { print "secrets_dir = \"../secrets\"" }' > "$INV"
printf '\n[timeouts]\ngrace = 90\n' >> "$INV"
grep -q '^\[slurm\]' "$INV" || fail "no [slurm] in the inventory"
SECRETS=$VM_STATE/secrets
GUESTS="head node1 node2"

LAB_PLAYBOOK='# Lab steps of vm-test/scenarios/80-interrupt.sh (test only).
[[step]]
name = "lab-tools"
roles = ["all"]
packages = ["rsync"]

[[step]]
name = "lab-config"
roles = ["all"]

[[step.file]]
path = "/etc/closetctl-lab.conf"
template = "lab.conf.j2"

# Slow on purpose, so that closetctl can be killed while it runs. It logs each run.
[[step.handler]]
name = "slow reload"
watch = ["/etc/closetctl-lab.conf"]
command = "sleep 40 && cat /etc/closetctl-lab.conf >> /var/lib/closetctl-lab-reloads"
'
lab_version() { printf 'version = %s\n' "$1" > "$DIR/templates/lab.conf.j2"; }

# An apply in the background; its output in $DIR/LOG, its pid in $APPLY_PID.
start_apply() {
    local log=$1; shift
    "$CLOSETCTL" apply -i "$INV" --yes "$@" > "$DIR/$log" 2>&1 &
    APPLY_PID=$!
}
# wait_for LOG PATTERN SECS: until the running apply printed PATTERN.
wait_for() {
    local t0
    t0=$(date +%s)
    until grep -q -- "$2" "$DIR/$1"; do
        kill -0 "$APPLY_PID" 2>/dev/null || { cat "$DIR/$1"; fail "apply ended before [$2]"; }
        [ $(( $(date +%s) - t0 )) -lt "$3" ] || { cat "$DIR/$1"; fail "no [$2] after $3 s"; }
        sleep 0.5
    done
}
# finish LOG: wait for the background apply; its exit code in $RC, its output printed.
finish() {
    RC=0
    wait "$APPLY_PID" || RC=$?
    cat "$DIR/$1"
}
# The `closetctl unlock ...` command closetctl printed (the summary line), or nothing.
unlock_command() {
    # shellcheck disable=SC2016
    grep -o 'clear them with `closetctl unlock[^`]*`' <<<"$1" | head -n 1 | sed 's/^clear them with `closetctl //; s/`$//' || true
}
converge() {
    local rc=0 out
    out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
    echo "$out"
    assert_eq 0 "$rc" "$1: the next apply converges"
    # Either it had work left (and did it) or the interrupted run's hosts finished it.
    grep -Eq '^(All hosts converged\.|Nothing to apply\.)$' <<<"$out" || fail "$1: neither converged nor nothing to apply"
    rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode > /dev/null || rc=$?
    assert_eq 0 "$rc" "$1: the plan after it is empty"
}
no_locks() {
    for g in $GUESTS; do
        assert_eq no "$(vm_ssh "$g" 'test -e /var/lib/closetctl/lock && echo yes || echo no')" "$1: lock left on $g"
    done
}
reloads() { vm_ssh "$1" "grep -c 'version = $2' /var/lib/closetctl-lab-reloads 2>/dev/null || true"; }

step "the closet converged (the shared inventory without Tailscale)"
timer_start converge
converge "start"
timer_stop converge

step "A. SIGINT while rsync installs on every guest"
# The closet's own steps install rsync too (SkyPilot copies its files with it): take it
# away first so that the install of every step's packages has rsync to install.
for g in $GUESTS; do
    vm_ssh "$g" 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -q rsync >/dev/null'
done
printf '%s' "$LAB_PLAYBOOK" > "$DIR/playbooks/85-lab.toml"
lab_version 1
timer_start sigint
start_apply a.log
wait_for a.log 'step packages: running' 600
sleep 2
kill -INT "$APPLY_PID"
finish a.log
timer_stop sigint
out=$(cat "$DIR/a.log")
assert_eq 130 "$RC" "exit code after SIGINT"
assert_contains "$out" "Interrupted: no new step will start"
assert_contains "$out" "every lock this apply took was released"
if grep -q 'INTERRUPTED before step lab-config' <<<"$out"; then
    echo "OUTCOME A: the install finished within the grace period; lab-config never started"
else
    assert_contains "$out" "had not finished after the 90 s grace period" "A: the install finished or was ended"
    echo "OUTCOME A: the install was ended on its hosts after the grace period"
fi
assert_not_contains "$out" "step lab-tools: running" "A: lab-tools had nothing left to run"
no_locks "A"
for g in $GUESTS; do
    assert_eq no "$(vm_ssh "$g" 'test -e /etc/closetctl-lab.conf && echo yes || echo no')" "A: lab-config started on $g"
done
timer_start sigint-next
converge "A"
timer_stop sigint-next
for g in $GUESTS; do assert_eq 1 "$(reloads "$g" 1)" "A: handler runs for version 1 on $g"; done

step "B. SIGKILL while the handler runs"
lab_version 2
timer_start sigkill
start_apply b.log
wait_for b.log 'step lab-config: running' 300
sleep 8
kill -KILL "$APPLY_PID"
finish b.log
assert_eq 137 "$RC" "killed"
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" 2>&1) || rc=$?
echo "$plan"
assert_eq 1 "$rc" "plan exit code with stale locks"
assert_contains "$plan" "stale lock of an apply that is gone: "
assert_contains "$plan" "its process (pid $APPLY_PID) no longer runs on"
cmd=$(unlock_command "$plan")
assert_match "$cmd" '^unlock -i [^ ]+ --host head --host node1 --host node2$' "the unlock command the plan printed"
# shellcheck disable=SC2086
out=$("$CLOSETCTL" $cmd --yes 2>&1) || fail "unlock failed: $out"
echo "$out"
for g in $GUESTS; do assert_contains "$out" "$g: broke the lock of "; done
ended=$(grep -c 'its step lab-config was still running and was ended' <<<"$out" || true)
echo "OUTCOME B: unlock ended the running handler on $ended of 3 hosts"
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" --detailed-exitcode 2>&1) || rc=$?
echo "$plan"
assert_eq 2 "$rc" "owed handlers are work for apply"
owed=$(grep -c 'handler owed by an interrupted apply: run `sleep 40' <<<"$plan" || true)
assert_eq "$ended" "$owed" "B: each host whose handler was ended owes it"
converge "B"
timer_stop sigkill
for g in $GUESTS; do assert_eq 1 "$(reloads "$g" 2)" "B: the handler ran exactly once for version 2 on $g"; done

step "C. node1 paused during the install of every step's packages (40 s install limit)"
vm_ssh node1 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -q rsync >/dev/null'
INV_C=$DIR/inventory-c.toml
# A patient ssh (keepalive 30 x 5 s) so that the step's time limit, not ssh, fires.
printf 'ServerAliveCountMax 30\nInclude %s/ssh_config\n' "$VM_STATE" > "$DIR/ssh_config_patient"
sed -e "s|^config = .*|config = \"$DIR/ssh_config_patient\"|" -e 's/^grace = 90$/grace = 90\ninstall = 40/' "$INV" > "$INV_C"
grep -q '^install = 40' "$INV_C" || fail "no install limit in $INV_C"
timer_start pause
"$CLOSETCTL" apply -i "$INV_C" --yes > "$DIR/c.log" 2>&1 &
APPLY_PID=$!
wait_for c.log 'node1: step packages: running' 300
sleep 4
vm_pause node1
finish c.log
timer_stop pause
out=$(cat "$DIR/c.log")
assert_eq 1 "$RC" "exit code with node1 timed out"
assert_contains "$out" "node1: FAILED in step packages: timed out after 40 s while running \`install rsync\` (op 1 of 1); its processes could not be ended"
assert_contains "$out" "the lock could not be released on: node1"
assert_contains "$out" "  head: "
vm_resume node1
vm_wait_ssh node1 180
timer_start pause-next
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
echo "$out"
assert_eq 1 "$rc" "apply refuses node1's stale lock"
cmd=$(unlock_command "$out")
assert_match "$cmd" '^unlock -i [^ ]+ --host node1$' "the unlock command apply printed"
# shellcheck disable=SC2086
out=$("$CLOSETCTL" $cmd --yes 2>&1) || fail "unlock failed: $out"
echo "$out"
assert_contains "$out" "node1: broke the lock of "
if grep -q 'was still running and was ended' <<<"$out"; then
    echo "OUTCOME C: unlock ended the install still running on node1"
elif [ "$(vm_ssh node1 dpkg-query -W -f "'\${Status}'" rsync 2>/dev/null || true)" = "install ok installed" ]; then
    echo "OUTCOME C: the install finished on node1 after it resumed (its script then died writing to the lost connection)"
else
    echo "OUTCOME C: the install did not finish; the next apply does it"
fi
converge "C"
timer_stop pause-next
assert_match "$(vm_ssh node1 dpkg-query -W -f "'\${Status}'" rsync)" 'install ok installed' "rsync installed on node1"

step "D. node1's tap down during a MUNGE key rotation"
old=$(sha256sum "$SECRETS/munge.key" | cut -d' ' -f1)
mv "$SECRETS/munge.key" "$SECRETS/munge.key.old"
timer_start tap
start_apply d.log
wait_for d.log 'node1: step munge: running' 300
ip -n closetctl-vm link set tap-node1 down
finish d.log
timer_stop tap
out=$(cat "$DIR/d.log")
assert_eq 1 "$RC" "exit code with node1 cut off"
assert_match "$out" 'node1: FAILED in step munge: (the connection broke while running|timed out after)' "node1 failed in the munge step"
assert_contains "$out" "the lock could not be released on: node1"
new=$(sha256sum "$SECRETS/munge.key" | cut -d' ' -f1)
assert_ne "$old" "$new" "a new key was generated"
ip -n closetctl-vm link set tap-node1 up
vm_wait_ssh node1 180
timer_start tap-next
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" 2>&1) || rc=$?
echo "$plan"
cmd=$(unlock_command "$plan")
assert_match "$cmd" '^unlock -i [^ ]+ --host node1$' "the unlock command the plan printed"
# shellcheck disable=SC2086
"$CLOSETCTL" $cmd --yes
if grep -q 'handler owed by an interrupted apply: restart munge.service' <<<"$("$CLOSETCTL" plan -i "$INV" 2>&1)"; then
    echo "OUTCOME D: node1 owed the munged restart (its script stopped between the key and the restart)"
else
    echo "OUTCOME D: node1 finished its munge step on its own (the script had reached the guest)"
fi
converge "D"
timer_stop tap-next
key_sums=$(for g in $GUESTS; do vm_ssh "$g" sha256sum /etc/munge/munge.key | cut -d' ' -f1; done | sort -u)
assert_eq "$new" "$key_sums" "every guest has the new key"

step "the cluster's own tools: MUNGE across every pair, sinfo, no leftovers"
for a in $GUESTS; do
    for b in $GUESTS; do
        ssh -F "$VM_SSH_CONFIG" "$a" munge -n </dev/null | ssh -F "$VM_SSH_CONFIG" "$b" unmunge >/dev/null \
            || fail "a credential made on $a does not decode on $b"
    done
done
for g in $GUESTS; do
    assert_eq 0 "$(vm_ssh "$g" "find /etc -name '.closetctl*' | wc -l")" "closetctl temp files under /etc on $g"
    assert_eq 0 "$(vm_ssh "$g" 'ls -A /var/lib/closetctl/owed 2>/dev/null | wc -l')" "owed records left on $g"
done
no_locks "end"
# node1 was cut off (C, D) while the controller already had the new MUNGE key, so
# slurmctld may hold it as not responding (`down*`) until its next ping of the node,
# which comes every SlurmdTimeout/3 (100 s by default) and can slip under load: wait
# up to one whole SlurmdTimeout (300 s) by the clock for it to come back by itself.
# On 2026-11-30 (the CI run of 29a5c2d) slurmctld set node1 DOWN "Not responding" after
# C's pause and then did not reach it again for seven minutes, while slurmd ran on
# node1 and MUNGE decoded both ways (checked above): its own recovery, not closetctl's
# state. If the wait runs out that way, the log says so and the scenario does what an
# admin (and closetctl's own `reconfigure slurm` handler) does, `scontrol reconfigure`,
# which makes slurmctld contact every node at once; node1 must then register idle with
# its GRES within a minute. A node1 whose slurmd is not running still fails here.
wait_idle() {
    local end=$((SECONDS + $1))
    while :; do
        sinfo=$(vm_ssh head sinfo -N -h -o "'%N %T %G'")
        grep -q '^node1 idle gpu:a100-80gb:4' <<<"$sinfo" && grep -q '^node2 idle gpu:rtx4090:2' <<<"$sinfo" && return 0
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 5
    done
}
sinfo=
if ! wait_idle 330; then
    echo "$sinfo"
    echo "NOTE: after 330 s slurmctld still holds a node as not responding; its log for node1:"
    vm_ssh head "journalctl -u slurmctld --no-pager --since '-15min' | grep -i 'node1' | tail -n 5" || true
    assert_eq active "$(vm_ssh node1 systemctl is-active slurmd)" "slurmd runs on node1"
    echo "NOTE: scontrol reconfigure on head, then up to 60 s for node1 to register"
    assert_ok vm_ssh head scontrol reconfigure
    wait_idle 60 || true
fi
echo "$sinfo"
assert_match "$sinfo" '^node1 idle gpu:a100-80gb:4' "node1 idle with four A100s"
assert_match "$sinfo" '^node2 idle gpu:rtx4090:2' "node2 idle with two RTX 4090s"

# Leave the closet as the other scenarios know it (rsync stays installed).
for g in $GUESTS; do vm_ssh "$g" 'rm -f /etc/closetctl-lab.conf /var/lib/closetctl-lab-reloads'; done
rm -rf "$DIR"
