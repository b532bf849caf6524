//! NFS values written into files and unit names: automount units named exactly as
//! `systemd-escape --path` names them, IPv6 servers in brackets in fstab, and
//! `read_only` kept when an export gives its own options.

use closetctl_core::concerns::nfs;
use closetctl_core::inventory::Inventory;
use std::path::Path;

/// Mount points and the unit names systemd 252 (Debian 12) gives them.
const UNITS: &[(&str, &str)] = &[
    ("/home", "home.automount"),
    ("/data/sets", "data-sets.automount"),
    ("/data+x", "data\\x2bx.automount"),
    ("/data-x", "data\\x2dx.automount"),
    ("/data x", "data\\x20x.automount"),
    ("/dätä", "d\\xc3\\xa4t\\xc3\\xa4.automount"),
    ("/.hidden", "\\x2ehidden.automount"),
    ("/a/.b", "a-.b.automount"),
    ("/a//b/", "a-b.automount"),
    ("/a/./b", "a-b.automount"),
    ("/", "-.automount"),
    ("/a:b_c.d", "a:b_c.d.automount"),
    ("/a\\b", "a\\x5cb.automount"),
    ("/lab@2024", "lab\\x402024.automount"),
];

#[test]
fn automount_units_are_named_like_systemd_escape_path() {
    for (path, unit) in UNITS {
        assert_eq!(&nfs::automount_unit(path), unit, "{path:?}");
    }
}

#[test]
fn automount_units_match_the_real_systemd_escape() {
    let out = std::process::Command::new("systemd-escape")
        .args(["--path", "--suffix=automount", "--"])
        .args(UNITS.iter().map(|(p, _)| *p))
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!("SKIPPED automount_units_match_the_real_systemd_escape: systemd-escape is not usable here ({other:?}); the fixed strings above still ran");
            return;
        }
    };
    let real = String::from_utf8(out.stdout).unwrap();
    let real: Vec<&str> = real.split_whitespace().collect();
    let ours: Vec<String> = UNITS.iter().map(|(p, _)| nfs::automount_unit(p)).collect();
    assert_eq!(real, ours);
}

/// A closet whose NFS server is at `address`, exporting `/home` and `exports`.
fn closet(address: &str, exports: &str) -> Inventory {
    let text = format!(
        "[cluster]\nname = \"closet\"\n\n[[host]]\nname = \"head\"\naddress = \"{address}\"\nroles = [\"controller\", \"nfs-server\"]\n\n[[host]]\nname = \"gpu1\"\naddress = \"10.0.0.2\"\nroles = [\"compute\"]\n\n[nfs]\nserver = \"head\"\nexports = [{{ path = \"/home\" }}, {exports}]\n"
    );
    Inventory::parse(Path::new("inv.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn an_ipv6_server_is_written_in_brackets_in_fstab() {
    let block = nfs::fstab_block(&closet(
        "fd00::1",
        "{ path = \"/datasets\", read_only = true }",
    ));
    assert_eq!(
        block[1..block.len() - 1],
        [
            "[fd00::1]:/home /home nfs vers=4.2,hard,noatime,_netdev,x-systemd.automount 0 0",
            "[fd00::1]:/datasets /datasets nfs vers=4.2,hard,noatime,_netdev,x-systemd.automount,ro 0 0",
        ]
    );
    // IPv4 and DNS names as they are.
    for address in ["10.0.0.1", "head.lab.example"] {
        let block = nfs::fstab_block(&closet(address, "{ path = \"/data\" }"));
        assert_eq!(
            block[1],
            format!(
                "{address}:/home /home nfs vers=4.2,hard,noatime,_netdev,x-systemd.automount 0 0"
            )
        );
    }
}

#[test]
fn read_only_is_kept_when_an_export_gives_its_own_options() {
    let inv = closet(
        "10.0.0.1",
        "{ path = \"/datasets\", read_only = true, options = \"sync,no_subtree_check\" }, { path = \"/scratch\", options = \"ro,async\" }, { path = \"/models\", read_only = true, options = \"ro,sync\" }",
    );
    let exports = nfs::exports_file(&inv);
    assert_eq!(
        exports,
        "# Managed by closetctl from the inventory; local edits are replaced on the next apply.\n\
         /home 10.0.0.2(rw,sync,no_subtree_check,root_squash)\n\
         /datasets 10.0.0.2(ro,sync,no_subtree_check)\n\
         /scratch 10.0.0.2(ro,async)\n\
         /models 10.0.0.2(ro,sync)\n"
    );
    // Clients mount every read-only export `ro`, whichever way it was said.
    let block = nfs::fstab_block(&inv);
    let ro: Vec<&str> = block
        .iter()
        .filter(|l| l.contains(",ro "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(ro, ["/datasets", "/scratch", "/models"]);
}
