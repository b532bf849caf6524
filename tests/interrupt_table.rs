//! The interruption table on fake hosts: a fresh converge of a three-host closet (users,
//! MUNGE, accounting, Slurm, NFS), with closetctl killed after op k of host H for every
//! host and every k, then the next apply (after `closetctl unlock` exactly where the
//! plan says so). Every case must end converged with an empty plan, and every handler
//! of the fresh converge must have run exactly once across the two applies: none
//! forgotten (the journal of owed handlers), none run twice.

use closetctl::command::unlock::{unlock_with, Outcome};
use closetctl::command::{apply_with, plan_with, ApplyOptions, Loaded};
use closetctl::report::Reporter;
use closetctl_core::lock::Owner;
use closetctl_core::plan::render::{self, Style};
use closetctl_core::plan::{HostStatus, Plan};
use closetctl_testkit::fake::FakeCluster;
use std::collections::BTreeMap;
use std::sync::Arc;

const INVENTORY: &str = r#"[cluster]
name = "closet"

[[host]]
name = "head"
address = "10.0.0.10"
roles = ["controller", "nfs-server", "login"]

[[host]]
name = "node1"
address = "10.0.0.11"
roles = ["compute"]

[[host]]
name = "node2"
address = "10.0.0.12"
roles = ["compute"]

[[group]]
name = "vision-lab"
gid = 2001

[[user]]
name = "alice"
uid = 1001
groups = ["vision-lab"]

[nfs]
server = "head"
network = "10.0.0.0/24"
exports = [ { path = "/home" } ]

[slurm]
controller = "head"
"#;

const HOSTS: [&str; 3] = ["head", "node1", "node2"];

fn cluster() -> Arc<FakeCluster> {
    Arc::new(FakeCluster::debian(&HOSTS))
}

/// This machine's closetctl, but with a pid that is gone: the killed apply.
fn killed_owner() -> Owner {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let mut o = closetctl_exec::local::current_owner();
    o.pid = pid;
    o
}

