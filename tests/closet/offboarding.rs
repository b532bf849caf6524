//! People leave: `deluser` disables her in the inventory (comments kept, the entry
//! never removed), and apply on fake hosts locks and expires her account everywhere,
//! moves her `authorized_keys` into the root-only backup, removes her associations
//! (refused while she has jobs unless `--cancel-jobs`, naming them), ends her processes
//! only with `--end-sessions`, and drops her email from the tailnet policy's groups,
//! while her files stay hers. `expires` sets the account expiry (`chage -E`) and, once
//! the day comes, has the same effect; re-enabling restores from the inventory.

use crate::kit::{apply, closetctl, converged, host_plan, plan, status, text, Closet};
use closetctl_core::concerns::users::access_summary;
use closetctl_core::diagnostic::Code;
use closetctl_core::facts::FileKind;
use closetctl_core::inventory::edit::{add_user, disable_user, NewUser};
use closetctl_core::inventory::{Expiry, Inventory};
use closetctl_core::ops::BACKUP_DIR;
use closetctl_core::plan::{HostStatus, Plan};
use closetctl_testkit::fake::{FakeCluster, FakeFile, Shadow};
use std::path::Path;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice0000000000000000000000 alice@laptop";

const INVENTORY: &str = r#"# The lab closet.
[cluster]
name = "closet"

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
name = "alice"   # PhD student, 5th year
uid = 1001
groups = ["vision-lab"]
email = "alice@example.edu"
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice0000000000000000000000 alice@laptop"]

# bob stays
[[user]]
name = "bob"
uid = 1002
groups = ["vision-lab"]

[slurm]
controller = "head"
"#;

/// The tailnet part (its enrollment step is tested elsewhere; here: the policy).
const TAILNET: &str = r#"
[tailscale]
auth_key_env = "CLOSETCTL_TEST_NO_SUCH_KEY"
tags = ["tag:closet"]

[tailscale.groups]
researchers = ["alice@example.edu", "bob@example.edu"]
"#;

/// `inventory` with [`TAILNET`], as of `today`.
fn with_tailnet(inventory: &Inventory, today: Option<i64>) -> Inventory {
    let text = std::fs::read_to_string(&inventory.path).unwrap() + TAILNET;
    let mut inv = Inventory::parse(&inventory.path, &text).unwrap();
    inv.run.today = today;
    inv
}

const KEYS: &str = "/home/alice/.ssh/authorized_keys";

/// `- login alice: ...` lines of one host's plan.
fn lines(plan: &Plan, host: &str) -> Vec<String> {
    host_plan(plan, host)
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .map(|c| {
            format!(
                "{} {}: {}",
                c.action.symbol(),
                c.resource(),
                c.details.join("; ")
            )
        })
        .collect()
}

fn shadow(fake: &FakeCluster, host: &str, user: &str) -> Shadow {
    fake.host(host).with(|s| s.shadow[user])
}

/// Hosts converged with alice active, her data on `/home`, a job and a process.
async fn alice_at_work(closet: &Closet) -> std::sync::Arc<FakeCluster> {
    let fake = converged(&closet.load(), &["head", "node1"]).await;
    for host in ["head", "node1"] {
        fake.host(host).with(|s| {
            assert_eq!(
                s.text(KEYS),
                format!(
                    "# Managed by closetctl from the inventory; local edits are replaced.\n{KEY}\n"
                )
            );
            assert_eq!(
                s.shadow["alice"],
                Shadow {
                    locked: true,
                    expires: None
                }
            );
            s.files.insert(
                "/home/alice/thesis.tex".into(),
                FakeFile {
                    kind: FileKind::File,
                    mode: 0o644,
                    owner: "alice".into(),
                    group: "alice".into(),
                    content: b"\\chapter{Results}".to_vec(),
                },
            );
        });
    }
    fake.host("head").with(|s| {
        s.slurmdb
            .jobs
            .push((41, "alice".into(), "vision-lab".into()))
    });
    fake.host("node1").with(|s| s.processes.push((1001, 4242)));
    fake
}

/// The scripts each host ran that were fact probes (the first, and any follow-up).
fn probes(fake: &FakeCluster, host: &str) -> Vec<String> {
    fake.host(host)
        .scripts
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.starts_with(closetctl_core::facts::probe::HEADER))
        .cloned()
        .collect()
}

