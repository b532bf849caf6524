#!/usr/bin/env bash
# vm-test/scenarios/90-frontdoors.sh: the researchers' side on real guests. After one
# apply of the closet inventory (fair share on, PriorityCalcPeriod=1 so usage shows
# within a minute or two): a `srun --gres=gpu:2` job is in sacct with `gres/gpu=2` in
# its TRES; with alice's `--gres=gpu:a100-80gb:2` job on node1 and bob's CPU job on node2
# running, `closetctl status` (as root from this machine, and as plain alice on head
# with the binary copied there: the controller asked locally, the nodes over her own
# ssh) shows node1's 4 A100 as 2 allocated / 2 free and both jobs, checked against
# `scontrol show node node1` and `squeue`; `sshare` shows a larger usage for alice (GPU)
# than for bob (CPU, same wall time); plan after apply is empty.
# FRONTDOORS_CAPTURE (default $VM_STATE/frontdoors-capture) keeps the raw scontrol and
# nvidia-smi output the parsers' tests use.
set -euo pipefail
. "$VM_DIR/lib.sh"

INV=$VM_STATE/frontdoors-inventory.toml
CAPTURE=${FRONTDOORS_CAPTURE:-$VM_STATE/frontdoors-capture}
mkdir -p "$CAPTURE"
# Fair share recomputes usage every PriorityCalcPeriod minutes (default 5).
sed 's/^controller = "head"$/controller = "head"\noptions = { PriorityCalcPeriod = "1" }/' "$VM_INVENTORY" >"$INV"
grep -q 'PriorityCalcPeriod' "$INV" || fail "could not set PriorityCalcPeriod in the inventory"

step "apply: GPU TRES and billing weights in slurm.conf"
timer_start apply
rc=0; out=$("$CLOSETCTL" apply -i "$INV" --yes 2>&1) || rc=$?
timer_stop apply
echo "$out" | tail -n 30
assert_eq 0 "$rc" "apply exit code"
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan after apply is empty"
config=$(vm_ssh head scontrol show config)
tres_line=$(grep '^AccountingStorageTRES' <<<"$config")
echo "$tres_line"
for t in gres/gpu gres/gpu:a100-80gb gres/gpu:rtx4090; do
    assert_match "$tres_line" "[ =,]$t(,|\$)" "slurmctld tracks $t"
done
assert_match "$(vm_ssh head scontrol show partition gpu)" 'TRESBillingWeights=CPU=1,GRES/gpu=10' "the partition bills GPUs"
assert_match "$(vm_ssh head sacctmgr -nP show tres format=type,name)" '^gres\|gpu:a100-80gb$' "the typed GPU TRES is in the database"

step "sacct: a srun --gres=gpu:2 job has gres/gpu=2 in its TRES"
vm_ssh head srun --gres=gpu:2 true
tres=
for _ in $(seq 1 30); do
    tres=$(vm_ssh head sacct -u root -n -X -P -o jobid,alloctres,state | tail -n 1)
    case $tres in *COMPLETED*) break ;; esac
    sleep 1
done
echo "$tres"
assert_match "$tres" '(^|[|,])gres/gpu=2(,|\||$)' "sacct AllocTRES of the GPU job"

step "alice: --gres=gpu:a100-80gb:2 on node1; bob: a CPU job on node2"
alice_job=$(vm_ssh head "su - alice -c 'sbatch --parsable -w node1 --gres=gpu:a100-80gb:2 -o /dev/null --wrap \"sleep 900\"'")
bob_job=$(vm_ssh head "su - bob -c 'sbatch --parsable -w node2 -t 60 -o /dev/null --wrap \"sleep 900\"'")
echo "alice $alice_job, bob $bob_job"
trap 'vm_ssh head scancel "$alice_job" "$bob_job" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 60); do
    running=$(vm_ssh head squeue -h -t RUNNING -o '%i' | sort | tr '\n' ' ')
    [ "$running" = "$(printf '%s\n' "$alice_job" "$bob_job" | sort | tr '\n' ' ')" ] && break
    sleep 1
done
squeue=$(vm_ssh head squeue -h -o "'%i|%u|%a|%T|%N|%b'")
echo "$squeue"
assert_match "$squeue" "^$alice_job\\|alice\\|vision-lab\\|RUNNING\\|node1\\|" "alice's job runs on node1"
assert_match "$squeue" "^$bob_job\\|bob\\|nlp-lab\\|RUNNING\\|node2\\|" "bob's job runs on node2"
node1=$(vm_ssh head scontrol -d -o show node node1)
echo "$node1"
assert_match "$node1" 'AllocTRES=[^ ]*gres/gpu=2' "slurmctld: node1 has 2 GPUs allocated"
assert_match "$node1" 'Gres=gpu:a100-80gb:4' "slurmctld: node1 has 4 A100"
vm_ssh head scontrol -d -o show node >"$CAPTURE/scontrol-show-node.txt"
vm_ssh head scontrol -d -o show job >"$CAPTURE/scontrol-show-job.txt"
vm_ssh node1 nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,power.draw,power.limit,driver_version --format=csv,noheader,nounits >"$CAPTURE/nvidia-smi-query.csv"
vm_ssh node1 nvidia-smi --version >"$CAPTURE/nvidia-smi-version.txt"

