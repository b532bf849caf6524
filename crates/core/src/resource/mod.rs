//! Resources: the desired state of one thing on one host, and the change that gets a
//! host from its facts to that state.
//!
//! Each kind lives in its own file with one pure `diff(desired, facts) -> Option<Change>`;
//! a change carries what the plan shows (details, a unified diff, a secret's fingerprint)
//! and the [`Op`]s apply runs. Nothing here does I/O.

mod directory;
mod file;
mod group;
pub mod login;
mod package;
mod service;
mod user;

pub use crate::concerns::accounting::association::{Accounting, Association, SlurmdbFacts};
pub use crate::concerns::tailscale::enrollment::{Tailscale, TailscaleNode};
pub use directory::Directory;
pub use file::unified;
pub use file::{disruption_rank, fingerprint, Classifier, Disruption, File, DISRUPTIONS};
pub use login::Login;
pub use service::Service;
pub use user::UserAccount;

use crate::facts::probe::ProbeRequest;
use crate::facts::HostFacts;
use crate::ops::{Actor, Op};
use serde::Serialize;

/// One thing closetctl manages on a host.
#[derive(Debug, Clone)]
pub enum Resource {
    Package(String),
    Group {
        name: String,
        gid: u32,
    },
    User(UserAccount),
    /// Whether a person can still get in: lock, expiry, keys, sessions.
    Login(Login),
    Directory(Directory),
    File(File),
    Service(Service),
    /// The Tailscale client and the node's enrollment.
    Tailscale(Tailscale),
    /// Slurm accounting on the controller: database, cluster, accounts, associations.
    Accounting(Accounting),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Package,
    Group,
    User,
    Directory,
    File,
    Service,
    Tailscale,
    Database,
    SlurmCluster,
    SlurmAccount,
    Association,
    Login,
    Expiry,
    AuthorizedKeys,
    Sessions,
    HomeArchive,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Package => "package",
            ResourceKind::Group => "group",
            ResourceKind::User => "user",
            ResourceKind::Directory => "directory",
            ResourceKind::File => "file",
            ResourceKind::Service => "service",
            ResourceKind::Tailscale => "tailscale",
            ResourceKind::Database => "database",
            ResourceKind::SlurmCluster => "slurm-cluster",
            ResourceKind::SlurmAccount => "slurm-account",
            ResourceKind::Association => "association",
            ResourceKind::Login => "login",
            ResourceKind::Expiry => "expiry",
            ResourceKind::AuthorizedKeys => "authorized-keys",
            ResourceKind::Sessions => "sessions",
            ResourceKind::HomeArchive => "home-archive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    /// Something the inventory no longer has (a Slurm association) is taken away.
    Remove,
}

impl Action {
    pub fn symbol(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Remove => '-',
        }
    }
}

/// A secret shown as fingerprints only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretState {
    pub name: String,
    /// `sha256:` and the first 16 hex digits of the desired content.
    pub desired: String,
    /// The same for what the host has, when it has the file.
    pub current: Option<String>,
    pub matches: bool,
}

/// A secret a change needs that is not there yet. The plan shows it; apply refuses the
/// change's step (and only that step) until the secret is in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingSecret {
    pub name: String,
    /// Where to put it: `put it in `/root/ts.key` (mode 0600)`.
    pub fix: String,
}

impl std::fmt::Display for MissingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret `{}` is missing: {}", self.name, self.fix)
    }
}

/// What must change for one resource.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub kind: ResourceKind,
    /// Package, group or user name, path, or unit.
    pub name: String,
    pub action: Action,
    /// Short human lines: `mode 0644 -> 0600`, `enable`, `start`.
    pub details: Vec<String>,
    /// Unified diff of a text file's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretState>,
    /// How the change disturbs running work: `none`, `reconfigure`, `restart`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disruption: Option<String>,
    /// A secret the change needs that is missing: apply refuses this change's step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_secret: Option<MissingSecret>,
    /// What apply runs; never serialized (file content may be secret).
    #[serde(skip)]
    pub ops: Vec<Op>,
}

