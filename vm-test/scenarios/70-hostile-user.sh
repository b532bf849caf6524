#!/usr/bin/env bash
# vm-test/scenarios/70-hostile-user.sh: users with shells try to get root through an
# ordinary apply (issue 12). Two new users, eve and mallory, get homes and keys on the
# NFS server (head). Then, as themselves: mallory points ~/.ssh at /etc; eve plants a
# farm of links named like the old predictable temp files, replaces her authorized_keys
# with a link to /etc/shadow, and tries to plant a link in closetctl's backup tree. An
# inventory change (new keys for everyone) makes apply rewrite their keys.
# Checked with the guests' own tools: /etc and /root on head are byte for byte and mode
# for mode what they were (find + sha256sum), mallory's link is named in the plan and
# left alone, eve's and alice's new keys are in place, owned by them and usable (ssh),
# no backup holds /etc/shadow, the backup tree is root-only, the second plan is empty;
# once mallory replaces her link with a directory, her keys are installed too.
# Expects from earlier scenarios: the closet converged with NFS /home from head
# (30-nfs.sh); any later drift of the shared inventory is converged by the first apply.
set -euo pipefail
# shellcheck source=vm-test/lib.sh
. "$VM_DIR/lib.sh"

INV=$VM_STATE/hostile-inventory.toml
KEYS=$VM_STATE/keys
for u in eve mallory; do
    [ -f "$KEYS/${u}_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$u@closetctl-vm" -f "$KEYS/${u}_ed25519"
    [ -f "$KEYS/${u}_new_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$u-new@closetctl-vm" -f "$KEYS/${u}_new_ed25519"
done
pub() { cut -d' ' -f1-3 "$KEYS/$1.pub"; }
alice_key=$(pub alice_ed25519)

write_inventory() {   # write_inventory KEYSUFFIX: the closet plus eve and mallory
    local s=$1
    cp "$VM_INVENTORY" "$INV"
    cat >>"$INV" <<INV

[[user]]
name = "eve"
uid = 1020
groups = ["vision-lab"]
ssh_keys = ["$(pub "eve$s")"]

[[user]]
name = "mallory"
uid = 1021
groups = ["nlp-lab"]
ssh_keys = ["$(pub "mallory$s")"]
INV
}

ssh_as() {   # ssh_as USER KEYFILE GUEST CMD: log in as USER with that key only
    local u=$1 k=$2 g=$3; shift 3
    ssh -F "$VM_SSH_CONFIG" -o User="$u" -o IdentityFile="$k" -o IdentitiesOnly=yes \
        -o ControlMaster=no -o ControlPath=none -o BatchMode=yes "$g" -- "$@" </dev/null
}

# What root owns on head, to the byte: every path under /etc and /root with its
# owner, group, mode and link target, and the hash of every regular file.
SNAPSHOT='find /etc /root -xdev -printf "%p %U %G %m %y %l\n" | LC_ALL=C sort; find /etc /root -xdev -type f -exec sha256sum {} + | LC_ALL=C sort -k2'

step "eve and mallory get homes on head and their first keys"
write_inventory _ed25519
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "first apply"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "converged before the attack"
assert_ok ssh_as eve "$KEYS/eve_ed25519" head true
before=$(vm_ssh head "$SNAPSHOT")
assert_contains "$before" "/etc/shadow 0 42 640 f"

step "the attack, as the users themselves on head"
vm_ssh head "su -s /bin/sh mallory -c 'rm -rf /home/mallory/.ssh && ln -s /etc /home/mallory/.ssh'"
last=$(vm_ssh head cat /proc/sys/kernel/ns_last_pid)
vm_ssh head "su -s /bin/sh eve -c 'perl -e \"symlink(q{/etc/shadow}, qq{/home/eve/.ssh/.closetctl.\\\$_.tmp}) for ($((last + 1))..$((last + 4000)))\"'"
vm_ssh head "su -s /bin/sh eve -c 'ln -sf /etc/shadow /home/eve/.ssh/authorized_keys'"
farm=$(vm_ssh head "find /home/eve/.ssh -name '.closetctl.*.tmp' -type l | wc -l")
assert_eq 4000 "$farm" "eve's link farm"
assert_fails vm_ssh head "su -s /bin/sh eve -c 'ln -s /etc/shadow /var/lib/closetctl/backup/planted'"

step "new keys for everyone: plan names mallory's link, apply rewrites the others"
write_inventory _new_ed25519
# alice keeps her login key and gets a second one.
sed -i "s|ssh_keys = \[\"$alice_key\"\]|ssh_keys = [\"$alice_key\", \"$(pub eve_new_ed25519)\"]|" "$INV"
grep -q "eve-new@closetctl-vm\"\]" <(grep -A3 'name = "alice"' "$INV") || fail "alice's second key not in the inventory"
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" --host head 2>&1) || rc=$?
echo "$plan"
# shellcheck disable=SC2016 # backticks are closetctl's quoting, not a command
assert_contains "$plan" 'user `mallory`: `/home/mallory/.ssh` is a symbolic link'
assert_not_contains "$plan" "file /home/mallory/.ssh/authorized_keys"
assert_contains "$plan" "file /home/eve/.ssh/authorized_keys"
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "apply with hostile homes"

step "nothing root owns changed; the links led nowhere"
after=$(vm_ssh head "$SNAPSHOT")
if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") || true
    fail "/etc or /root on head changed"
fi
assert_eq "root root 755 directory" "$(vm_ssh head stat -c "'%U %G %a %F'" /etc)" "/etc"
assert_eq "symbolic link" "$(vm_ssh head stat -c "'%F'" /home/mallory/.ssh)" "mallory's link left alone"
assert_eq "eve eve 600 regular file" "$(vm_ssh head stat -c "'%U %G %a %F'" /home/eve/.ssh/authorized_keys)" "eve's keys replaced her link"
assert_eq 4000 "$(vm_ssh head "find /home/eve/.ssh -name '.closetctl.*.tmp' -type l | wc -l")" "the farm caught nothing"
assert_eq 0 "$(vm_ssh head "find /home/eve/.ssh -name '.closetctl.*' ! -type l | wc -l")" "no temp file left"
assert_eq "700" "$(vm_ssh head stat -c %a /var/lib/closetctl/backup)" "backup tree root-only"
assert_fails vm_ssh head "su -s /bin/sh eve -c 'ls /var/lib/closetctl/backup'"
shadow=$(vm_ssh head sha256sum /etc/shadow | cut -d' ' -f1)
backups=$(vm_ssh head "find /var/lib/closetctl/backup -type f -exec sha256sum {} + 2>/dev/null || true")
assert_not_contains "$backups" "$shadow" "a backup holds /etc/shadow"

step "the new keys work, over NFS too"
assert_ok ssh_as eve "$KEYS/eve_new_ed25519" head true
assert_fails ssh_as eve "$KEYS/eve_ed25519" head true
assert_ok ssh_as eve "$KEYS/eve_new_ed25519" node1 true
assert_ok ssh_as alice "$KEYS/alice_ed25519" node2 true
assert_ok ssh_as alice "$KEYS/eve_new_ed25519" head true
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "second plan is empty (mallory's keys wait for her to fix her link)"

step "mallory replaces her link with a directory: her keys are installed, as her"
vm_ssh head "su -s /bin/sh mallory -c 'rm /home/mallory/.ssh && mkdir -m 700 /home/mallory/.ssh'"
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "apply after mallory's fix"
assert_eq "mallory mallory 600" "$(vm_ssh head stat -c "'%U %G %a'" /home/mallory/.ssh/authorized_keys)" "mallory's keys"
assert_ok ssh_as mallory "$KEYS/mallory_new_ed25519" node2 true
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan empty at the end"
