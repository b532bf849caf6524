//! What issue 17 made cheaper, on fake hosts: a no-op apply is a plan (the probe and
//! the lock release, no verification round unless asked: `apply --verify`), and the
//! GPU inventory is asked from `nvidia-smi` once per boot and device nodes, while
//! `check --live` and `facts` (which ask everything, fresh) always ask.

use crate::kit::{apply_opts, apply_with, gpus, plan, plan_with, ApplyOptions, Closet, Loaded};
use closetctl_core::facts::probe::ProbeRequest;
use closetctl_exec::engine;
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
gpus = { model = "a100-sxm4-80gb", count = 2 }

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

/// Fresh hosts, node1 with its two A100s.
fn fresh() -> (Loaded, Arc<FakeCluster>) {
    let loaded = Closet::new(INVENTORY).load();
    let fake = Arc::new(FakeCluster::debian(&HOSTS));
    fake.host("node1")
        .with(|s| s.gpus = gpus("NVIDIA A100-SXM4-80GB", 2, 81920, 400.0));
    (loaded, fake)
}

/// A closet one apply converged.
async fn closet() -> (Loaded, Arc<FakeCluster>) {
    let (loaded, fake) = fresh();
    let outcome = apply_opts(&fake, &loaded, &ApplyOptions::default()).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    assert!(!plan(&fake, &loaded).await.has_changes());
    (loaded, fake)
}

fn runs(fake: &FakeCluster) -> Vec<usize> {
    HOSTS.iter().map(|h| fake.host(h).runs()).collect()
}

fn credentials(fake: &FakeCluster) -> u64 {
    HOSTS
        .iter()
        .map(|h| fake.host(h).with(|s| s.credentials_made))
        .sum()
}

#[tokio::test]
async fn a_noop_apply_is_one_probe_without_the_lock_and_verifies_only_when_asked() {
    let (loaded, fake) = closet().await;
    // As `closetctl apply` runs it: verification after changes.
    let cli = ApplyOptions {
        verify: true,
        ..ApplyOptions::default()
    };
    let before = runs(&fake);
    let made = credentials(&fake);
    let outcome = apply_opts(&fake, &loaded, &cli).await;
    assert!(!outcome.plan.has_changes());
    assert!(outcome.success());
    assert!(outcome.after.is_none(), "no second plan");
    assert!(
        outcome.verification.is_empty(),
        "{:?}",
        outcome.verification
    );
    let after: Vec<usize> = runs(&fake);
    for ((host, b), a) in HOSTS.iter().zip(&before).zip(&after) {
        assert_eq!(a - b, 1, "{host}: the probe, nothing else");
        let scripts = fake.host(host).scripts.lock().unwrap().clone();
        let probe = &scripts[*b];
        assert!(probe.starts_with("# closetctl fact probe\n"), "{host}");
        assert!(
            probe.contains("\nLOCK_RUN=''\n"),
            "{host}: the probe did not ask for the lock"
        );
    }
    assert_eq!(credentials(&fake), made, "no munge -n without --verify");

    // `apply --verify`: the checks run although nothing changed.
    let verify = ApplyOptions {
        verify_unchanged: true,
        ..cli.clone()
    };
    let outcome = apply_opts(&fake, &loaded, &verify).await;
    assert!(outcome.success(), "{:?}", outcome.verification);
    assert_eq!(outcome.verification.len(), 6, "{:?}", outcome.verification);
    assert!(credentials(&fake) > made);

    // What only the verification can see: node2's munged runs on another key (the key
    // file is right, so the plan is empty).
    fake.host("node2")
        .with(|s| s.munged_key = Some(b"debian-postinst-random-key".to_vec()));
    assert!(apply_opts(&fake, &loaded, &cli).await.success());
    let outcome = apply_opts(&fake, &loaded, &verify).await;
    assert!(!outcome.plan.has_changes());
    assert!(!outcome.success(), "apply --verify finds the wrong key");
}

