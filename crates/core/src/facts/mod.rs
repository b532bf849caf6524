//! Facts: what a host looks like right now, as one probe found it.
//!
//! The plan compares the desired state with these facts and nothing else, so a plan
//! is as fresh as one probe round and the core stays free of I/O. [`probe`] builds the
//! POSIX `sh` probe that gathers all of it in one round trip and parses its answer.

pub mod probe;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Facts of every host that answered, and why the others did not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterFacts {
    pub hosts: BTreeMap<String, HostFacts>,
    /// Hosts that could not be probed, with the reason (unreachable, probe failed).
    pub unreachable: BTreeMap<String, String>,
}

impl ClusterFacts {
    pub fn host(&self, name: &str) -> Option<&HostFacts> {
        self.hosts.get(name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    pub os: OsRelease,
    pub hostname: String,
    pub users: BTreeMap<String, PasswdEntry>,
    pub groups: BTreeMap<String, GroupEntry>,
    /// Only the packages the plan asked about; absent means not known to dpkg.
    pub packages: BTreeMap<String, PackageState>,
    /// Only the units the plan asked about.
    pub units: BTreeMap<String, UnitState>,
    /// Only the paths the plan asked about; absent means the path does not exist.
    pub files: BTreeMap<String, FileState>,
    pub cpu: CpuTopology,
    pub memory_mib: u64,
    pub gpus: Vec<Gpu>,
    pub time: TimeFacts,
    pub link: Option<Link>,
    /// The apply lock when someone else holds it (during apply), or anyone (plan).
    #[serde(default)]
    pub lock_held: Option<crate::lock::HeldLock>,
    /// Whether this probe took the apply lock.
    #[serde(default)]
    pub lock_acquired: bool,
    /// Handlers an interrupted apply left owed (see [`crate::journal`]).
    #[serde(default)]
    pub owed: Vec<crate::journal::Owed>,
    /// Journal lines that are not a record (reported, never fatal).
    #[serde(default)]
    pub owed_unreadable: Vec<String>,
    /// Output of extra probe commands by name (e.g. `tailscale status --json`).
    pub commands: BTreeMap<String, CommandOutput>,
    /// How long this probe took and where the time went (not a fact of the host:
    /// never serialized, never planned on).
    #[serde(skip)]
    pub probe: ProbeStats,
}

/// Where one probe's time went: connect and round trip as closetctl measured them, and
/// the probe's own sections as the host's clock (`/proc/uptime`, 10 ms) saw them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeStats {
    pub connect_millis: u64,
    pub probe_millis: u64,
    /// `(section, seconds)` in the order the probe ran them; `lock` is the lock and
    /// owed-handler sections before the first fact.
    pub sections: Vec<(String, f64)>,
    /// Processes the host started while the probe ran (`processes` in `/proc/stat`
    /// before and after): the probe's, plus any other process started meanwhile.
    pub pids: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OsRelease {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdEntry {
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageState {
    pub installed: bool,
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// `loaded`, `not-found`, ...
    pub load: String,
    /// `active`, `inactive`, `failed`, ...
    pub active: String,
    /// `enabled`, `disabled`, `static`, ... (empty when unknown)
    pub enabled: String,
}

impl UnitState {
    pub fn is_running(&self) -> bool {
        self.active == "active" || self.active == "reloading" || self.active == "activating"
    }
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.enabled.as_str(),
            "enabled" | "enabled-runtime" | "static" | "alias" | "indirect" | "generated"
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub kind: FileKind,
    /// Permission bits, e.g. 0o644.
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    /// SHA-256 of the content (regular files).
    pub sha256: Option<String>,
    /// The content, when small UTF-8 text and not a secret.
    pub content: Option<String>,
    /// The exact bytes, when small and not a secret, UTF-8 or not: what a byte-exact
    /// edit of a shared file (`/etc/fstab`) starts from. Not serialized.
    #[serde(skip)]
    pub bytes: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTopology {
    pub cpus: u32,
    pub sockets: u32,
    pub cores_per_socket: u32,
    pub threads_per_core: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub index: u32,
    pub name: String,
    pub memory_mib: Option<u64>,
    pub power_limit_watts: Option<f64>,
    pub power_draw_watts: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeFacts {
    /// Seconds since the epoch on the host when the probe ran.
    pub epoch: f64,
    /// Seconds since the epoch on this machine when the probe's answer arrived,
    /// minus half the round trip (filled in by the engine, not the host).
    #[serde(default)]
    pub local_epoch: f64,
    pub ntp_synchronized: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub interface: String,
    pub address: String,
    /// Mbit/s; `None` when the driver does not report it (virtual NICs).
    pub speed_mbps: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    pub exit_code: i32,
    pub stdout: String,
}
