#!/usr/bin/env bash
# vm-test/scenarios/40-check.sh: `closetctl check` on real guests (issue: preflight checks).
# - power --live reads the stand-in GPUs' enforced limits (node1: 4 x A100 at 400 W;
#   node2: 2 x RTX 4090, capped to 300 W here through the stand-in's config) and the
#   current draw, and the live figures replace the table's;
# - clock flags node2 once its clock is moved 10 minutes ahead (exit 1), and passes
#   again once it is moved back;
# - uids names node2 and alice once alice is created there by hand with uid 1999
#   (exit 1), and passes again after userdel;
# - network reports every guest (virtio NICs report no speed: "unknown", not a failure);
# - check all exits 0 on the restored closet.
# Works after 10-users (alice exists with uid 1001 everywhere: she is renamed aside on
# node2 for the uids step and restored) and on a fresh closet. Leaves the guests as it
# found them, also on failure.
set -euo pipefail
. "$VM_DIR/lib.sh"

INV=$VM_INVENTORY
STANDIN_CONF=/etc/nvidia-smi-standin.conf
SAVED_ALICE=alicesaved

# Python reads the JSON (vm-test/up needs python3 on the host already).
json_assert() {   # json_assert JSON PYTHON-EXPR MSG  (d is the document)
    printf '%s' "$1" | python3 -c "import json, sys; d = json.load(sys.stdin); sys.exit(0 if ($2) else 1)" \
        || fail "$3: ($2) is false for: $1"
}

restore() {
    # Clock: back to this machine's time (the guests booted with it).
    vm_ssh node2 "date -s @$(date +%s.%N) >/dev/null" || true
    # The by-hand alice, then the real one if she was renamed aside.
    vm_ssh node2 "if getent passwd alice | grep -q '^alice:x:1999:'; then userdel alice; fi" || true
    vm_ssh node2 "if getent passwd $SAVED_ALICE >/dev/null; then usermod -l alice $SAVED_ALICE; fi" || true
    # The stand-in's power limits.
    vm_ssh node2 "if [ -e $STANDIN_CONF.closetctl-test ]; then mv $STANDIN_CONF.closetctl-test $STANDIN_CONF; else rm -f $STANDIN_CONF; fi" || true
}
trap restore EXIT