# check_status JSON TABLE WHO: node1 2 of 4 A100 allocated, 2 free; both jobs; live GPUs.
check_status() {
    local json=$1 table=$2 who=$3
    assert_eq "2 2 4 a100-80gb" "$(jq -r '.nodes[] | select(.name == "node1") | .gpus[0] | "\(.allocated) \(.free) \(.total) \(.type)"' <<<"$json")" "$who: node1 GPUs allocated/free/total"
    assert_eq "0 2" "$(jq -r '.nodes[] | select(.name == "node2") | .gpus[0] | "\(.allocated) \(.free)"' <<<"$json")" "$who: node2 GPUs"
    assert_eq "alice vision-lab RUNNING 2 a100-80gb node1" "$(jq -r --arg id "$alice_job" '.jobs[] | select(.id == $id) | "\(.user) \(.account) \(.state) \(.gpus) \(.gpu_type) \(.nodes)"' <<<"$json")" "$who: alice's job"
    assert_eq "bob nlp-lab RUNNING 0 node2 3600" "$(jq -r --arg id "$bob_job" '.jobs[] | select(.id == $id) | "\(.user) \(.account) \(.state) \(.gpus) \(.nodes) \(.time_limit_seconds)"' <<<"$json")" "$who: bob's job"
    assert_eq "$(cut -d'|' -f1 <<<"$squeue" | sort | tr '\n' ' ')" "$(jq -r '.jobs[].id' <<<"$json" | sort | tr '\n' ' ')" "$who: the jobs squeue lists"
    assert_eq "4 2" "$(jq -r '[.nodes[] | select(.name == "node1" or .name == "node2") | .live.gpus | length] | join(" ")' <<<"$json")" "$who: live GPU figures from both nodes"
    assert_eq "535.183.01 12.2" "$(jq -r '.nodes[] | select(.name == "node1") | "\(.live.driver) \(.live.cuda)"' <<<"$json")" "$who: driver and CUDA"
    assert_match "$table" '^node1 +alloc +a100-80gb:2/4 +2 ' "$who: node1's table line"
    assert_match "$table" "^$alice_job +alice +vision-lab +RUNNING +a100-80gb:2 +node1 " "$who: alice's table line"
    assert_match "$table" "^$bob_job +bob +nlp-lab +RUNNING +- +node2 " "$who: bob's table line"
    assert_match "$table" '^circuit closet-a: [0-9]+ W of 5760 W usable' "$who: the circuit's draw"
}

step "closetctl status as root from this machine"
timer_start status-root
json=$("$CLOSETCTL" status -i "$INV" --json)
timer_stop status-root
table=$("$CLOSETCTL" status -i "$INV")
echo "$table"
check_status "$json" "$table" root
# --watch keeps its connections: after the first, a refresh is one script per host.
watch=$(timeout 30 "$CLOSETCTL" status -i "$INV" --watch 2 || true)
refreshes=$(grep -o 'cluster closet (controller head)' <<<"$watch" | wc -l)
echo "--watch 2 for 30 s: $refreshes refreshes"
[ "$refreshes" -ge 3 ] || fail "--watch refreshed $refreshes times in 30 s"

assert_contains "$watch" $'\e[H\e[2J' "--watch redraws in place"

step "closetctl status as plain alice on head (controller local, nodes over her ssh)"
vm_scp "$CLOSETCTL" head:/usr/local/bin/closetctl
grep -v '^config = ' "$INV" | ssh -F "$VM_SSH_CONFIG" head -- 'install -d -m 755 /etc/closetctl && cat >/etc/closetctl/inventory.toml && chmod 644 /etc/closetctl/inventory.toml'
# Alice's own key (the inventory's) and the nodes' host keys, as she would set them up.
ssh -F "$VM_SSH_CONFIG" head -- "su - alice -c 'umask 077; cat > ~/.ssh/id_ed25519'" <"$VM_STATE/keys/alice_ed25519"
vm_ssh head "su - alice -c 'ssh-keyscan -t ed25519 $(vm_ip node1) $(vm_ip node2) 2>/dev/null >> ~/.ssh/known_hosts'"
timer_start status-alice
rc=0; json=$(vm_ssh head "su - alice -c 'closetctl status -i /etc/closetctl/inventory.toml --json'") || rc=$?
timer_stop status-alice
assert_eq 0 "$rc" "status as alice"
table=$(vm_ssh head "su - alice -c 'closetctl status -i /etc/closetctl/inventory.toml'")
echo "$table"
check_status "$json" "$table" alice
assert_eq "[]" "$(jq -c '.warnings' <<<"$json")" "no warnings for alice"

step "sshare: alice's GPU hours weigh more than bob's CPU hours"
# slurmctld adds running jobs' usage every PriorityCalcPeriod (5 min by default): wait
# past one whole period (the jobs run 15 min).
usage=
for _ in $(seq 1 80); do
    usage=$(vm_ssh head sshare -a -n -P -o user,rawusage)
    a=$(awk -F'|' '$1 == "alice" { s += $2 } END { print s + 0 }' <<<"$usage")
    b=$(awk -F'|' '$1 == "bob" { s += $2 } END { print s + 0 }' <<<"$usage")
    [ "$a" -gt 0 ] && [ "$b" -gt 0 ] && break
    sleep 5
done
echo "$usage"
echo "RawUsage: alice $a, bob $b"
[ "$b" -gt 0 ] || fail "bob's usage never showed in sshare"
[ "$a" -gt $(( 5 * b )) ] || fail "alice's GPU usage ($a) is not well above bob's CPU usage ($b)"

vm_ssh head scancel "$alice_job" "$bob_job"
trap - EXIT
rc=0; "$CLOSETCTL" plan -i "$INV" --detailed-exitcode >/dev/null || rc=$?
assert_eq 0 "$rc" "plan still empty"