impl Change {
    pub fn new(kind: ResourceKind, name: impl Into<String>, action: Action) -> Change {
        Change {
            kind,
            name: name.into(),
            action,
            details: Vec::new(),
            diff: None,
            secret: None,
            disruption: None,
            missing_secret: None,
            ops: Vec::new(),
        }
    }

    /// `file /etc/slurm/slurm.conf`
    pub fn resource(&self) -> String {
        format!("{} {}", self.kind.as_str(), self.name)
    }
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::Package(_) => ResourceKind::Package,
            Resource::Group { .. } => ResourceKind::Group,
            Resource::User(_) => ResourceKind::User,
            Resource::Login(l) => l.kind(),
            Resource::Directory(_) => ResourceKind::Directory,
            Resource::File(_) => ResourceKind::File,
            Resource::Service(_) => ResourceKind::Service,
            Resource::Tailscale(Tailscale::Install) => ResourceKind::Package,
            Resource::Tailscale(Tailscale::Node(_)) => ResourceKind::Tailscale,
            Resource::Accounting(a) => a.kind(),
        }
    }

    /// Apply order inside a step: packages bring system users that files are owned by.
    pub fn order(&self) -> u8 {
        match self {
            Resource::Package(_) => 0,
            Resource::Group { .. } => 1,
            Resource::User(_) => 2,
            // After her account (made in the same step); her keys with the files.
            Resource::Login(Login::Keys { .. }) => 4,
            Resource::Login(_) => 2,
            Resource::Directory(_) => 3,
            Resource::File(_) => 4,
            Resource::Service(_) => 5,
            Resource::Tailscale(t) => t.order(),
            // After the services: MariaDB and slurmdbd must be up.
            Resource::Accounting(_) => 6,
        }
    }

    /// Tell the probe what this resource needs to know.
    pub fn probe(&self, req: &mut ProbeRequest) {
        match self {
            Resource::Package(p) => {
                req.packages.insert(p.clone());
            }
            Resource::Group { .. } | Resource::User(_) => {}
            Resource::Login(l) => l.probe(req),
            // What an owner manages in her home, she is also the one to look at.
            Resource::Directory(d) if d.actor == Actor::Owner => {
                req.owned_files
                    .entry((d.owner.clone(), d.group.clone()))
                    .or_default()
                    .insert(d.path.clone());
            }
            Resource::File(f) if f.actor == Actor::Owner => {
                req.owned_files
                    .entry((f.owner.clone(), f.group.clone()))
                    .or_default()
                    .insert(f.path.clone());
            }
            Resource::Directory(d) => {
                req.files.insert(d.path.clone());
            }
            Resource::File(f) => {
                req.files.insert(f.path.clone());
                if f.secret.is_some() {
                    req.secret_files.insert(f.path.clone());
                }
            }
            Resource::Service(s) => {
                req.units.insert(s.unit.clone());
            }
            Resource::Tailscale(t) => t.probe(req),
            Resource::Accounting(a) => a.probe(req),
        }
    }

    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        match self {
            Resource::Package(name) => package::diff(name, facts),
            Resource::Group { name, gid } => group::diff(name, *gid, facts),
            Resource::User(u) => u.diff(facts),
            Resource::Login(l) => l.diff(facts),
            Resource::Directory(d) => d.diff(facts),
            Resource::File(f) => f.diff(facts),
            Resource::Service(s) => s.diff(facts),
            Resource::Tailscale(t) => t.diff(facts),
            Resource::Accounting(a) => a.diff(facts),
        }
    }
}

/// `0644`-style text for a mode.
pub fn mode_text(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Detail lines for owner, group and mode differences.
pub fn attribute_details(
    owner: &str,
    group: &str,
    mode: u32,
    current: &crate::facts::FileState,
) -> Vec<String> {
    let mut d = Vec::new();
    if current.owner != owner || current.group != group {
        d.push(format!(
            "owner {}:{} -> {owner}:{group}",
            current.owner, current.group
        ));
    }
    if current.mode != mode {
        d.push(format!(
            "mode {} -> {}",
            mode_text(current.mode),
            mode_text(mode)
        ));
    }
    d
}