#[tokio::test]
async fn squeue_is_asked_only_when_an_association_is_to_be_removed() {
    let closet = Closet::new(INVENTORY);
    let fake = alice_at_work(&closet).await;
    // Nothing to remove: one probe per host, and no squeue in it.
    let before: Vec<usize> = ["head", "node1"]
        .iter()
        .map(|h| probes(&fake, h).len())
        .collect();
    assert!(!plan(&fake, &closet.load()).await.has_changes());
    for (h, n) in ["head", "node1"].iter().zip(before) {
        let ran = probes(&fake, h);
        assert_eq!(ran.len(), n + 1, "{h}: one round trip");
        assert!(!ran.last().unwrap().contains("squeue"), "{h}");
    }
    // Alice leaves: the controller is asked once more, for the jobs alone.
    let inventory = std::fs::read_to_string(closet.path()).unwrap();
    closet.set(&disable_user(&closet.path(), &inventory, "alice", None).unwrap());
    let n = probes(&fake, "head").len();
    let p = plan(&fake, &closet.load()).await;
    let ran = probes(&fake, "head");
    assert_eq!(ran.len(), n + 2, "the probe and the follow-up");
    assert!(!ran[n].contains("squeue"));
    assert!(
        ran[n + 1].contains("squeue") && !ran[n + 1].contains("LOCK="),
        "{}",
        ran[n + 1]
    );
    assert!(
        host_plan(&p, "head").conflicts[0]
            .text()
            .contains("alice has active jobs 41"),
        "{}",
        text(&p)
    );
}

