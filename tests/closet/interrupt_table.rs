//! The interruption table on fake hosts: a fresh converge of a three-host closet (users,
//! MUNGE, accounting, Slurm, NFS), with closetctl killed after op k of host H for every
//! host and every k, then the next apply (after `closetctl unlock` exactly where the
//! plan says so). Every case must end converged with an empty plan, and every handler
//! of the fresh converge must have run exactly once across the two applies: none
//! forgotten (the journal of owed handlers), none run twice.

use crate::kit::{
    self, apply_opts, killed_owner, plan, text, ApplyOptions, ApplyOutcome, Closet, Loaded,
};
use closetctl::command::unlock::{unlock_with, Outcome};
use closetctl_core::journal::OWED_DIR;
use closetctl_core::lock::{Owner, LOCK_DIR};
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
    kit::cluster(&HOSTS)
}

async fn apply(fake: &Arc<FakeCluster>, loaded: &Loaded, owner: Option<Owner>) -> ApplyOutcome {
    let options = ApplyOptions {
        owner,
        ..ApplyOptions::default()
    };
    apply_opts(fake, loaded, &options).await
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
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();

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
    // Which step and op each index of a host is, for the table: in the order apply runs
    // them (one install of every step's packages first, then the steps without theirs).
    let mut ops_of: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for host in HOSTS {
        let hp = fresh.hosts.iter().find(|h| h.host == host).unwrap();
        let order = closetctl_exec::engine::apply_order(hp, &loaded.step_order());
        assert_eq!(
            order[0].0,
            closetctl_exec::engine::INSTALL_FIRST,
            "{host}: the packages first"
        );
        ops_of.insert(
            host,
            order
                .into_iter()
                .map(|(step, op)| (step, op.describe()))
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
                            .filter(|f| f.starts_with(&format!("{OWED_DIR}/")))
                            .count()
                    })
                })
                .sum();
            if !stale.is_empty() {
                let cmd = closetctl_core::plan::render::unlock_all(&p).unwrap();
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
                text(next.after.as_ref().unwrap())
            );
            let again = plan(&fake, &loaded).await;
            assert!(
                !again.has_changes() && !again.has_blockers(),
                "{host}/{k}:\n{}",
                text(&again)
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
                            .any(|f| f.starts_with(LOCK_DIR)
                                || f.starts_with(&format!("{OWED_DIR}/"))),
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
    // The table, for the record (`cargo test --test closet interrupt_table -- --nocapture`).
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
