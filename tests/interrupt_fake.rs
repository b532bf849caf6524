//! Interrupted applies on fake hosts: locks that cannot strand a closet (stale holders
//! reported with the exact `closetctl unlock` command, live holders never broken, a
//! lost probe answer releasing its lock), and what the next apply does after them.

use closetctl::command::unlock::{unlock_with, Outcome};
use closetctl::command::{apply_with, plan_with, ApplyOptions, Loaded};
use closetctl::engine::HostOutcome;
use closetctl::lock::Owner;
use closetctl::plan::render::{self, Style};
use closetctl::plan::{HostStatus, Plan};
use closetctl::report::Reporter;
use closetctl::transport::fake::FakeCluster;
use std::path::PathBuf;
use std::sync::Arc;

const INVENTORY: &str = r#"[cluster]
name = "testcloset"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller"]

[[host]]
name = "node1"
address = "10.0.0.2"
roles = ["compute"]

[[group]]
name = "vision-lab"
gid = 2001

[[user]]
name = "alice"
uid = 1001
groups = ["vision-lab"]
"#;

struct Closet {
    dir: tempfile::TempDir,
}

impl Closet {
    fn new(text: &str) -> Closet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inventory.toml"), text).unwrap();
        Closet { dir }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("inventory.toml")
    }
    fn load(&self) -> Loaded {
        Loaded::load(&self.path()).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn cluster() -> Arc<FakeCluster> {
    Arc::new(FakeCluster::debian(&["head", "node1"]))
}

async fn plan(fake: &Arc<FakeCluster>, loaded: &Loaded) -> Plan {
    plan_with(fake.clone(), loaded, &[], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

async fn apply(fake: &Arc<FakeCluster>, loaded: &Loaded) -> closetctl::command::ApplyOutcome {
    let reporter = Reporter::start();
    let outcome = apply_with(
        fake.clone(),
        loaded,
        &ApplyOptions::default(),
        &reporter,
        |_| true,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    reporter.finish().await;
    outcome
}

fn text(plan: &Plan) -> String {
    render::text(plan, Style::plain())
}

fn host<'p>(plan: &'p Plan, name: &str) -> &'p closetctl::plan::HostPlan {
    plan.hosts.iter().find(|h| h.host == name).unwrap()
}

fn locked(fake: &FakeCluster, host: &str) -> bool {
    fake.host(host)
        .with(|s| s.files.contains_key("/var/lib/closetctl/lock"))
}

/// A pid that certainly ran on this machine and is gone now.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// This machine's closetctl whose process is gone (a killed apply).
fn killed_owner() -> Owner {
    let mut o = Owner::current();
    o.pid = dead_pid();
    o.user = "alice".into();
    o
}

/// An apply on another machine (a laptop) that last refreshed at the host's `epoch`.
fn laptop_owner() -> Owner {
    Owner {
        user: "carol".into(),
        machine: "laptop".into(),
        machine_id: "0123456789abcdef0123456789abcdef".into(),
        boot_id: "b".into(),
        pid: 4242,
        pid_start: 1,
        run: "feedfacecafebeef".into(),
        started: 1_795_995_000,
    }
}

/// The probe of an apply that took the locks and was then killed: nothing released.
async fn take_locks_and_vanish(fake: &Arc<FakeCluster>, loaded: &Loaded, owner: Owner) {
    let (p, facts, _) = plan_with(fake.clone(), loaded, &[], Some(owner), None)
        .await
        .unwrap();
    assert!(p.hosts.iter().all(|h| h.status == HostStatus::Ready));
    assert!(facts.hosts.values().all(|f| f.lock_acquired));
}

#[tokio::test]
async fn a_killed_applys_lock_is_stale_and_named_with_the_command_that_breaks_it() {
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();
    let fake = cluster();
    let owner = killed_owner();
    take_locks_and_vanish(&fake, &loaded, owner.clone()).await;
    assert!(locked(&fake, "node1"));

    let p = plan(&fake, &loaded).await;
    let cmd = format!(
        "closetctl unlock -i {} --host node1",
        closet.path().display()
    );
    let node1 = host(&p, "node1");
    assert_eq!(node1.status, HostStatus::Locked);
    assert_eq!(node1.unlock.as_deref(), Some(cmd.as_str()));
    let t = text(&p);
    let expected = format!(
        "host node1\n  ! stale lock of an apply that is gone: {}: its process (pid {}) no longer runs on {}; clear it with `{cmd}`\n",
        owner.describe(),
        owner.pid,
        owner.machine
    );
    assert!(t.contains(&expected), "{t}");
    assert!(
        t.ends_with(&format!(
            "Hosts locked by another apply: head, node1.\nStale locks of applies that are gone: clear them with `closetctl unlock -i {} --host head --host node1` (it shows each holder and asks first).\n",
            closet.path().display()
        )),
        "{t}"
    );

    // apply refuses the locked hosts and changes nothing there.
    let refused = apply(&fake, &loaded).await;
    assert!(!refused.success());
    assert!(
        matches!(&refused.report.hosts["node1"], HostOutcome::Skipped { reason } if reason.contains(&cmd))
    );
    assert!(fake.host("node1").with(|s| !s.users.contains_key("alice")));

    // Declining breaks nothing.
    let declined = unlock_with(fake.clone(), &loaded, &["node1".into()], |_| false)
        .await
        .unwrap();
    assert_eq!(declined["node1"], Outcome::Declined);
    assert!(locked(&fake, "node1"));

    // What the tool said to run: `closetctl unlock --host node1`, answering yes.
    let mut shown = Vec::new();
    let outcomes = unlock_with(fake.clone(), &loaded, &["node1".into()], |found| {
        shown = found.keys().cloned().collect();
        true
    })
    .await
    .unwrap();
    assert_eq!(shown, ["node1"], "only the selected host is read");
    assert_eq!(
        outcomes["node1"],
        Outcome::Broken {
            holder: owner.describe(),
            ended: None
        }
    );
    assert!(!locked(&fake, "node1"));
    assert!(
        locked(&fake, "head"),
        "--host node1 leaves head's lock alone"
    );
    unlock_with(fake.clone(), &loaded, &[], |_| true)
        .await
        .unwrap();
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    assert!(!outcome.after.unwrap().has_changes());
}

#[tokio::test]
async fn a_live_holder_is_never_broken() {
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();
    let fake = cluster();
    // This very process holds it: alive.
    take_locks_and_vanish(&fake, &loaded, Owner::current()).await;
    let p = plan(&fake, &loaded).await;
    let node1 = host(&p, "node1");
    assert_eq!(node1.status, HostStatus::Locked);
    assert_eq!(node1.unlock, None, "no unlock command for a live holder");
    assert!(
        node1
            .error
            .as_deref()
            .unwrap()
            .starts_with("another apply holds the lock: "),
        "{:?}",
        node1.error
    );
    assert!(node1.error.as_deref().unwrap().ends_with(&format!(
        "(its process (pid {}) is running here)",
        std::process::id()
    )));
    let mut asked = false;
    let outcomes = unlock_with(fake.clone(), &loaded, &[], |_| {
        asked = true;
        true
    })
    .await
    .unwrap();
    assert!(!asked, "nothing stale, nothing to ask");
    assert!(matches!(outcomes["node1"], Outcome::KeptLive { .. }));
    assert!(locked(&fake, "node1") && locked(&fake, "head"));
}

#[tokio::test]
async fn a_lock_from_another_machine_is_stale_only_after_ten_minutes_without_refresh() {
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();
    let fake = cluster();
    take_locks_and_vanish(&fake, &loaded, laptop_owner()).await;
    // 599 s later (host clock): still live.
    fake.host("node1").with(|s| s.epoch += 599.0);
    let p = plan(&fake, &loaded).await;
    assert_eq!(
        host(&p, "node1").error.as_deref(),
        Some("another apply holds the lock: carol@laptop (closetctl pid 4242, run feedface) since 2026-11-29T23:30:00Z (refreshed 9 min ago)")
    );
    let outcomes = unlock_with(fake.clone(), &loaded, &["node1".into()], |_| true)
        .await
        .unwrap();
    assert!(matches!(outcomes["node1"], Outcome::KeptLive { .. }));
    // Two more seconds: stale.
    fake.host("node1").with(|s| s.epoch += 2.0);
    let p = plan(&fake, &loaded).await;
    let node1 = host(&p, "node1");
    assert!(node1.unlock.is_some());
    assert!(
        node1.error.as_deref().unwrap().contains(
            "since 2026-11-29T23:30:00Z: not refreshed for 10 min (a running apply refreshes it every 20 s); clear it with `closetctl unlock"
        ),
        "{:?}",
        node1.error
    );
    let outcomes = unlock_with(fake.clone(), &loaded, &["node1".into()], |_| true)
        .await
        .unwrap();
    assert!(matches!(outcomes["node1"], Outcome::Broken { .. }));
}

#[tokio::test]
async fn a_probe_answer_lost_after_it_took_the_lock_releases_the_lock() {
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();
    let fake = cluster();
    fake.host("node1").with(|s| s.lose_probe_answers = 1);
    fake.host("head").with(|s| s.garble_probe_answers = 1);
    let first = apply(&fake, &loaded).await;
    for h in ["head", "node1"] {
        match &first.report.hosts[h] {
            HostOutcome::Skipped { reason } => assert!(
                reason.ends_with("(the lock its probe may have taken is released)"),
                "{h}: {reason}"
            ),
            other => panic!("{h}: {other:?}"),
        }
        assert!(!locked(&fake, h), "{h} still locked");
    }
    // The next apply is not refused.
    let second = apply(&fake, &loaded).await;
    assert!(second.success(), "{:?}", second.report);
}

#[tokio::test]
async fn a_timeouts_section_names_only_real_steps() {
    let closet = Closet::new(&format!(
        "{INVENTORY}\n[timeouts]\nprobe = 30\ninstall = 900\n\n[timeouts.steps]\nusers = 60\n"
    ));
    let loaded = closet.load();
    let t = &loaded.inventory.timeouts;
    assert_eq!(t.probe_secs, 30);
    assert_eq!(t.step("users", false).as_secs(), 60);
    assert_eq!(t.step("munge", true).as_secs(), 900);
    assert_eq!(t.step("munge", false).as_secs(), 600);
    let bad = Closet::new(&format!("{INVENTORY}\n[timeouts.steps]\nuser = 60\n"));
    let e = Loaded::load(&bad.path()).err().unwrap().to_string();
    assert!(
        e.contains("[timeouts.steps] names `user`, which no playbook has (steps: users,"),
        "{e}"
    );
    let zero = Closet::new(&format!("{INVENTORY}\n[timeouts]\nstep = 0\n"));
    let e = Loaded::load(&zero.path()).err().unwrap().to_string();
    assert!(
        e.contains(":24:8: timeouts.step `0` would give up at once"),
        "{e}"
    );
}
