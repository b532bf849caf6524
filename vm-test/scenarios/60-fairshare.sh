#!/usr/bin/env bash
# vm-test/scenarios/60-fairshare.sh: fair share on real guests (Slurm accounting with
# slurmdbd and MariaDB on head). The closet inventory leaves `fair_share` out of
# [slurm], so it is on (FairShare::defaults(true)); 20-slurm.sh already applied it, and
# this scenario checks it with the cluster's own tools: every inventory user is
# associated with the accounts of their groups (sacctmgr, sshare), alice's job is
# accounted (sacct), carol added with `closetctl adduser` gets her association, the
# second plan is empty, and a new database password reaches MariaDB and slurmdbd
# without appearing in any output or in any `ps` listing on head during apply.
set -euo pipefail
. "$VM_DIR/lib.sh"

INV=$VM_STATE/fairshare-inventory.toml
cp "$VM_INVENTORY" "$INV"
# secrets_dir defaults to `secrets` beside the inventory, shared with the other copies.
SECRETS=$(dirname "$INV")/secrets
grep -q '^\[slurm\]' "$INV" || fail "no [slurm] in the inventory"
if grep -Eq '^fair_share *= *false' "$INV"; then fail "fair share is off in the closet inventory"; fi

# `group|user` for every group of every inventory user (name comes before groups).
pairs=$(awk -F'"' '/^\[/ { inuser = ($0 == "[[user]]") } inuser && /^name = / { name = $2 } inuser && /^groups = / { for (i = 2; i <= NF; i += 2) print $i "|" name }' "$INV")
[ -n "$pairs" ] || fail "no users with groups in the inventory"

step "apply: MariaDB, slurmdbd, accounting in slurm.conf, associations"
timer_start apply
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
timer_stop apply
echo "$out"
assert_eq 0 "$rc" "apply exit code"
pass=$(cat "$SECRETS/slurmdbd.password")
assert_eq 32 "${#pass}" "generated database password length"
assert_not_contains "$out" "$pass" "password in apply output"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode || rc=$?
assert_eq 0 "$rc" "second plan is empty"

step "MariaDB on localhost only, slurmdbd running, slurmctld with multifactor priority"
assert_eq active "$(vm_ssh head systemctl is-active mariadb)" "mariadb"
assert_eq active "$(vm_ssh head systemctl is-active slurmdbd)" "slurmdbd"
assert_eq "slurm:slurm 600" "$(vm_ssh head stat -c "'%U:%G %a'" /etc/slurm/slurmdbd.conf)" "slurmdbd.conf owner and mode"
listen=$(vm_ssh head "ss -Hltn 'sport = :3306'")
echo "$listen"
assert_match "$listen" '127\.0\.0\.1:3306' "MariaDB listens on localhost"
assert_not_contains "$listen" "0.0.0.0:3306" "MariaDB not on every address"
assert_fails vm_ssh node1 "timeout 5 bash -c 'echo > /dev/tcp/$(vm_ip head)/3306' 2>/dev/null"
config=$(vm_ssh head scontrol show config)
assert_match "$config" 'AccountingStorageType += accounting_storage/slurmdbd' "slurmctld uses slurmdbd"
assert_match "$config" 'PriorityType += priority/multifactor' "slurmctld uses multifactor priority"
assert_match "$config" 'PriorityWeightFairShare += 10000' "default fair-share weight"

