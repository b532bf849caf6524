//! `adduser`: the inventory is edited in place, keeping every comment and the layout,
//! and a name, UID or group that does not fit is refused before anything is written.

use assert_cmd::Command;
use closetctl::inventory::edit::{add_user, NewUser};
use closetctl::inventory::Inventory;
use std::path::Path;

const COMMENTED: &str = r#"# The lab closet. Ask Pat before changing anything below.

[cluster]
name = "closet"   # also the Slurm cluster name

[[host]]
name = "head"                 # the box under the desk
address = "10.0.0.1"
roles = ["controller", "compute"]

# ---- people ------------------------------------------------------------------

[[group]]
name = "vision-lab"
gid = 2001   # matches the NFS server

[[user]]
name = "alice"
uid = 1001
groups = ["vision-lab"]       # PhD student, 3rd year

[[user]]
# bob's laptop key rotates every term
name = "bob"
uid = 1002

# ---- storage -------------------------------------------------------------------
# [nfs] comes later, when the disks arrive.
"#;

fn carol() -> NewUser {
    NewUser {
        name: "carol".into(),
        uid: 1003,
        groups: vec!["vision-lab".into()],
        ..NewUser::default()
    }
}

fn refused(user: &NewUser) -> String {
    add_user(Path::new("inv.toml"), COMMENTED, user)
        .expect_err("the edit should be refused")
        .to_string()
}

#[test]
fn add_user_keeps_every_comment_and_the_layout() {
    let user = NewUser {
        ssh_keys: vec![
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq2mWg3xJ0u7rXn0aQ8y1bqk4L9cS2d5e6f7g8h9i0j carol@laptop".into(),
        ],
        ..carol()
    };
    let text = add_user(Path::new("inv.toml"), COMMENTED, &user).unwrap();
    // Every line of the original is still there, in the same order.
    let mut rest = text.lines();
    for line in COMMENTED.lines() {
        assert!(rest.any(|l| l == line), "lost or moved: {line:?}\n{text}");
    }
    let inv = Inventory::parse(Path::new("inv.toml"), &text).unwrap();
    let names: Vec<&str> = inv.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let carol = inv.user("carol").unwrap();
    assert_eq!((carol.uid, carol.gid), (1003, 1003));
    assert_eq!(carol.groups, ["vision-lab"]);
    assert_eq!(carol.ssh_keys.len(), 1);
    insta::assert_snapshot!("commented_inventory_with_carol", text);
}

#[test]
fn the_new_user_goes_after_the_last_user_not_at_the_end() {
    let text = add_user(Path::new("inv.toml"), COMMENTED, &carol()).unwrap();
    let carol = text.find("name = \"carol\"").unwrap();
    assert!(text.find("name = \"bob\"").unwrap() < carol);
    assert!(carol < text.find("# ---- storage").unwrap(), "{text}");
}

#[test]
fn the_first_user_of_an_inventory_without_users() {
    let source =
        "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"10.0.0.1\"\n";
    let text = add_user(
        Path::new("inv.toml"),
        source,
        &NewUser {
            name: "dave".into(),
            uid: 1004,
            gid: Some(1004),
            ..NewUser::default()
        },
    )
    .unwrap();
    assert!(text.starts_with(source), "{text}");
    assert_eq!(
        &text[source.len()..],
        "\n[[user]]\nname = \"dave\"\nuid = 1004\ngid = 1004\n"
    );
}

#[test]
fn refuses_a_taken_name() {
    let user = NewUser {
        name: "alice".into(),
        uid: 1009,
        ..NewUser::default()
    };
    assert_eq!(
        refused(&user),
        "inventory `inv.toml`: user `alice` already exists (uid 1001)"
    );
}

#[test]
fn refuses_a_taken_uid() {
    let user = NewUser {
        name: "carol".into(),
        uid: 1002,
        ..NewUser::default()
    };
    assert_eq!(
        refused(&user),
        "inventory `inv.toml`: uid 1002 is already taken by user `bob`"
    );
}

