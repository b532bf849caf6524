//! The inventory exactly as written: serde structs that mirror `inventory.toml`, with
//! spans on every value a validation error may need to point at.
//!
//! Nothing outside `inventory` sees these types: [`super::validate`] turns them into the
//! validated [`super::Inventory`] or into a list of problems with line and column.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub use crate::concerns::nfs::section::RawNfs;
pub use crate::concerns::slurm::section::RawSlurm;
pub use crate::concerns::tailscale::section::RawTailscale;

pub type S<T> = Spanned<T>;

/// The top-level keys [`RawInventory`] reads; any other key must be a concern's own
/// section (see [`super::sections`]) or it is reported as unknown.
pub const TOP_LEVEL: &[&str] = &[
    "cluster",
    "ssh",
    "host",
    "group",
    "user",
    "nfs",
    "slurm",
    "tailscale",
    "power",
    "cooling",
    "timeouts",
];

// Unknown top-level keys are not refused by serde here but by `validate`, which also
// knows the concerns' own sections.
#[derive(Debug, Deserialize)]
pub struct RawInventory {
    pub cluster: S<RawCluster>,
    #[serde(default)]
    pub ssh: RawSsh,
    #[serde(default, rename = "host")]
    pub hosts: Vec<S<RawHost>>,
    #[serde(default, rename = "group")]
    pub groups: Vec<S<RawGroup>>,
    #[serde(default, rename = "user")]
    pub users: Vec<S<RawUser>>,
    pub nfs: Option<S<RawNfs>>,
    pub slurm: Option<S<RawSlurm>>,
    pub tailscale: Option<S<RawTailscale>>,
    #[serde(default)]
    pub power: RawPower,
    pub cooling: Option<S<RawCooling>>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
}

/// `[timeouts]`: seconds apply waits before it gives up on a host.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub probe: Option<S<u32>>,
    pub step: Option<S<u32>>,
    pub install: Option<S<u32>>,
    pub grace: Option<S<u32>>,
    #[serde(default)]
    pub steps: BTreeMap<String, S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: S<String>,
    /// Lowest UID/GID closetctl accepts for people and lab groups (default 1000).
    pub id_min: Option<S<u32>>,
    /// Directory for generated secrets, relative to the inventory (default `secrets`).
    pub secrets_dir: Option<S<String>>,
    /// Directories users' homes may be in (default `["/home"]`).
    pub home_bases: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    pub user: Option<S<String>>,
    pub port: Option<S<u16>>,
    pub config: Option<S<String>>,
    pub identity_file: Option<S<String>>,
    #[serde(rename = "become")]
    pub become_root: Option<bool>,
    pub connect_timeout: Option<S<u32>>,
    /// Off only on purpose: `strict_host_key_checking = false` accepts new host keys.
    pub strict_host_key_checking: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub name: S<String>,
    pub address: S<String>,
    #[serde(default)]
    pub roles: Vec<S<String>>,
    pub gpus: Option<S<RawGpus>>,
    pub circuit: Option<S<String>>,
    pub base_watts: Option<S<u32>>,
    pub psu_watts: Option<S<u32>>,
    pub tailscale: Option<S<RawHostTailscale>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGpus {
    pub model: S<String>,
    pub count: S<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHostTailscale {
    pub hostname: Option<S<String>>,
    pub tags: Option<Vec<S<String>>>,
    #[serde(default)]
    pub advertise_routes: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: S<String>,
    pub gid: S<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: S<String>,
    pub uid: S<u32>,
    pub gid: Option<S<u32>>,
    #[serde(default)]
    pub groups: Vec<S<String>>,
    pub shell: Option<S<String>>,
    pub home: Option<S<String>>,
    pub comment: Option<S<String>>,
    #[serde(default)]
    pub ssh_keys: Vec<S<String>>,
    /// She left: the account stays (her UID is never reused), her access goes.
    pub disabled: Option<S<bool>>,
    pub disabled_reason: Option<S<String>>,
    /// `YYYY-MM-DD`: the account expires on that day on every host (`chage -E`).
    pub expires: Option<S<String>>,
    /// Her tailnet identity (the tailnet policy's groups list it).
    pub email: Option<S<String>>,
    /// When her access ends, tar her home into the root-only archive first.
    pub archive_home: Option<S<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPower {
    #[serde(default, rename = "circuit")]
    pub circuits: Vec<S<RawCircuit>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuit {
    pub name: S<String>,
    pub volts: S<u32>,
    pub amps: S<u32>,
    pub phase: Option<S<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCooling {
    pub capacity_btu_per_hour: Option<S<f64>>,
    pub capacity_tons: Option<S<f64>>,
}
