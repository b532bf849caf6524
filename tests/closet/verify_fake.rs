//! Verification after apply (`closetctl_exec::verify`) against fake hosts whose `munge`,
//! `unmunge` and `sinfo` answer as the real tools do: all good after a converge; a host
//! whose munged runs on another key fails `unmunge` both ways (and slurmctld never hears
//! its node); nodes down or drained are reported with their `sinfo -R` reason; a host
//! apply skipped is neither checked nor waited for.

use crate::kit::{
    apply_opts, cluster, converged, hold_lock, plan, plan_with, ApplyOptions, Closet, Loaded,
};
use closetctl_core::concerns::{munge, slurm};
use closetctl_core::diagnostic::{line, Diagnostic, Form};
use closetctl_core::lock::LOCK_DIR;
use closetctl_core::plan::render::Style;
use closetctl_core::verification::Scope;
use closetctl_exec::engine::HostOutcome;
use closetctl_exec::verify;
use closetctl_testkit::fake::FakeCluster;
use std::sync::Arc;

const INVENTORY: &str = r#"[cluster]
name = "testcloset"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "login"]

[[host]]
name = "node1"
address = "10.0.0.2"
roles = ["compute"]

[[host]]
name = "node2"
address = "10.0.0.3"
roles = ["compute"]

[[user]]
name = "alice"
uid = 1001

[slurm]
controller = "head"
fair_share = false
"#;

const HOSTS: [&str; 3] = ["head", "node1", "node2"];

/// How long the fake's wait loop may run: the fake answers at once anyway.
const WAIT: u32 = 5;

/// Verification as apply runs it, on every host: MUNGE crosswise, then the Slurm nodes.
async fn verify_all(fake: &Arc<FakeCluster>, loaded: &Loaded) -> Vec<Diagnostic> {
    let (_, facts, connections) = plan_with(fake.clone(), loaded, &[], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        slurm::context(&loaded.inventory, &facts).is_some(),
        "a slurm closet"
    );
    let scope = Scope {
        inventory: &loaded.inventory,
        facts: &facts,
        hosts: HOSTS.iter().map(|h| h.to_string()).collect(),
        wait_seconds: WAIT,
    };
    verify::all(&scope, &connections).await
}

