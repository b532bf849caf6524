#!/usr/bin/env bash
# vm-test/scenarios/20-slurm.sh: MUNGE and Slurm with GPU GRES on real guests (issue 4).
# The closet's full inventory: one apply makes head the controller and node1/node2
# compute nodes; checked with sinfo, srun and munge/unmunge themselves. Then a partition
# edit is applied with `scontrol reconfigure` only (slurmd PIDs unchanged), and a wrong
# MUNGE key on one guest is found by name and repaired.
set -euo pipefail
. "$VM_DIR/lib.sh"

INV=$VM_STATE/slurm-inventory.toml
# Without [nfs]: this scenario is about Slurm (30-nfs.sh adds the shares).
awk '/^\[+(nfs|tailscale)[].]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$VM_INVENTORY" > "$INV"
grep -q '^\[slurm\]' "$INV" || fail "no [slurm] in the inventory"

step "fresh closet -> apply"
timer_start apply
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
timer_stop apply
echo "$out"
assert_eq 0 "$rc" "apply exit code"
assert_contains "$out" "ok   munge node1 -> head: decoded"
assert_contains "$out" "ok   slurm node1: idle, gres gpu:a100-80gb:4"

step "sinfo, srun and munge with the real tools"
sinfo=$(vm_ssh head sinfo -N -h -o "'%N %T %G'")
echo "$sinfo"
assert_match "$sinfo" '^node1 idle gpu:a100-80gb:4' "node1 idle with four A100s"
assert_match "$sinfo" '^node2 idle gpu:rtx4090:2' "node2 idle with two RTX 4090s"
cuda=$(vm_ssh head srun -w node1 --gres=gpu:2 printenv CUDA_VISIBLE_DEVICES)
assert_eq "0,1" "$cuda" "srun --gres=gpu:2 gets two devices"
for n in node1 node2; do
    ssh -F "$VM_SSH_CONFIG" head munge -n </dev/null | ssh -F "$VM_SSH_CONFIG" "$n" unmunge >/dev/null || fail "head's credential does not decode on $n"
    ssh -F "$VM_SSH_CONFIG" "$n" munge -n </dev/null | ssh -F "$VM_SSH_CONFIG" head unmunge >/dev/null || fail "$n's credential does not decode on head"
done
key=$(vm_ssh node1 stat -c "'%U:%G %a'" /etc/munge/munge.key)
assert_eq "munge:munge 400" "$key" "munge.key owner and mode"
sums=$(for g in head node1 node2; do vm_ssh "$g" sha256sum /etc/munge/munge.key | cut -d' ' -f1; done | sort -u | wc -l)
assert_eq 1 "$sums" "one key on every host"
confs=$(for g in head node1 node2; do vm_ssh "$g" sha256sum /etc/slurm/slurm.conf | cut -d' ' -f1; done | sort -u | wc -l)
assert_eq 1 "$confs" "the same slurm.conf byte for byte"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode || rc=$?
assert_eq 0 "$rc" "second plan is empty"

step "a partition edit is a reconfigure, slurmd keeps running"
pid1=$(vm_ssh node1 systemctl show -p MainPID --value slurmd)
pid2=$(vm_ssh node2 systemctl show -p MainPID --value slurmd)
sed -i '/^controller = "head"/a\
\
[[slurm.partition]]\
name = "gpu"\
default = true\
max_time = "1-00:00:00"' "$INV"
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" --detailed-exitcode) || rc=$?
echo "$plan"
assert_eq 2 "$rc" "plan has changes"
assert_contains "$plan" "~ file /etc/slurm/slurm.conf (disruption: reconfigure)"
assert_contains "$plan" "handler reconfigure slurm: run \`scontrol reconfigure\`"
assert_not_contains "$plan" "restart slurmd"
assert_contains "$plan" "handler reload slurmd: reload slurmd.service"
"$CLOSETCTL" apply -i "$INV" --yes
assert_match "$(vm_ssh head scontrol show partition gpu)" 'MaxTime=1-00:00:00' "partition change is live"
assert_eq "$pid1" "$(vm_ssh node1 systemctl show -p MainPID --value slurmd)" "slurmd on node1 not restarted"
assert_eq "$pid2" "$(vm_ssh node2 systemctl show -p MainPID --value slurmd)" "slurmd on node2 not restarted"

step "a wrong MUNGE key on node2 is named and repaired"
vm_ssh node2 'dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none && systemctl restart munge'
if ssh -F "$VM_SSH_CONFIG" node2 munge -n </dev/null | ssh -F "$VM_SSH_CONFIG" head unmunge >/dev/null 2>&1; then
    fail "a different key still decodes"
fi
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" --detailed-exitcode) || rc=$?
echo "$plan"
assert_eq 2 "$rc" "plan has changes"
assert_match "$plan" 'host node2'$'\n''  step munge'$'\n''    ~ file /etc/munge/munge.key.*\[secret munge.key: sha256:[0-9a-f]{16} differs; host has sha256:[0-9a-f]{16}\]' "node2's key named as differing"
assert_not_contains "$(sed -n '/^host head/,/^host node1/p' <<<"$plan")" "munge.key" "head's key matches"
"$CLOSETCTL" apply -i "$INV" --yes
ssh -F "$VM_SSH_CONFIG" node2 munge -n </dev/null | ssh -F "$VM_SSH_CONFIG" head unmunge >/dev/null || fail "node2 still cannot authenticate"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan empty after the repair"

step "a stopped service and a disabled one are seen (the facts cache: active state asked every time, enablement when its files change)"
assert_eq "root 600" "$(vm_ssh node2 "stat -c '%U %a' /var/lib/closetctl/facts")" "the cache is root's alone"
vm_ssh node2 systemctl stop slurmd
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" --detailed-exitcode) || rc=$?
echo "$plan"
assert_eq 2 "$rc" "plan has changes"
assert_match "$plan" 'service slurmd\.service.*start' "node2's stopped slurmd is seen"
assert_not_contains "$plan" "munge.service" "munge untouched so far"
vm_ssh node2 systemctl disable munge
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" --detailed-exitcode) || rc=$?
echo "$plan"
assert_eq 2 "$rc" "plan has changes"
assert_match "$plan" 'service munge\.service.*enable' "node2's disabled munge is seen"
if grep -Eq 'service munge\.service.*start' <<<"$plan"; then fail "munge still runs, yet the plan starts it"; fi
"$CLOSETCTL" apply -i "$INV" --yes
assert_eq active "$(vm_ssh node2 systemctl is-active slurmd)" "slurmd runs again on node2"
assert_eq enabled "$(vm_ssh node2 systemctl is-enabled munge)" "munge enabled again on node2"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan empty after the repair"
