//! `adduser`: the inventory is edited in place, keeping every comment and the layout,
//! and a name, UID or group that does not fit is refused before anything is written.

use crate::kit::closetctl;
use closetctl_core::inventory::edit::{add_user, NewUser};
use closetctl_core::inventory::Inventory;
use std::io::BufRead;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

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
    // No temp file is left beside the inventory; the lock file stays (see edit.rs).
    assert_eq!(
        entries(dir.path()),
        [".inventory.toml.lock", "inventory.toml"]
    );
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

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `closetctl adduser carol --uid 1003 --group vision-lab -i inventory.toml` in `dir`,
/// started, with stderr piped.
fn spawn_adduser(dir: &Path, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("closetctl"))
        .current_dir(dir)
        .env_remove("CLOSETCTL_INVENTORY")
        .env("NO_COLOR", "1")
        .args([
            "adduser",
            "carol",
            "--uid",
            "1003",
            "--group",
            "vision-lab",
            "-i",
            "inventory.toml",
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for `path` to exist (at most 60 s).
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An inventory whose only host is reached through a ProxyCommand that says it started,
/// waits for `go`, and fails: adduser's look at the hosts holds still until the test
/// has made its concurrent edit.
fn inventory_with_a_slow_host(dir: &Path) {
    std::fs::write(
        dir.join("ssh_config"),
        format!(
            "Host *\n    ProxyCommand sh -c 'touch {d}/started; while [ ! -e {d}/go ]; do sleep 0.05; done; exit 1'\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("inventory.toml"),
        format!("{COMMENTED}\n[ssh]\nconfig = \"ssh_config\"\n"),
    )
    .unwrap();
}

const DAVE: &str = "\n[[user]]\nname = \"dave\"   # added by another admin meanwhile\nuid = 1004\n";

#[test]
fn cli_adduser_keeps_an_edit_made_while_it_looked_at_the_hosts() {
    let dir = tempfile::tempdir().unwrap();
    inventory_with_a_slow_host(dir.path());
    let path = dir.path().join("inventory.toml");
    let child = spawn_adduser(dir.path(), &[]);
    // adduser has read the file and is waiting on the host: another admin adds dave.
    wait_for(&dir.path().join("started"));
    let edited = format!("{}{DAVE}", std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &edited).unwrap();
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: could not check host `head`"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let inv = Inventory::parse(&path, &text).unwrap();
    let names: Vec<&str> = inv.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "dave", "carol"], "{text}");
    assert!(
        text.starts_with(&edited),
        "dave's edit is kept as written:\n{text}"
    );
}

#[test]
fn cli_adduser_refuses_when_a_concurrent_edit_took_the_uid() {
    let dir = tempfile::tempdir().unwrap();
    inventory_with_a_slow_host(dir.path());
    let path = dir.path().join("inventory.toml");
    let child = spawn_adduser(dir.path(), &[]);
    wait_for(&dir.path().join("started"));
    let edited = format!(
        "{}{}",
        std::fs::read_to_string(&path).unwrap(),
        DAVE.replace("1004", "1003")
    );
    std::fs::write(&path, &edited).unwrap();
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with(
            "error: inventory `inventory.toml`: uid 1003 is already taken by user `dave`\n"
        ),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
}

#[test]
fn cli_adduser_waits_for_the_lock_and_keeps_the_holders_edit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, COMMENTED).unwrap();
    // Another editor holds the lock beside the inventory.
    let lock = std::fs::File::create(dir.path().join(".inventory.toml.lock")).unwrap();
    lock.lock().unwrap();
    let mut child = spawn_adduser(dir.path(), &["--offline"]);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        format!(
            "waiting for the lock {} (another closetctl is editing the inventory)\n",
            dir.path().join(".inventory.toml.lock").display()
        ),
        "adduser did not wait for the lock"
    );
    // The holder writes its edit and lets go.
    std::fs::write(&path, format!("{COMMENTED}{DAVE}")).unwrap();
    drop(lock);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let inv = Inventory::load(&path).unwrap();
    let names: Vec<&str> = inv.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "dave", "carol"]);
}

#[test]
fn cli_adduser_writes_through_a_symlink_to_its_target() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lab")).unwrap();
    let target = dir.path().join("lab/closet.toml");
    std::fs::write(&target, COMMENTED).unwrap();
    std::os::unix::fs::symlink("lab/closet.toml", dir.path().join("inventory.toml")).unwrap();
    let out = spawn_adduser(dir.path(), &["--offline"])
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The link is still the same link; its target has carol.
    let link = dir.path().join("inventory.toml");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("lab/closet.toml")
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        add_user(Path::new("inventory.toml"), COMMENTED, &carol()).unwrap()
    );
    // The lock and the temp file were beside the target; only the lock stays.
    assert_eq!(entries(dir.path()), ["inventory.toml", "lab"]);
    assert_eq!(
        entries(&dir.path().join("lab")),
        [".closet.toml.lock", "closet.toml"]
    );
}

#[test]
fn cli_adduser_keeps_the_mode_and_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, COMMENTED).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A second name for the old file: a rename leaves it as it was, a rewrite in place
    // (the torn-file risk) would change it too.
    std::fs::hard_link(&path, dir.path().join("before.toml")).unwrap();
    let ino = std::fs::metadata(&path).unwrap().ino();
    let out = spawn_adduser(dir.path(), &["--offline"])
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_ne!(meta.ino(), ino, "a new file was renamed in");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("before.toml")).unwrap(),
        COMMENTED
    );
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("name = \"carol\""));
}

/// Whether this test runs as root with `setpriv` (else the owner tests are skipped, visibly).
fn root_with_setpriv(test: &str) -> bool {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && setpriv) {
        eprintln!("SKIPPED {test}: needs root and setpriv (root: {root}, setpriv: {setpriv})");
    }
    root && setpriv
}

#[test]
fn cli_adduser_keeps_the_owner() {
    if !root_with_setpriv("cli_adduser_keeps_the_owner") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, COMMENTED).unwrap();
    std::os::unix::fs::chown(&path, Some(4242), Some(4343)).unwrap();
    let out = spawn_adduser(dir.path(), &["--offline"])
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("name = \"carol\""));
}

#[test]
fn cli_adduser_refuses_rather_than_take_over_someone_elses_file() {
    if !root_with_setpriv("cli_adduser_refuses_rather_than_take_over_someone_elses_file") {
        return;
    }
    // nobody may write the file and its directory, but cannot give a new file 4242's
    // ownership: the edit is refused and nothing changes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, COMMENTED).unwrap();
    std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("closetctl"))
        .args(["adduser", "carol", "--uid", "1003", "-i"])
        .arg(&path)
        .arg("--offline")
        .env_remove("CLOSETCTL_INVENTORY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: cannot write inventory `{}`: cannot keep its owner 4242:4242 (run adduser as that user or as root): Operation not permitted (os error 1)\n",
            path.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), COMMENTED);
    assert_eq!(
        entries(dir.path()),
        [".inventory.toml.lock", "inventory.toml"]
    );
}