/// `check: ok detail` lines, sorted, for whole-list comparisons (from the line apply
/// prints: `ok   munge head -> node1: decoded`).
fn lines(findings: &[Diagnostic]) -> Vec<String> {
    let mut v: Vec<String> = findings
        .iter()
        .map(|f| {
            let printed = line(f, Form::Verify, Style::plain());
            let (verdict, rest) = printed.split_at(4);
            let (what, detail) = rest.trim_start().split_once(": ").unwrap();
            let verdict = if verdict == "FAIL" { "FAIL" } else { "ok" };
            format!("{what}: {verdict} {detail}")
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn after_a_converge_every_credential_decodes_crosswise_and_every_node_is_idle() {
    let loaded = Closet::new(INVENTORY).load();
    let fake = cluster(&HOSTS);
    let options = ApplyOptions {
        verify: true,
        ..ApplyOptions::default()
    };
    let outcome = apply_opts(&fake, &loaded, &options).await;
    assert!(outcome.success(), "{:?}", outcome.verification);
    assert_eq!(
        lines(&outcome.verification),
        [
            "munge head -> node1: ok decoded",
            "munge head -> node2: ok decoded",
            "munge node1 -> head: ok decoded",
            "munge node2 -> head: ok decoded",
            "slurm node1: ok idle, gres (null)",
            "slurm node2: ok idle, gres (null)",
        ]
    );
    // One credential per host, and the controller's decoded once on each node.
    for host in HOSTS {
        let made = fake.host(host).with(|s| s.credentials_made);
        assert_eq!(made, 1, "{host}");
    }
}

#[tokio::test]
async fn a_host_whose_munged_runs_on_another_key_fails_unmunge_both_ways() {
    let loaded = Closet::new(INVENTORY).load();
    let fake = converged(&loaded, &HOSTS).await;
    // node2's munged still runs on the key Debian's postinst made (it reads the key
    // only at start): the key file is right, so the plan has nothing to change.
    fake.host("node2")
        .with(|s| s.munged_key = Some(b"debian-postinst-random-key".to_vec()));
    assert!(!plan(&fake, &loaded).await.has_changes());
    assert_eq!(
        lines(&verify_all(&fake, &loaded).await),
        [
            "munge head -> node1: ok decoded",
            "munge head -> node2: FAIL unmunge failed: unmunge: Error: Invalid credential",
            "munge node1 -> head: ok decoded",
            "munge node2 -> head: FAIL unmunge failed: unmunge: Error: Invalid credential",
            "slurm node1: ok idle, gres (null)",
            "slurm node2: FAIL down*, gres (null), reason: Not responding",
        ]
    );
}

#[tokio::test]
async fn a_host_whose_clock_is_off_by_more_than_the_ttl_fails_unmunge_both_ways() {
    let loaded = Closet::new(INVENTORY).load();
    let fake = converged(&loaded, &HOSTS).await;
    fake.host("node1").with(|s| s.epoch += 400.0);
    let findings = lines(&verify_all(&fake, &loaded).await);
    assert!(
        findings.contains(
            &"munge head -> node1: FAIL unmunge failed: unmunge: Error: Expired credential"
                .to_string()
        ) && findings.contains(
            &"munge node1 -> head: FAIL unmunge failed: unmunge: Error: Rewound credential"
                .to_string()
        ) && findings.contains(&"munge node2 -> head: ok decoded".to_string()),
        "{findings:#?}"
    );
}

#[tokio::test]
async fn nodes_that_are_not_idle_are_reported_with_their_reason() {
    let loaded = Closet::new(INVENTORY).load();
    let fake = converged(&loaded, &HOSTS).await;
    // Both nodes' slurmd stopped: the same reason for two nodes, which `sinfo -R`
    // without `-N` would print as one `node[1-2]` line.
    for node in ["node1", "node2"] {
        fake.host(node).with(|s| {
            s.units.get_mut("slurmd.service").unwrap().active = "inactive".into();
        });
    }
    let findings = verify_all(&fake, &loaded).await;
    let slurm: Vec<String> = lines(&findings)
        .into_iter()
        .filter(|l| l.starts_with("slurm "))
        .collect();
    assert_eq!(
        slurm,
        [
            "slurm node1: FAIL down*, gres (null), reason: Not responding",
            "slurm node2: FAIL down*, gres (null), reason: Not responding",
        ]
    );

    // An admin drained node1 with a reason of her own; node2 is back.
    fake.host("head").with(|s| {
        s.slurm_held.insert(
            "node1".into(),
            ("drained".into(), "fan failure, ticket 4711".into()),
        )
    });
    fake.host("node2").with(|s| {
        s.units.get_mut("slurmd.service").unwrap().active = "active".into();
    });
    let findings = verify_all(&fake, &loaded).await;
    let slurm: Vec<String> = lines(&findings)
        .into_iter()
        .filter(|l| l.starts_with("slurm "))
        .collect();
    assert_eq!(
        slurm,
        [
            "slurm node1: FAIL drained, gres (null), reason: fan failure, ticket 4711",
            "slurm node2: ok idle, gres (null)",
        ]
    );
}

#[tokio::test]
async fn a_controller_without_slurmctld_lists_no_node() {
    let loaded = Closet::new(INVENTORY).load();
    let fake = converged(&loaded, &HOSTS).await;
    fake.host("head").with(|s| {
        s.units.get_mut("slurmctld.service").unwrap().active = "failed".into();
    });
    let findings = verify_all(&fake, &loaded).await;
    let slurm: Vec<String> = lines(&findings)
        .into_iter()
        .filter(|l| l.starts_with("slurm "))
        .collect();
    assert_eq!(
        slurm,
        [
            "slurm node1: FAIL not known to slurmctld (sinfo does not list it)",
            "slurm node2: FAIL not known to slurmctld (sinfo does not list it)",
        ]
    );
}

#[tokio::test]
async fn a_host_apply_skipped_is_neither_checked_nor_waited_for() {
    let loaded = Closet::new(INVENTORY).load();
    let fake = cluster(&HOSTS);
    // Another apply holds node2's lock: this apply skips it, and node2 never gets
    // slurmd, so its node would never turn idle.
    hold_lock(&fake, "node2", "carol@laptop (closetctl pid 4242)");
    let options = ApplyOptions {
        verify: true,
        ..ApplyOptions::default()
    };
    let outcome = apply_opts(&fake, &loaded, &options).await;
    assert!(matches!(
        outcome.report.hosts["node2"],
        HostOutcome::Skipped { .. }
    ));
    assert_eq!(
        lines(&outcome.verification),
        [
            "munge head -> node1: ok decoded",
            "munge node1 -> head: ok decoded",
            "slurm node1: ok idle, gres (null)",
        ]
    );
    // The wait loop on the controller waited for node1 alone; node2 ran no check.
    let scripts = fake.host("head").scripts.lock().unwrap().clone();
    let wait = scripts
        .iter()
        .find(|s| s.contains(slurm::verify::NODE_STATES))
        .expect("the wait loop ran on the controller");
    assert!(wait.contains("^(node1)\\|"), "{wait}");
    let node2 = fake.host("node2").scripts.lock().unwrap().clone();
    assert!(
        !node2
            .iter()
            .any(|s| s == munge::verify::MAKE || s.starts_with(munge::verify::DECODE)),
        "{node2:?}"
    );
    // Once the lock is gone, the next apply converges node2 and it verifies.
    fake.host("node2").with(|s| {
        s.files.remove(&format!("{LOCK_DIR}/holder"));
    });
    let outcome = apply_opts(&fake, &loaded, &options).await;
    assert!(outcome.success(), "{:?}", outcome.verification);
    assert!(lines(&outcome.verification).contains(&"slurm node2: ok idle, gres (null)".to_string()));
}
