//! The inventory: one TOML file that describes the closet, parsed and validated as a
//! whole before any host is contacted.
//!
//! [`Inventory::load`] reads the file, parses it into the spanned [`raw`] structs, and
//! [`validate`] turns those into the plain, validated types below, or into every problem
//! found at once, each with file, line, column and the offending value.

pub mod edit;
pub(crate) mod machines;
pub(crate) mod raw;
pub mod sections;
pub(crate) mod validate;

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

// The concerns' own sections, validated in their folders.
pub use crate::concerns::nfs::section::{Export, Nfs};
pub use crate::concerns::slurm::section::{Account, FairShare, Partition, Slurm};
pub use crate::concerns::tailscale::section::Tailscale;

pub use validate::{
    is_octal_mode as validate_mode, is_slurm_time, is_valid_cidr, is_valid_name, shown,
    DEFAULT_HOME_BASE, NAME_PATTERN, SLURM_KEY_PATTERN,
};

/// A validation or parse problem at one place in the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Error)]
pub enum InventoryError {
    #[error("cannot read inventory `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = format!(
        "inventory `{}` is not valid ({} problem{}):",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str(&format!(
            "\n  {}:{}:{}: {}",
            path.display(),
            p.line,
            p.column,
            p.message
        ));
    }
    out
}

/// Roles a host can have. Playbook steps target roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs slurmctld (and slurmdbd with fair share).
    Controller,
    /// Runs slurmd and jobs.
    Compute,
    /// Exports `/home` and datasets over NFS.
    NfsServer,
    /// Researchers log in here (Tailscale SSH policy).
    Login,
    /// Advertises subnet routes into the tailnet.
    SubnetRouter,
}

impl Role {
    pub const ALL: [(&'static str, Role); 5] = [
        ("controller", Role::Controller),
        ("compute", Role::Compute),
        ("nfs-server", Role::NfsServer),
        ("login", Role::Login),
        ("subnet-router", Role::SubnetRouter),
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, r)| *r)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// Where the inventory was read from.
    pub path: PathBuf,
    pub cluster: Cluster,
    pub ssh: Ssh,
    pub hosts: Vec<Host>,
    pub groups: Vec<Group>,
    pub users: Vec<User>,
    pub nfs: Option<Nfs>,
    pub slurm: Option<Slurm>,
    pub tailscale: Option<Tailscale>,
    pub circuits: Vec<Circuit>,
    pub cooling: Option<Cooling>,
    pub timeouts: Timeouts,
    /// Sections a concern reads itself (`[motd]`), by table name.
    #[serde(skip)]
    pub sections: sections::Sections,
}

/// How long apply waits before it gives up on a host (`[timeouts]`, seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// Connecting and the fact probe, per host.
    pub probe_secs: u32,
    /// One step's script on one host, when the step installs no package.
    pub step_secs: u32,
    /// One step's script when it installs packages.
    pub install_secs: u32,
    /// After the first Ctrl-C, how long running step scripts may finish before they are
    /// ended on their hosts.
    pub grace_secs: u32,
    /// Per step name, instead of `step_secs`/`install_secs`.
    pub steps: BTreeMap<String, u32>,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            probe_secs: 120,
            step_secs: 600,
            install_secs: 1800,
            grace_secs: 30,
            steps: BTreeMap::new(),
        }
    }
}

impl Timeouts {
    /// The limit for one step's script.
    pub fn step(&self, name: &str, installs: bool) -> std::time::Duration {
        let secs = self.steps.get(name).copied().unwrap_or(if installs {
            self.install_secs
        } else {
            self.step_secs
        });
        std::time::Duration::from_secs(secs.into())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    pub id_min: u32,
    /// Absolute directory holding generated secrets (MUNGE key, database password).
    pub secrets_dir: PathBuf,
    /// Directories users' homes are in; every home is strictly under one of them.
    pub home_bases: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ssh {
    /// Remote login user; `None` leaves it to ssh_config.
    pub user: Option<String>,
    pub port: Option<u16>,
    /// An extra ssh_config file (absolute).
    pub config: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
    /// Run the remote scripts through `sudo -n` (for a non-root login).
    pub become_root: bool,
    pub connect_timeout_secs: u32,
    pub strict_host_key_checking: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub roles: Vec<Role>,
    pub gpus: Option<GpuSpec>,
    pub circuit: Option<String>,
    pub base_watts: Option<u32>,
    pub psu_watts: Option<u32>,
    pub tailscale: HostTailscale,
}

impl Host {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuSpec {
    /// Inventory model key, e.g. `a100-sxm4-80gb`.
    pub model: String,
    pub count: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostTailscale {
    pub hostname: Option<String>,
    pub tags: Option<Vec<String>>,
    pub advertise_routes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// Primary group id: a declared group's gid, or the user's private group.
    pub gid: u32,
    /// The primary group's name (a declared group, or the user's own name).
    pub primary_group: String,
    /// Whether the primary group is the user's private group closetctl also manages.
    pub private_group: bool,
    pub groups: Vec<String>,
    pub shell: String,
    pub home: String,
    pub comment: Option<String>,
    pub ssh_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Circuit {
    pub name: String,
    pub volts: u32,
    pub amps: u32,
    pub phase: Option<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cooling {
    pub capacity_btu_per_hour: f64,
}

impl Inventory {
    /// Read and validate an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let source = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &source)
    }

    /// Validate inventory text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, source: &str) -> Result<Inventory, InventoryError> {
        let mut inventory = validate::parse_and_validate(path, source).map_err(|problems| {
            InventoryError::Invalid {
                path: path.to_path_buf(),
                problems,
            }
        })?;
        inventory.path = path.to_path_buf();
        Ok(inventory)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Every group closetctl manages on every host: declared groups and users' private groups.
    pub fn managed_groups(&self) -> Vec<Group> {
        let mut groups = self.groups.clone();
        for u in self.users.iter().filter(|u| u.private_group) {
            groups.push(Group {
                name: u.name.clone(),
                gid: u.gid,
            });
        }
        groups
    }

    /// Whether `/home` is exported over NFS, so homes live on the NFS server only.
    pub fn home_on_nfs(&self) -> bool {
        self.nfs
            .as_ref()
            .is_some_and(|n| n.exports.iter().any(|e| e.path == "/home"))
    }

    /// Whether user homes are local directories on this host (not an NFS mount).
    pub fn home_is_local(&self, host: &Host) -> bool {
        match &self.nfs {
            Some(nfs) if self.home_on_nfs() => nfs.server == host.name,
            _ => true,
        }
    }
}
