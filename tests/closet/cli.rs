//! The binary's contract: exit codes, errors and hints on stderr, the command list.
//!
//! No test here contacts a host: every inventory is refused, or a host is unknown,
//! before any connection is made. As a second guard the only address used is loopback.

use crate::kit;
use assert_cmd::Command;

fn closetctl(dir: &std::path::Path) -> Command {
    let mut cmd = kit::closetctl();
    cmd.current_dir(dir);
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(dir: &std::path::Path, args: &[&str]) -> Run {
    let out = closetctl(dir).args(args).output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// An inventory with two problems (line 5 and line 9).
const BAD: &str = r#"[cluster]
name = "closet"

[[host]]
name = "Head"
address = "127.0.0.1"

[ssh]
connect_timeout = 0
"#;

const BAD_STDERR: &str = "error: inventory `bad.toml` is not valid (2 problems):
  bad.toml:5:8: host name `Head` does not match `^[a-z_][a-z0-9_-]{0,31}$`
  bad.toml:9:19: connect_timeout `0` would wait forever; give seconds, e.g. 10
hint: nothing was changed on any host
";

/// Loopback only, on a port nothing listens on.
const LOOPBACK: &str = r#"[cluster]
name = "closet"

[ssh]
port = 9
connect_timeout = 1

[[host]]
name = "head"
address = "127.0.0.1"
"#;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_bad_inventory_is_refused_with_positions_and_nothing_changed() {
    let dir = dir_with(&[("bad.toml", BAD)]);
    let r = run(dir.path(), &["plan", "-i", "bad.toml"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, BAD_STDERR);
}

#[test]
fn every_command_that_reads_the_inventory_refuses_it_the_same_way() {
    let bad = "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"127.0.0.1\"\nroles = [\"wizard\"]\n";
    let dir = dir_with(&[("bad.toml", bad)]);
    let expected = "error: inventory `bad.toml` is not valid (1 problem):
  bad.toml:7:10: host `head`: unknown role `wizard` (known: controller, compute, nfs-server, login, subnet-router)
hint: nothing was changed on any host
";
    for args in [
        &["plan", "-i", "bad.toml"][..],
        &["plan", "--json", "--detailed-exitcode", "-i", "bad.toml"],
        &["apply", "--yes", "-i", "bad.toml"],
        &["facts", "-i", "bad.toml"],
        &["render", "-i", "bad.toml", "--out", "out"],
        &["unlock", "--yes", "-i", "bad.toml"],
    ] {
        let r = run(dir.path(), args);
        assert_eq!(r.code, Some(1), "{args:?}");
        assert_eq!(r.stdout, "", "{args:?}");
        assert_eq!(r.stderr, expected, "{args:?}");
    }
    // Nothing was written beside the inventory either (no secrets, no render output).
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["bad.toml"]);
}

#[test]
fn the_inventory_can_come_from_the_environment() {
    let bad = "[cluster]\nname = \"closet\"\n";
    let dir = dir_with(&[("env.toml", bad)]);
    let out = closetctl(dir.path())
        .env("CLOSETCTL_INVENTORY", "env.toml")
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: inventory `env.toml` is not valid (1 problem):
  env.toml:1:1: no `[[host]]` is declared; an inventory needs at least one host
hint: nothing was changed on any host
"
    );
}

