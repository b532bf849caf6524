#!/usr/bin/env bash
# vm-test/scenarios/05-example-plan.sh: the first thing a new user does (issue 11): plan
# a copy of inventory.example.toml, its three hosts pointed at the closet (head -> head,
# gpu1 -> node1 with its 4 A100s, gpu2 -> node2 with its 2 RTX 4090s), with no Tailscale
# auth key anywhere (HOME is an empty temp dir, so `~/.config/closetctl/tailscale.key`
# does not exist). The plan must not stop at the missing key: every host gets its whole
# plan, the enrollment says where the key goes, the step is marked as refused by apply,
# and the exit codes are those of a plan with changes (0, 2 with --detailed-exitcode).
# Expects the fresh guests 00-closet leaves (nothing of closetctl's applied). Leaves them
# as it found them: plan only (it takes no lock); the secrets it generates stay in its
# temp dir.
set -euo pipefail
. "$VM_DIR/lib.sh"

ROOT=$(cd "$VM_DIR/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
home=$work/home
mkdir -p "$home"
inv=$work/inventory.toml
key_path=$home/.config/closetctl/tailscale.key

# The example, word for word, but for the three addresses and the closet's ssh_config.
sed -e "s/\"head\.closet\.example\"/\"$(vm_ip head)\"/" \
    -e "s/\"gpu1\.closet\.example\"/\"$(vm_ip node1)\"/" \
    -e "s/\"gpu2\.closet\.example\"/\"$(vm_ip node2)\"/" \
    -e "s|^\[ssh\]\(.*\)|[ssh]\1\nconfig = \"$VM_SSH_CONFIG\"|" \
    "$ROOT/inventory.example.toml" >"$inv"
assert_eq 0 "$(grep -c 'closet\.example"' "$inv" || true)" "every example address replaced"
assert_eq 1 "$(grep -c "^config = \"$VM_SSH_CONFIG\"" "$inv")" "ssh config set"
[ ! -e "$key_path" ] || fail "$key_path exists"

step "plan the example with no Tailscale auth key"
timer_start plan
rc=0; out=$(HOME=$home "$CLOSETCTL" plan -i "$inv" 2>&1) || rc=$?
timer_stop plan
echo "$out"
assert_eq 0 "$rc" "plan exit code with a missing auth key"
assert_not_contains "$out" "error:" "no error"
for h in head gpu1 gpu2; do
    assert_match "$out" "^host $h\$" "host $h planned"
    assert_contains "$out" "+ tailscale $h: enroll, \`tailscale up --auth-key=file:/run/closetctl/tailscale.key --hostname=$h " "enrollment of $h"
done
assert_eq 3 "$(grep -c "auth key missing: put it in \`$key_path\` (mode 0600) before apply\$" <<<"$out")" \
    "the missing key and where it goes, once per host"
assert_eq 3 "$(grep -c '^    ! apply will not run this step until `tailscale.key` is in place$' <<<"$out")" \
    "the enrollment step marked as refused on every host"
# The rest of the plan is there: every other step of the example on the hosts it targets.
assert_eq 3 "$(grep -c '^  step users$' <<<"$out")" "users on every host"
assert_eq 3 "$(grep -c '^  step munge$' <<<"$out")" "munge on every host"
assert_eq 1 "$(grep -c '^  step slurm-controller$' <<<"$out")" "the Slurm controller on head"
assert_eq 2 "$(grep -c '^  step slurm-compute$' <<<"$out")" "slurmd on gpu1 and gpu2"
assert_eq 1 "$(grep -c '^  step nfs-server$' <<<"$out")" "the NFS server on head"
assert_contains "$out" "+ user alice"
last=$(tail -n 1 <<<"$out")
assert_match "$last" '^Plan: [0-9]+ to create, [0-9]+ to change on 3 of 3 hosts\. Apply will not run 3 steps until tailscale\.key is in place\.$' \
    "summary line"

step "--detailed-exitcode: 2 (changes); --json names the missing secret"
rc=0; HOME=$home "$CLOSETCTL" plan -i "$inv" --detailed-exitcode >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "plan --detailed-exitcode"
rc=0; json=$(HOME=$home "$CLOSETCTL" plan -i "$inv" --json 2>/dev/null) || rc=$?
assert_eq 0 "$rc" "plan --json"
missing=$(python3 -c '
import json, sys
plan = json.load(sys.stdin)
for h in plan["hosts"]:
    for s in h["steps"]:
        for c in s["changes"]:
            if "missing_secret" in c:
                m = c["missing_secret"]
                print(h["host"], s["name"], c["kind"], m["name"], m["fix"])
' <<<"$json")
echo "$missing"
expected=""
for h in head gpu1 gpu2; do
    expected+="$h tailscale tailscale tailscale.key put it in \`$key_path\` (mode 0600)"$'\n'
done
assert_eq "${expected%$'\n'}" "$missing" "missing_secret in the JSON plan"

step "nothing changed on the guests"
for g in head node1 node2; do
    assert_eq "absent absent absent" \
        "$(vm_ssh "$g" 'getent passwd alice >/dev/null && echo present || echo absent
                       dpkg-query -W -f="\${Status}" munge 2>/dev/null | grep -q "install ok" && echo present || echo absent
                       test -e /var/lib/closetctl/lock/holder && echo present || echo absent' | xargs)" \
        "$g: no alice, no munge, no apply lock"
done
[ ! -e "$key_path" ] || fail "closetctl made $key_path"
