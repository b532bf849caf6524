//! The engine end to end on fake hosts: plan text, plan → apply → plan, one probe per
//! host, one script per host per step, conflicts, unreachable and locked hosts, a
//! service that does not come back, and secrets that never reach the plan.
//!
//! The test inventory has no `[slurm]` or `[nfs]`, so of the built-in steps only
//! `users` applies (see `Step::applies_to`); the snapshots keep only that step so that
//! steps added later do not change them.

use crate::kit::{
    self, apply, file_text, plan, plan_hosts, status, step_names, text, uid_of, Closet, Loaded,
};
use base64::Engine as _;
use closetctl_core::diagnostic::Code;
use closetctl_core::facts::{FileKind, GroupEntry, PasswdEntry};
use closetctl_core::lock::LOCK_DIR;
use closetctl_core::plan::{HostStatus, Plan};
use closetctl_exec::engine::HostOutcome;
use closetctl_testkit::fake::{FakeCluster, FakeFile};
use std::sync::Arc;

const ALICE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2mWg3xJ0u7rXn0aQ8y1bqk4L9cS2d5e6f7g8h9i0j alice@laptop";

fn inventory_text() -> String {
    format!(
        r#"# A test closet: three hosts, two lab groups, two people.
[cluster]
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

[[group]]
name = "vision-lab"
gid = 2001

[[group]]
name = "nlp-lab"
gid = 2002

[[user]]
name = "alice"
uid = 1001
groups = ["vision-lab"]
ssh_keys = ["{ALICE_KEY}"]

[[user]]
name = "bob"
uid = 1002
groups = ["nlp-lab", "vision-lab"]
comment = "Bob Builder"
"#
    )
}

const HOSTS: [&str; 3] = ["head", "node1", "node2"];

/// The test inventory (and any lab files) in a fresh temp dir.
fn closet(files: &[(&str, &str)]) -> Closet {
    Closet::with_files(&inventory_text(), files)
}

fn cluster() -> Arc<FakeCluster> {
    kit::cluster(&HOSTS)
}

/// The plan with only the `users` step and no cluster-wide warnings (preflight has its
/// own tests), so steps and checks added later do not change these snapshots.
fn users_only(mut plan: Plan) -> Plan {
    plan.warnings.clear();
    for h in &mut plan.hosts {
        h.steps.retain(|s| s.name == "users");
    }
    plan
}

fn runs(fake: &FakeCluster) -> Vec<(String, usize)> {
    fake.hosts
        .iter()
        .map(|(n, h)| (n.clone(), h.runs()))
        .collect()
}

#[tokio::test]
async fn fresh_host_plan_text() {
    let closet = closet(&[]);
    let fake = cluster();
    let p = users_only(plan_hosts(&fake, &closet.load(), &["head"]).await);
    assert_eq!(p.hosts.len(), 1);
    assert_eq!(status(&p, "head"), HostStatus::Ready);
    insta::assert_snapshot!("fresh_host", text(&p));
}

#[tokio::test]
async fn converged_hosts_plan_text() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    assert!(apply(&fake, &loaded).await.success());
    let p = users_only(plan(&fake, &loaded).await);
    insta::assert_snapshot!("converged_hosts", text(&p));
}