#[test]
fn a_missing_inventory_gets_a_hint() {
    let dir = dir_with(&[]);
    let r = run(dir.path(), &["plan", "-i", "missing.toml"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "error: cannot read inventory `missing.toml`: No such file or directory (os error 2)
hint: give the inventory with `-i FILE` or CLOSETCTL_INVENTORY; `inventory.example.toml` is a commented example
"
    );
}

#[test]
fn the_default_inventory_is_inventory_toml_in_the_current_directory() {
    let dir = dir_with(&[]);
    let r = run(dir.path(), &["plan"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.starts_with("error: cannot read inventory `inventory.toml`: No such file or directory (os error 2)\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unknown_host_is_an_error_before_anything_is_contacted() {
    let dir = dir_with(&[("inventory.toml", LOOPBACK)]);
    let r = run(dir.path(), &["plan", "--host", "nosuch"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "error: unknown host `nosuch`: it is not in the inventory\n"
    );
}

#[test]
fn help_lists_the_commands() {
    let dir = dir_with(&[]);
    let r = run(dir.path(), &["--help"]);
    assert_eq!(r.code, Some(0));
    let commands: Vec<&str> = r
        .stdout
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for c in [
        "plan", "apply", "adduser", "facts", "render", "unlock", "help",
    ] {
        assert!(commands.contains(&c), "{c} missing from {commands:?}");
    }
    // Columns move as commands are added: compare the description, not the padding.
    let plan_line = r.stdout.lines().find(|l| l.starts_with("  plan ")).unwrap();
    assert_eq!(
        plan_line.split_whitespace().collect::<Vec<_>>().join(" "),
        "plan Show, per host, what apply would change (a diff against the live hosts)"
    );
}

#[test]
fn subcommand_help_lists_the_documented_flags() {
    let dir = dir_with(&[]);
    for (cmd, flags) in [
        (
            "plan",
            &["--inventory", "--host", "--json", "--detailed-exitcode"][..],
        ),
        ("apply", &["--inventory", "--host", "--yes"]),
        (
            "adduser",
            &[
                "--uid",
                "--gid",
                "--group",
                "--ssh-key",
                "--inventory",
                "--offline",
            ],
        ),
        ("facts", &["--host", "--json"]),
        ("render", &["--host", "--out"]),
        ("unlock", &["--inventory", "--host", "--yes"]),
    ] {
        let r = run(dir.path(), &[cmd, "--help"]);
        assert_eq!(r.code, Some(0), "{cmd}");
        for f in flags {
            assert!(
                r.stdout.contains(f),
                "`closetctl {cmd} --help` lacks {f}:\n{}",
                r.stdout
            );
        }
    }
    let r = run(dir.path(), &["plan", "--help"]);
    assert!(
        r.stdout.contains("  -i, --inventory <INVENTORY>"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("[env: CLOSETCTL_INVENTORY=]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("[default: inventory.toml]"),
        "{}",
        r.stdout
    );
}

#[test]
fn version() {
    let dir = dir_with(&[]);
    let r = run(dir.path(), &["--version"]);
    assert_eq!(r.code, Some(0));
    assert_eq!(
        r.stdout,
        format!("closetctl {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_flag_is_an_error_not_a_drift_signal() {
    let dir = dir_with(&[]);
    let r = run(
        dir.path(),
        &["plan", "--detailed-exitcode", "--no-such-flag"],
    );
    assert!(
        r.stderr
            .starts_with("error: unexpected argument '--no-such-flag' found"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.code,
        Some(1),
        "exit 2 means `the plan has changes` to cron and CI"
    );
}

#[test]
fn unlock_names_unknown_and_unreachable_hosts() {
    let dir = dir_with(&[("inventory.toml", LOOPBACK)]);
    let r = run(dir.path(), &["unlock", "--host", "nosuch"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stderr,
        "error: unknown host `nosuch`: it is not in the inventory\n"
    );
    // Nothing listens on loopback port 9: the host is named unreachable, exit 1.
    let r = run(dir.path(), &["unlock", "--yes"]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with("head: unreachable: cannot connect to `head`: "),
        "{}",
        r.stdout
    );
}

/// A login host, a researcher, an NFS home; no Tailscale, so nothing is probed.
const RESEARCHERS: &str = r#"[cluster]
name = "closet"

[ssh]
user = "root"
port = 9
connect_timeout = 1

[[host]]
name = "head"
address = "127.0.0.1"
roles = ["controller", "nfs-server", "login"]

[[user]]
name = "alice"
uid = 1001

[nfs]
server = "head"
exports = [ { path = "/home" } ]
"#;

#[test]
fn export_skypilot_prints_both_files_and_refuses_an_unknown_user() {
    let dir = dir_with(&[("inv.toml", RESEARCHERS)]);
    let r = run(
        dir.path(),
        &[
            "export",
            "skypilot",
            "-i",
            "inv.toml",
            "--user",
            "alice",
            "--offline",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.starts_with("# ==> ~/.slurm/config <==\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\n# ==> ~/.sky/config.yaml <==\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Host closet\n    HostName 127.0.0.1\n    User alice\n    Port 9\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("workdir: \"/home/alice\""),
        "{}",
        r.stdout
    );
    let r = run(
        dir.path(),
        &[
            "export",
            "skypilot",
            "-i",
            "inv.toml",
            "--user",
            "mallory",
            "--offline",
        ],
    );
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.contains("no user `mallory` in the inventory"),
        "{}",
        r.stderr
    );
    // The node pool keeps its own output and warning.
    let r = run(
        dir.path(),
        &[
            "export",
            "skypilot",
            "-i",
            "inv.toml",
            "--ssh-node-pool",
            "--offline",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("closet:\n  user: \"root\"\n  hosts:\n"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("k3s"), "{}", r.stderr);
}

#[test]
fn export_transformerlab_refuses_storage_off_the_nfs_exports() {
    let dir = dir_with(&[("inv.toml", RESEARCHERS)]);
    let r = run(
        dir.path(),
        &[
            "export",
            "transformerlab",
            "-i",
            "inv.toml",
            "--user",
            "alice",
            "--offline",
            "--storage",
            "/var/tl",
        ],
    );
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr
            .contains("storage path `/var/tl` is not on a writable NFS export"),
        "{}",
        r.stderr
    );
    let r = run(
        dir.path(),
        &[
            "export",
            "transformerlab",
            "-i",
            "inv.toml",
            "--user",
            "alice",
            "--offline",
            "--gpus",
            "2",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("TFL_STORAGE_URI=/home/alice/transformerlab\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(r#""user_sbatch_flags":"--gres=gpu:2""#),
        "{}",
        r.stdout
    );
}
