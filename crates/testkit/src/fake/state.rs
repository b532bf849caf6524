//! The fake host's state: accounts, packages (with the units, system users and files a
//! package brings, as Debian's would), files, units, the cluster daemons' own state, and
//! the failures a test may inject.

use super::slurmdb::FakeSlurmdb;
use crate::facts::{CpuTopology, FileKind, Gpu, GroupEntry, OsRelease, PasswdEntry, UnitState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Where Debian's munge package keeps the key munged reads at start.
pub const MUNGE_KEY: &str = "/etc/munge/munge.key";
/// The unit of munged.
pub const MUNGE_UNIT: &str = "munge.service";

#[derive(Debug, Clone)]
pub struct FakeFile {
    pub kind: FileKind,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub content: Vec<u8>,
}

impl FakeFile {
    /// A file or directory owned by root.
    pub fn root(kind: FileKind, mode: u32, content: Vec<u8>) -> FakeFile {
        FakeFile {
            kind,
            mode,
            owner: "root".into(),
            group: "root".into(),
            content,
        }
    }
}

/// What installing a package does on the fake host.
#[derive(Debug, Clone, Default)]
pub struct PackageEffect {
    pub units: Vec<String>,
    pub system_users: Vec<(String, u32)>,
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct FakeState {
    pub reachable: bool,
    pub os: OsRelease,
    pub hostname: String,
    pub users: BTreeMap<String, PasswdEntry>,
    pub groups: BTreeMap<String, GroupEntry>,
    /// Packages installed, with version.
    pub installed: BTreeMap<String, String>,
    /// Packages the fake apt "repository" offers.
    pub available: BTreeMap<String, PackageEffect>,
    pub units: BTreeMap<String, UnitState>,
    pub files: BTreeMap<String, FakeFile>,
    pub cpu: CpuTopology,
    pub memory_mib: u64,
    pub gpus: Vec<Gpu>,
    pub epoch: f64,
    /// A unit that fails to (re)start while `path` contains `needle`.
    pub broken_unit: Option<(String, String, String)>,
    /// Descriptions of every op carried out, in order (and `end-step NAME` when a step
    /// script was ended from outside).
    pub journal: Vec<String>,
    /// Answers of probes that take the lock to lose after the probe ran (a connection
    /// reset): the lock is taken but closetctl never hears it.
    pub lose_locking_probe_answers: usize,
    /// Answers of probes that take the lock to garble after the probe ran (an
    /// unparseable answer).
    pub garble_locking_probe_answers: usize,
    /// closetctl dies when this host is about to run one more op than this (an apply
    /// killed after op k): that op does not run, nor anything later on any host, until
    /// [`FakeCluster::revive`].
    pub kill_after_ops: Option<usize>,
    /// The host stops answering when it is about to run one more op than this: the step
    /// script hangs until it is ended from outside (a hung host, an apt lock).
    pub hang_after_ops: Option<usize>,
    /// The link to this host breaks when it is about to run one more op than this: the
    /// script stops there and the host is unreachable until `reachable` is set again.
    pub cut_after_ops: Option<usize>,
    /// Called (once) when the host is about to run one more op than the count.
    pub hook_after_ops: Option<(usize, FakeHook)>,
    /// Every operation done as a home's owner fails (her quota is full, or her home
    /// changed after the probe): what the plan cannot see.
    pub owner_ops_fail: bool,
    /// A command that fails while `path` contains `needle`: `(command, path, needle)`.
    pub failing_command: Option<(String, String, String)>,
    /// Paths the running script restored (its `@@closetctl restored` lines).
    pub restored: Vec<String>,
    /// A step script hangs here now.
    pub hung: bool,
    /// Journal ids of the handlers whose record was cleared after they ran, in order.
    pub handlers_paid: Vec<String>,
    /// MariaDB and slurmdbd: what `mysql`, `sacctmgr` and `squeue` answer.
    pub slurmdb: FakeSlurmdb,
    /// The key munged read when it last started (it reads the key only at start);
    /// `None` while munged never started here: then the key file as it is.
    pub munged_key: Option<Vec<u8>>,
    /// Credentials `unmunge` decoded here (a second decode is a replay).
    pub decoded: BTreeSet<String>,
    /// Credentials `munge -n` made here so far (each one differs).
    pub credentials_made: u64,
    /// slurmctld's node states an admin set (`scontrol update nodename=N state=drain
    /// reason=...`): node -> (state as sinfo prints it, reason). Read on the controller.
    pub slurm_held: BTreeMap<String, (String, String)>,
    /// `/etc/shadow` as the probe's `awk` prints it and `usermod`/`chage` change it.
    pub shadow: BTreeMap<String, super::accounts::Shadow>,
    /// Running processes `(uid, pid)`, as `ps -e -o uid= -o pid=` lists them.
    pub processes: Vec<(u32, u32)>,
    /// Jobs slurmctld runs or queues (read on the controller): `scontrol show job`,
    /// and the nodes' allocated CPUs, memory and GPUs in `scontrol show node`.
    pub slurm_jobs: Vec<FakeJob>,
    /// What `nvidia-smi --version` reports here.
    pub nvidia_driver: String,
    pub cuda_version: String,
    /// GPU utilisation (%) by GPU index, as `nvidia-smi` reports it (default 0).
    pub gpu_utilization: BTreeMap<u32, u32>,
    /// `/proc/sys/kernel/random/boot_id`: a reboot changes it.
    pub boot_id: String,
    /// The probe's GPU cache file ([`closetctl_core::facts::probe::GPU_CACHE`]): the
    /// key it was written under and `nvidia-smi`'s answer.
    pub gpu_cache: Option<(String, String)>,
    /// Times the probe ran `nvidia-smi` here.
    pub nvidia_smi_runs: u64,
    /// What `getent ahostsv4 NAME` finds here (DNS and `/etc/hosts` together): name ->
    /// first IPv4 address. Empty: no name resolves.
    pub resolver: BTreeMap<String, String>,
}

/// A job in the fake slurmctld.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeJob {
    pub id: u32,
    pub name: String,
    pub user: String,
    pub uid: u32,
    pub account: String,
    /// `RUNNING` or `PENDING`.
    pub state: String,
    pub partition: String,
    /// Where it runs (empty while pending).
    pub node: String,
    pub cpus: u32,
    pub memory_mib: u64,
    /// `--gres=gpu:TYPE:N` as (type, N); `None` for a CPU job.
    pub gres: Option<(Option<String>, u32)>,
    pub run_seconds: u64,
    /// `None`: UNLIMITED.
    pub limit_seconds: Option<u64>,
    /// Why it pends.
    pub reason: String,
}

/// A callback from inside the fake host (a test's Ctrl-C at a chosen op).
#[derive(Clone)]
pub struct FakeHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for FakeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeHook")
    }
}

