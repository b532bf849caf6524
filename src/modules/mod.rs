//! Built-in modules: resources and checks that Rust computes from the inventory,
//! named by a playbook step's `module` key.

pub mod users;

use crate::facts::probe::ProbeRequest;
use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory};
use crate::resource::Resource;

/// Resources of a built-in module for one host.
pub fn resources(module: &str, inventory: &Inventory, host: &Host) -> Vec<Resource> {
    match module {
        "users" => users::resources(inventory, host),
        _ => Vec::new(),
    }
}

/// Extra facts modules need beyond their resources.
pub fn probe_extras(_inventory: &Inventory, _host: &Host) -> ProbeRequest {
    ProbeRequest::default()
}

/// Problems on a live host that make apply refuse to touch it.
pub fn conflicts(inventory: &Inventory, facts: &HostFacts) -> Vec<String> {
    users::conflicts(inventory, facts)
}

/// Things closetctl sees but leaves alone (reported, never changed).
pub fn unmanaged(inventory: &Inventory, facts: &HostFacts) -> Vec<String> {
    users::unmanaged(inventory, facts)
}