#[tokio::test]
async fn drifted_host_plan_text() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    assert!(apply(&fake, &loaded).await.success());
    fake.host("node1").with(|s| {
        s.users.get_mut("bob").unwrap().shell = "/bin/sh".into();
        s.groups
            .get_mut("vision-lab")
            .unwrap()
            .members
            .retain(|m| m != "alice");
        // A membership a local admin added: kept, because closetctl does not manage it.
        s.groups.insert(
            "docker".into(),
            GroupEntry {
                gid: 998,
                members: vec!["alice".into()],
            },
        );
        let keys = s.files.get_mut("/home/alice/.ssh/authorized_keys").unwrap();
        keys.content
            .extend_from_slice(b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ intruder@elsewhere\n");
        keys.mode = 0o644;
    });
    // Someone made an account by hand on node2: reported, left alone.
    fake.host("node2").with(|s| {
        s.users.insert(
            "mallory".into(),
            PasswdEntry {
                uid: 1500,
                gid: 1500,
                gecos: String::new(),
                home: "/home/mallory".into(),
                shell: "/bin/bash".into(),
            },
        );
        let mut home = FakeFile::root(FileKind::Directory, 0o700, Vec::new());
        home.owner = "mallory".into();
        s.files.insert("/home/mallory".into(), home);
    });
    let p = users_only(plan(&fake, &loaded).await);
    let t = text(&p);
    assert!(
        t.contains("    ~ user bob: shell /bin/sh -> /bin/bash"),
        "{t}"
    );
    assert!(
        t.contains("    ~ user alice: groups docker -> docker,vision-lab"),
        "{t}"
    );
    assert!(
        t.contains("        -ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ intruder@elsewhere"),
        "{t}"
    );
    insta::assert_snapshot!("drifted_host", t);
    // Apply puts it back, keeps the local `docker` membership, and leaves mallory alone.
    assert!(apply(&fake, &loaded).await.success());
    fake.host("node1").with(|s| {
        assert_eq!(s.users["bob"].shell, "/bin/bash");
        let mut members = s.groups["vision-lab"].members.clone();
        members.sort();
        assert_eq!(members, ["alice", "bob"]);
        assert_eq!(s.groups["docker"].members, ["alice"]);
        assert_eq!(s.files["/home/alice/.ssh/authorized_keys"].mode, 0o600);
    });
    assert_eq!(
        file_text(&fake, "node1", "/home/alice/.ssh/authorized_keys").unwrap(),
        format!(
            "# Managed by closetctl from the inventory; local edits are replaced.\n{ALICE_KEY}\n"
        )
    );
    assert_eq!(uid_of(&fake, "node2", "mallory"), Some(1500));
}

#[tokio::test]
async fn plan_apply_plan_is_empty() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    let before = plan(&fake, &loaded).await;
    assert!(before.has_changes());
    assert!(!before.has_blockers());
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    for host in HOSTS {
        assert!(
            matches!(outcome.report.hosts[host], HostOutcome::Converged { changes } if changes > 0),
            "{host}: {:?}",
            outcome.report.hosts[host]
        );
    }
    let after = outcome
        .after
        .as_ref()
        .expect("apply verifies with a fresh plan");
    assert!(!after.has_changes(), "{}", text(after));
    let again = plan(&fake, &loaded).await;
    assert!(!again.has_changes(), "{}", text(&again));
    assert!(!again.has_blockers());
    for host in HOSTS {
        assert_eq!(uid_of(&fake, host, "alice"), Some(1001), "{host}");
        assert_eq!(uid_of(&fake, host, "bob"), Some(1002), "{host}");
        fake.host(host).with(|s| {
            assert_eq!(s.users["alice"].gid, 1001);
            assert_eq!(s.groups["alice"].gid, 1001);
            assert_eq!(s.groups["vision-lab"].gid, 2001);
            assert!(s.groups["vision-lab"]
                .members
                .contains(&"alice".to_string()));
            assert_eq!(s.users["bob"].gecos, "Bob Builder");
            let home = &s.files["/home/alice"];
            assert_eq!(
                (home.kind, home.mode, home.owner.as_str()),
                (FileKind::Directory, 0o700, "alice")
            );
            // The lock the apply probe took is released.
            assert!(
                !s.files.contains_key(&format!("{LOCK_DIR}/holder")),
                "{host} still locked"
            );
        });
    }
    // A second apply has nothing to do and runs no step scripts.
    let second = apply(&fake, &loaded).await;
    assert!(second.success());
    assert!(second
        .report
        .hosts
        .values()
        .all(|o| *o == HostOutcome::Unchanged));
}

#[tokio::test]
async fn gathering_facts_is_one_remote_execution_per_host() {
    let closet = closet(&[]);
    let fake = cluster();
    plan(&fake, &closet.load()).await;
    assert_eq!(
        runs(&fake),
        [("head".into(), 1), ("node1".into(), 1), ("node2".into(), 1)]
    );
    for host in HOSTS {
        let scripts = fake.host(host).scripts.lock().unwrap().clone();
        assert!(scripts[0].starts_with("# closetctl fact probe\n"), "{host}");
    }
}

#[tokio::test]
async fn planning_one_host_still_probes_all_but_plans_one() {
    // Templates may read any host's facts, so every host is probed once.
    let closet = closet(&[]);
    let fake = cluster();
    let p = plan_hosts(&fake, &closet.load(), &["node2"]).await;
    let planned: Vec<&str> = p.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(planned, ["node2"]);
    assert_eq!(
        runs(&fake),
        [("head".into(), 1), ("node1".into(), 1), ("node2".into(), 1)]
    );
}

