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
    /// The day and the flags of this run (see [`RunContext`]).
    #[serde(skip)]
    pub run: RunContext,
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
    /// She left (`disabled = true`): the account is kept, locked and expired; her keys,
    /// associations and tailnet groups go. Her name and UID stay reserved.
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// The day her account expires on every host, `YYYY-MM-DD`.
    pub expires: Option<Expiry>,
    /// Her tailnet identity.
    pub email: Option<String>,
    /// When her access ends, her home is archived (tar, read as her) into
    /// `ARCHIVE_DIR` on the host that stores it, before her keys are moved.
    pub archive_home: bool,
}

/// An account expiry date: as written and as days since 1970-01-01 (what `chage`
/// and `/etc/shadow` count in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Expiry {
    pub day: i64,
}

impl Expiry {
    /// `YYYY-MM-DD` for a valid calendar date.
    pub fn parse(text: &str) -> Option<Expiry> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            text.get(r)
                .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?
                .parse()
                .ok()
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days_in = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1970..=9999).contains(&y)
            || !(1..=12).contains(&m)
            || d < 1
            || d > days_in[m as usize - 1]
        {
            return None;
        }
        Some(Expiry {
            day: days_from_civil(y, m, d),
        })
    }

    /// `YYYY-MM-DD`.
    pub fn date(self) -> String {
        date_of(self.day)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01.
pub fn date_of(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl User {
    /// Whether her access has ended: disabled, or her account expired by `today`
    /// (days since 1970-01-01; an account expires at the start of its day).
    pub fn access_ended(&self, today: Option<i64>) -> bool {
        self.disabled || self.expired(today)
    }

    /// Whether `expires` is today or earlier.
    pub fn expired(&self, today: Option<i64>) -> bool {
        matches!((self.expires, today), (Some(e), Some(t)) if e.day <= t)
    }

    /// Why her access ended, for plan lines: `disabled: left the lab`,
    /// `expired on 2025-01-31`.
    pub fn ended_because(&self) -> String {
        match (&self.disabled, &self.disabled_reason, &self.expires) {
            (true, Some(r), _) => format!("disabled: {r}"),
            (true, None, _) => "disabled".into(),
            (false, _, Some(e)) => format!("expired on {}", e.date()),
            _ => "active".into(),
        }
    }
}

/// What this run was asked to allow, and the day it runs on: not written in the
/// inventory file but given by the command (flags and this machine's clock).
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// Days since 1970-01-01; `None`: no account counts as expired.
    pub today: Option<i64>,
    /// `apply --cancel-jobs`: a leaving user's active jobs are cancelled so her
    /// associations can be removed.
    pub cancel_jobs: bool,
    /// `apply --end-sessions`: a leaving user's processes and sessions are ended.
    pub end_sessions: bool,
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

    /// The login host: the first `login` host, else the controller (SkyPilot, Transformer
    /// Lab and researchers connect there; `check network` resolves node names there).
    pub fn login_host(&self) -> Option<&Host> {
        self.hosts
            .iter()
            .find(|h| h.has_role(Role::Login))
            .or_else(|| self.hosts.iter().find(|h| h.has_role(Role::Controller)))
    }

    /// Users whose access continues (not disabled, not expired today).
    pub fn active_users(&self) -> impl Iterator<Item = &User> {
        self.users
            .iter()
            .filter(|u| !u.access_ended(self.run.today))
    }

    /// Users whose access has ended: disabled, or expired by today.
    pub fn ended_users(&self) -> impl Iterator<Item = &User> {
        self.users.iter().filter(|u| u.access_ended(self.run.today))
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
