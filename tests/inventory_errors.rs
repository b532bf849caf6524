//! Bad inventories: each one must be refused with the exact problem text, pointing at
//! `file:line:column` and naming the offending value, before any host is contacted.

use closetctl::inventory::{Inventory, Role};
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
        expect(&["1:1: unknown field `flavour`, expected one of `cluster`, `ssh`, `host`, `group`, `user`, `nfs`, `slurm`, `tailscale`, `power`, `cooling`, `timeouts`"])
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
    let known = closetctl::gpu::model_keys().join(", ");
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
            "12:11: user `alice`: comment `Alice: PhD` may not contain `:`, quotes or newlines"
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
