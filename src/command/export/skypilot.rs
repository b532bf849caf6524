//! SkyPilot on the Slurm cluster: the `~/.slurm/config` entry and the `slurm:` block of
//! `~/.sky/config.yaml`, rendered from a checked [`LoginAccess`].
//!
//! From SkyPilot's own source (0.14.1, `sky/provision/slurm/utils.py`,
//! `sky/clouds/slurm.py`, `sky/adaptors/slurm.py`, `sky/utils/schemas.py`): it reads
//! `~/.slurm/config` with paramiko's `SSHConfig`, one `Host` per cluster, using
//! `HostName`, `User` (both required), `Port`, `IdentityFile`, `IdentitiesOnly`,
//! `ProxyCommand` and `ProxyJump`; the `Host` alias is the cluster's name in SkyPilot.
//! `slurm.allowed_clusters` picks clusters and `slurm.cluster_configs.<name>.workdir`
//! is where it keeps a cluster's files (default: the remote home); `sky check slurm`
//! warns unless that path is on a shared filesystem (`stat -f -c %T` is nfs, ...).
//! `gpu_partition_map` is only for clusters whose GRES carry no GPU type; closetctl's
//! do (`gpu:a100-80gb:4`), so none is written.

use super::{scalar, LoginAccess};

/// The first SkyPilot release that drives Slurm directly.
pub const MIN_SKYPILOT: &str = "0.12";

/// Why no `workdir` is written (and the warning the command prints).
pub fn unshared_home_note(a: &LoginAccess) -> String {
    match &a.home {
        Some(home) => format!(
            "{}'s home {home} is not on an NFS export of the inventory: SkyPilot needs its working directory on a filesystem every node shares (export one under `[nfs]`, or set slurm.cluster_configs.{}.workdir)",
            a.user, a.cluster
        ),
        None => format!(
            "`{}` is not an inventory user, so no shared working directory is known: SkyPilot needs one on a filesystem every node shares (export for a researcher with --user NAME, or set slurm.cluster_configs.{}.workdir)",
            a.user, a.cluster
        ),
    }
}

/// The `Host` entry for `~/.slurm/config` (OpenSSH syntax; every value checked).
pub fn slurm_config(a: &LoginAccess) -> String {
    let mut out = format!(
        "# The Slurm cluster `{c}` for SkyPilot (closetctl export skypilot): its login host {h}.\n# Merge into ~/.slurm/config; the Host name is the cluster's name in SkyPilot.\nHost {c}\n    HostName {hn}\n    User {u}\n",
        c = a.cluster,
        h = a.login_host,
        hn = a.host_name,
        u = a.user
    );
    if let Some(p) = a.port {
        out.push_str(&format!("    Port {p}\n"));
    }
    if let Some(id) = &a.identity_file {
        out.push_str(&format!("    IdentityFile {id}\n    IdentitiesOnly yes\n"));
    }
    if let Some(pc) = &a.proxy_command {
        out.push_str(&format!("    ProxyCommand {pc}\n"));
    }
    if let Some(pj) = &a.proxy_jump {
        out.push_str(&format!("    ProxyJump {pj}\n"));
    }
    out
}

/// The `slurm:` block for `~/.sky/config.yaml`.
pub fn sky_config(a: &LoginAccess) -> String {
    let c = scalar(&a.cluster);
    let mut out = format!(
        "# SkyPilot settings for the Slurm cluster `{}` (closetctl export skypilot).\n# Merge into ~/.sky/config.yaml (add to allowed_clusters and cluster_configs when\n# they already list other clusters).\n# No gpu_partition_map: the cluster's GRES name their GPU type, which SkyPilot\n# matches (`sky launch --gpus A100-80GB:1`).\nslurm:\n  allowed_clusters:\n    - {c}\n  cluster_configs:\n    {c}:\n",
        a.cluster
    );
    match (&a.home, a.home_shared) {
        (Some(home), true) => out.push_str(&format!(
            "      # On the NFS home: the login host and every node see it.\n      workdir: {}\n",
            scalar(home)
        )),
        _ => {
            for line in textwrap(&format!("No workdir: {}.", unshared_home_note(a)), 80) {
                out.push_str(&format!("      # {line}\n"));
            }
            out.push_str("      {}\n");
        }
    }
    out
}

