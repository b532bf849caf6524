#!/usr/bin/env bash
# vm-test/scenarios/92-skypilot.sh: the researchers' doors on real guests (issue 16):
# the real SkyPilot client (PyPI, pinned in vm-test/skypilot-venv) on this machine,
# pointed at the closet only through the files `closetctl export skypilot --user alice`
# writes into a scratch HOME (the login host through the closet's ssh ProxyCommand, as
# the inventory's ssh_config says). `sky check slurm` must report the cluster enabled,
# `sky show-gpus --infra slurm` must list the A100-80GB and RTX4090 pools with their
# counts, and a `sky launch --gpus A100-80GB:1` must reach Slurm as alice with the
# typed GRES (gpu:a100-80gb:1) and run on node1: the nodes have no internet, so the
# launch cannot fetch SkyPilot's runtime and stops after that; the log says where (on
# 2026-11-30, with curl on the nodes: the job RUNNING, "Instance is
# up", its runtime files rsynced to the node, then "Failed to set up SkyPilot runtime":
# "curl: (6) Could not resolve host: astral.sh", no uv; before curl: "command not found").
# Before that: what apply makes true for SkyPilot (sshd, rsync and curl on the compute nodes, rsync and getent on the
# login host, typed GRES, and node1 and node2 resolved on head to their inventory
# addresses: head's image lines for them are removed first, `check network` warns,
# apply writes its block of /etc/hosts, `getent` and `check network` then find them). Then `closetctl export transformerlab`: its storage path is shared (a job
# with its --gres flag writes there on a node, head reads it).
set -euo pipefail
. "$VM_DIR/lib.sh"

INV=$VM_STATE/skypilot-inventory.toml
cp "$VM_INVENTORY" "$INV"
grep -q '^\[nfs\]' "$INV" || fail "no [nfs] in the inventory"
ALICE_KEY=$VM_STATE/keys/alice_ed25519
[ -f "$ALICE_KEY" ] || fail "no test key for alice ($ALICE_KEY)"

step "the SkyPilot client: a pinned release from PyPI in a venv"
timer_start skypilot-venv
venv=$("$VM_DIR/skypilot-venv" | tail -n 1)
timer_stop skypilot-venv
[ -x "$venv/bin/sky" ] || fail "no sky in $venv"