#[tokio::test]
async fn a_disabled_user_loses_access_everywhere_once_her_jobs_may_be_cancelled() {
    let closet = Closet::new(INVENTORY);
    let fake = alice_at_work(&closet).await;
    let text_before = std::fs::read_to_string(closet.path()).unwrap();
    let edited = disable_user(&closet.path(), &text_before, "alice", Some("graduated")).unwrap();
    closet.set(&edited);

    // Without --cancel-jobs the controller is refused and her job named; node1 goes on.
    let loaded = closet.load();
    let first = plan(&fake, &loaded).await;
    assert_eq!(
        status(&first, "head"),
        HostStatus::Conflict,
        "{}",
        text(&first)
    );
    let busy = &host_plan(&first, "head").conflicts[0];
    assert_eq!(busy.code, Code::AssociationBusy);
    assert!(
        busy.text().contains("alice has active jobs 41") && busy.text().contains("--cancel-jobs"),
        "{}",
        busy.text()
    );
    assert_eq!(
        lines(&first, "node1"),
        vec![
            "- login alice: lock and expire the account (disabled: graduated); it stays, with her uid and files",
            &format!("- authorized-keys {KEYS}: moved into {BACKUP_DIR}{KEYS} (root-only); re-enabling installs her keys from the inventory"),
        ]
    );
    // Her process is reported, not ended, without --end-sessions.
    let left = &host_plan(&first, "node1").warnings;
    assert!(
        left.iter()
            .any(|d| d.code == Code::SessionsLeft && d.message.contains("1 process")),
        "{left:?}"
    );
    let outcome = apply(&fake, &loaded).await;
    assert!(!outcome.success());
    assert_eq!(
        shadow(&fake, "node1", "alice"),
        Shadow {
            locked: true,
            expires: Some(1)
        }
    );
    fake.host("head").with(|s| {
        assert_eq!(
            s.slurmdb.jobs.len(),
            1,
            "no job cancelled without --cancel-jobs"
        );
        assert!(s
            .slurmdb
            .associations
            .iter()
            .any(|((_, _, u), _)| u == "alice"));
    });
    assert_eq!(
        fake.host("node1").with(|s| s.processes.clone()),
        vec![(1001, 4242)]
    );

    // With --cancel-jobs and --end-sessions it goes through, and the next plan is empty.
    let mut loaded = closet.load();
    loaded.allow(true, true);
    let second = plan(&fake, &loaded).await;
    assert_eq!(
        status(&second, "head"),
        HostStatus::Ready,
        "{}",
        text(&second)
    );
    let head = lines(&second, "head");
    assert!(
        head.contains(&"- association vision-lab/alice: cancel her active jobs 41 first (--cancel-jobs); alice (disabled: graduated); the inventory has no account for alice any more".to_string()),
        "{head:#?}"
    );
    assert_eq!(
        lines(&second, "node1"),
        vec!["- sessions alice: end her 1 process and sessions"]
    );
    let outcome = apply(&fake, &loaded).await;
    assert!(
        outcome.success(),
        "{:?}\n{}",
        outcome.report,
        text(outcome.after.as_ref().unwrap())
    );
    assert!(!plan(&fake, &loaded).await.has_changes());
    assert_eq!(
        access_summary(&with_tailnet(&loaded.inventory, None), &second)
            .iter()
            .map(|d| format!("{} {}: {}", d.code.as_str(), d.subject, d.message))
            .collect::<Vec<_>>(),
        ["access-removed alice: access removed on 2 hosts, 1 association, 1 tailnet group"]
    );
    // The plan carries it for its JSON too (without a tailnet here: no group).
    let json = serde_json::to_value(&second).unwrap();
    assert_eq!(json["summary"][0]["code"], "access-removed", "{json}");
    assert_eq!(json["summary"][0]["subject"], "alice");
    assert_eq!(
        json["summary"][0]["message"],
        "access removed on 2 hosts, 1 association, 0 tailnet groups"
    );

    for host in ["head", "node1"] {
        fake.host(host).with(|s| {
            assert_eq!(
                s.shadow["alice"],
                Shadow {
                    locked: true,
                    expires: Some(1)
                },
                "{host}"
            );
            assert_eq!(
                s.shadow["bob"],
                Shadow {
                    locked: true,
                    expires: None
                },
                "{host}"
            );
            // Her account stays (ls -l shows her name), her files are untouched.
            assert_eq!(s.users["alice"].uid, 1001);
            assert_eq!(s.files["/home/alice/thesis.tex"].owner, "alice");
            assert!(!s.files.contains_key(KEYS), "{host}: keys left in her home");
            let kept = &s.files[&format!("{BACKUP_DIR}{KEYS}")];
            assert_eq!((kept.owner.as_str(), kept.mode), ("root", 0o600));
            assert!(String::from_utf8_lossy(&kept.content).contains(KEY));
            assert!(
                s.text("/home/bob/.ssh/authorized_keys").is_empty() || s.users.contains_key("bob")
            );
        });
    }
    fake.host("head").with(|s| {
        assert!(s.slurmdb.jobs.is_empty());
        assert!(!s
            .slurmdb
            .associations
            .iter()
            .any(|((_, _, u), _)| u == "alice"));
        assert!(s
            .slurmdb
            .associations
            .iter()
            .any(|((_, _, u), _)| u == "bob"));
    });
    assert!(fake.host("node1").with(|s| s.processes.is_empty()));
    // Her key went by the owner's stash op; root never wrote in her home.
    let sent = fake.host("node1").scripts.lock().unwrap().join("\n");
    assert!(
        sent.contains(&format!("cc_owner_stash '{KEYS}' 'alice' 'alice'")),
        "{sent}"
    );

    // The tailnet policy no longer lists her; bob stays.
    let (policy, notes) =
        closetctl_core::concerns::tailscale::policy(&with_tailnet(&loaded.inventory, None));
    assert_eq!(policy.groups["group:researchers"], ["bob@example.edu"]);
    assert!(
        notes.iter().any(|n| n.contains(
            "alice@example.edu (user `alice`, disabled: graduated) left out of group:researchers"
        )),
        "{notes:?}"
    );
}

#[tokio::test]
async fn re_enabling_restores_keys_and_associations_from_the_inventory_not_the_backup() {
    let closet = Closet::new(INVENTORY);
    let fake = alice_at_work(&closet).await;
    fake.host("head").with(|s| s.slurmdb.jobs.clear());
    closet.set(&disable_user(&closet.path(), INVENTORY, "alice", None).unwrap());
    assert!(apply(&fake, &closet.load()).await.success());
    // Someone tampers with the backup: re-enabling must not bring that back.
    fake.host("node1").with(|s| {
        s.files
            .get_mut(&format!("{BACKUP_DIR}{KEYS}"))
            .unwrap()
            .content =
            b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMallory000000000000000000 mallory".to_vec()
    });

    closet.set(INVENTORY);
    let loaded = closet.load();
    let back = plan(&fake, &loaded).await;
    let node1 = lines(&back, "node1");
    assert_eq!(
        node1[0],
        "~ expiry alice: account expires 1970-01-02 -> never; re-enabled: unlock the account closetctl locked"
    );
    assert!(
        node1
            .iter()
            .any(|l| l.starts_with(&format!("+ file {KEYS}"))),
        "{node1:#?}"
    );
    assert!(
        lines(&back, "head")
            .iter()
            .any(|l| l.starts_with("+ association vision-lab/alice")),
        "{}",
        text(&back)
    );
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    assert!(!plan(&fake, &loaded).await.has_changes());
    fake.host("node1").with(|s| {
        assert_eq!(s.shadow["alice"].expires, None);
        assert!(s.text(KEYS).contains(KEY) && !s.text(KEYS).contains("mallory"));
    });
    fake.host("head").with(|s| {
        assert!(s
            .slurmdb
            .associations
            .iter()
            .any(|((_, a, u), _)| u == "alice" && a == "vision-lab"))
    });
}