impl FakeState {
    /// A fresh Debian 12 host: root and a few system accounts, nothing of closetctl's.
    pub fn debian(hostname: &str) -> FakeState {
        let mut s = FakeState {
            reachable: true,
            os: OsRelease {
                id: "debian".into(),
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            },
            hostname: hostname.into(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            installed: BTreeMap::new(),
            available: BTreeMap::new(),
            units: BTreeMap::new(),
            files: BTreeMap::new(),
            cpu: CpuTopology {
                cpus: 16,
                sockets: 1,
                cores_per_socket: 8,
                threads_per_core: 2,
            },
            memory_mib: 64000,
            gpus: Vec::new(),
            epoch: 1_800_000_000.0,
            broken_unit: None,
            journal: Vec::new(),
            lose_locking_probe_answers: 0,
            garble_locking_probe_answers: 0,
            kill_after_ops: None,
            hang_after_ops: None,
            cut_after_ops: None,
            hook_after_ops: None,
            owner_ops_fail: false,
            failing_command: None,
            restored: Vec::new(),
            hung: false,
            handlers_paid: Vec::new(),
            slurmdb: FakeSlurmdb::default(),
            shadow: BTreeMap::new(),
            processes: Vec::new(),
            munged_key: None,
            decoded: BTreeSet::new(),
            credentials_made: 0,
            slurm_held: BTreeMap::new(),
            slurm_jobs: Vec::new(),
            nvidia_driver: "535.183.01".into(),
            cuda_version: "12.2".into(),
            gpu_utilization: BTreeMap::new(),
            boot_id: "boot-1".into(),
            gpu_cache: None,
            nvidia_smi_runs: 0,
            resolver: BTreeMap::new(),
        };
        for (name, id) in [("root", 0), ("daemon", 1), ("sshd", 100), ("nobody", 65534)] {
            s.users.insert(
                name.into(),
                PasswdEntry {
                    uid: id,
                    gid: id,
                    gecos: String::new(),
                    home: "/".into(),
                    shell: "/usr/sbin/nologin".into(),
                },
            );
            s.groups.insert(
                name.into(),
                GroupEntry {
                    gid: id,
                    members: Vec::new(),
                },
            );
        }
        for dir in ["/", "/etc", "/home", "/var", "/var/lib"] {
            s.files.insert(
                dir.into(),
                FakeFile::root(FileKind::Directory, 0o755, Vec::new()),
            );
        }
        s.available.insert(
            "munge".into(),
            PackageEffect {
                units: vec![MUNGE_UNIT.into()],
                system_users: vec![("munge".into(), 104)],
                files: vec![(MUNGE_KEY.into(), b"debian-postinst-random-key".to_vec())],
            },
        );
        s.available.insert(
            "mariadb-server".into(),
            PackageEffect {
                units: vec!["mariadb.service".into()],
                system_users: vec![("mysql".into(), 105)],
                files: vec![],
            },
        );
        for p in ["slurmctld", "slurmd", "slurmdbd"] {
            s.available.insert(
                p.into(),
                PackageEffect {
                    units: vec![format!("{p}.service")],
                    system_users: vec![("slurm".into(), 64030)],
                    files: vec![],
                },
            );
        }
        s.available.insert(
            "dbus".into(),
            PackageEffect {
                units: vec!["dbus.service".into()],
                ..PackageEffect::default()
            },
        );
        s.available.insert(
            "nfs-kernel-server".into(),
            PackageEffect {
                units: vec!["nfs-server.service".into()],
                ..PackageEffect::default()
            },
        );
        s.available.insert(
            "openssh-server".into(),
            PackageEffect {
                units: vec!["ssh.service".into()],
                ..PackageEffect::default()
            },
        );
        for p in ["slurm-client", "nfs-common", "sudo", "rsync", "curl"] {
            s.available.insert(p.into(), PackageEffect::default());
        }
        s
    }

    /// A file's content as text (empty when there is no such file).
    pub fn text(&self, path: &str) -> String {
        self.files
            .get(path)
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
            .unwrap_or_default()
    }

    /// Whether a unit runs.
    pub fn active(&self, unit: &str) -> bool {
        self.units.get(unit).is_some_and(|u| u.active == "active")
    }

    /// A unit was (re)started: munged reads its key now and only now.
    pub(crate) fn started(&mut self, unit: &str) {
        if unit == MUNGE_UNIT {
            self.munged_key = self.files.get(MUNGE_KEY).map(|f| f.content.clone());
        }
    }

    pub(crate) fn add_system_user(&mut self, name: &str, id: u32) {
        if !self.users.contains_key(name) {
            self.users.insert(
                name.into(),
                PasswdEntry {
                    uid: id,
                    gid: id,
                    gecos: String::new(),
                    home: "/nonexistent".into(),
                    shell: "/usr/sbin/nologin".into(),
                },
            );
            self.groups.insert(
                name.into(),
                GroupEntry {
                    gid: id,
                    members: Vec::new(),
                },
            );
        }
    }
}

/// Mark a package as installed up front (for a "converged" or "drifted" fixture).
pub fn preinstall(s: &mut FakeState, packages: &[&str]) {
    for p in packages {
        s.installed.insert(p.to_string(), "1.0".into());
    }
}