#[tokio::test]
async fn apply_runs_one_script_per_host_per_step() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success());
    for host in HOSTS {
        let steps = step_names(&outcome.plan, host);
        assert!(steps.contains(&"users".to_string()), "{host}: {steps:?}");
        // 1 probe without the lock (it shows changes), 1 taking it + 1 script per
        // step with changes + 1 unlock + 1 verification probe. With only the users
        // step applying this is 5.
        let expected = 2 + steps.len() + 1 + 1;
        assert_eq!(fake.host(host).runs(), expected, "{host}");
        let scripts = fake.host(host).scripts.lock().unwrap().clone();
        assert!(scripts[0].starts_with("# closetctl fact probe\n"));
        assert!(scripts[0].contains("\nLOCK_RUN=''\n"), "{host}");
        assert!(scripts[1].starts_with("# closetctl fact probe\n"));
        assert!(!scripts[1].contains("\nLOCK_RUN=''\n"), "{host}");
        for (i, step) in steps.iter().enumerate() {
            let title = format!("# closetctl apply: step {step} on {host}\n");
            assert!(
                scripts[2 + i].starts_with(&title),
                "{host} script {}: {}",
                2 + i,
                scripts[2 + i]
            );
        }
        assert!(
            scripts[2 + steps.len()].starts_with("# closetctl lock: release "),
            "{}",
            scripts[2 + steps.len()]
        );
        assert!(scripts[3 + steps.len()].starts_with("# closetctl fact probe\n"));
    }
}

#[tokio::test]
async fn a_conflicting_host_is_refused_and_left_untouched() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    fake.host("node1").with(|s| {
        s.users.insert(
            "alice".into(),
            PasswdEntry {
                uid: 1500,
                gid: 1500,
                gecos: "Alice".into(),
                home: "/home/alice".into(),
                shell: "/bin/sh".into(),
            },
        );
        s.groups.insert(
            "alice".into(),
            GroupEntry {
                gid: 1500,
                members: vec![],
            },
        );
    });
    let p = plan(&fake, &loaded).await;
    assert_eq!(status(&p, "node1"), HostStatus::Conflict);
    assert_eq!(status(&p, "head"), HostStatus::Ready);
    assert!(p.has_blockers());
    let node1 = p.hosts.iter().find(|h| h.host == "node1").unwrap();
    assert_eq!(
        node1
            .conflicts
            .iter()
            .map(|c| (c.code, c.host.as_deref(), c.text()))
            .collect::<Vec<_>>(),
        [
            (
                Code::GidConflict,
                Some("node1"),
                "group `alice` has gid 1500 here; the inventory says 1001".to_string()
            ),
            (
                Code::UidConflict,
                Some("node1"),
                "user `alice` has uid 1500 here; the inventory says 1001 (closetctl will not renumber it: files owned by 1500 would be orphaned)".to_string()
            ),
        ]
    );
    let t = text(&users_only(p.clone()));
    assert!(t.contains("host node1\n  ! conflict: group `alice` has gid 1500 here; the inventory says 1001\n  ! conflict: user `alice` has uid 1500 here;"), "{t}");
    assert!(
        t.contains("  ! apply will not change this host until the conflicts are resolved\n"),
        "{t}"
    );
    assert!(t.ends_with("Host with conflicts: node1.\n"), "{t}");

    let outcome = apply(&fake, &loaded).await;
    assert!(!outcome.success());
    match &outcome.report.hosts["node1"] {
        HostOutcome::Skipped { reason } => assert!(
            reason.starts_with("conflicts: group `alice` has gid 1500 here"),
            "{reason}"
        ),
        other => panic!("node1 should be skipped: {other:?}"),
    }
    for host in ["head", "node2"] {
        assert!(
            matches!(outcome.report.hosts[host], HostOutcome::Converged { .. }),
            "{host}"
        );
        assert_eq!(uid_of(&fake, host, "alice"), Some(1001), "{host}");
    }
    fake.host("node1").with(|s| {
        assert_eq!(s.users["alice"].uid, 1500);
        assert_eq!(s.users["alice"].shell, "/bin/sh");
        assert!(
            !s.users.contains_key("bob"),
            "nothing at all is changed on a conflicting host"
        );
        assert!(s.journal.is_empty(), "ops ran on node1: {:?}", s.journal);
        assert!(!s.files.contains_key(&format!("{LOCK_DIR}/holder")));
    });
}