/// Words of `text` in lines of at most `width` characters (comment lines).
fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The test inventory the export tests share.
#[cfg(test)]
pub(crate) fn tests_inventory() -> String {
    tests::INVENTORY.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::{login_access, SshResolved};
    use super::*;
    use crate::concerns::tailscale::enrollment::PROBE_STATUS;
    use crate::facts::{ClusterFacts, CommandOutput, HostFacts};
    use crate::inventory::Inventory;

    pub(crate) const INVENTORY: &str = r#"
[cluster]
name = "closet"
home_bases = ["/home", "/lab"]
[ssh]
user = "root"
[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "nfs-server", "login"]
[[host]]
name = "gpu1"
address = "10.0.0.2"
roles = ["compute"]
[[user]]
name = "alice"
uid = 1001
[[user]]
name = "bob"
uid = 1002
home = "/lab/bob"
[nfs]
server = "head"
exports = [ { path = "/home" }, { path = "/data", read_only = true } ]
"#;

    fn inventory() -> Inventory {
        Inventory::parse(std::path::Path::new("/tmp/inventory.toml"), INVENTORY).unwrap()
    }

    fn vm_ssh() -> SshResolved {
        SshResolved::parse(
            "user root\nhostname 10.0.0.1\nport 22\nidentityfile /tmp/closetctl-vm/id_ed25519\nproxycommand ip netns exec closetctl-vm nc %h %p\nproxyjump none\n",
        )
    }

    fn enrolled_head() -> ClusterFacts {
        let mut facts = ClusterFacts::default();
        let mut f = HostFacts::default();
        f.commands.insert(PROBE_STATUS.into(), CommandOutput { exit_code: 0, stdout: r#"{"BackendState": "Running", "Self": {"HostName": "head", "DNSName": "head.tailnet-closet.ts.net."}}"#.into() });
        facts.hosts.insert("head".into(), f);
        facts
    }

    fn both(a: &LoginAccess) -> String {
        format!("{}\n{}", slurm_config(a), sky_config(a))
    }

    #[test]
    fn per_user_files_through_the_inventorys_proxy_command() {
        let a = login_access(
            &inventory(),
            &ClusterFacts::default(),
            Some("alice"),
            Some("/tmp/closetctl-vm/keys/alice"),
            &vm_ssh(),
        )
        .unwrap();
        assert!(a.home_shared);
        insta::assert_snapshot!(both(&a));
    }

    #[test]
    fn enrolled_login_host_by_magic_dns_name_without_a_proxy() {
        let a = login_access(
            &inventory(),
            &enrolled_head(),
            Some("alice"),
            None,
            &SshResolved::default(),
        )
        .unwrap();
        assert_eq!(a.host_name, "head.tailnet-closet.ts.net");
        insta::assert_snapshot!(both(&a));
    }

    #[test]
    fn the_admin_variant_uses_the_inventory_ssh_user_and_says_it_has_no_workdir() {
        let a = login_access(
            &inventory(),
            &ClusterFacts::default(),
            None,
            None,
            &vm_ssh(),
        )
        .unwrap();
        assert_eq!(
            (a.user.as_str(), a.identity_file.as_deref()),
            ("root", Some("/tmp/closetctl-vm/id_ed25519"))
        );
        assert!(!a.home_shared);
        insta::assert_snapshot!(both(&a));
    }

    #[test]
    fn a_home_off_the_nfs_exports_gets_no_workdir() {
        let a = login_access(
            &inventory(),
            &ClusterFacts::default(),
            Some("bob"),
            None,
            &SshResolved::parse("port 2222\nproxyjump jump@gate.example:22\n"),
        )
        .unwrap();
        assert!(!a.home_shared);
        let text = both(&a);
        assert!(!text.contains("\n      workdir: "), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let inv = inventory();
        let none = ClusterFacts::default();
        let err = login_access(&inv, &none, Some("mallory"), None, &vm_ssh()).unwrap_err();
        assert!(err.contains("no user `mallory` in the inventory"), "{err}");
        let err =
            login_access(&inv, &none, Some("alice"), Some("/tmp/my key"), &vm_ssh()).unwrap_err();
        assert_eq!(
            err,
            "identity file `/tmp/my key` is not a plain path ([A-Za-z0-9/._~+-], no spaces or quotes)"
        );
        let evil = SshResolved::parse("proxyjump a;touch /tmp/x\n");
        let err = login_access(&inv, &none, Some("alice"), None, &evil).unwrap_err();
        assert!(err.starts_with("ProxyJump `a;touch /tmp/x`"), "{err}");
        let evil = SshResolved::parse("port 22x\n");
        let err = login_access(&inv, &none, Some("alice"), None, &evil).unwrap_err();
        assert!(err.starts_with("ssh port `22x`"), "{err}");
    }
}