#[test]
fn refuses_an_unknown_group() {
    let user = NewUser {
        groups: vec!["nlp-lab".into()],
        ..carol()
    };
    // The edited text is validated as a whole, but it is not on disk: no line numbers.
    assert_eq!(
        refused(&user),
        "inventory `inv.toml`: cannot add user `carol`: user `carol`: group `nlp-lab` is not declared in `[[group]]`"
    );
}

#[test]
fn refuses_a_uid_in_the_system_range() {
    let user = NewUser {
        name: "carol".into(),
        uid: 999,
        ..NewUser::default()
    };
    assert_eq!(
        refused(&user),
        "inventory `inv.toml`: cannot add user `carol`: user `carol`: uid `999` is outside the range for people and labs (1000..59999); system accounts are not managed here"
    );
}

#[test]
fn refuses_a_bad_name() {
    let user = NewUser {
        name: "Carol".into(),
        uid: 1003,
        ..NewUser::default()
    };
    assert_eq!(
        refused(&user),
        "inventory `inv.toml`: cannot add user `Carol`: user name `Carol` does not match `^[a-z_][a-z0-9_-]{0,31}$`"
    );
}

#[test]
fn refuses_a_gid_held_by_another_users_private_group() {
    let user = NewUser {
        name: "carol".into(),
        uid: 1003,
        gid: Some(1001),
        ..NewUser::default()
    };
    assert_eq!(
        refused(&user),
        "inventory `inv.toml`: cannot add user `carol`: user `carol`: private group id `1001` is already used by user `alice`'s private group at line 19, column 7"
    );
}

#[test]
fn refuses_to_edit_an_invalid_inventory_pointing_at_the_file() {
    let source = COMMENTED.replace("uid = 1002", "uid = 10");
    let err = add_user(Path::new("inv.toml"), &source, &carol())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "inventory `inv.toml` is not valid (1 problem):\n  inv.toml:25:7: user `bob`: uid `10` is outside the range for people and labs (1000..59999); system accounts are not managed here"
    );
}

#[test]
fn a_gid_of_a_declared_group_makes_it_the_primary_group() {
    let user = NewUser {
        name: "carol".into(),
        uid: 1003,
        gid: Some(2001),
        ..NewUser::default()
    };
    let text = add_user(Path::new("inv.toml"), COMMENTED, &user).unwrap();
    let inv = Inventory::parse(Path::new("inv.toml"), &text).unwrap();
    let carol = inv.user("carol").unwrap();
    assert_eq!(
        (carol.gid, carol.primary_group.as_str(), carol.private_group),
        (2001, "vision-lab", false)
    );
}

fn closetctl() -> Command {
    let mut cmd = Command::cargo_bin("closetctl").unwrap();
    cmd.env_remove("CLOSETCTL_INVENTORY").env("NO_COLOR", "1");
    cmd
}

#[test]
fn cli_adduser_edits_the_file_and_prints_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, COMMENTED).unwrap();
    let out = closetctl()
        .current_dir(dir.path())
        .args([
            "adduser",
            "carol",
            "--uid",
            "1003",
            "--group",
            "vision-lab",
            "-i",
            "inventory.toml",
            "--offline",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "Added user `carol` (uid 1003) to inventory.toml.\nNext: `closetctl plan -i inventory.toml` to review, then `closetctl apply -i inventory.toml`.\n"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        add_user(Path::new("inventory.toml"), COMMENTED, &carol()).unwrap()
    );
    // No temp file is left beside the inventory.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["inventory.toml"]);
}

#[test]
fn cli_adduser_refuses_a_taken_uid_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, COMMENTED).unwrap();
    let out = closetctl()
        .current_dir(dir.path())
        .args([
            "adduser",
            "carol",
            "--uid",
            "1001",
            "-i",
            "inventory.toml",
            "--offline",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: inventory `inventory.toml`: uid 1001 is already taken by user `alice`\n"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), COMMENTED);
}