#[tokio::test]
async fn expires_sets_the_account_expiry_and_once_the_day_comes_access_ends() {
    let with_expiry = INVENTORY.replace(
        "name = \"bob\"\nuid = 1002\n",
        "name = \"bob\"\nuid = 1002\nexpires = \"2030-06-30\"\nemail = \"bob@example.edu\"\n",
    );
    let closet = Closet::new(&with_expiry);
    let mut loaded = closet.load();
    loaded.inventory.run.today = Some(Expiry::parse("2030-06-01").unwrap().day);
    let fake = converged(&loaded, &["head", "node1"]).await;
    assert_eq!(
        shadow(&fake, "node1", "bob").expires,
        Some(22_095),
        "2030-06-30 in days"
    );
    let sent = fake.host("node1").scripts.lock().unwrap().join("\n");
    assert!(
        sent.contains("cc_command 'chage -E '\"'\"'2030-06-30'\"'\"' '\"'\"'bob'\"'\"''"),
        "{sent}"
    );

    // `check users` lists him 29 days ahead.
    let soon = closetctl_core::check::users::expiring(&loaded.inventory);
    assert_eq!(soon.len(), 1);
    assert_eq!(soon[0].code, Code::AccountExpiring);
    assert!(
        soon[0]
            .message
            .contains("`bob` expires on 2030-06-30, in 29 days"),
        "{}",
        soon[0].message
    );

    // The day comes: the plan shows him as gone, and apply finishes the job.
    loaded.inventory.run.today = Some(Expiry::parse("2030-06-30").unwrap().day);
    let after = plan(&fake, &loaded).await;
    assert_eq!(
        lines(&after, "node1")[0],
        "- login bob: lock and expire the account (expired on 2030-06-30); it stays, with her uid and files"
    );
    assert!(lines(&after, "head")
        .iter()
        .any(|l| l.starts_with("- association vision-lab/bob")));
    let today = loaded.inventory.run.today;
    let (policy, _) =
        closetctl_core::concerns::tailscale::policy(&with_tailnet(&loaded.inventory, today));
    assert_eq!(policy.groups["group:researchers"], ["alice@example.edu"]);
    assert!(apply(&fake, &loaded).await.success());
    assert!(!plan(&fake, &loaded).await.has_changes());
    assert_eq!(
        shadow(&fake, "head", "bob"),
        Shadow {
            locked: true,
            expires: Some(1)
        }
    );
}

#[test]
fn a_disabled_users_name_and_uid_stay_reserved() {
    let path = Path::new("inventory.toml");
    let disabled = disable_user(path, INVENTORY, "alice", Some("left")).unwrap();
    let new = |name: &str, uid| NewUser {
        name: name.into(),
        uid,
        ..NewUser::default()
    };
    let by_uid = add_user(path, &disabled, &new("mallory", 1001))
        .unwrap_err()
        .to_string();
    assert!(
        by_uid.contains("uid 1001 is already taken by disabled user `alice`"),
        "{by_uid}"
    );
    let by_name = add_user(path, &disabled, &new("alice", 1005))
        .unwrap_err()
        .to_string();
    assert!(
        by_name.contains("user `alice` already exists (uid 1001) (disabled"),
        "{by_name}"
    );
    let twice = disable_user(path, &disabled, "alice", None)
        .unwrap_err()
        .to_string();
    assert!(
        twice.contains("user `alice` is already disabled (left)"),
        "{twice}"
    );
    let nobody = disable_user(path, INVENTORY, "carol", None)
        .unwrap_err()
        .to_string();
    assert!(
        nobody.contains("there is no user `carol` to disable"),
        "{nobody}"
    );
}

