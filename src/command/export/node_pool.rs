//! `closetctl export skypilot --ssh-node-pool`: the compute hosts as a SkyPilot SSH
//! node pool (the `~/.sky/ssh_node_pools.yaml` format: pool name -> `user`,
//! `identity_file`, `hosts`), each host by its MagicDNS name when the probe finds it
//! enrolled in Tailscale, else by its inventory address.
//!
//! SkyPilot's `sky ssh up` installs k3s on those hosts, which then schedules GPUs on its
//! own, next to Slurm: the command says so every time. The default export (Slurm,
//! `skypilot.rs`) has no such problem.

use super::{live_name, scalar};
use crate::facts::ClusterFacts;
use crate::inventory::{Inventory, Role};

/// The warning printed with every export.
pub const K3S_WARNING: &str = "SkyPilot's `sky ssh up` installs k3s on these hosts; k3s and Slurm would both hand out the same GPUs. Use one scheduler per host (or keep the SkyPilot pool to hosts Slurm does not use).";

/// The node pool file for the compute hosts (all hosts when none has `compute`).
pub fn skypilot_pools(inventory: &Inventory, facts: &ClusterFacts) -> String {
    let compute: Vec<_> = inventory
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::Compute))
        .collect();
    let hosts = if compute.is_empty() {
        inventory.hosts.iter().collect()
    } else {
        compute
    };
    let mut out = format!(
        "# SkyPilot SSH node pool for the `{}` cluster, written by closetctl from the inventory.\n# Merge into ~/.sky/ssh_node_pools.yaml, then `sky ssh up`.\n# Warning: {K3S_WARNING}\n",
        inventory.cluster.name
    );
    out.push_str(&format!("{}:\n", inventory.cluster.name));
    out.push_str(&format!(
        "  user: {}\n",
        scalar(inventory.ssh.user.as_deref().unwrap_or("root"))
    ));
    if let Some(id) = &inventory.ssh.identity_file {
        out.push_str(&format!(
            "  identity_file: {}\n",
            scalar(&id.to_string_lossy())
        ));
    }
    out.push_str("  hosts:\n");
    for h in hosts {
        let name = live_name(h, facts);
        out.push_str(&format!("    - {}\n", scalar(&name)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concerns::tailscale::enrollment::PROBE_STATUS;
    use crate::facts::{CommandOutput, HostFacts};

    #[test]
    fn enrolled_hosts_by_magic_dns_others_by_address() {
        let text = r#"
[cluster]
name = "closet"
[ssh]
user = "admin"
[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller"]
[[host]]
name = "gpu1"
address = "10.0.0.2"
roles = ["compute"]
[[host]]
name = "gpu2"
address = "10.0.0.3"
roles = ["compute"]
"#;
        let inv = Inventory::parse(std::path::Path::new("/tmp/inventory.toml"), text).unwrap();
        let mut facts = ClusterFacts::default();
        let mut f = HostFacts::default();
        f.commands.insert(PROBE_STATUS.into(), CommandOutput { exit_code: 0, stdout: r#"{"BackendState": "Running", "Self": {"HostName": "gpu1", "DNSName": "gpu1.tailnet-closet.ts.net."}}"#.into() });
        facts.hosts.insert("gpu1".into(), f);
        let yaml = skypilot_pools(&inv, &facts);
        assert!(yaml.ends_with("closet:\n  user: \"admin\"\n  hosts:\n    - \"gpu1.tailnet-closet.ts.net\"\n    - \"10.0.0.3\"\n"), "{yaml}");
        assert!(yaml.contains("k3s"));
    }
}
