//! Interrupted applies on fake hosts: locks that cannot strand a closet (stale holders
//! reported with the exact `closetctl unlock` command, live holders never broken, a
//! lost probe answer releasing its lock), step time limits, a stop (Ctrl-C) during a
//! step, after the grace period and at the question, a link lost between a change and
//! its handler, and what the next apply does after each.

use crate::kit::{
    self, apply, apply_opts, file_text, host_plan as host, journal, locked, plan, plan_with, text,
    ApplyOptions, Closet, Loaded,
};
use closetctl::command::unlock::{unlock_with, Outcome};
use closetctl_core::lock::Owner;
use closetctl_core::plan::HostStatus;
use closetctl_exec::engine::HostOutcome;
use closetctl_exec::interrupt::Stop;
use closetctl_testkit::fake::{FakeCluster, FakeHook};
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

fn cluster() -> Arc<FakeCluster> {
    kit::cluster(&["head", "node1"])
}

/// This machine's closetctl whose process is gone (a killed apply), run by alice.
fn killed_owner() -> Owner {
    let mut o = kit::killed_owner();
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
    take_locks_and_vanish(&fake, &loaded, closetctl_exec::local::current_owner()).await;
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
    // The answer of apply's probe that takes the lock: lost on node1, unreadable on head.
    fake.host("node1")
        .with(|s| s.lose_locking_probe_answers = 1);
    fake.host("head")
        .with(|s| s.garble_locking_probe_answers = 1);
    let first = apply(&fake, &loaded).await;
    for h in ["head", "node1"] {
        match &first.report.hosts[h] {
            HostOutcome::Skipped { reason } => assert!(
                reason.ends_with("(the lock its probe had taken is released)"),
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

const LAB_PLAYBOOK: &str = r#"[[step]]
name = "lab"
roles = ["all"]
packages = ["munge"]

[[step.file]]
path = "/etc/lab.conf"
template = "lab.conf.j2"

[[step.service]]
name = "munge"

[[step.handler]]
name = "restart munged"
watch = ["/etc/lab.conf"]
restart = "munge"
"#;

/// The users step and a lab step (package, file, service, handler).
fn lab_closet(extra: &str) -> Closet {
    Closet::with_files(
        &format!("{INVENTORY}{extra}"),
        &[
            ("playbooks/50-lab.toml", LAB_PLAYBOOK),
            ("templates/lab.conf.j2", "x = {{ host.name }}\n"),
        ],
    )
}

#[tokio::test(start_paused = true)]
async fn a_hung_step_times_out_names_what_ran_and_is_ended_on_its_host() {
    let closet = lab_closet("\n[timeouts]\nstep = 60\n");
    let loaded = closet.load();
    let fake = cluster();
    // node1 stops answering before op 2 of the users step (after the install of every
    // step's packages and op 1).
    fake.host("node1").with(|s| s.hang_after_ops = Some(2));
    let started = tokio::time::Instant::now();
    let outcome = apply(&fake, &loaded).await;
    assert_eq!(
        outcome.report.hosts["node1"],
        HostOutcome::Failed {
            step: "users".into(),
            error: "timed out after 60 s while running `groupadd alice (1001)` (op 2 of 4); its processes were ended on the host".into()
        }
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(60));
    assert!(journal(&fake, "node1").contains(&"end-step users".to_string()));
    // While it waited, every lock it held was refreshed (every 20 s).
    for h in ["head", "node1"] {
        let refreshes = fake
            .host(h)
            .scripts
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with("# closetctl lock: refresh "))
            .count();
        assert!(refreshes >= 2, "{h}: {refreshes} refreshes in 60 s");
    }
    assert!(
        !journal(&fake, "node1")
            .iter()
            .any(|l| l.contains("lab") && !l.contains("vision-lab")),
        "no later step on node1: {:?}",
        journal(&fake, "node1")
    );
    assert!(matches!(
        outcome.report.hosts["head"],
        HostOutcome::Converged { .. }
    ));
    assert!(outcome.locks_left.is_empty(), "{:?}", outcome.locks_left);
    assert!(!locked(&fake, "node1") && !locked(&fake, "head"));
    let next = apply(&fake, &loaded).await;
    assert!(next.success(), "{:?}", next.report);
}

#[tokio::test(start_paused = true)]
async fn a_package_install_gets_the_longer_limit() {
    let closet = lab_closet("\n[timeouts]\nstep = 60\ninstall = 900\n");
    let loaded = closet.load();
    let fake = cluster();
    // Hang in the install of every step's packages (the lab step's munge), node1's
    // first op: it gets the install limit, and node1 runs no step after it.
    fake.host("node1").with(|s| s.hang_after_ops = Some(0));
    let outcome = apply(&fake, &loaded).await;
    match &outcome.report.hosts["node1"] {
        HostOutcome::Failed { step, error } => {
            assert_eq!(step, closetctl_exec::engine::INSTALL_FIRST);
            assert!(
                error
                    .starts_with("timed out after 900 s while running `install munge` (op 1 of 1)"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !journal(&fake, "node1")
            .iter()
            .any(|l| l.starts_with("cc_groupadd")),
        "no step after a hung install: {:?}",
        journal(&fake, "node1")
    );
    assert!(matches!(
        outcome.report.hosts["head"],
        HostOutcome::Converged { .. }
    ));
    let next = apply(&fake, &loaded).await;
    assert!(next.success(), "{:?}", next.report);
}

#[tokio::test]
async fn a_stop_during_a_step_lets_it_finish_starts_no_new_step_and_releases_every_lock() {
    let closet = lab_closet("");
    let loaded = closet.load();
    let fake = cluster();
    let stop = Stop::default();
    // Ctrl-C while node1 is between op 1 and op 2 of the users step (op 0 is the
    // install of every step's packages).
    fake.host("node1")
        .with(|s| s.hook_after_ops = ctrl_c_before_op(2, &stop));
    let options = stopped_by(&stop);
    let outcome = apply_opts(&fake, &loaded, &options).await;
    assert!(outcome.interrupted && outcome.confirmed);
    assert!(!outcome.success());
    for h in ["head", "node1"] {
        assert_eq!(
            outcome.report.hosts[h],
            HostOutcome::Interrupted {
                before_step: "lab".into()
            },
            "{h}"
        );
        // The running users step finished; the lab step never started (its package
        // came with the install before the steps).
        assert!(fake.host(h).with(|s| s.users.contains_key("alice")), "{h}");
        assert!(
            !journal(&fake, h)
                .iter()
                .any(|l| l.contains("lab") && !l.contains("vision-lab")),
            "{h}: {:?}",
            journal(&fake, h)
        );
        assert!(
            fake.host(h)
                .with(|s| !s.files.contains_key("/etc/lab.conf")),
            "{h}"
        );
        assert!(!locked(&fake, h), "{h} still locked");
    }
    assert!(outcome.locks_left.is_empty());
    assert!(stop.held().is_empty(), "no lock left to name on abort");
    assert!(outcome.after.is_none(), "no verification after a stop");
    let summary = closetctl::command::apply::summary(&outcome);
    assert!(
        summary.contains("  node1: INTERRUPTED before step lab (the steps before it ran)\n"),
        "{summary}"
    );
    assert!(
        summary.ends_with("Interrupted: no step started after the stop; every lock this apply took was released. Run apply again to finish (handlers still owed run then)."),
        "{summary}"
    );
    let next = apply(&fake, &loaded).await;
    assert!(next.success(), "{:?}", next.report);
}

#[tokio::test(start_paused = true)]
async fn a_step_still_running_after_the_grace_period_is_ended_on_its_host() {
    let closet = lab_closet("\n[timeouts]\ngrace = 30\n");
    let loaded = closet.load();
    let fake = cluster();
    // Before op 2 of the users step (op 0 is the install of every step's packages).
    fake.host("node1").with(|s| s.hang_after_ops = Some(2));
    let stop = Stop::default();
    let pull = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        pull.request();
    });
    let started = tokio::time::Instant::now();
    let options = ApplyOptions {
        stop,
        ..ApplyOptions::default()
    };
    let outcome = apply_opts(&fake, &loaded, &options).await;
    let took = started.elapsed().as_secs();
    assert!((35..60).contains(&took), "took {took} s");
    assert_eq!(
        outcome.report.hosts["node1"],
        HostOutcome::Failed {
            step: "users".into(),
            error: "interrupted: `groupadd alice (1001)` (op 2 of 4) had not finished after the 30 s grace period; its processes were ended on the host".into()
        }
    );
    assert!(journal(&fake, "node1").contains(&"end-step users".to_string()));
    assert_eq!(
        outcome.report.hosts["head"],
        HostOutcome::Interrupted {
            before_step: "lab".into()
        }
    );
    assert!(!locked(&fake, "node1") && !locked(&fake, "head"));
}

#[tokio::test(start_paused = true)]
async fn a_stop_at_the_question_releases_the_locks_and_changes_nothing() {
    let closet = lab_closet("");
    let loaded = closet.load();
    let fake = cluster();
    let stop = Stop::default();
    let pull = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        pull.request();
    });
    let options = ApplyOptions {
        stop,
        ..ApplyOptions::default()
    };
    let reporter = closetctl::report::Reporter::start();
    let mut seen = false;
    let outcome = closetctl_exec::orchestrate::apply_asking(
        fake.clone(),
        &loaded,
        &options,
        Some(reporter.sender()),
        |plan| {
            seen = plan.has_changes();
            // A person who never answers.
            std::future::pending::<bool>()
        },
    )
    .await
    .unwrap();
    reporter.finish().await;
    assert!(seen);
    assert!(outcome.interrupted && !outcome.confirmed);
    for h in ["head", "node1"] {
        assert!(!locked(&fake, h), "{h}");
        assert!(journal(&fake, h).is_empty(), "{h}: nothing ran");
    }
}

#[tokio::test]
async fn a_munge_key_written_before_the_link_dropped_is_restarted_by_the_next_apply() {
    // The README's key rotation, with node1's link dropping right after its new key
    // was written (before `restart munged`).
    let closet = Closet::new(&format!("{INVENTORY}\n[slurm]\ncontroller = \"head\"\n"));
    let fake = cluster();
    let first = apply(&fake, &closet.load()).await;
    assert!(first.success(), "{:?}", first.report);
    std::fs::remove_file(closet.dir.path().join("secrets/munge.key")).unwrap();
    let loaded = closet.load();
    let p = plan(&fake, &loaded).await;
    let munge = host(&p, "node1")
        .steps
        .iter()
        .find(|s| s.name == "munge")
        .unwrap();
    let ops: Vec<String> = munge.ops().iter().map(|o| o.describe()).collect();
    assert_eq!(ops, ["write /etc/munge/munge.key", "restart munge.service"]);
    let before_restart = fake.host("node1").with(|s| s.handlers_paid.len());
    fake.host("node1").with(|s| s.cut_after_ops = Some(1));
    let options = ApplyOptions {
        owner: Some(killed_owner()),
        ..ApplyOptions::default()
    };
    let cut = apply_opts(&fake, &loaded, &options).await;
    match &cut.report.hosts["node1"] {
        HostOutcome::Failed { step, error } => {
            assert_eq!(step, "munge");
            assert_eq!(
                error,
                "the connection broke while running `restart munge.service` (op 2 of 2): Connection reset by peer"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(cut.locks_left.contains_key("node1"), "{:?}", cut.locks_left);
    // The link comes back. The key matches now, but munged still has the old one.
    fake.host("node1").with(|s| s.reachable = true);
    let p = plan(&fake, &loaded).await;
    let node1 = host(&p, "node1");
    assert_eq!(node1.status, HostStatus::Locked, "{:?}", node1.error);
    let outcomes = unlock_with(fake.clone(), &loaded, &["node1".into()], |_| true)
        .await
        .unwrap();
    assert!(matches!(outcomes["node1"], Outcome::Broken { .. }));
    let p = plan(&fake, &loaded).await;
    let t = text(&p);
    assert!(
        t.contains("host node1\n  step munge\n    * handler owed by an interrupted apply: restart munge.service (handler restart munged)\n"),
        "{t}"
    );
    assert!(
        t.contains("Handlers owed by an interrupted apply: 1 on node1."),
        "{t}"
    );
    assert!(p.has_changes(), "an owed handler is work for apply");
    let next = apply(&fake, &loaded).await;
    assert!(next.success(), "{:?}", next.report);
    let summary = closetctl::command::apply::summary(&next);
    assert!(
        summary.contains("  node1: converged (0 changes, 1 owed handler run)"),
        "{summary}"
    );
    let paid = fake
        .host("node1")
        .with(|s| s.handlers_paid[before_restart..].to_vec());
    assert_eq!(
        paid,
        [closetctl_core::journal::id("munge", "restart munged")]
    );
    assert!(!plan(&fake, &loaded).await.has_changes());
}

const SLURM: &str = r#"
[[host]]
name = "node2"
address = "10.0.0.3"
roles = ["compute"]

[slurm]
controller = "head"
fair_share = false
"#;

#[tokio::test]
async fn nodes_never_stay_on_a_slurm_conf_the_controller_rejected() {
    let closet = Closet::new(&format!("{INVENTORY}{SLURM}"));
    let fake = Arc::new(FakeCluster::debian(&["head", "node1", "node2"]));
    let first = apply(&fake, &closet.load()).await;
    assert!(first.success(), "{:?}", first.report);
    let conf = "/etc/slurm/slurm.conf";
    let before = file_text(&fake, "head", conf).unwrap();
    // A partition slurmctld will not take (as `scontrol reconfigure` would refuse it).
    std::fs::write(
        closet.path(),
        format!("{INVENTORY}{SLURM}\n[[slurm.partition]]\nname = \"debug\"\n"),
    )
    .unwrap();
    fake.host("head").with(|s| {
        s.failing_command = Some((
            "scontrol reconfigure".into(),
            conf.into(),
            "PartitionName=debug".into(),
        ))
    });
    let loaded = closet.load();
    let p = plan(&fake, &loaded).await;
    let t = text(&p);
    assert!(
        t.contains("* handler reconfigure slurm: run `scontrol reconfigure` (because file /etc/slurm/slurm.conf)"),
        "{t}"
    );
    let outcome = apply(&fake, &loaded).await;
    match &outcome.report.hosts["head"] {
        HostOutcome::Failed { step, error } => {
            assert_eq!(step, "slurm-controller");
            assert!(
                error.starts_with("run `scontrol reconfigure` failed: "),
                "{error}"
            );
            assert!(
                error.contains("putting the previous files back and running it again"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    for node in ["node1", "node2"] {
        assert_eq!(
            outcome.report.hosts[node],
            HostOutcome::Failed {
                step: "slurm-controller".into(),
                error: "rolled back /etc/slurm/slurm.conf: head did not accept the same file (its step slurm-controller failed), so this host keeps the previous one".into()
            },
            "{node}"
        );
        // Its later step (slurmd reload) did not run.
        let j = journal(&fake, node);
        let last = j
            .iter()
            .rposition(|l| l.starts_with("cc_restore_marked"))
            .unwrap();
        assert!(!j[last..].iter().any(|l| l.contains("slurmd")), "{j:?}");
    }
    for h in ["head", "node1", "node2"] {
        assert_eq!(file_text(&fake, h, conf).unwrap(), before, "{h}");
        assert!(!locked(&fake, h), "{h}");
    }
    // Without the rejection, the next apply converges.
    fake.host("head").with(|s| s.failing_command = None);
    let next = apply(&fake, &loaded).await;
    assert!(next.success(), "{:?}", next.report);
    assert!(file_text(&fake, "node2", conf)
        .unwrap()
        .contains("PartitionName=debug"));
}

#[tokio::test]
async fn a_failing_command_handler_puts_its_files_back_and_runs_again() {
    let nfs = "\n[nfs]\nserver = \"head\"\nnetwork = \"10.0.0.0/24\"\nexports = [ { path = \"/home\" } ]\n";
    let inventory = INVENTORY.replace(
        "roles = [\"controller\"]",
        "roles = [\"controller\", \"nfs-server\"]",
    );
    let closet = Closet::new(&format!("{inventory}{nfs}"));
    let fake = cluster();
    assert!(apply(&fake, &closet.load()).await.success());
    let before = file_text(&fake, "head", "/etc/exports").unwrap();
    std::fs::write(
        closet.path(),
        format!(
            "{inventory}{}",
            nfs.replace(
                "{ path = \"/home\" }",
                "{ path = \"/home\" }, { path = \"/scratch\" }"
            )
        ),
    )
    .unwrap();
    fake.host("head").with(|s| {
        s.failing_command = Some((
            "exportfs -ra".into(),
            "/etc/exports".into(),
            "/scratch".into(),
        ))
    });
    let loaded = closet.load();
    let outcome = apply(&fake, &loaded).await;
    match &outcome.report.hosts["head"] {
        HostOutcome::Failed { step, error } => {
            assert_eq!(step, "nfs-server");
            assert!(
                error.starts_with(
                    "run `exportfs -ra` failed: exportfs -ra: error: /etc/exports is not accepted"
                ),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(file_text(&fake, "head", "/etc/exports").unwrap(), before);
    // The export that failed is still to do, and its handler still owed.
    let t = text(&plan(&fake, &loaded).await);
    assert!(t.contains("~ file /etc/exports"), "{t}");
    assert!(t.contains("handler re-export: run `exportfs -ra` (because file /etc/exports; also owed by an interrupted apply)"), "{t}");
}

#[tokio::test]
async fn a_slurm_conf_that_fails_its_check_on_a_node_is_written_nowhere() {
    let closet = Closet::new(&format!("{INVENTORY}{SLURM}"));
    let fake = Arc::new(FakeCluster::debian(&["head", "node1", "node2"]));
    assert!(apply(&fake, &closet.load()).await.success());
    let conf = "/etc/slurm/slurm.conf";
    let before = file_text(&fake, "head", conf).unwrap();
    std::fs::write(
        closet.path(),
        format!("{INVENTORY}{SLURM}\n[[slurm.partition]]\nname = \"debug\"\n"),
    )
    .unwrap();
    // Slurm's parser on node1 refuses it (as `scontrol` does an unknown key).
    fake.host("node1").with(|s| {
        s.failing_command = Some((
            "scontrol show hostnames".into(),
            conf.into(),
            "PartitionName=debug".into(),
        ))
    });
    let loaded = closet.load();
    let p = plan(&fake, &loaded).await;
    let ops: Vec<String> = host(&p, "node1")
        .steps
        .iter()
        .find(|s| s.name == "slurm-node-config")
        .unwrap()
        .ops()
        .iter()
        .map(|o| o.describe())
        .collect();
    assert_eq!(
        ops,
        ["write /etc/slurm/slurm.conf", "check /etc/slurm/slurm.conf"]
    );
    let outcome = apply(&fake, &loaded).await;
    match &outcome.report.hosts["node1"] {
        HostOutcome::Failed { step, error } => {
            assert_eq!(step, "slurm-node-config");
            assert!(
                error.starts_with(
                    "check /etc/slurm/slurm.conf failed: scontrol show hostnames: error"
                ),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        outcome.report.hosts["node2"],
        HostOutcome::Failed {
            step: "slurm-node-config".into(),
            error: "rolled back /etc/slurm/slurm.conf: node1 did not accept the same file (its step slurm-node-config failed), so this host keeps the previous one".into()
        }
    );
    assert_eq!(
        outcome.report.hosts["head"],
        HostOutcome::Failed {
            step: "slurm-controller".into(),
            error: "not run: node1 did not accept the same /etc/slurm/slurm.conf (its step slurm-node-config failed), so this host keeps the previous one".into()
        }
    );
    for h in ["head", "node1", "node2"] {
        assert_eq!(file_text(&fake, h, conf).unwrap(), before, "{h}");
    }
    assert!(
        !journal(&fake, "head")
            .iter()
            .any(|l| l.contains("scontrol reconfigure")),
        "the controller never activated it"
    );
}

#[tokio::test]
async fn a_stop_during_the_install_names_the_first_step_that_still_had_work() {
    // As vm-test 80's case A: a step that only installs a package, then one that writes a
    // file. Ctrl-C during the install of every step's packages: the install finishes,
    // the package-only step has nothing left (it is not run, not even empty), and the
    // hosts stop before the step with work.
    let closet = Closet::with_files(
        INVENTORY,
        &[
            (
                "playbooks/50-lab.toml",
                "[[step]]\nname = \"lab-tools\"\nroles = [\"all\"]\npackages = [\"munge\"]\n\n[[step]]\nname = \"lab-config\"\nroles = [\"all\"]\n\n[[step.file]]\npath = \"/etc/lab.conf\"\ntemplate = \"lab.conf.j2\"\n",
            ),
            ("templates/lab.conf.j2", "x = {{ host.name }}\n"),
        ],
    );
    let loaded = closet.load();
    let fake = cluster();
    apply(&fake, &Closet::new(INVENTORY).load()).await;
    let stop = Stop::default();
    for h in ["head", "node1"] {
        fake.host(h).with(|s| {
            s.installed.remove("munge");
            s.hook_after_ops = ctrl_c_before_op(0, &stop);
        });
    }
    let options = stopped_by(&stop);
    let outcome = apply_opts(&fake, &loaded, &options).await;
    assert!(outcome.interrupted, "{:?}", outcome.report);
    for h in ["head", "node1"] {
        assert_eq!(
            outcome.report.hosts[h],
            HostOutcome::Interrupted {
                before_step: "lab-config".into()
            },
            "{h}"
        );
        assert!(
            fake.host(h).with(|s| s.installed.contains_key("munge")),
            "{h}"
        );
        assert!(
            !fake.host(h).with(|s| s.files.contains_key("/etc/lab.conf")),
            "{h}"
        );
        assert!(!locked(&fake, h), "{h} still locked");
    }
    let next = apply(&fake, &loaded).await;
    assert!(next.success(), "{:?}", next.report);
    assert!(!plan(&fake, &loaded).await.has_changes());
}

/// A fake host's hook that pulls `stop` (Ctrl-C) as its op number `op` starts.
fn ctrl_c_before_op(op: usize, stop: &Stop) -> Option<(usize, FakeHook)> {
    let pull = stop.clone();
    Some((
        op,
        FakeHook(Arc::new(move || {
            pull.request();
        })),
    ))
}

/// Apply options whose stop is `stop`.
fn stopped_by(stop: &Stop) -> ApplyOptions {
    ApplyOptions {
        stop: stop.clone(),
        ..ApplyOptions::default()
    }
}