#[test]
fn deluser_marks_her_disabled_in_place_keeping_every_comment() {
    let closet = Closet::new(INVENTORY);
    closetctl()
        .args([
            "deluser",
            "alice",
            "--reason",
            "graduated",
            "--yes",
            "--offline",
            "-i",
        ])
        .arg(closet.path())
        .assert()
        .success();
    let after = std::fs::read_to_string(closet.path()).unwrap();
    let expected = INVENTORY.replace(
        "ssh_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice0000000000000000000000 alice@laptop\"]\n",
        "ssh_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice0000000000000000000000 alice@laptop\"]\ndisabled = true\ndisabled_reason = \"graduated\"\n",
    );
    assert_eq!(after, expected);
    let inv = Inventory::parse(&closet.path(), &after).unwrap();
    let alice = inv.user("alice").unwrap();
    assert!(alice.disabled && alice.disabled_reason.as_deref() == Some("graduated"));
}

#[test]
fn leaving_fields_are_validated_with_their_place() {
    let bad = INVENTORY.replace(
        "name = \"bob\"\nuid = 1002\n",
        "name = \"bob\"\nuid = 1002\nexpires = \"2030-02-30\"\nemail = \"bob at example\"\ndisabled_reason = \"why\"\n",
    );
    let err = Inventory::parse(Path::new("inv.toml"), &bad)
        .unwrap_err()
        .to_string();
    for needle in [
        "inv.toml:30:11: user `bob`: expires `2030-02-30` is not a date `YYYY-MM-DD`",
        "inv.toml:31:9: user `bob`: email `bob at example` is not a login like `alice@example.edu`",
        "inv.toml:32:19: user `bob`: `disabled_reason` without `disabled = true`",
    ] {
        assert!(err.contains(needle), "{needle} not in\n{err}");
    }
}

/// `archive_home`: with `/home` on NFS from head, her home is tarred once, as her, into
/// the root-only archive on head (where it lives), before her keys leave it; node1 has
/// nothing to archive; the archive is never made again.
#[tokio::test]
async fn archive_home_tars_her_home_on_the_host_that_stores_it_once() {
    let inventory = INVENTORY
        .replace("roles = [\"controller\"]", "roles = [\"controller\", \"nfs-server\"]")
        .replace(
        "[slurm]",
        "[nfs]\nserver = \"head\"\nnetwork = \"10.0.0.0/24\"\nexports = [ { path = \"/home\" } ]\n\n[slurm]",
    );
    let closet = Closet::new(&inventory);
    let fake = converged(&closet.load(), &["head", "node1"]).await;
    fake.host("head").with(|s| {
        s.files.insert(
            "/home/alice/thesis.tex".into(),
            FakeFile {
                kind: FileKind::File,
                mode: 0o644,
                owner: "alice".into(),
                group: "alice".into(),
                content: b"\\chapter{Results}".to_vec(),
            },
        )
    });
    let text_before = std::fs::read_to_string(closet.path()).unwrap();
    let edited = disable_user(&closet.path(), &text_before, "alice", Some("graduated"))
        .unwrap()
        .replace("disabled = true", "disabled = true\narchive_home = true");
    closet.set(&edited);
    let loaded = closet.load();
    assert!(loaded.inventory.user("alice").unwrap().archive_home);
    let archive = format!("{}/alice.tar.gz", closetctl_core::ops::ARCHIVE_DIR);
    let first = plan(&fake, &loaded).await;
    let head = lines(&first, "head");
    let at = |needle: &str| head.iter().position(|l| l.contains(needle));
    assert_eq!(
        head[at("home-archive").expect("an archive line on head")],
        format!("+ home-archive /home/alice: tar it into {archive} (root-only), read as alice; her files stay where they are")
    );
    assert!(
        at("home-archive") < at("authorized-keys"),
        "archived before her keys leave: {head:#?}"
    );
    assert!(
        !lines(&first, "node1")
            .iter()
            .any(|l| l.contains("home-archive")),
        "node1 mounts /home from head: nothing to archive there"
    );
    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    fake.host("head").with(|s| {
        let a = &s.files[&archive];
        assert_eq!((a.owner.as_str(), a.mode), ("root", 0o600));
        let listing = String::from_utf8(a.content.clone()).unwrap();
        assert!(
            listing.contains("alice/thesis.tex") && listing.contains("alice/.ssh/authorized_keys"),
            "{listing}"
        );
        assert!(
            s.files.contains_key("/home/alice/thesis.tex"),
            "her files stay"
        );
    });
    assert!(!plan(&fake, &loaded).await.has_changes(), "archived once");
}