#[tokio::test]
async fn a_uid_held_by_another_name_is_a_conflict() {
    let closet = closet(&[]);
    let fake = cluster();
    fake.host("node2").with(|s| {
        s.users.insert(
            "olduser".into(),
            PasswdEntry {
                uid: 1002,
                gid: 1002,
                gecos: String::new(),
                home: "/home/olduser".into(),
                shell: "/bin/sh".into(),
            },
        );
    });
    let p = plan_hosts(&fake, &closet.load(), &["node2"]).await;
    assert_eq!(status(&p, "node2"), HostStatus::Conflict);
    assert_eq!(
        p.hosts[0]
            .conflicts
            .iter()
            .map(|c| (c.code, c.text()))
            .collect::<Vec<_>>(),
        [(
            Code::UidTaken,
            "uid 1002 for user `bob` is already held here by user `olduser`".to_string()
        )]
    );
}

#[tokio::test]
async fn an_unreachable_host_is_named_and_the_others_converge() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    fake.host("node2").with(|s| s.reachable = false);
    let p = users_only(plan(&fake, &loaded).await);
    assert_eq!(status(&p, "node2"), HostStatus::Unreachable);
    assert_eq!(status(&p, "head"), HostStatus::Ready);
    assert!(
        p.has_blockers(),
        "`plan` exits 1 when a host cannot be planned"
    );
    assert!(p.has_changes());
    let t = text(&p);
    assert!(
        t.contains("host node2\n  ! unreachable: cannot connect to `node2`: ssh: connect to host: Connection timed out\n"),
        "{t}"
    );
    assert!(
        t.ends_with(" on 2 of 3 hosts. Host unreachable: node2.\n"),
        "{t}"
    );
    assert!(t.contains("host node1\n  step users\n"), "{t}");

    let outcome = apply(&fake, &loaded).await;
    assert!(!outcome.success());
    assert_eq!(
        outcome.report.hosts["node2"],
        HostOutcome::Skipped {
            reason:
                "unreachable: cannot connect to `node2`: ssh: connect to host: Connection timed out"
                    .into()
        }
    );
    for host in ["head", "node1"] {
        assert!(
            matches!(outcome.report.hosts[host], HostOutcome::Converged { .. }),
            "{host}"
        );
        assert_eq!(uid_of(&fake, host, "alice"), Some(1001));
    }
    assert_eq!(
        fake.host("node2").runs(),
        0,
        "connect failed, so nothing ran"
    );
    assert_eq!(uid_of(&fake, "node2", "alice"), None);
}

const HOLDER: &str = "carol@laptop (closetctl pid 4242) since 2026-11-29T23:30:00Z";

#[tokio::test]
async fn a_held_lock_names_its_holder_and_the_host_is_skipped() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    kit::hold_lock(&fake, "node1", HOLDER);
    let p = plan(&fake, &loaded).await;
    assert_eq!(status(&p, "node1"), HostStatus::Locked);
    assert!(p.has_blockers());
    let t = text(&users_only(p));
    assert!(
        t.contains(&format!(
            "host node1\n  ! another apply holds the lock: {HOLDER} (its age is unknown)\n"
        )),
        "{t}"
    );
    assert!(t.ends_with("Host locked by another apply: node1.\n"), "{t}");

    let outcome = apply(&fake, &loaded).await;
    assert_eq!(
        outcome.report.hosts["node1"],
        HostOutcome::Skipped {
            reason: format!("another apply holds the lock: {HOLDER} (its age is unknown)")
        }
    );
    assert_eq!(
        uid_of(&fake, "node1", "alice"),
        None,
        "a locked host is not changed"
    );
    // The other apply's lock is not ours to release; ours are released everywhere else.
    assert_eq!(
        file_text(&fake, "node1", &format!("{LOCK_DIR}/holder")).unwrap(),
        format!("{HOLDER}\n")
    );
    for host in ["head", "node2"] {
        assert_eq!(uid_of(&fake, host, "alice"), Some(1001));
        assert_eq!(
            file_text(&fake, host, &format!("{LOCK_DIR}/holder")),
            None,
            "{host}"
        );
    }
}

const LAB_PLAYBOOK: &str = r#"[[step]]
name = "lab"
roles = ["all"]
packages = ["munge"]

[[step.file]]
path = "/etc/lab.conf"
template = "lab.conf.j2"
disruption = "restart"

[[step.service]]
name = "munge"

[[step.handler]]
name = "restart munged"
watch = ["/etc/lab.conf"]
restart = "munge"
"#;

