//! Bad inventories: each one must be refused with the exact problem text, pointing at
//! `file:line:column` and naming the offending value, before any host is contacted.

use closetctl_core::inventory::{Inventory, Role};
use std::path::Path;

/// A valid head of an inventory (7 lines) that each case extends.
const HEAD: &str = r#"[cluster]
name = "closet"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "compute"]
"#;

/// The error text of `text` parsed as `inv.toml`; panics if it is accepted.
fn error(text: &str) -> String {
    match Inventory::parse(Path::new("inv.toml"), text) {
        Ok(_) => panic!("this inventory was accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The header and one line per problem, as `Display` renders them.
fn expect(problems: &[&str]) -> String {
    let mut s = format!(
        "inventory `inv.toml` is not valid ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  inv.toml:");
        s.push_str(p);
    }
    s
}

fn with(extra: &str) -> String {
    format!("{HEAD}{extra}")
}

/// `with`, the head also being the NFS server.
fn with_nfs(extra: &str) -> String {
    with(extra).replace(
        "roles = [\"controller\", \"compute\"]",
        "roles = [\"controller\", \"compute\", \"nfs-server\"]",
    )
}

#[test]
fn toml_syntax_error_points_at_the_unterminated_string() {
    let text = "[cluster]\nname = \"closet\n";
    assert_eq!(error(text), expect(&["2:15: invalid basic string"]));
}

#[test]
fn toml_type_error_names_the_value() {
    let text = with("\n[[group]]\nname = \"lab\"\ngid = \"2001\"\n");
    assert_eq!(
        error(&text),
        expect(&["11:7: invalid type: string \"2001\", expected u32"])
    );
}

#[test]
fn unknown_top_level_key() {
    let text = format!("flavour = 1\n{HEAD}");
    assert_eq!(
        error(&text),
        expect(&["1:1: unknown field `flavour`, expected one of `cluster`, `ssh`, `host`, `group`, `user`, `nfs`, `slurm`, `tailscale`, `power`, `cooling`, `timeouts`, `motd`"])
    );
}

#[test]
fn unknown_key_inside_a_host() {
    let text = with("gpu = 4\n");
    assert_eq!(
        error(&text),
        expect(&["8:1: unknown field `gpu`, expected one of `name`, `address`, `roles`, `gpus`, `circuit`, `base_watts`, `psu_watts`, `tailscale`"])
    );
}

#[test]
fn missing_cluster_table() {
    let text = "[[host]]\nname = \"head\"\naddress = \"10.0.0.1\"\n";
    assert_eq!(error(text), expect(&["1:1: missing field `cluster`"]));
}

#[test]
fn no_hosts() {
    assert_eq!(
        error("[cluster]\nname = \"closet\"\n"),
        expect(&["1:1: no `[[host]]` is declared; an inventory needs at least one host"])
    );
}

#[test]
fn host_name_must_match_the_pattern() {
    let text =
        "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"Head\"\naddress = \"10.0.0.1\"\n";
    assert_eq!(
        error(text),
        expect(&["5:8: host name `Head` does not match `^[a-z_][a-z0-9_-]{0,31}$`"])
    );
}

#[test]
fn duplicate_host_name_names_both_places() {
    let text = with("\n[[host]]\nname = \"head\"\naddress = \"10.0.0.2\"\n");
    assert_eq!(
        error(&text),
        expect(&["10:8: duplicate host name `head`: already declared at line 5, column 8"])
    );
}

#[test]
fn duplicate_address_names_both_places() {
    let text = with("\n[[host]]\nname = \"gpu1\"\naddress = \"10.0.0.1\"\n");
    assert_eq!(
        error(&text),
        expect(&[
            "11:11: duplicate host address `10.0.0.1`: already declared at line 6, column 11"
        ])
    );
}

#[test]
fn bad_address() {
    let text =
        "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"-head.example\"\n";
    assert_eq!(
        error(text),
        expect(&[
            "6:11: host `head`: address `-head.example` is neither an IP address nor a DNS name"
        ])
    );
}

fn known_roles() -> String {
    Role::ALL
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn unknown_role() {
    let text = "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"10.0.0.1\"\nroles = [\"compute\", \"wizard\"]\n";
    let expected = format!(
        "7:21: host `head`: unknown role `wizard` (known: {})",
        known_roles()
    );
    assert_eq!(error(text), expect(&[&expected]));
    assert!(expected.contains("controller, compute, nfs-server"));
}

#[test]
fn role_listed_twice() {
    let text = "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"10.0.0.1\"\nroles = [\"compute\", \"compute\"]\n";
    assert_eq!(
        error(text),
        expect(&["7:21: host `head`: role `compute` is listed twice"])
    );
}

#[test]
fn unknown_gpu_model() {
    let text = with("gpus = { model = \"gtx-480\", count = 2 }\n");
    let known = closetctl_core::gpu::model_keys().join(", ");
    assert!(known.contains("a100-sxm4-80gb"), "{known}");
    let expected = format!("8:18: host `head`: unknown GPU model `gtx-480` (known: {known})");
    assert_eq!(error(&text), expect(&[&expected]));
}

#[test]
fn gpu_count_zero() {
    let text = with("gpus = { model = \"rtx-4090\", count = 0 }\n");
    assert_eq!(
        error(&text),
        expect(&["8:38: host `head`: GPU count `0` must be between 1 and 16"])
    );
}

#[test]
fn circuit_reference_missing() {
    let text = with("circuit = \"closet-z\"\n");
    assert_eq!(
        error(&text),
        expect(&["8:11: host `head`: circuit `closet-z` is not declared in `[[power.circuit]]`"])
    );
}

#[test]
fn circuit_with_impossible_volts() {
    let text = with("circuit = \"a\"\n\n[[power.circuit]]\nname = \"a\"\nvolts = 12\namps = 20\n");
    assert_eq!(
        error(&text),
        expect(&["12:9: circuit `a`: volts `12` is not a mains voltage (90..600)"])
    );
}

#[test]
fn group_gid_below_1000() {
    let text = with("\n[[group]]\nname = \"lab\"\ngid = 999\n");
    assert_eq!(
        error(&text),
        expect(&["11:7: group `lab`: gid `999` is outside the range for people and labs (1000..59999); system accounts are not managed here"])
    );
}

#[test]
fn duplicate_gid_names_both_places() {
    let text =
        with("\n[[group]]\nname = \"lab\"\ngid = 2001\n\n[[group]]\nname = \"lab2\"\ngid = 2001\n");
    assert_eq!(
        error(&text),
        expect(&["15:7: duplicate group id `2001`: already declared at line 11, column 7"])
    );
}

#[test]
fn duplicate_user_name() {
    let text = with(
        "\n[[user]]\nname = \"alice\"\nuid = 1001\n\n[[user]]\nname = \"alice\"\nuid = 1002\n",
    );
    assert_eq!(
        error(&text),
        expect(&["14:8: duplicate user name `alice`: already declared at line 10, column 8"])
    );
}

#[test]
fn duplicate_uid_is_reported_once() {
    // Both users also get a private group with gid 1001: one mistake, one problem.
    let text =
        with("\n[[user]]\nname = \"alice\"\nuid = 1001\n\n[[user]]\nname = \"bob\"\nuid = 1001\n");
    assert_eq!(
        error(&text),
        expect(&["15:7: duplicate uid `1001`: already declared at line 11, column 7"])
    );
}

#[test]
fn users_group_not_declared() {
    let text = with("\n[[user]]\nname = \"alice\"\nuid = 1001\ngroups = [\"vision\"]\n");
    assert_eq!(
        error(&text),
        expect(&["12:11: user `alice`: group `vision` is not declared in `[[group]]`"])
    );
}

#[test]
fn private_group_collides_with_a_declared_gid() {
    let text =
        with("\n[[group]]\nname = \"lab\"\ngid = 2001\n\n[[user]]\nname = \"alice\"\nuid = 2001\n");
    assert_eq!(
        error(&text),
        expect(&["15:7: user `alice`: private group id `2001` is already used by group `lab` at line 11, column 7"])
    );
}

#[test]
fn explicit_private_gid_collides_with_another_users_uid() {
    // carol's private group (gid 1001, not a declared group) takes alice's uid as gid.
    let text = with(
        "\n[[user]]\nname = \"alice\"\nuid = 1001\n\n[[user]]\nname = \"carol\"\nuid = 1003\ngid = 1001\n",
    );
    assert_eq!(
        error(&text),
        expect(&["16:7: user `carol`: private group id `1001` is already used by user `alice`'s private group at line 11, column 7"])
    );
}

#[test]
fn private_group_name_collides_with_a_declared_group() {
    let text = with(
        "\n[[group]]\nname = \"alice\"\ngid = 2001\n\n[[user]]\nname = \"alice\"\nuid = 1001\n",
    );
    assert_eq!(
        error(&text),
        expect(&["14:8: user `alice` needs a private group `alice`, but a `[[group]]` of that name is declared at line 10, column 8; set the user's `gid` to that group's gid"])
    );
}

#[test]
fn relative_home_path() {
    let text = with("\n[[user]]\nname = \"alice\"\nuid = 1001\nhome = \"home/alice\"\n");
    assert_eq!(
        error(&text),
        expect(&["12:8: user `alice`: home `home/alice` is not an absolute path"])
    );
}

#[test]
fn home_path_with_dot_dot() {
    let text = with("\n[[user]]\nname = \"alice\"\nuid = 1001\nhome = \"/home/../etc\"\n");
    assert_eq!(
        error(&text),
        expect(&["12:8: user `alice`: home `/home/../etc` contains `.` or `..` components"])
    );
}

#[test]
fn bad_ssh_key() {
    let text = with(
        "\n[[user]]\nname = \"alice\"\nuid = 1001\nssh_keys = [\"AAAAC3NzaC1lZDI1NTE5AAAAIGq2 alice@laptop\"]\n",
    );
    // The key is shown cut to its first 40 characters.
    assert_eq!(
        error(&text),
        expect(&["12:13: user `alice`: `AAAAC3NzaC1lZDI1NTE5AAAAIGq2 alice@lapto` is not an OpenSSH public key (`ssh-ed25519 AAAA... comment`)"])
    );
}

#[test]
fn comment_with_a_colon() {
    let text = with("\n[[user]]\nname = \"alice\"\nuid = 1001\ncomment = \"Alice: PhD\"\n");
    assert_eq!(
        error(&text),
        expect(&[
            "12:11: user `alice`: comment `Alice: PhD` may not contain `:`, quotes or control characters"
        ])
    );
}

#[test]
fn nfs_server_not_a_host() {
    let text = with("\n[nfs]\nserver = \"storage\"\n");
    assert_eq!(
        error(&text),
        expect(&["10:10: nfs server `storage` is not a declared host"])
    );
}

#[test]
fn nfs_server_without_the_nfs_server_role() {
    let text = with("\n[nfs]\nserver = \"head\"\n");
    assert_eq!(
        error(&text),
        expect(&["10:10: nfs server `head` does not have the `nfs-server` role"])
    );
}

#[test]
fn nfs_network_not_a_cidr() {
    let text = with_nfs("\n[nfs]\nserver = \"head\"\nnetwork = \"10.0.0.0/33\"\n");
    assert_eq!(
        error(&text),
        expect(&["11:11: nfs network `10.0.0.0/33` is not a CIDR like 10.0.0.0/24"])
    );
}

#[test]
fn nfs_export_path_relative() {
    let text = with_nfs("\n[nfs]\nserver = \"head\"\nexports = [{ path = \"datasets\" }]\n");
    assert_eq!(
        error(&text),
        expect(&["11:21: nfs export path `datasets` is not an absolute path"])
    );
}

#[test]
fn slurm_controller_not_a_host() {
    let text = with("\n[slurm]\ncontroller = \"boss\"\n");
    assert_eq!(
        error(&text),
        expect(&["10:14: slurm controller `boss` is not a declared host"])
    );
}

#[test]
fn slurm_controller_without_controller_role() {
    let text = "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"10.0.0.1\"\nroles = [\"compute\"]\n\n[slurm]\ncontroller = \"head\"\n";
    assert_eq!(
        error(text),
        expect(&["10:14: slurm controller `head` does not have the `controller` role"])
    );
}

#[test]
fn partition_node_unknown() {
    let text = with("\n[slurm]\ncontroller = \"head\"\n\n[[slurm.partition]]\nname = \"gpu\"\nnodes = [\"head\", \"gpu9\"]\n");
    assert_eq!(
        error(&text),
        expect(&["14:18: partition `gpu`: node `gpu9` is not a declared host"])
    );
}

#[test]
fn two_default_partitions_name_both() {
    let text = with(
        "\n[slurm]\ncontroller = \"head\"\n\n[[slurm.partition]]\nname = \"gpu\"\ndefault = true\n\n[[slurm.partition]]\nname = \"cpu\"\ndefault = true\n",
    );
    assert_eq!(
        error(&text),
        expect(&["17:8: partition `cpu` has `default = true`, but partition `gpu` at line 13, column 8 is already the default"])
    );
}

#[test]
fn tailscale_tag_without_tag_prefix() {
    let text = with("\n[tailscale]\ntags = [\"closet\"]\n");
    assert_eq!(
        error(&text),
        expect(&["10:9: tailscale tag `closet` must look like `tag:closet`"])
    );
}

#[test]
fn cooling_with_both_capacities() {
    let text = with("\n[cooling]\ncapacity_btu_per_hour = 12000\ncapacity_tons = 1\n");
    assert_eq!(
        error(&text),
        expect(&["10:25: give the cooling capacity once: `capacity_btu_per_hour = 12000` or `capacity_tons = 1`, not both"])
    );
}

#[test]
fn several_problems_are_all_reported_in_line_order() {
    // Found in different passes (users after hosts, the cluster first, nfs last), shown
    // in the order of the file.
    let text = r#"[cluster]
name = "Closet"

[nfs]
server = "storage"

[[user]]
name = "alice"
uid = 10

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["wizard"]
"#;
    let role = format!(
        "14:10: host `head`: unknown role `wizard` (known: {})",
        known_roles()
    );
    assert_eq!(
        error(text),
        expect(&[
            "2:8: cluster name `Closet` does not match `^[a-z_][a-z0-9_-]{0,31}$`",
            "5:10: nfs server `storage` is not a declared host",
            "9:7: user `alice`: uid `10` is outside the range for people and labs (1000..59999); system accounts are not managed here",
            &role,
        ])
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // `ü` is two bytes in UTF-8; an editor puts `wizard` at column 22, not 23.
    let text = "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"10.0.0.1\"\nroles = [\"ünknown\", \"wizard\"]\n";
    let roles = known_roles();
    assert_eq!(
        error(text),
        expect(&[
            &format!("7:10: host `head`: unknown role `ünknown` (known: {roles})"),
            &format!("7:21: host `head`: unknown role `wizard` (known: {roles})"),
        ])
    );
}

#[test]
fn the_error_names_the_file_it_was_given() {
    let err = Inventory::parse(
        Path::new("lab/closet.toml"),
        "[cluster]\nname = \"closet\"\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "inventory `lab/closet.toml` is not valid (1 problem):\n  lab/closet.toml:1:1: no `[[host]]` is declared; an inventory needs at least one host"
    );
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = Inventory::load(Path::new("/nonexistent/closetctl/inventory.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cannot read inventory `/nonexistent/closetctl/inventory.toml`: No such file or directory (os error 2)"
    );
}

#[test]
fn the_example_inventory_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.example.toml");
    let inv = Inventory::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.cluster.name, "closet");
    let hosts: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hosts, ["head", "gpu1", "gpu2"]);
    assert!(inv.host("head").unwrap().has_role(Role::Controller));
    let gpus = inv.host("gpu1").unwrap().gpus.as_ref().unwrap();
    assert_eq!((gpus.model.as_str(), gpus.count), ("a100-sxm4-80gb", 4));
    let alice = inv.user("alice").unwrap();
    assert_eq!(
        (alice.uid, alice.gid, alice.private_group),
        (1001, 1001, true)
    );
    assert_eq!(alice.groups, ["vision-lab"]);
    assert_eq!(alice.home, "/home/alice");
    assert_eq!(inv.user("bob").unwrap().shell, "/bin/bash");
    assert_eq!(inv.group("nlp-lab").unwrap().gid, 2002);
    let nfs = inv.nfs.as_ref().unwrap();
    let exports: Vec<(&str, bool)> = nfs
        .exports
        .iter()
        .map(|e| (e.path.as_str(), e.read_only))
        .collect();
    assert_eq!(exports, [("/home", false), ("/datasets", true)]);
    assert!(inv.home_on_nfs());
    let slurm = inv.slurm.as_ref().unwrap();
    assert_eq!(slurm.controller, "head");
    assert!(slurm.fair_share.enabled);
    assert_eq!(slurm.partitions[0].name, "gpu");
    assert!(slurm.partitions[0].default);
    assert_eq!(inv.circuits.len(), 2);
    assert_eq!(inv.cooling.as_ref().unwrap().capacity_btu_per_hour, 24000.0);
    // Relative secrets_dir is anchored beside the inventory.
    assert_eq!(
        inv.cluster.secrets_dir,
        path.parent().unwrap().join("secrets")
    );
}

// ---- homes: only under the home bases, never a system directory or another's home ----

/// `with`, plus one user `alice` whose `home` line (line 12) is `home = "<home>"`.
fn with_home(home: &str) -> String {
    with(&format!(
        "\n[[user]]\nname = \"alice\"\nuid = 1001\nhome = \"{home}\"\n"
    ))
}

#[test]
fn home_etc_is_refused() {
    assert_eq!(
        error(&with_home("/etc")),
        expect(&["12:8: user `alice`: home `/etc` is a system directory; a home must be under a home base (`/home`)"])
    );
}

#[test]
fn homes_inside_system_directories_are_refused() {
    for (home, sys) in [
        ("/usr/local/alice", "/usr"),
        ("/root/alice", "/root"),
        ("/var/lib/alice", "/var"),
        ("/lib64/alice", "/lib64"),
        ("/tmp/alice", "/tmp"),
    ] {
        assert_eq!(
            error(&with_home(home)),
            expect(&[&format!("12:8: user `alice`: home `{home}` is inside the system directory `{sys}`; a home must be under a home base (`/home`)")])
        );
    }
    assert_eq!(
        error(&with_home("/")),
        expect(&["12:8: user `alice`: home `/` is a system directory; a home must be under a home base (`/home`)"])
    );
}

#[test]
fn a_home_outside_the_home_bases_is_refused() {
    assert_eq!(
        error(&with_home("/data/alice")),
        expect(&["12:8: user `alice`: home `/data/alice` is not under a home base (`/home`); move it there or list its base in `[cluster] home_bases`"])
    );
    // A prefix of the name is not a parent directory.
    assert_eq!(
        error(&with_home("/homework/alice")),
        expect(&["12:8: user `alice`: home `/homework/alice` is not under a home base (`/home`); move it there or list its base in `[cluster] home_bases`"])
    );
}

#[test]
fn a_home_base_itself_is_not_a_home() {
    assert_eq!(
        error(&with_home("/home")),
        expect(&["12:8: user `alice`: home `/home` is a home base itself; give a directory inside it, like `/home/alice`"])
    );
}

#[test]
fn a_home_is_a_normalized_path() {
    assert_eq!(
        error(&with_home("/home//alice")),
        expect(&["12:8: user `alice`: home `/home//alice` contains an empty component (`//`)"])
    );
    assert_eq!(
        error(&with_home("/home/./alice")),
        expect(&["12:8: user `alice`: home `/home/./alice` contains `.` or `..` components"])
    );
}

#[test]
fn configured_home_bases_are_honoured_and_the_first_is_the_default() {
    let text = with(
        "\n[[user]]\nname = \"alice\"\nuid = 1001\nhome = \"/home/alice\"\n\n[[user]]\nname = \"bob\"\nuid = 1002\nhome = \"/data/homes/lab/bob\"\n\n[[user]]\nname = \"carol\"\nuid = 1003\n",
    )
    .replace(
        "name = \"closet\"\n",
        "name = \"closet\"\nhome_bases = [\"/data/homes\", \"/home\"]\n",
    );
    let inv = Inventory::parse(Path::new("inv.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.cluster.home_bases, ["/data/homes", "/home"]);
    let homes: Vec<&str> = inv.users.iter().map(|u| u.home.as_str()).collect();
    assert_eq!(
        homes,
        ["/home/alice", "/data/homes/lab/bob", "/data/homes/carol"]
    );
    // Without `home_bases`, only /home.
    let inv = Inventory::parse(Path::new("inv.toml"), HEAD).unwrap();
    assert_eq!(inv.cluster.home_bases, ["/home"]);
}

#[test]
fn bad_home_bases_are_each_named() {
    let text = format!(
        "[cluster]\nname = \"closet\"\nhome_bases = [\"/home\", \"/etc\", \"/\", \"homes\", \"/home/lab\", \"/srv/homes\", \"/home\"]\n{}",
        &HEAD["[cluster]\nname = \"closet\"\n".len()..]
    );
    assert_eq!(
        error(&text),
        expect(&[
            "3:24: home base `/etc` is a system directory; homes may not be there",
            "3:32: home base `/` is a system directory; homes may not be there",
            "3:37: home base `homes` is not an absolute path",
            "3:46: home base `/home/lab` is inside home base `/home` at line 3, column 15; list only `/home`",
            "3:59: home base `/srv/homes` is inside the system directory `/srv`; homes may not be there",
            "3:73: duplicate home base `/home`: already declared at line 3, column 15",
        ])
    );
}

#[test]
fn an_empty_list_of_home_bases_is_refused() {
    let text = HEAD.replace(
        "name = \"closet\"\n",
        "name = \"closet\"\nhome_bases = []\n",
    );
    assert_eq!(
        error(&text),
        expect(&[
            "3:14: `home_bases` is empty; list the directories homes live in, like `[\"/home\"]`"
        ])
    );
}

#[test]
fn a_home_is_never_another_users_home_or_inside_or_around_it() {
    // alice has the default /home/alice (named at her name), dave has /home/lab/dave.
    let text = with(concat!(
        "\n[[user]]\nname = \"alice\"\nuid = 1001\n",
        "\n[[user]]\nname = \"bob\"\nuid = 1002\nhome = \"/home/alice\"\n",
        "\n[[user]]\nname = \"carol\"\nuid = 1003\nhome = \"/home/alice/carol\"\n",
        "\n[[user]]\nname = \"dave\"\nuid = 1004\nhome = \"/home/lab/dave\"\n",
        "\n[[user]]\nname = \"erin\"\nuid = 1005\nhome = \"/home/lab\"\n",
    ));
    assert_eq!(
        error(&text),
        expect(&[
            "16:8: user `bob`: home `/home/alice` is already the home of user `alice` (`/home/alice`) at line 10, column 8",
            "21:8: user `carol`: home `/home/alice/carol` is inside the home of user `alice` (`/home/alice`) at line 10, column 8",
            "31:8: user `erin`: home `/home/lab` contains the home of user `dave` (`/home/lab/dave`) at line 26, column 8",
        ])
    );
}

// ---- values that reach config lines: slurm.conf, exports, fstab, the Tailscale API ----

#[test]
fn decay_half_life_cannot_inject_a_slurm_conf_line() {
    let text = with(
        "\n[slurm]\ncontroller = \"head\"\n\n[slurm.fair_share]\ndecay_half_life = \"7-0\\n+PrologSlurmctld=/tmp/evil.sh\"\n",
    );
    assert_eq!(
        error(&text),
        expect(&["13:19: slurm fair_share decay_half_life `7-0\\n+PrologSlurmctld=/tmp/evil.sh` is not a Slurm time like `7-0` (days-hours), `7-12`, `2-00:00:00` or minutes like `30`"])
    );
    // The inline-table form is pointed at as precisely.
    let text = with(
        "\n[slurm]\ncontroller = \"head\"\nfair_share = { decay_half_life = \"+PrologSlurmctld=/tmp/evil.sh\" }\n",
    );
    assert_eq!(
        error(&text),
        expect(&["11:34: slurm fair_share decay_half_life `+PrologSlurmctld=/tmp/evil.sh` is not a Slurm time like `7-0` (days-hours), `7-12`, `2-00:00:00` or minutes like `30`"])
    );
}

#[test]
fn billing_weights_are_numbers_from_zero_to_the_limit() {
    let text = with(
        "\n[slurm]\ncontroller = \"head\"\n\n[slurm.fair_share]\ngpu_weight = -1\ncpu_weight = 1e9\n",
    );
    assert_eq!(
        error(&text),
        expect(&[
            "13:14: slurm fair_share gpu_weight `-1` is not a billing weight from 0 to 100000 (what one allocated unit counts for per hour, e.g. `1.0`)",
            "14:14: slurm fair_share cpu_weight `1000000000` is not a billing weight from 0 to 100000 (what one allocated unit counts for per hour, e.g. `1.0`)",
        ])
    );
    let text = with("\n[slurm]\ncontroller = \"head\"\nfair_share = { gpu_weight = \"lots\" }\n");
    assert!(error(&text).contains("11:"), "{}", error(&text));
    let text = with(
        "\n[slurm]\ncontroller = \"head\"\nfair_share = { gpu_weight = 40, cpu_weight = 0.25 }\n",
    );
    let inv = Inventory::parse(Path::new("inv.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let fs = inv.slurm.unwrap().fair_share;
    assert_eq!((fs.gpu_weight, fs.cpu_weight), (40.0, 0.25));
    let text = with("\n[slurm]\ncontroller = \"head\"\n");
    let fs = Inventory::parse(Path::new("inv.toml"), &text)
        .unwrap()
        .slurm
        .unwrap()
        .fair_share;
    assert_eq!(
        (fs.gpu_weight, fs.cpu_weight),
        (10.0, 1.0),
        "a GPU hour weighs 10 CPU hours by default"
    );
}

#[test]
fn slurm_times() {
    use closetctl_core::inventory::is_slurm_time;
    for ok in [
        "7-0",
        "14-0",
        "7-12",
        "2-00:00:00",
        "1-12:30",
        "30:00",
        "1:00:00",
        "30",
        "0",
    ] {
        assert!(is_slurm_time(ok), "{ok} is a Slurm time");
    }
    for bad in [
        "",
        "7-",
        "-7",
        "7-0-0",
        "1:2:3:4",
        "7d",
        "1 day",
        "7-0#x",
        "7-0\n",
        ":30",
        "1-:30",
        "1234567890",
        "UNLIMITED",
    ] {
        assert!(!is_slurm_time(bad), "{bad:?} is not a Slurm time");
    }
    let text = with(
        "\n[slurm]\ncontroller = \"head\"\nfair_share = { decay_half_life = \"14-0\" }\n\n[[slurm.partition]]\nname = \"gpu\"\nmax_time = \"UNLIMITED\"\n",
    );
    let inv = Inventory::parse(Path::new("inv.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let slurm = inv.slurm.unwrap();
    assert_eq!(slurm.fair_share.decay_half_life, "14-0");
    assert_eq!(slurm.partitions[0].max_time.as_deref(), Some("UNLIMITED"));
}

#[test]
fn partition_max_time_must_be_a_slurm_time() {
    let text = with("\n[slurm]\ncontroller = \"head\"\n\n[[slurm.partition]]\nname = \"gpu\"\nmax_time = \"7-0:00:00,x\"\n");
    assert_eq!(
        error(&text),
        expect(&["14:12: partition `gpu`: max_time `7-0:00:00,x` is not a Slurm time like `7-00:00:00` or `UNLIMITED`"])
    );
}

#[test]
fn slurm_option_names_must_be_slurm_parameters() {
    let text = with(concat!(
        "\n[slurm]\ncontroller = \"head\"\n",
        "\n[slurm.options]\n\"\" = \"x\"\n\"Prolog Slurmctld\" = \"/bin/true\"\n1Max = \"1\"\nMaxJobCount = \"10000\"\n",
        "\n[[slurm.partition]]\nname = \"gpu\"\noptions = { \"State=DOWN\\nX\" = \"1\" }\n",
    ));
    assert_eq!(
        error(&text),
        expect(&[
            "13:1: slurm: an option name is empty; give a Slurm parameter like `MaxNodes`",
            "14:1: slurm: option name `Prolog Slurmctld` does not match `^[A-Za-z][A-Za-z0-9]*$` (a Slurm parameter like `MaxNodes`)",
            "15:1: slurm: option name `1Max` does not match `^[A-Za-z][A-Za-z0-9]*$` (a Slurm parameter like `MaxNodes`)",
            "20:13: partition `gpu`: option name `State=DOWN\\nX` does not match `^[A-Za-z][A-Za-z0-9]*$` (a Slurm parameter like `MaxNodes`)",
        ])
    );
}

#[test]
fn slurm_option_values_cannot_end_the_line_or_start_a_comment() {
    let text = with(concat!(
        "\n[slurm]\ncontroller = \"head\"\n",
        "\n[slurm.options]\nMaxJobCount = \"10000\\nPrologSlurmctld=/tmp/evil.sh\"\nMinJobAge = \"300 # keep\"\nKillWait = \"\"\nMessageTimeout = \"10\\r\"\n",
        "\n[[slurm.partition]]\nname = \"gpu\"\noptions = { MaxNodes = \"1\\u001b[2J\" }\n",
    ));
    assert_eq!(
        error(&text),
        expect(&[
            "13:15: slurm: option `MaxJobCount` value `10000\\nPrologSlurmctld=/tmp/evil.sh` contains `\\n`; slurm.conf values here may use letters, digits and `=,:._-/+[]@`",
            "14:13: slurm: option `MinJobAge` value `300 # keep` contains ` `; slurm.conf values here may use letters, digits and `=,:._-/+[]@`",
            "15:12: slurm: option `KillWait` has an empty value",
            "16:18: slurm: option `MessageTimeout` value `10\\r` contains `\\r`; slurm.conf values here may use letters, digits and `=,:._-/+[]@`",
            "20:24: partition `gpu`: option `MaxNodes` value `1\\u{1b}[2J` contains `\\u{1b}`; slurm.conf values here may use letters, digits and `=,:._-/+[]@`",
        ])
    );
}

#[test]
fn tailscale_api_url_must_be_https() {
    let text = with("\n[tailscale]\napi_url = \"http://api.tailscale.example\"\n");
    assert_eq!(
        error(&text),
        expect(&["10:11: tailscale api_url `http://api.tailscale.example` must start with https:// (the API key would cross the network in clear text; plain http is taken only for a loopback address literal such as `http://127.0.0.1:8080`)"])
    );
    // `localhost` is a name, not an address: it is not taken for loopback.
    let text = with("\n[tailscale]\napi_url = \"http://localhost:8080\"\n");
    assert_eq!(
        error(&text),
        expect(&["10:11: tailscale api_url `http://localhost:8080` must start with https:// (the API key would cross the network in clear text; plain http is taken only for a loopback address literal such as `http://127.0.0.1:8080`)"])
    );
    for (url, why) in [
        ("ftp://api.example", "must start with https:// (the API key would cross the network in clear text; plain http is taken only for a loopback address literal such as `http://127.0.0.1:8080`)"),
        ("https://admin:pw@api.example", "may not carry a user or password (the API key comes from `api_key_file` or `api_key_env`)"),
        ("https://api.example/?tailnet=x", "may not have a query or fragment; give a URL like `https://api.tailscale.com`"),
        ("api.tailscale.com", "is not a URL like `https://api.tailscale.com` (relative URL without a base)"),
        ("https://api.example\\n", "contains spaces or control characters; give a URL like `https://api.tailscale.com`"),
    ] {
        let text = with(&format!("\n[tailscale]\napi_url = \"{url}\"\n"));
        // The newline is shown as `\n`, as the file spells it.
        assert_eq!(
            error(&text),
            expect(&[&format!("10:11: tailscale api_url `{url}` {why}")])
        );
    }
}

#[test]
fn plain_http_only_to_a_loopback_address_literal() {
    for url in [
        "http://127.0.0.1:8080",
        "http://127.1.2.3",
        "http://[::1]:8080/",
        "https://api.tailscale.com",
        "https://headscale.lab.example/proxy",
    ] {
        let text = with(&format!("\n[tailscale]\napi_url = \"{url}\"\n"));
        let inv =
            Inventory::parse(Path::new("inv.toml"), &text).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(inv.tailscale.unwrap().api_url, url.trim_end_matches('/'));
    }
}

#[test]
fn tailnet_cannot_change_the_api_url() {
    let text = with("\n[tailscale]\ntailnet = \"example.com/../../other?x=\"\n");
    assert_eq!(
        error(&text),
        expect(&["10:11: tailscale tailnet `example.com/../../other?x=` is not a tailnet name like `example.com` (or `-`, the API key's own tailnet)"])
    );
    for ok in ["-", "example.com", "alice@gmail.com", "T1a2B3CNTRL"] {
        let text = with(&format!("\n[tailscale]\ntailnet = \"{ok}\"\n"));
        Inventory::parse(Path::new("inv.toml"), &text).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn read_only_export_with_rw_options_is_a_conflict() {
    let text = with_nfs(
        "\n[nfs]\nserver = \"head\"\nexports = [{ path = \"/datasets\", read_only = true, options = \"rw,sync\" }]\n",
    );
    assert_eq!(
        error(&text),
        expect(&["11:62: nfs export `/datasets`: options `rw,sync` contain `rw`, but the export has `read_only = true`; drop `rw` (closetctl adds `ro`)"])
    );
}

#[test]
fn duplicate_addresses_are_compared_as_the_network_sees_them() {
    let text = "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"Head.Lab.example\"\n\n[[host]]\nname = \"gpu1\"\naddress = \"head.lab.EXAMPLE\"\n\n[[host]]\nname = \"gpu2\"\naddress = \"fd00::1\"\n\n[[host]]\nname = \"gpu3\"\naddress = \"fd00:0:0::1\"\n";
    assert_eq!(
        error(text),
        expect(&[
            "10:11: duplicate host address `head.lab.EXAMPLE`: already declared as `Head.Lab.example` at line 6, column 11",
            "18:11: duplicate host address `fd00:0:0::1`: already declared as `fd00::1` at line 14, column 11",
        ])
    );
}

#[test]
fn a_dotted_all_digit_address_is_not_a_dns_name() {
    let text = HEAD.replace("10.0.0.1", "10.0.0.300");
    assert_eq!(
        error(&text),
        expect(&[
            "6:11: host `head`: address `10.0.0.300` is neither an IP address nor a DNS name"
        ])
    );
}

#[test]
fn control_characters_are_shown_escaped() {
    let text = HEAD.replace("name = \"head\"", "name = \"he\\u001b[2Jad\\u202e\"");
    assert_eq!(
        error(&text),
        expect(&[
            "5:8: host name `he\\u{1b}[2Jad\\u{202e}` does not match `^[a-z_][a-z0-9_-]{0,31}$`"
        ])
    );
    let text = with("\n[[user]]\nname = \"alice\"\nuid = 1001\ncomment = \"Alice\\u0007\\r\"\n");
    assert_eq!(
        error(&text),
        expect(&["12:11: user `alice`: comment `Alice\\u{7}\\r` may not contain `:`, quotes or control characters"])
    );
}
