#!/usr/bin/env bash
# vm-test/scenarios/10-users.sh: users and UIDs on real guests (issue 2).
# A users-only copy of the closet's inventory (no NFS/Slurm sections) so this scenario
# is about accounts alone: a conflicting account on node2 and a stopped node1 are
# reported while head converges; after both are fixed every guest converges with the
# same UIDs (checked with getent, not closetctl), alice logs in with her key, a second
# plan is empty, and a held apply lock is refused by name. With `[motd]`, every guest's
# /etc/motd lists the closet's GPUs.
set -euo pipefail
. "$VM_DIR/lib.sh"

INV=$VM_STATE/users-inventory.toml
# Drop the NFS, Slurm and Tailscale sections (with their sub-tables); keep the rest.
awk '/^\[+(nfs|slurm|tailscale)[].]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$VM_INVENTORY" > "$INV"
grep -q '^\[\[power.circuit\]\]' "$INV" || fail "users inventory lost its circuits"
grep -q '^\[\[user\]\]' "$INV" || fail "users inventory has no users"
# The login banner (the motd concern): the closet's GPUs on every host.
printf '\n[motd]\nnote = "Questions: #closet on the lab chat"\n' >> "$INV"

step "node2: alice created by hand with another uid; node1 stopped"
vm_ssh node2 'useradd -M -u 1500 alice'
vm_pause node1
trap 'vm_resume node1 2>/dev/null || true; vm_ssh node2 "userdel alice 2>/dev/null; true" || true' EXIT

rc=0; out=$("$CLOSETCTL" plan -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 1 "$rc" "plan exit code with an unreachable host and a conflict"
assert_contains "$out" 'conflict: user `alice` has uid 1500 here; the inventory says 1001'
assert_match "$out" 'host node1'$'\n''  ! unreachable: ' "node1 reported unreachable"
assert_contains "$out" "Host unreachable: node1."
assert_contains "$out" "Host with conflicts: node2."

rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
echo "$out"
assert_eq 1 "$rc" "apply exit code when hosts did not converge"
assert_match "$out" 'head: converged \([0-9]+ changes\)'
assert_contains "$out" "node1: SKIPPED: unreachable"
assert_contains "$out" "node2: SKIPPED: conflicts"
assert_eq "alice:x:1001:1001::/home/alice:/bin/bash" "$(vm_ssh head getent passwd alice)" "alice on head"
assert_match "$(vm_ssh node2 getent passwd alice)" '^alice:x:1500:' "node2's alice untouched"
assert_eq "" "$(vm_ssh node2 'getent passwd bob || true')" "nothing applied on node2"

step "node1 back, node2's account removed: everything converges"
vm_resume node1
vm_wait_ssh node1
vm_ssh node2 'userdel alice'
"$CLOSETCTL" apply -i "$INV" --yes
for g in head node1 node2; do
    assert_eq "alice:x:1001:1001::/home/alice:/bin/bash" "$(vm_ssh "$g" getent passwd alice)" "alice on $g"
    assert_eq "bob:x:1002:1002::/home/bob:/bin/bash" "$(vm_ssh "$g" getent passwd bob)" "bob on $g"
    assert_eq "vision-lab:x:2001:alice" "$(vm_ssh "$g" getent group vision-lab)" "vision-lab on $g"
    assert_eq "nlp-lab:x:2002:bob" "$(vm_ssh "$g" getent group nlp-lab)" "nlp-lab on $g"
    assert_eq "alice alice 600" "$(vm_ssh "$g" stat -c "'%U %G %a'" /home/alice/.ssh/authorized_keys)" "authorized_keys on $g"
    motd=$(vm_ssh "$g" cat /etc/motd)
    assert_match "$motd" 'node1 +4 x a100-sxm4-80gb  \(--gres=gpu:a100-80gb:N\)' "motd names node1's GPUs on $g"
    assert_contains "$motd" "Questions: #closet on the lab chat"
    assert_eq "root root 644" "$(vm_ssh "$g" stat -c "'%U %G %a'" /etc/motd)" "motd owner and mode on $g"
done
assert_eq "1001" "$(ssh -F "$VM_SSH_CONFIG" -i "$VM_STATE/keys/alice_ed25519" -o IdentitiesOnly=yes -o User=alice -o ControlMaster=no -o ControlPath=none node1 id -u </dev/null)" "alice logs in with her key"

rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "second plan is empty"

step "a held apply lock is refused and its holder named"
vm_ssh head 'mkdir -p /var/lib/closetctl/lock && echo "carol@laptop (closetctl pid 42) since 2026-11-29T12:00:00Z" > /var/lib/closetctl/lock/holder'
vm_ssh node2 'usermod -s /bin/sh bob'
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
echo "$out"
assert_eq 1 "$rc" "apply with a held lock"
assert_contains "$out" "another apply holds the lock: carol@laptop (closetctl pid 42) since 2026-11-29T12:00:00Z"
assert_contains "$out" "node2: converged (1 changes)"
assert_eq "exists" "$(vm_ssh head 'test -d /var/lib/closetctl/lock && echo exists')" "someone else's lock is left alone"
vm_ssh head 'rm -rf /var/lib/closetctl/lock'
assert_eq "gone" "$(vm_ssh node2 'test -e /var/lib/closetctl/lock || echo gone')" "our lock released"

step "no-op plan against parallel ssh true (3 rounds each)"
for round in 1 2 3; do
    t0=$(date +%s.%N)
    for g in head node1 node2; do ssh -F "$VM_SSH_CONFIG" -o ControlMaster=no -o ControlPath=none "$g" true </dev/null & done
    wait
    t1=$(date +%s.%N)
    "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null
    t2=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "BENCH round '"$round"': ssh true %.2fs, plan %.2fs, ratio %.2f\n", b - a, c - b, (c - b) / (b - a) }'
done

step "adduser refuses a uid taken live on a guest, naming the guest"
vm_ssh node1 'useradd -M -u 1600 dave'
before=$(sha256sum "$INV")
rc=0; out=$("$CLOSETCTL" adduser erin --uid 1600 --group vision-lab -i "$INV" 2>&1) || rc=$?
echo "$out"
vm_ssh node1 'userdel dave'
assert_eq 1 "$rc" "adduser exit code"
assert_contains "$out" 'host `node1`: uid 1600 is held by user `dave`'
assert_eq "$before" "$(sha256sum "$INV")" "inventory unchanged"
"$CLOSETCTL" adduser erin --uid 1600 --group vision-lab -i "$INV"
assert_contains "$(cat "$INV")" 'name = "erin"'