fn lab_closet(template: &str) -> Closet {
    closet(&[
        ("playbooks/50-lab.toml", LAB_PLAYBOOK),
        ("templates/lab.conf.j2", template),
    ])
}

#[tokio::test]
async fn a_service_that_does_not_come_back_fails_the_host_and_restores_the_file() {
    let closet =
        lab_closet("# lab settings for {{ cluster.name }} on {{ host.name }}\nmode = fast\n");
    let fake = cluster();
    for host in HOSTS {
        fake.host(host).with(|s| {
            s.broken_unit = Some((
                "munge.service".into(),
                "/etc/lab.conf".into(),
                "BROKEN".into(),
            ));
        });
    }
    let first = apply(&fake, &closet.load()).await;
    assert!(first.success(), "{:?}", first.report);
    let good = "# lab settings for testcloset on node1\nmode = fast\n";
    assert_eq!(file_text(&fake, "node1", "/etc/lab.conf").unwrap(), good);

    // A second version of the template that munged cannot live with.
    closet.write(
        "templates/lab.conf.j2",
        "# lab settings for {{ cluster.name }} on {{ host.name }}\nmode = BROKEN\n",
    );
    let loaded = closet.load();
    let p = plan_hosts(&fake, &loaded, &["node1"]).await;
    let lab = p.hosts[0]
        .steps
        .iter()
        .find(|s| s.name == "lab")
        .expect("the lab step changes");
    let handlers: Vec<(&str, &str)> = lab
        .handlers
        .iter()
        .map(|h| (h.name.as_str(), h.action.as_str()))
        .collect();
    assert_eq!(handlers, [("restart munged", "restart munge.service")]);
    let t = text(&p);
    assert!(
        t.contains("    ~ file /etc/lab.conf (disruption: restart)\n"),
        "{t}"
    );
    assert!(
        t.contains("        -mode = fast\n        +mode = BROKEN\n"),
        "{t}"
    );
    assert!(
        t.contains(
            "    * handler restart munged: restart munge.service (because file /etc/lab.conf)\n"
        ),
        "{t}"
    );

    let outcome = apply(&fake, &loaded).await;
    assert!(!outcome.success());
    for host in HOSTS {
        match &outcome.report.hosts[host] {
            HostOutcome::Failed { step, error } => {
                assert_eq!(step, "lab");
                assert_eq!(
                    error,
                    "restart munge.service failed: munge.service did not come back; its last log lines:\nmunge.service: fatal: error in /etc/lab.conf"
                );
            }
            other => panic!("{host} should have failed: {other:?}"),
        }
        let restored = format!("# lab settings for testcloset on {host}\nmode = fast\n");
        assert_eq!(
            file_text(&fake, host, "/etc/lab.conf").unwrap(),
            restored,
            "{host}"
        );
        assert_eq!(
            file_text(&fake, host, &format!("{LOCK_DIR}/holder")),
            None,
            "{host}"
        );
    }
    // The verification plan still wants the new content.
    let after = outcome.after.as_ref().unwrap();
    assert!(after.has_changes());
}

const SECRET_PLAYBOOK: &str = r#"[[step]]
name = "lab-secret"
roles = ["compute"]

[[step.file]]
path = "/etc/lab/munge.key"
secret = "munge.key"
mode = "0400"
"#;