step "every inventory user under their accounts (sacctmgr, sshare)"
assoc=$(vm_ssh head sacctmgr -nP show assoc format=account,user)
echo "$assoc"
sshare=$(vm_ssh head sshare -a -n -P -o account,user,rawshares)
echo "$sshare"
while IFS= read -r pair; do
    re=${pair//|/\\|}
    assert_match "$assoc" "^${re}\$" "association $pair"
    assert_match "$sshare" "(^| )${re}\|[0-9]+\$" "sshare shows $pair with shares"
done <<<"$pairs"

step "a job run as alice is accounted to her default account"
first_alice=$(grep -m1 '|alice$' <<<"$pairs" | cut -d'|' -f1)
vm_ssh head "su - alice -c 'srun -N1 hostname'" || fail "srun as alice"
acct=
for _ in $(seq 1 30); do
    acct=$(vm_ssh head sacct -u alice -n -X -P -o jobid,account,state)
    grep -q "|$first_alice|COMPLETED" <<<"$acct" && break
    sleep 1
done
echo "$acct"
assert_match "$acct" "^[0-9]+\|$first_alice\|COMPLETED" "alice's job in sacct"

step "carol added with closetctl adduser gets her association"
"$CLOSETCTL" adduser carol --uid 1003 --group vision-lab -i "$INV" --offline
rc=0; plan=$("$CLOSETCTL" plan -i "$INV" --detailed-exitcode) || rc=$?
echo "$plan"
assert_eq 2 "$rc" "plan has changes"
assert_contains "$plan" "+ association vision-lab/carol: fairshare 1, default account"
"$CLOSETCTL" apply -i "$INV" --yes
assert_match "$(vm_ssh head sacctmgr -nP show assoc format=account,user)" '^vision-lab\|carol$' "carol's association"
assert_eq "carol|vision-lab" "$(vm_ssh head sacctmgr -nP show user carol format=user,defaultaccount)" "carol's default account"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "second plan is empty after carol"

step "a new database password: shown as a fingerprint, never in output or ps"
mv "$SECRETS/slurmdbd.password" "$SECRETS/slurmdbd.password.old"
plan=$("$CLOSETCTL" plan -i "$INV")
json=$("$CLOSETCTL" plan -i "$INV" --json)
new=$(cat "$SECRETS/slurmdbd.password")
assert_ne "$pass" "$new" "a new password was generated"
echo "$plan"
assert_match "$plan" '~ file /etc/slurm/slurmdbd\.conf.*\[secret slurmdbd\.password: sha256:[0-9a-f]{16} differs; host has sha256:[0-9a-f]{16}\]' "slurmdbd.conf differs by fingerprint"
assert_contains "$plan" "handler set up the Slurm database"
assert_contains "$plan" "handler restart slurmdbd"
for text in "$plan" "$json"; do
    assert_not_contains "$text" "$new" "new password in a plan"
    assert_not_contains "$text" "$pass" "old password in a plan"
done
# Every process's command line on head, every 50 ms, for the length of the apply.
vm_ssh head 'rm -f /tmp/closetctl-ps.log /tmp/closetctl-ps.stop; nohup sh -c '"'"'end=$(($(date +%s) + 600)); while [ ! -e /tmp/closetctl-ps.stop ] && [ $(date +%s) -lt $end ]; do ps -eo args >> /tmp/closetctl-ps.log; sleep 0.05; done'"'"' >/dev/null 2>&1 &'
trap 'vm_ssh head "touch /tmp/closetctl-ps.stop" 2>/dev/null || true' EXIT
sleep 1
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
vm_ssh head 'touch /tmp/closetctl-ps.stop'
sleep 1
echo "$out"
assert_eq 0 "$rc" "apply with the new password"
for p in "$new" "$pass"; do assert_not_contains "$out" "$p" "password in apply output"; done
vm_ssh head cat /tmp/closetctl-ps.log >"$VM_STATE/fairshare-ps.log"
samples=$(grep -c '^COMMAND$' "$VM_STATE/fairshare-ps.log" || true)
echo "ps samples during apply: $samples ($(grep -c 'slurm-database.sh\|mysql' "$VM_STATE/fairshare-ps.log" || true) lines show the database setup)"
[ "$samples" -ge 10 ] || fail "too few ps samples ($samples) to say anything"
if grep -qF -f <(printf '%s\n' "$new" "$pass") "$VM_STATE/fairshare-ps.log"; then
    fail "the database password appeared in a ps listing on head"
fi
assert_eq "slurm:slurm 600" "$(vm_ssh head stat -c "'%U:%G %a'" /etc/slurm/slurmdbd.conf)" "slurmdbd.conf still 0600"
assert_eq active "$(vm_ssh head systemctl is-active slurmdbd)" "slurmdbd runs with the new password"
assert_match "$(vm_ssh head sacctmgr -nP show assoc format=account,user)" '^vision-lab\|carol$' "slurmdbd answers after the change"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan empty after the password change"
rm -f "$SECRETS/slurmdbd.password.old"