async fn apply(
    fake: &Arc<FakeCluster>,
    loaded: &Loaded,
    owner: Option<Owner>,
) -> closetctl::command::ApplyOutcome {
    let reporter = Reporter::start();
    let options = ApplyOptions {
        owner,
        ..ApplyOptions::default()
    };
    let outcome = apply_with(
        fake.clone(),
        loaded,
        &options,
        Some(reporter.sender()),
        |_| true,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    reporter.finish().await;
    outcome
}

async fn plan(fake: &Arc<FakeCluster>, loaded: &Loaded) -> Plan {
    plan_with(fake.clone(), loaded, &[], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// Journal ids of every handler of the plan, by host.
fn handler_ids(plan: &Plan) -> BTreeMap<String, Vec<String>> {
    plan.hosts
        .iter()
        .map(|h| {
            let mut ids: Vec<String> = h
                .steps
                .iter()
                .flat_map(|s| {
                    s.handlers
                        .iter()
                        .map(|x| closetctl_core::journal::id(&s.name, &x.name))
                })
                .collect();
            ids.sort();
            (h.host.clone(), ids)
        })
        .collect()
}

fn paid(fake: &FakeCluster) -> BTreeMap<String, Vec<String>> {
    fake.hosts
        .iter()
        .map(|(n, h)| {
            let mut ids = h.with(|s| s.handlers_paid.clone());
            ids.sort();
            (n.clone(), ids)
        })
        .collect()
}

/// One row of the table: what happened when closetctl was killed there.
struct Row {
    host: &'static str,
    after_ops: usize,
    step: String,
    op: String,
    stale: Vec<String>,
    owed: usize,
}

#[tokio::test]
async fn killed_after_any_op_the_next_apply_converges_and_runs_each_handler_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), INVENTORY).unwrap();
    let loaded = Loaded::load(&dir.path().join("inventory.toml")).unwrap_or_else(|e| panic!("{e}"));

    // The reference: a clean fresh converge, its ops per host and its handlers.
    let reference = cluster();
    let fresh = plan(&reference, &loaded).await;
    let expected = handler_ids(&fresh);
    let clean = apply(&reference, &loaded, None).await;
    assert!(clean.success(), "{:?}", clean.report);
    assert_eq!(
        paid(&reference),
        expected,
        "a clean run runs each handler once"
    );
    for host in HOSTS {
        assert!(
            expected[host].contains(&closetctl_core::journal::id("munge", "restart munged")),
            "{host}"
        );
    }
    assert!(expected["node1"].contains(&closetctl_core::journal::id(
        "slurm-compute",
        "restart slurmd"
    )));
    assert!(expected["head"].contains(&closetctl_core::journal::id("nfs-server", "re-export")));
    // Which step and op each index of a host is, for the table.
    let mut ops_of: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for host in HOSTS {
        let hp = fresh.hosts.iter().find(|h| h.host == host).unwrap();
        ops_of.insert(
            host,
            hp.steps
                .iter()
                .flat_map(|s| {
                    s.ops()
                        .into_iter()
                        .map(|op| (s.name.clone(), op.describe()))
                })
                .collect(),
        );
    }

    let mut rows = Vec::new();
    for host in HOSTS {
        for (k, (step, op)) in ops_of[host].clone().into_iter().enumerate() {
            let fake = cluster();
            fake.host(host).with(|s| s.kill_after_ops = Some(k));
            let killed = apply(&fake, &loaded, Some(killed_owner())).await;
            assert!(fake.was_killed(), "{host} after {k} ops: not killed");
            assert!(!killed.success());
            fake.revive();

            // The next plan names the stale locks and the command; nothing else is in the way.
            let p = plan(&fake, &loaded).await;
            let mut stale = Vec::new();
            for hp in &p.hosts {
                match hp.status {
                    HostStatus::Ready => {}
                    HostStatus::Locked => {
                        assert!(
                            hp.unlock.is_some(),
                            "{host}/{k}: {} locked without an unlock command: {:?}",
                            hp.host,
                            hp.error
                        );
                        stale.push(hp.host.clone());
                    }
                    other => panic!("{host}/{k}: {} is {other:?}", hp.host),
                }
            }
            let owed: usize = fake
                .hosts
                .values()
                .map(|h| {
                    h.with(|s| {
                        s.files
                            .keys()
                            .filter(|f| f.starts_with("/var/lib/closetctl/owed/"))
                            .count()
                    })
                })
                .sum();
            if !stale.is_empty() {
                let cmd = render::unlock_all(&p).unwrap();
                assert!(cmd.starts_with("closetctl unlock -i "), "{cmd}");
                let outcomes = unlock_with(fake.clone(), &loaded, &stale, |_| true)
                    .await
                    .unwrap();
                for (h, o) in &outcomes {
                    assert!(
                        matches!(o, Outcome::Broken { .. }),
                        "{host}/{k}: {h}: {o:?}"
                    );
                }
            }
            let next = apply(&fake, &loaded, None).await;
            assert!(
                next.success(),
                "{host} after {k} ops: {:?}\n{}",
                next.report,
                render::text(next.after.as_ref().unwrap(), Style::plain())
            );
            let again = plan(&fake, &loaded).await;
            assert!(
                !again.has_changes() && !again.has_blockers(),
                "{host}/{k}:\n{}",
                render::text(&again, Style::plain())
            );
            assert_eq!(
                paid(&fake),
                expected,
                "{host} after {k} ops: handlers run (by journal id) differ from one run each"
            );
            for h in HOSTS {
                fake.host(h).with(|s| {
                    assert!(
                        !s.files
                            .keys()
                            .any(|f| f.starts_with("/var/lib/closetctl/lock")
                                || f.starts_with("/var/lib/closetctl/owed/")),
                        "{host}/{k}: {h} keeps a lock or an owed record"
                    )
                });
            }
            rows.push(Row {
                host,
                after_ops: k,
                step,
                op,
                stale,
                owed,
            });
        }
    }
    // The table, for the record (`cargo test --test interrupt_table -- --nocapture`).
    println!("| killed on | before op | step | op not run | stale locks unlocked | owed records |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.host,
            r.after_ops,
            r.step,
            r.op.replace('|', "\\|"),
            r.stale.join(" "),
            r.owed
        );
    }
    assert_eq!(
        rows.len(),
        ops_of.values().map(Vec::len).sum::<usize>(),
        "one row per op of every host"
    );
}
