#!/usr/bin/env bash
# vm-test/scenarios/30-nfs.sh: NFS homes and datasets on real guests (issue 5).
# After apply: a file alice writes on node1 has alice's owner and UID on head and node2;
# the read-only dataset refuses writes; root on a client cannot write into alice's home
# (root_squash); exportfs lists only the cluster network; a rebooted client mounts /home
# again with no closetctl run in between; the second plan is empty.
set -euo pipefail
. "$VM_DIR/lib.sh"

INV=$VM_STATE/nfs-inventory.toml
cp "$VM_INVENTORY" "$INV"

step "plan warns that node1's local /home (homes made by 10-users.sh) would be hidden"
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" 2>&1) || rc=$?
echo "$plan"
assert_match "$plan" 'host node1'$'\n''  warning: local /home is not empty \(alice, bob\)' "warning for node1"

step "apply with NFS"
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "apply exit code"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode || rc=$?
assert_eq 0 "$rc" "second plan is empty"

step "one owner everywhere"
vm_ssh node1 "su - alice -c 'echo hello > /home/alice/probe'"
# As root on head (the server's own disk); as alice on node2, since root_squash
# keeps a client's root out of her 0700 home.
assert_eq "alice 1001" "$(vm_ssh head stat -c "'%U %u'" /home/alice/probe)" "owner of probe on head"
assert_eq "alice 1001" "$(vm_ssh node2 "su - alice -c \"stat -c '%U %u' /home/alice/probe\"")" "owner of probe on node2"
assert_eq "hello" "$(vm_ssh node2 "su - alice -c 'cat /home/alice/probe'")" "alice reads it on node2"

step "read-only dataset, root_squash, exports limited to the cluster network"
vm_ssh head 'echo data > /datasets/sample'
assert_eq "data" "$(vm_ssh node2 cat /datasets/sample)" "dataset readable on node2"
assert_fails vm_ssh node1 'touch /datasets/x'
assert_fails vm_ssh node1 'touch /home/alice/root-was-here'
exports=$(vm_ssh head exportfs -v)
echo "$exports"
# exportfs -v pads with spaces and a tab before the client.
assert_match "$exports" '^/home[[:space:]]+10\.77\.0\.0/24\(' "/home exported to the cluster network"
assert_match "$exports" '^/datasets[[:space:]]+10\.77\.0\.0/24\(.*[(,]ro[,)]' "/datasets read-only"
assert_eq 2 "$(grep -c '^/' <<<"$exports")" "only the two exports"
assert_not_contains "$exports" "<world>"
fstab=$(vm_ssh node2 cat /etc/fstab)
assert_contains "$fstab" "10.77.0.10:/home /home nfs vers=4.2,hard,noatime,_netdev,x-systemd.automount 0 0"

step "reboot node2: /home comes back without closetctl"
vm_ssh node2 'systemctl reboot' || true
sleep 5
vm_wait_ssh node2 300
assert_eq "hello" "$(vm_ssh node2 "su - alice -c 'cat /home/alice/probe'")" "probe readable after reboot"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan still empty after the reboot"