#[tokio::test]
async fn secrets_never_reach_the_plan() {
    let closet = closet(&[("playbooks/60-secret.toml", SECRET_PLAYBOOK)]);
    let loaded = closet.load();
    let key =
        std::fs::read(closet.dir.path().join("secrets/munge.key")).expect("the key was generated");
    assert_eq!(key.len(), 1024);
    let fake = cluster();
    // node2 has an old key: the plan says `differs` and shows both fingerprints only.
    fake.host("node2").with(|s| {
        s.files.insert(
            "/etc/lab/munge.key".into(),
            FakeFile {
                kind: FileKind::File,
                mode: 0o400,
                owner: "root".into(),
                group: "root".into(),
                content: b"an old key".to_vec(),
            },
        );
    });
    let p = plan(&fake, &loaded).await;
    let json = closetctl_core::plan::render::json(&p);
    let t = text(&p);
    let fingerprint = closetctl_core::resource::fingerprint(&key);
    assert!(fingerprint.starts_with("sha256:") && fingerprint.len() == 23);
    assert!(t.contains(&format!("    + file /etc/lab/munge.key: root:root 0400 [secret munge.key: {fingerprint} differs; host has absent]\n")), "{t}");
    let old = closetctl_core::resource::fingerprint(b"an old key");
    assert!(t.contains(&format!("    ~ file /etc/lab/munge.key [secret munge.key: {fingerprint} differs; host has {old}]\n")), "{t}");
    assert!(
        json.contains(&format!("\"desired\": \"{fingerprint}\"")),
        "{json}"
    );
    assert!(
        !t.contains("host head\n  step lab-secret"),
        "the step is for compute hosts only"
    );

    let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    for out in [&json, &t] {
        assert!(out.contains("sha256:"));
        assert!(!out.contains(&b64[..24]), "base64 of the key in the plan");
        assert!(!out.contains(&hex[..32]), "hex of the key in the plan");
        assert!(
            !contains_bytes(out.as_bytes(), &key[..16]),
            "raw key bytes in the plan"
        );
        assert!(!out.contains(&String::from_utf8_lossy(&key[..64]).to_string()));
    }
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    fake.host("node1")
        .with(|s| assert_eq!(s.files["/etc/lab/munge.key"].content, key));
    // Never in the events or journal either: the fake journal elides long words.
    fake.host("node1")
        .with(|s| assert!(s.journal.iter().all(|l| !l.contains(&b64[..24]))));
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_lab_step_applies_in_the_playbook_order() {
    let closet = lab_closet("x = {{ host.name }}\n");
    let loaded = closet.load();
    let order = loaded.step_order();
    let users = order.iter().position(|s| s == "users").unwrap();
    let lab = order.iter().position(|s| s == "lab").unwrap();
    assert!(users < lab, "{order:?}");
    let fake = cluster();
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    let journal = fake.host("head").with(|s| s.journal.clone());
    // Packages come first, in one install for every step; the lab step's own ops after
    // the users step's.
    let install = journal
        .iter()
        .position(|l| l.starts_with("cc_install "))
        .unwrap();
    assert!(journal[install].contains("munge"), "{journal:?}");
    let first_lab = journal
        .iter()
        .position(|l| l.contains("/etc/lab.conf"))
        .unwrap();
    let last_user = journal
        .iter()
        .rposition(|l| l.starts_with("cc_useradd"))
        .unwrap();
    assert!(install < last_user && last_user < first_lab, "{journal:?}");
    assert!(!outcome.after.unwrap().has_changes());
}

const DUPLICATE_STEP: &str = r#"[[step]]
name = "users"
roles = ["all"]
packages = ["sudo"]
"#;

/// `Playbooks::load` refuses a second step of the same name (a lab file cannot replace
/// or extend a built-in step by naming it): loading fails, so there is nothing to plan
/// or apply. Fails if the duplicate is ever accepted (applied, merged or shadowed).
#[test]
fn a_lab_step_with_a_builtin_steps_name_is_refused() {
    let closet = closet(&[("playbooks/50-dup.toml", DUPLICATE_STEP)]);
    let e = match Loaded::load(&closet.path()) {
        Err(e) => e,
        Ok(loaded) => panic!(
            "a duplicate step name was accepted; steps: {:?}",
            loaded.step_order()
        ),
    };
    assert_eq!(
        e.to_string(),
        "playbook `50-dup.toml`: step `users`: another playbook already has a step of that name; step names must be unique"
    );
}

#[tokio::test]
async fn a_new_file_that_breaks_a_running_service_is_removed_again() {
    // munged already runs; the lab adds /etc/lab.conf for the first time, and that
    // content breaks it. The real script records `.absent` and restores by removing
    // the file; the fake must do the same.
    let closet = lab_closet("mode = BROKEN\n");
    let fake = cluster();
    for host in HOSTS {
        fake.host(host).with(|s| {
            closetctl_testkit::fake::preinstall(s, &["munge"]);
            s.units.insert(
                "munge.service".into(),
                closetctl_core::facts::UnitState {
                    load: "loaded".into(),
                    active: "active".into(),
                    enabled: "enabled".into(),
                },
            );
            s.broken_unit = Some((
                "munge.service".into(),
                "/etc/lab.conf".into(),
                "BROKEN".into(),
            ));
        });
    }
    let outcome = apply(&fake, &closet.load()).await;
    for host in HOSTS {
        assert!(
            matches!(&outcome.report.hosts[host], HostOutcome::Failed { step, .. } if step == "lab"),
            "{host}"
        );
        assert_eq!(
            file_text(&fake, host, "/etc/lab.conf"),
            None,
            "{host}: the new file was not removed"
        );
    }
}

const BOB_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobBobBobBobBobBobBobBobBobBobBobBobBobBobB bob@laptop";

#[tokio::test]
async fn a_symlinked_ssh_dir_is_named_and_skipped_while_the_others_get_their_keys() {
    let closet = closet(&[]);
    let fake = cluster();
    assert!(apply(&fake, &closet.load()).await.success());
    // Alice, with a shell on head, points her ~/.ssh at /etc.
    fake.host("head").with(|s| {
        s.files.remove("/home/alice/.ssh/authorized_keys");
        s.files.insert(
            "/home/alice/.ssh".into(),
            FakeFile {
                kind: FileKind::Symlink,
                mode: 0o777,
                owner: "alice".into(),
                group: "alice".into(),
                content: b"/etc".to_vec(),
            },
        );
    });
    // An inventory change makes apply write keys again: alice gets a second key, bob
    // his first.
    let edited = inventory_text()
        .replace(
            &format!("ssh_keys = [\"{ALICE_KEY}\"]"),
            &format!("ssh_keys = [\"{ALICE_KEY}\", \"{BOB_KEY}\"]"),
        )
        .replace(
            "comment = \"Bob Builder\"",
            &format!("comment = \"Bob Builder\"\nssh_keys = [\"{BOB_KEY}\"]"),
        );
    closet.write("inventory.toml", &edited);
    let loaded = closet.load();
    let before = plan_hosts(&fake, &loaded, &["head"]).await;
    let head = before.hosts.iter().find(|h| h.host == "head").unwrap();
    assert!(
        head.warnings.iter().any(|w| w.code == Code::SshDirUnusable
            && w.subject == "alice"
            && w.message.contains("user `alice`")
            && w.message.contains("`/home/alice/.ssh` is a symbolic link")),
        "{:?}",
        head.warnings
    );
    let rendered = text(&before);
    assert!(!rendered.contains("file /home/alice/.ssh"), "{rendered}");
    assert!(
        !rendered.contains("directory /home/alice/.ssh"),
        "{rendered}"
    );
    assert!(
        rendered.contains("/home/bob/.ssh/authorized_keys"),
        "{rendered}"
    );
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    // Bob's keys are in, written as bob; nothing was written through alice's link.
    fake.host("head").with(|s| {
        let keys = &s.files["/home/bob/.ssh/authorized_keys"];
        assert_eq!((keys.owner.as_str(), keys.mode), ("bob", 0o600));
        assert!(String::from_utf8_lossy(&keys.content).contains("bob@laptop"));
        assert!(!s
            .files
            .keys()
            .any(|p| p.starts_with("/etc/authorized_keys")));
        assert_eq!(s.files["/home/alice/.ssh"].kind, FileKind::Symlink);
    });
    // Alice's keys were installed on the other hosts; head's plan has only the warning.
    assert!(
        file_text(&fake, "node1", "/home/alice/.ssh/authorized_keys")
            .unwrap()
            .contains("bob@laptop")
    );
    let again = plan(&fake, &loaded).await;
    assert!(!again.has_changes(), "{}", text(&again));
}

/// The test closet with `/home` shared from head.
fn nfs_closet() -> Closet {
    let text = inventory_text().replace(
        "roles = [\"controller\", \"login\"]",
        "roles = [\"controller\", \"login\", \"nfs-server\"]",
    ) + "\n[nfs]\nserver = \"head\"\n";
    let closet = closet(&[]);
    closet.write("inventory.toml", &text);
    closet
}

fn put_fstab(fake: &FakeCluster, host: &str, content: Vec<u8>) {
    fake.host(host).with(|s| {
        s.files.insert(
            "/etc/fstab".into(),
            FakeFile {
                kind: FileKind::File,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                content,
            },
        );
    });
}

#[tokio::test]
async fn an_fstab_is_edited_byte_for_byte_or_not_at_all() {
    let closet = nfs_closet();
    let loaded = closet.load();
    let fake = cluster();
    // node1: a Latin-1 comment and CRLF line ends; node2: larger than the probe reads.
    let latin1: Vec<u8> =
        b"# machine de l'\xe9quipe\r\nUUID=0a1b / ext4 errors=remount-ro 0 1\r\n/swapfile none swap sw 0 0\n"
            .to_vec();
    put_fstab(&fake, "node1", latin1.clone());
    let mut large = b"UUID=0a1b / ext4 errors=remount-ro 0 1\n".to_vec();
    while large.len() <= 65536 {
        large.extend(b"# a long comment the admin wrote, kept on every line of this file\n");
    }
    put_fstab(&fake, "node2", large.clone());
    let p = plan(&fake, &loaded).await;
    let node1 = p.hosts.iter().find(|h| h.host == "node1").unwrap();
    let fstab = node1
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .find(|c| c.name == "/etc/fstab")
        .expect("node1's fstab gets the block");
    let diff = fstab.diff.as_deref().unwrap();
    assert!(diff.contains(" UUID=0a1b / ext4"), "{diff}");
    assert!(diff.contains("+# BEGIN closetctl"), "{diff}");
    assert!(fstab.details.iter().any(|d| d.starts_with("not UTF-8")));
    let written = fstab
        .ops
        .iter()
        .find_map(|op| match op {
            closetctl_core::ops::Op::WriteFile { content, .. } => Some(content.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        written.starts_with(&latin1),
        "every byte of the old fstab is kept"
    );
    // node2's fstab cannot be read whole: the host is refused, not given a fresh fstab.
    assert_eq!(status(&p, "node2"), HostStatus::Conflict);
    let node2 = p.hosts.iter().find(|h| h.host == "node2").unwrap();
    assert!(
        node2.conflicts.iter().any(|c| c.code == Code::FstabTooLarge
            && c.message.contains("`/etc/fstab` is")
            && c.message.contains("over the 65536")),
        "{:?}",
        node2.conflicts
    );
    assert!(!node2
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .any(|c| c.name == "/etc/fstab"));
}

#[tokio::test]
async fn keys_left_by_root_in_a_home_are_replaced_by_their_owner_and_a_foreign_ssh_dir_is_named() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    assert!(apply(&fake, &loaded).await.success());
    // An admin fixed alice's keys by hand on head (root-owned file now), and made her
    // ~/.ssh on node1 as root.
    fake.host("head").with(|s| {
        let f = s.files.get_mut("/home/alice/.ssh/authorized_keys").unwrap();
        (f.owner, f.group) = ("root".into(), "root".into());
    });
    fake.host("node1").with(|s| {
        s.files.remove("/home/alice/.ssh/authorized_keys");
        let d = s.files.get_mut("/home/alice/.ssh").unwrap();
        (d.owner, d.group) = ("root".into(), "root".into());
    });
    let p = plan(&fake, &loaded).await;
    let rendered = text(&p);
    assert!(
        rendered
            .contains("~ file /home/alice/.ssh/authorized_keys: owner root:root -> alice:alice"),
        "{rendered}"
    );
    let node1 = p.hosts.iter().find(|h| h.host == "node1").unwrap();
    assert!(
        node1.warnings.iter().any(|w| w.code == Code::SshDirUnusable
            && w.message
                .contains("`/home/alice/.ssh` belongs to `root`, not to her")),
        "{:?}",
        node1.warnings
    );
    assert!(apply(&fake, &loaded).await.success());
    fake.host("head").with(|s| {
        let f = &s.files["/home/alice/.ssh/authorized_keys"];
        assert_eq!(
            (f.owner.as_str(), f.group.as_str(), f.mode),
            ("alice", "alice", 0o600)
        );
    });
    fake.host("node1").with(|s| {
        assert!(!s.files.contains_key("/home/alice/.ssh/authorized_keys"));
        assert_eq!(s.files["/home/alice/.ssh"].owner, "root");
    });
}

#[tokio::test]
async fn an_owner_operation_that_fails_is_passed_over_and_reported_while_the_rest_converges() {
    let closet = closet(&[]);
    let loaded = closet.load();
    let fake = cluster();
    // node2's disk quota for alice is full: what the plan cannot see.
    fake.host("node2").with(|s| s.owner_ops_fail = true);
    let outcome = apply(&fake, &loaded).await;
    // The users step went on past alice's keys: bob exists on node2 too.
    assert_eq!(uid_of(&fake, "node2", "bob"), Some(1002));
    let passed = &outcome.report.passed_over;
    assert!(
        passed.get("node2").is_some_and(|ops| ops
            .iter()
            .any(|o| o.contains("/home/alice/.ssh") && o.contains("(as alice)"))),
        "{passed:?}"
    );
    assert!(
        !outcome.success(),
        "a host with passed-over operations is not converged"
    );
    let summary = closetctl::command::apply::summary(&outcome);
    assert!(summary.contains("NOT CONVERGED: passed over"), "{summary}");
}
