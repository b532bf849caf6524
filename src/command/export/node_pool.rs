//! `closetctl export skypilot [--out FILE] [--offline]`: the compute hosts as a SkyPilot
//! SSH node pool (the `~/.sky/ssh_node_pools.yaml` format: pool name -> `user`,
//! `identity_file`, `hosts`), each host by its MagicDNS name when the probe finds it
//! enrolled in Tailscale, else by its inventory address.
//!
//! SkyPilot's `sky ssh up` installs k3s on those hosts, which then schedules GPUs on its
//! own, next to Slurm: the command says so every time.

use super::{CliError, InventoryArgs};
use crate::concerns::tailscale::enrollment::{Live, PROBE_STATUS, STATUS_COMMAND};
use crate::engine;
use crate::facts::probe::ProbeRequest;
use crate::facts::ClusterFacts;
use crate::inventory::{Inventory, Role};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub command: ExportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write a SkyPilot SSH node pool file for the compute hosts.
    Skypilot(SkypilotArgs),
}

#[derive(Debug, Args)]
pub struct SkypilotArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Write here instead of stdout (merge it into ~/.sky/ssh_node_pools.yaml).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Do not contact the hosts: use the inventory addresses.
    #[arg(long)]
    pub offline: bool,
}

/// The warning printed with every export.
pub const K3S_WARNING: &str = "SkyPilot's `sky ssh up` installs k3s on these hosts; k3s and Slurm would both hand out the same GPUs. Use one scheduler per host (or keep the SkyPilot pool to hosts Slurm does not use).";

/// A YAML scalar: JSON string quoting is valid YAML.
fn scalar(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

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
        let name = facts
            .host(&h.name)
            .and_then(|f| Live::from_facts(f).magic_dns_name())
            .unwrap_or_else(|| h.address.clone());
        out.push_str(&format!("    - {}\n", scalar(&name)));
    }
    out
}

pub async fn run(args: ExportArgs) -> Result<i32, CliError> {
    match args.command {
        ExportCommand::Skypilot(a) => skypilot(a).await,
    }
}

async fn skypilot(args: SkypilotArgs) -> Result<i32, CliError> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let facts = if args.offline || inventory.tailscale.is_none() {
        ClusterFacts::default()
    } else {
        let connector = super::ssh_connector(&inventory)?;
        let mut req = ProbeRequest::default();
        req.commands
            .insert(PROBE_STATUS.into(), STATUS_COMMAND.into());
        let requests: BTreeMap<String, ProbeRequest> = inventory
            .hosts
            .iter()
            .map(|h| (h.name.clone(), req.clone()))
            .collect();
        let (_, facts) = engine::gather(connector, &inventory.hosts, requests, None).await;
        for (name, why) in &facts.unreachable {
            eprintln!("warning: host {name} unreachable ({why}); using its inventory address");
        }
        facts
    };
    let text = skypilot_pools(&inventory, &facts);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|source| CliError::Io {
                what: format!("cannot write `{}`", path.display()),
                source,
            })?;
            println!(
                "wrote the SkyPilot node pool `{}` to {}",
                inventory.cluster.name,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    eprintln!("warning: {K3S_WARNING}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
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