step "head forgets the node names: check network says so"
# The image's /etc/hosts names every guest (vm-test/guest/closetctl-guest-setup); a real
# login host may not. Without those lines the names must come from apply's block.
vm_ssh head "sed -i '/^10\.77\.0\.1[12][[:space:]]/d' /etc/hosts"
assert_fails vm_ssh head getent ahostsv4 node1
rc=0; out=$("$CLOSETCTL" check network -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_match "$out" '^node1 +10\.77\.0\.11 +- +missing$' "node1 does not resolve on head"
assert_contains "$out" 'node name `node1` does not resolve'

step "apply: the cluster SkyPilot needs"
timer_start apply
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
timer_stop apply
echo "$out" | tail -n 20
assert_eq 0 "$rc" "apply exit code"
for n in node1 node2; do
    for p in openssh-server rsync curl; do
        assert_eq "install ok installed" "$(vm_ssh "$n" dpkg-query -W -f="'\${Status}'" "$p")" "$p on $n"
    done
    assert_ok vm_ssh "$n" test -x /usr/sbin/sshd
done
assert_ok vm_ssh head command -v rsync sinfo sbatch
for u in alice bob; do
    assert_match "$(vm_ssh head getent passwd "$u")" "^$u:x:[0-9]+:" "getent passwd $u on the login host"
done
assert_match "$(vm_ssh head scontrol show node node1)" 'Gres=gpu:a100-80gb:4' "node1's GRES type is SkyPilot's A100-80GB"
assert_match "$(vm_ssh head scontrol show node node2)" 'Gres=gpu:rtx4090:2' "node2's GRES type is SkyPilot's RTX4090"
hosts=$(vm_ssh head cat /etc/hosts)
echo "$hosts"
assert_match "$hosts" '^# BEGIN closetctl: Slurm node names' "closetctl's block in head's /etc/hosts"
assert_contains "$hosts" $'\n10.77.0.11 node1\n10.77.0.12 node2\n# END closetctl' "the node lines in head's /etc/hosts"
assert_contains "$hosts" "127.0.0.1	localhost"
assert_match "$(vm_ssh head getent ahostsv4 node2)" '^10\.77\.0\.12 ' "getent ahostsv4 node2 on head"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan after apply is empty"

step "check network: head resolves the node names (SkyPilot runs getent ahostsv4 NODE there)"
rc=0; out=$("$CLOSETCTL" check network -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check network exit code"
assert_contains "$out" "node names on head (getent ahostsv4"
assert_match "$out" '^node1 +10\.77\.0\.11 +10\.77\.0\.11 +ok$' "node1 resolves on head"
assert_match "$out" '^node2 +10\.77\.0\.12 +10\.77\.0\.12 +ok$' "node2 resolves on head"
assert_not_contains "$out" 'node name `' "no node-name warning"
js=$("$CLOSETCTL" check network --json -i "$INV")
printf '%s' "$js" | python3 -c '
import json, sys
n = json.load(sys.stdin)["network"]["node_names"]
assert n["login_host"] == "head", n
assert [(x["node"], x["resolved"], x["status"]) for x in n["nodes"]] == [
    ("node1", "10.77.0.11", "ok"), ("node2", "10.77.0.12", "ok")], n
' || fail "check network --json: node1 and node2 resolve on head: $js"

scratch=$(mktemp -d /tmp/closetctl-sky.XXXXXX)
port=46591   # the scratch API server's own port, not a real user's 46580
# Nothing of this machine's environment: the scratch HOME, the venv, the API server port.
SKY=(env -i HOME="$scratch" PATH="$venv/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8
    SKYPILOT_API_SERVER_LOCAL_PORT="$port" SKYPILOT_DISABLE_USAGE_COLLECTION=1
    TERM=dumb NO_COLOR=1 "$venv/bin/sky")
sky() { "${SKY[@]}" "$@"; }
cleanup_sky() {
    timeout 60 "${SKY[@]}" api stop >/dev/null 2>&1 || true
    vm_ssh head "scancel -u alice" >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup_sky EXIT

step "export skypilot --user alice --out SCRATCH_HOME"
out=$("$CLOSETCTL" export skypilot -i "$INV" --user alice --identity-file "$ALICE_KEY" --offline --out "$scratch" 2>&1)
echo "$out"
assert_contains "$out" "wrote $scratch/.slurm/config"
assert_contains "$out" "wrote $scratch/.sky/config.yaml"
cat "$scratch/.slurm/config" "$scratch/.sky/config.yaml"
assert_match "$(cat "$scratch/.slurm/config")" 'Host closet'$'\n''    HostName 10\.77\.0\.10'$'\n''    User alice' "the Host entry"
assert_contains "$(cat "$scratch/.slurm/config")" "ProxyCommand ip netns exec $VM_NS nc %h %p"
assert_contains "$(cat "$scratch/.sky/config.yaml")" 'workdir: "/home/alice"'
assert_eq "600 700" "$(stat -c %a "$scratch/.slurm/config") $(stat -c %a "$scratch/.slurm")" "modes"
again=$("$CLOSETCTL" export skypilot -i "$INV" --user alice --identity-file "$ALICE_KEY" --offline --out "$scratch" 2>&1)
assert_contains "$again" "unchanged $scratch/.slurm/config"
cp "$scratch/.sky/config.yaml" "$scratch/config.before"
echo "# mine" >>"$scratch/.sky/config.yaml"
rc=0; refused=$("$CLOSETCTL" export skypilot -i "$INV" --user alice --identity-file "$ALICE_KEY" --offline --out "$scratch" 2>&1) || rc=$?
assert_eq 1 "$rc" "a changed config.yaml is not replaced"
assert_contains "$refused" "config.yaml exists with other content"
assert_contains "$(tail -n 1 "$scratch/.sky/config.yaml")" "# mine"
cp "$scratch/config.before" "$scratch/.sky/config.yaml"

step "sky check slurm"
timer_start sky-check
rc=0; check=$(sky check slurm 2>&1) || rc=$?
timer_stop sky-check
echo "$check"
assert_eq 0 "$rc" "sky check exit code"
assert_match "$check" 'Slurm.*enabled' "Slurm enabled"
assert_match "$check" 'closet.*enabled' "the closet cluster enabled"
assert_not_contains "$check" "disabled"

step "sky show-gpus --infra slurm"
timer_start sky-show-gpus
rc=0; gpus=$(sky show-gpus --infra slurm 2>&1) || rc=$?
timer_stop sky-show-gpus
echo "$gpus"
assert_eq 0 "$rc" "sky show-gpus exit code"
assert_match "$gpus" 'A100-80GB +1, 2, 4 +4 of 4 free' "the A100-80GB pool: 4 on node1"
assert_match "$gpus" 'RTX4090 +1, 2 +2 of 2 free' "the RTX4090 pool: 2 on node2"

step "sky launch --gpus A100-80GB:1 (offline: as far as it gets)"
# A launch canonicalizes the GPU name against SkyPilot's hosted catalogue
# (common/accelerators.csv and common/metadata.csv, fetched from the internet into
# ~/.sky/catalogs/v8 on first use); this machine has no internet, so the scratch HOME
# gets the STAND-IN vm-test/standins/skypilot-catalog writes: the real files' format
# and rows, cut to the closet's GPUs. Real here: the SkyPilot client and API server,
# the exported ~/.slurm/config and ~/.sky/config.yaml, ssh to head, sinfo/sbatch/squeue
# and the job on node1 (only its GPUs are nvidia-smi stand-ins, vm-test/guest).
"$VM_DIR/standins/skypilot-catalog" "$scratch/.sky/catalogs/v8/common"
# Watch Slurm while SkyPilot launches: the job it submits as alice, with its GRES.
seen=$scratch/squeue.log
( for _ in $(seq 1 300); do
      vm_ssh head "squeue -h -u alice -o '%i %j %b %N %T'" 2>/dev/null || true
      sleep 2
  done ) >"$seen" &
watcher=$!
timer_start sky-launch
# The guests have one vCPU and 1 GiB: SkyPilot's default (2 CPUs, 2 GB) fits no node.
rc=0; launch=$(timeout 420 "${SKY[@]}" launch -y -c closetctl-probe --infra slurm --gpus A100-80GB:1 --cpus 1 --memory 0.5 \
    -- nvidia-smi -L 2>&1 </dev/null) || rc=$?
timer_stop sky-launch
kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true
echo "$launch" | tail -n 40
echo "sky launch exit code: $rc"
echo "--- alice's jobs seen in squeue during the launch:"
sort -u "$seen"
assert_match "$(cat "$seen")" 'gpu:a100-80gb:1' "SkyPilot's job asked Slurm for gpu:a100-80gb:1"
assert_match "$(cat "$seen")" ' node1 RUNNING' "the job ran on node1"
timeout 120 "${SKY[@]}" down -y closetctl-probe >/dev/null 2>&1 || true

step "export transformerlab --user alice: the storage is shared, the --gres flag schedules"
tl=$("$CLOSETCTL" export transformerlab -i "$INV" --user alice --offline --gpus 1 2>&1)
echo "$tl"
assert_contains "$tl" "TFL_STORAGE_URI=/home/alice/transformerlab"
assert_contains "$tl" '"user_sbatch_flags":"--gres=gpu:1"'
assert_contains "$tl" '"ssh_host":"10.77.0.10"'
assert_contains "$tl" "lab provider add --no-interactive --name 'closet' --type slurm --config '"
ssh -F "$VM_SSH_CONFIG" -i "$ALICE_KEY" -o IdentitiesOnly=yes -o User=alice -o ControlMaster=no -o ControlPath=none head \
    "mkdir -p /home/alice/transformerlab && sbatch --wait --gres=gpu:1 -o /dev/null --wrap 'hostname > /home/alice/transformerlab/probe; printenv CUDA_VISIBLE_DEVICES >> /home/alice/transformerlab/probe'" \
    </dev/null >/dev/null || fail "alice's job with --gres=gpu:1 failed"
probe=$(vm_ssh head cat /home/alice/transformerlab/probe)
echo "$probe"
assert_match "$probe" '^node[12]'$'\n''0$' "written on a node with one GPU, read on head"
