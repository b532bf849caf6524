//! The inventory exactly as written: serde structs that mirror `inventory.toml`, with
//! spans on every value a validation error may need to point at.
//!
//! Nothing outside `inventory` sees these types: [`super::validate`] turns them into the
//! validated [`super::Inventory`] or into a list of problems with line and column.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNfs {
    pub server: S<String>,
    pub network: Option<S<String>>,
    #[serde(default)]
    pub exports: Vec<S<RawExport>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    pub path: S<String>,
    #[serde(default)]
    pub read_only: bool,
    pub options: Option<S<String>>,
    pub owner: Option<S<String>>,
    pub group: Option<S<String>>,
    pub mode: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlurm {
    pub controller: S<String>,
    pub cluster_name: Option<S<String>>,
    pub fair_share: Option<S<RawFairShare>>,
    #[serde(default, rename = "partition")]
    pub partitions: Vec<S<RawPartition>>,
    #[serde(default, rename = "account")]
    pub accounts: Vec<S<RawAccount>>,
    /// Extra `slurm.conf` lines, `Key = "Value"`; keys carry their span too.
    #[serde(default)]
    pub options: BTreeMap<S<String>, S<String>>,
}

/// `fair_share = true|false` or a table of weights.
///
/// Deserialized by hand rather than `#[serde(untagged)]`: an untagged enum buffers its
/// input and so loses the spans of the values inside the table.
#[derive(Debug)]
pub enum RawFairShare {
    Enabled(bool),
    Settings(RawFairShareSettings),
}

impl<'de> Deserialize<'de> for RawFairShare {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawFairShare;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`true`, `false` or a table of fair-share settings")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawFairShare, E> {
                Ok(RawFairShare::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawFairShare, A::Error> {
                RawFairShareSettings::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawFairShare::Settings)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFairShareSettings {
    pub enabled: Option<bool>,
    pub weight_fairshare: Option<u32>,
    pub weight_age: Option<u32>,
    pub weight_job_size: Option<u32>,
    pub decay_half_life: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    pub name: S<String>,
    pub nodes: Option<Vec<S<String>>>,
    #[serde(default)]
    pub default: bool,
    pub max_time: Option<S<String>>,
    #[serde(default)]
    pub options: BTreeMap<S<String>, S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: S<String>,
    pub fairshare: Option<S<u32>>,
    #[serde(default)]
    pub users: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTailscale {
    pub auth_key_file: Option<S<String>>,
    pub auth_key_env: Option<S<String>>,
    #[serde(default)]
    pub tags: Vec<S<String>>,
    #[serde(default)]
    pub ssh: bool,
    #[serde(default)]
    pub accept_routes: bool,
    pub api_key_file: Option<S<String>>,
    pub api_key_env: Option<S<String>>,
    pub api_url: Option<S<String>>,
    pub tailnet: Option<S<String>>,
    pub admin_group: Option<S<String>>,
    pub researcher_group: Option<S<String>>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<S<String>>>,
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
