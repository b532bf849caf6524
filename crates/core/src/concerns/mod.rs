//! Built-in modules: resources and checks that Rust computes from the inventory,
//! named by a playbook step's `module` key.

pub mod accounting;
pub mod nfs;
pub mod slurm;
pub mod tailscale;
pub mod users;

use crate::diagnostic::Diagnostic;
use crate::facts::probe::ProbeRequest;
use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory};
use crate::resource::Resource;

/// Resources of a built-in module for one host.
/// `facts` is `None` when only the probe request is being built; `secrets` too.
pub fn resources(
    module: &str,
    inventory: &Inventory,
    host: &Host,
    facts: Option<&HostFacts>,
    secrets: Option<&crate::desired::Secrets>,
) -> Vec<Resource> {
    match module {
        tailscale::MODULE => tailscale::resources(inventory, host, secrets),
        "users" => users::resources(inventory, host, facts),
        "nfs" => nfs::resources(inventory, host, facts),
        accounting::DATABASE_MODULE | accounting::ASSOCIATIONS_MODULE => {
            accounting::resources(module, inventory, host, facts)
        }
        _ => Vec::new(),
    }
}

/// Extra facts modules need beyond their resources.
pub fn probe_extras(inventory: &Inventory, host: &Host) -> ProbeRequest {
    let mut req = ProbeRequest {
        // Slurm node lines and the GPU check need the hardware of compute hosts only.
        hardware: inventory.slurm.is_some() && host.has_role(crate::inventory::Role::Compute),
        ..ProbeRequest::default()
    };
    if nfs::is_client(inventory, host) && inventory.home_on_nfs() {
        req.commands
            .insert(nfs::HOME_ENTRIES.into(), nfs::HOME_ENTRIES_COMMAND.into());
    }
    req
}

/// Findings about one host shown with its plan (they do not block apply).
pub fn host_warnings(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    let mut out = users::warnings(inventory, host, facts);
    out.extend(nfs::warnings(inventory, host, facts));
    out.extend(tailscale::warnings(inventory, host, facts));
    out
}

/// Problems on a live host that make apply refuse to touch it.
pub fn conflicts(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    let mut out = users::conflicts(inventory, facts);
    out.extend(nfs::conflicts(inventory, host, facts));
    if inventory.slurm.is_some() {
        out.extend(slurm::gpu_conflicts(host, facts));
        out.extend(accounting::conflicts(inventory, host, facts));
    }
    out
}

/// Cluster-wide findings to show above the plan.
pub fn warnings(inventory: &Inventory, facts: &crate::facts::ClusterFacts) -> Vec<Diagnostic> {
    let mut out = slurm::context(inventory, facts)
        .map(|c| c.warnings)
        .unwrap_or_default();
    out.extend(tailscale::cluster_warnings(inventory));
    out
}

/// The disruption label of a file change: fixed in the playbook, or classified.
pub fn disruption(label: &str, old: Option<&str>, new: &[u8]) -> String {
    match label {
        "slurm.conf" => slurm::classify(old, &String::from_utf8_lossy(new)).to_string(),
        fixed => fixed.to_string(),
    }
}

/// Things closetctl sees but leaves alone (reported, never changed).
pub fn unmanaged(inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
    users::unmanaged(inventory, facts)
}