step "power from the inventory alone: 250 + 1950 + 1250 = 3450 W of 5760 W"
# head: no GPUs, 250 W default base; node1: 4 x 400 W + 350 W = 1950 W;
# node2: 2 x 450 W + 350 W = 1250 W; closet-a 240 V x 30 A x 0.8 = 5760 W; 59.9 %.
rc=0; out=$("$CLOSETCTL" check power -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check power exit code"
assert_match "$out" '^closet-a +head, node1, node2 +3450 +5760 +2310 +59\.9 % +ok$' "table figures"

step "power --live: node1's four A100s at 400 W, node2's 4090s capped to 300 W"
vm_ssh node2 "[ ! -e $STANDIN_CONF ] || cp -p $STANDIN_CONF $STANDIN_CONF.closetctl-test; printf 'power.limit=300.00\n' >> $STANDIN_CONF"
assert_contains "$(vm_ssh node2 'nvidia-smi --query-gpu=power.limit --format=csv,noheader,nounits')" "300.00"
rc=0; out=$("$CLOSETCTL" check power --live -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check power --live exit code"
assert_contains "$out" "(live: enforced GPU power limits where reported)"
assert_match "$out" '^node1 +closet-a +4 x a100-sxm4-80gb +1600 +350 +1950 +4 x 400 +[0-9]+ +live$' "node1 live row"
assert_match "$out" '^node2 +closet-a +2 x rtx-4090 +600 +350 +950 +2 x 300 +[0-9]+ +live$' "node2 live row"
# Live circuit load: 250 + 1950 + 2 x 300 + 350 = 3150 W of 5760 W = 54.7 %.
assert_match "$out" '^closet-a +head, node1, node2 +3150 +5760 +2610 +54\.7 % +[0-9]+ +ok$' "live circuit row"
js=$("$CLOSETCTL" check power --live --json -i "$INV")
json_assert "$js" 'd["power"]["live"] is True' "live flag"
json_assert "$js" '[h["live_limits_watts"] for h in d["power"]["hosts"]] == [[], [400.0] * 4, [300.0] * 2]' "live limits"
json_assert "$js" 'd["power"]["hosts"][1]["draw_watts"] > 0 and d["power"]["hosts"][2]["draw_watts"] > 0' "current draw"
json_assert "$js" 'd["power"]["circuits"][0]["load_watts"] == 3150.0' "live load"
restore

step "clock: the guests agree (NTP is off in the closet: warnings at most)"
rc=0; out=$("$CLOSETCTL" check clock -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check clock exit code before"

step "clock: node2 moved 10 minutes ahead is an error naming node2"
vm_ssh node2 'date -s @$(( $(date +%s) + 600 )) >/dev/null'
rc=0; out=$("$CLOSETCTL" check clock -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 1 "$rc" "check clock exit code with node2 600 s ahead"
assert_match "$out" '^node2 +\+[0-9]+\.[0-9] s +\+(59[0-9]|6[0-9][0-9])\.[0-9] s +[a-z]+ +error$' "node2's row"
assert_match "$out" 'error: host `node2`: clock \+[0-9.]+ s from the cluster' "node2 named"
assert_match "$out" 'max pairwise skew [0-9.]+ s \(node2 ahead of (head|node1)\)' "pairwise skew"
js=$("$CLOSETCTL" check clock --json -i "$INV") || true
json_assert "$js" '[h["host"] for h in d["clock"]["hosts"] if h["severity"] == "error"] == ["node2"]' "only node2 in error"
json_assert "$js" 'd["clock"]["max_pairwise"]["ahead"] == "node2" and d["clock"]["max_pairwise"]["seconds"] >= 300' "pairwise in JSON"

step "clock: node2 moved back"
vm_ssh node2 "date -s @$(date +%s.%N) >/dev/null"
rc=0; out=$("$CLOSETCTL" check clock -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check clock exit code after"

step "uids: alice created by hand on node2 with uid 1999"
if vm_ssh node2 'getent passwd alice' >/dev/null; then
    # 10-users made alice (uid 1001) everywhere: rename her aside, keep her files and
    # group (usermod refuses while she has processes: end her sessions first).
    vm_ssh node2 "loginctl terminate-user alice 2>/dev/null || true
        for i in 1 2 3 4 5; do usermod -l $SAVED_ALICE alice 2>/dev/null && exit 0; sleep 2; done
        usermod -l $SAVED_ALICE alice"
fi
if vm_ssh node2 'getent group alice' >/dev/null; then
    vm_ssh node2 'useradd -M -N -g users -u 1999 alice'
else
    vm_ssh node2 'useradd -M -u 1999 alice'
fi
assert_match "$(vm_ssh node2 'getent passwd alice')" '^alice:x:1999:' "alice by hand on node2"
rc=0; out=$("$CLOSETCTL" check uids -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 1 "$rc" "check uids exit code with a conflict"
assert_contains "$out" 'error: user `alice` has uid 1999 on `node2`; the inventory says 1001'
assert_match "$out" '^node2 +user +alice +1001 +alice has 1999 +conflict$' "node2's alice row"
assert_not_contains "$out" 'has uid 1999 on `node1`'
js=$("$CLOSETCTL" check uids --json -i "$INV") || true
json_assert "$js" '[(a["host"], a["name"]) for a in d["uids"]["accounts"] if a["kind"] == "user" and a["status"] == "conflict"] == [("node2", "alice")]' "only node2's alice"

step "uids: userdel alice"
restore
rc=0; out=$("$CLOSETCTL" check uids -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check uids exit code after userdel"
assert_not_contains "$out" "conflict"

step "network: every guest reported (virtio NICs: speed unknown)"
rc=0; out=$("$CLOSETCTL" check network -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check network exit code"
js=$("$CLOSETCTL" check network --json -i "$INV")
json_assert "$js" '[h["host"] for h in d["network"]["hosts"]] == ["head", "node1", "node2"]' "every guest"
json_assert "$js" 'all(h["status"] in ("ok", "slow", "unknown") and h["interface"] for h in d["network"]["hosts"])' "links found"

step "check all on the restored closet"
rc=0; out=$("$CLOSETCTL" check -i "$INV" 2>&1) || rc=$?
echo "$out"
assert_eq 0 "$rc" "check all exit code"
for s in power cooling network clock uids; do assert_contains "$out" "== $s"; done
js=$("$CLOSETCTL" check all --json -i "$INV")
json_assert "$js" 'd["schema_version"] == 2 and d["severity"] != "error"' "check all JSON"
json_assert "$js" 'all(k in d for k in ("power", "cooling", "network", "clock", "uids", "findings"))' "every section"