#[tokio::test]
async fn nvidia_smi_runs_once_per_boot_and_device_nodes_but_always_for_check_live() {
    let (loaded, fake) = closet().await;
    let node1 = fake.host("node1");
    let asked = || node1.with(|s| s.nvidia_smi_runs);
    let first = asked();
    assert!(first >= 1);
    for _ in 0..3 {
        let p = plan(&fake, &loaded).await;
        assert!(!p.has_changes());
    }
    assert_eq!(
        asked(),
        first,
        "plans read the GPU inventory cached on the host"
    );

    // `check --live` and `facts` ask everything, GPUs fresh.
    let everything = loaded
        .inventory
        .hosts
        .iter()
        .map(|h| (h.name.clone(), ProbeRequest::everything()))
        .collect();
    let (_, facts) = engine::gather(fake.clone(), &loaded.inventory.hosts, everything, None).await;
    assert_eq!(asked(), first + 1);
    assert_eq!(facts.hosts["node1"].gpus.len(), 2);

    // A reboot (new boot id) with a card gone: the next plan asks again and sees it.
    node1.with(|s| {
        s.boot_id = "boot-2".into();
        s.gpus.pop();
    });
    let (_, facts, _) = plan_with(fake.clone(), &loaded, &[], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(asked(), first + 2);
    assert_eq!(facts.hosts["node1"].gpus.len(), 1, "the card is gone");
    let (_, facts, _) = plan_with(fake.clone(), &loaded, &[], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        facts.hosts["node1"].gpus.len(),
        1,
        "the cache holds the new answer"
    );
    assert_eq!(asked(), first + 2);
}

/// Apply on fresh hosts, collecting the engine's events as the reporter would get them.
async fn apply_collecting(fake: &Arc<FakeCluster>, loaded: &Loaded) -> Vec<engine::Event> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    apply_with(
        fake.clone(),
        loaded,
        &ApplyOptions::default(),
        Some(tx),
        |_| true,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    events
}

/// The progress lines one host got, as `closetctl apply` prints them without a terminal.
fn lines_of(events: &[engine::Event], host: &str) -> Vec<String> {
    events
        .iter()
        .map(closetctl::report::line)
        .filter(|l| l.starts_with(&format!("{host}: step ")))
        .collect()
}

#[tokio::test]
async fn the_install_of_every_steps_packages_is_announced_before_the_steps() {
    let (loaded, fake) = fresh();
    let events = apply_collecting(&fake, &loaded).await;
    for host in HOSTS {
        let lines = lines_of(&events, host);
        assert!(lines.len() > 2, "{host}: {lines:#?}");
        assert_eq!(
            lines[..2],
            [
                format!("{host}: step packages: running 1 operations"),
                format!("{host}: step packages: done"),
            ],
            "{lines:#?}"
        );
    }
}

#[tokio::test]
async fn an_install_apt_refuses_is_announced_and_each_step_installs_its_own() {
    let (loaded, fake) = fresh();
    fake.host("node2").with(|s| s.available.remove("slurmd"));
    let events = apply_collecting(&fake, &loaded).await;
    let lines = lines_of(&events, "node2");
    assert!(
        lines[1].starts_with(
            "node2: step packages: apt could not install them at once (install munge slurmd "
        ) && lines[1]
            .ends_with(" failed: E: Unable to locate package slurmd); each step installs its own"),
        "{lines:#?}"
    );
    // The step that needs it fails with apt's word; the one before it installed its own.
    assert!(
        lines.iter().any(
            |l| l.starts_with("node2: step slurm-node-config: FAILED:") && l.contains("slurmd")
        ),
        "{lines:#?}"
    );
    assert!(fake
        .host("node2")
        .with(|s| s.installed.contains_key("munge")));
    for host in ["head", "node1"] {
        assert_eq!(
            lines_of(&events, host)[1],
            format!("{host}: step packages: done")
        );
    }
}
