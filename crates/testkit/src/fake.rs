//! A fake host in memory: it answers the real probe script and carries out the real
//! apply scripts by interpreting their `cc_op` lines, so the engine, the plan and
//! idempotence are tested without a network. It counts every remote execution.
//!
//! It models what matters to closetctl: accounts, packages (with the units, system
//! users and files a package brings, as Debian's would), files, directories, units, the
//! apply lock, and failures on demand (an unreachable host, a unit that will not start
//! with a given file content).

use crate::facts::probe::MARKER;
use crate::facts::{CpuTopology, FileKind, Gpu, GroupEntry, OsRelease, PasswdEntry, UnitState};
use crate::inventory::Host;
use base64::Engine as _;
use closetctl_exec::transport::{Cause, Connector, RemoteOutput, Transport, TransportError};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct FakeFile {
    pub kind: FileKind,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub content: Vec<u8>,
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
    /// Probe answers to lose after the probe ran (a connection reset): the lock is taken
    /// but closetctl never hears it.
    pub lose_probe_answers: usize,
    /// Probe answers to garble after the probe ran (an unparseable answer).
    pub garble_probe_answers: usize,
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
    next_pid: u32,
}

/// A callback from inside the fake host (a test's Ctrl-C at a chosen op).
#[derive(Clone)]
pub struct FakeHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for FakeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeHook")
    }
}

/// The accounting database as `sacctmgr -i` leaves it and `sacctmgr -nP show` prints it.
#[derive(Debug, Clone, Default)]
pub struct FakeSlurmdb {
    /// `slurm_acct_db`, `slurm@localhost` and its grant exist (the setup script ran).
    pub database: bool,
    pub clusters: Vec<String>,
    /// `(cluster, account, user)` -> share, in insertion order like sacctmgr's listing.
    pub associations: Vec<((String, String, String), String)>,
    /// User -> default account.
    pub defaults: BTreeMap<String, String>,
    /// Active jobs `(id, user, account)` as `squeue -h -o '%i %u %a'` prints them.
    pub jobs: Vec<(u32, String, String)>,
    /// Every `sacctmgr -i` command carried out.
    pub commands: Vec<String>,
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
            lose_probe_answers: 0,
            garble_probe_answers: 0,
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
            next_pid: 1000,
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
                FakeFile {
                    kind: FileKind::Directory,
                    mode: 0o755,
                    owner: "root".into(),
                    group: "root".into(),
                    content: Vec::new(),
                },
            );
        }
        s.available.insert(
            "munge".into(),
            PackageEffect {
                units: vec!["munge.service".into()],
                system_users: vec![("munge".into(), 104)],
                files: vec![(
                    "/etc/munge/munge.key".into(),
                    b"debian-postinst-random-key".to_vec(),
                )],
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
        for p in ["slurm-client", "nfs-common", "sudo"] {
            s.available.insert(p.into(), PackageEffect::default());
        }
        s
    }

    fn add_system_user(&mut self, name: &str, id: u32) {
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

/// One fake host: its state behind a lock and a count of remote executions.
#[derive(Debug)]
pub struct FakeHost {
    pub state: Mutex<FakeState>,
    runs: AtomicUsize,
    pub scripts: Mutex<Vec<String>>,
    /// Wakes a hung step script when it is ended from outside.
    ended: tokio::sync::Notify,
    /// What a hung step script printed before it hung.
    hung_output: Mutex<RemoteOutput>,
}

impl FakeHost {
    pub fn new(state: FakeState) -> Arc<FakeHost> {
        Arc::new(FakeHost {
            state: Mutex::new(state),
            runs: AtomicUsize::new(0),
            scripts: Mutex::new(Vec::new()),
            ended: tokio::sync::Notify::new(),
            hung_output: Mutex::new(RemoteOutput::default()),
        })
    }

    /// How many scripts ran on this host.
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

/// Fake hosts by inventory name.
#[derive(Debug, Clone, Default)]
pub struct FakeCluster {
    pub hosts: BTreeMap<String, Arc<FakeHost>>,
    /// Set when an injected kill fired: this closetctl is "dead" and reaches no host.
    pub killed: Arc<AtomicBool>,
}

impl FakeCluster {
    pub fn debian(names: &[&str]) -> FakeCluster {
        FakeCluster {
            hosts: names
                .iter()
                .map(|n| (n.to_string(), FakeHost::new(FakeState::debian(n))))
                .collect(),
            killed: Arc::default(),
        }
    }

    pub fn host(&self, name: &str) -> &Arc<FakeHost> {
        &self.hosts[name]
    }

    /// Whether an injected kill fired.
    pub fn was_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// A new closetctl after a killed one: hosts answer again; injections are cleared.
    pub fn revive(&self) {
        self.killed.store(false, Ordering::SeqCst);
        for h in self.hosts.values() {
            h.with(|s| {
                s.kill_after_ops = None;
                s.hang_after_ops = None;
                s.cut_after_ops = None;
                s.hook_after_ops = None;
            });
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeConn(pub Arc<FakeHost>, String, Arc<AtomicBool>);

impl Connector for FakeCluster {
    type Conn = FakeConn;

    async fn connect(&self, host: &Host) -> Result<FakeConn, TransportError> {
        if self.was_killed() {
            return Err(TransportError::Connect {
                host: host.name.clone(),
                source: io_error(ErrorKind::Other, "closetctl is gone (killed)"),
            });
        }
        match self.hosts.get(&host.name) {
            Some(h) if h.with(|s| s.reachable) => {
                Ok(FakeConn(h.clone(), host.name.clone(), self.killed.clone()))
            }
            _ => Err(TransportError::Connect {
                host: host.name.clone(),
                source: io_error(
                    ErrorKind::TimedOut,
                    "ssh: connect to host: Connection timed out",
                ),
            }),
        }
    }
}

impl Transport for FakeConn {
    fn host(&self) -> &str {
        &self.1
    }

    /// As the SSH transport: on timeout, what the script printed so far.
    async fn run_for(
        &self,
        script: String,
        limit: std::time::Duration,
    ) -> Result<RemoteOutput, TransportError> {
        match tokio::time::timeout(limit, self.run(script)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                host: self.1.clone(),
                after: limit,
                partial: self.hung_partial(),
            }),
        }
    }

    async fn run(&self, script: String) -> Result<RemoteOutput, TransportError> {
        let host = &self.0;
        let gone = || TransportError::Run {
            host: self.1.clone(),
            source: io_error(ErrorKind::Other, "closetctl is gone (killed)"),
        };
        if self.2.load(Ordering::SeqCst) {
            return Err(gone());
        }
        host.runs.fetch_add(1, Ordering::SeqCst);
        host.scripts.lock().unwrap().push(script.clone());
        let (mut out, stopped) = {
            let mut state = host.state.lock().unwrap();
            if !state.reachable {
                return Err(TransportError::Run {
                    host: self.1.clone(),
                    source: io_error(ErrorKind::BrokenPipe, "Broken pipe"),
                });
            }
            if script.starts_with("# closetctl fact probe") {
                let mut out = probe(&mut state, &script);
                if state.lose_probe_answers > 0 {
                    state.lose_probe_answers -= 1;
                    return Err(TransportError::Run {
                        host: self.1.clone(),
                        source: io_error(ErrorKind::ConnectionReset, "Connection reset by peer"),
                    });
                }
                if state.garble_probe_answers > 0 {
                    state.garble_probe_answers -= 1;
                    out.stdout.truncate(out.stdout.len() / 3);
                }
                return Ok(out);
            }
            if let Some(rest) = script.strip_prefix("# closetctl lock: ") {
                let out = lock_script(&mut state, rest);
                if state.hung && (rest.starts_with("end-step ") || rest.starts_with("break ")) {
                    state.hung = false;
                    host.ended.notify_one();
                }
                return Ok(out);
            }
            let (out, stopped) = apply(&mut state, &script);
            if let Stopped::Hung = stopped {
                state.hung = true;
                *host.hung_output.lock().unwrap() = out.clone();
            }
            if let Stopped::Cut = stopped {
                state.reachable = false;
            }
            (out, stopped)
        };
        match stopped {
            Stopped::No => Ok(out),
            Stopped::Cut => Err(TransportError::Lost {
                host: self.1.clone(),
                source: io_error(ErrorKind::ConnectionReset, "Connection reset by peer"),
                partial: out,
            }),
            Stopped::Killed => {
                self.2.store(true, Ordering::SeqCst);
                Err(gone())
            }
            Stopped::Hung => {
                // No answer until the script is ended on the host (TERM: 143).
                host.ended.notified().await;
                out.status = 143;
                out.stderr = "Terminated".into();
                Ok(out)
            }
        }
    }
}

/// An I/O error as the SSH transport would report it underneath.
fn io_error(kind: ErrorKind, message: &str) -> Cause {
    Cause::Io(std::io::Error::new(kind, message))
}

impl FakeConn {
    /// What the step script that hangs here printed so far.
    fn hung_partial(&self) -> RemoteOutput {
        self.0.hung_output.lock().unwrap().clone()
    }
}

/// How a fake step script ended early.
enum Stopped {
    No,
    Killed,
    Hung,
    Cut,
}

/// The lock directory and its files in the fake's file map.
const LOCK: &str = "/var/lib/closetctl/lock";

fn lock_file(s: &FakeState, name: &str) -> Option<String> {
    s.files
        .get(&format!("{LOCK}/{name}"))
        .map(|f| String::from_utf8_lossy(&f.content).trim().to_string())
}

fn set_lock_file(s: &mut FakeState, name: &str, content: &str) {
    s.files.insert(
        format!("{LOCK}/{name}"),
        FakeFile {
            kind: FileKind::File,
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: format!("{content}\n").into_bytes(),
        },
    );
}

/// Whether the lock exists (a test may plant only `holder`, as an older closetctl wrote).
fn locked(s: &FakeState) -> bool {
    s.files.contains_key(LOCK) || s.files.contains_key(&format!("{LOCK}/holder"))
}

fn remove_lock(s: &mut FakeState) {
    let prefix = format!("{LOCK}/");
    s.files.retain(|p, _| p != LOCK && !p.starts_with(&prefix));
}

/// Take the lock for `run` (the probe's `mkdir`); false when it is held.
fn take_lock(s: &mut FakeState, run: &str, holder: &str) -> bool {
    if locked(s) {
        return false;
    }
    s.files.insert(
        LOCK.into(),
        FakeFile {
            kind: FileKind::Directory,
            mode: 0o755,
            owner: "root".into(),
            group: "root".into(),
            content: Vec::new(),
        },
    );
    set_lock_file(s, "holder", holder);
    set_lock_file(s, "run", run);
    let now = format!("{}", s.epoch as i64);
    set_lock_file(s, "refreshed", &now);
    true
}

/// The lock section's answer, as [`closetctl_core::lock::SECTION`] prints it.
fn lock_section(s: &mut FakeState, run: &str, holder: &str, o: &mut String) {
    let _ = writeln!(o, "{MARKER} lock");
    if !run.is_empty() && take_lock(s, run, holder) {
        let _ = writeln!(o, "acquired");
    } else if locked(s) {
        let get = |n: &str| lock_file(s, n).unwrap_or_default();
        let _ = writeln!(
            o,
            "held\nrun={}\nrefreshed={}\nstep={}\nholder={}",
            get("run"),
            get("refreshed"),
            get("step"),
            get("holder")
        );
    } else {
        let _ = writeln!(o, "free");
    }
}

/// `# closetctl lock: VERB RUN` scripts: refresh, release, end-step, break, inspect.
fn lock_script(s: &mut FakeState, header: &str) -> RemoteOutput {
    let first = header.lines().next().unwrap_or_default();
    let (verb, run) = first.split_once(' ').unwrap_or((first, ""));
    let ours = locked(s) && lock_file(s, "run").unwrap_or_default() == run;
    let mut out = RemoteOutput::default();
    let say = |out: &mut RemoteOutput, what: &str| {
        let _ = writeln!(out.stdout, "{MARKER} {what}");
    };
    let end_step = |s: &mut FakeState, out: &mut RemoteOutput| {
        let step = lock_file(s, "step").unwrap_or_default();
        if let Some(name) = step.splitn(4, ' ').nth(3) {
            let name = name.to_string();
            s.journal.push(format!("end-step {name}"));
            set_lock_file(s, "step", "");
            let _ = writeln!(out.stdout, "{MARKER} ended {name}");
        }
    };
    match verb {
        "refresh" if ours => {
            let now = format!("{}", s.epoch as i64);
            set_lock_file(s, "refreshed", &now);
            say(&mut out, "refreshed");
        }
        "refresh" => say(&mut out, "lost"),
        "release" if ours => {
            remove_lock(s);
            say(&mut out, "released");
        }
        "release" => say(&mut out, "not-ours"),
        "end-step" => {
            if ours {
                end_step(s, &mut out);
            }
        }
        "break" if locked(s) && lock_file(s, "run").unwrap_or_default() == run => {
            end_step(s, &mut out);
            remove_lock(s);
            say(&mut out, "broken");
        }
        "break" => say(&mut out, "changed"),
        "inspect" => {
            lock_section(s, "", "", &mut out.stdout);
            let _ = writeln!(out.stdout, "{MARKER} now\n{}", s.epoch as i64);
        }
        other => {
            out.status = 2;
            out.stderr = format!("fake host: unknown lock script {other}");
        }
    }
    out
}

/// A variable's whole value from a probe script's `NAME='...'` line.
fn raw_var(script: &str, name: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .and_then(shlex::split)
        .and_then(|w| w.into_iter().next())
        .unwrap_or_default()
}

fn var(script: &str, name: &str) -> Vec<String> {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .and_then(shlex::split)
        .and_then(|w| w.into_iter().next())
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn probe(s: &mut FakeState, script: &str) -> RemoteOutput {
    let mut o = String::new();
    // The lock first, as the real probe takes it before reading any fact.
    lock_section(
        s,
        &raw_var(script, "LOCK_RUN"),
        &raw_var(script, "LOCK"),
        &mut o,
    );
    let sec = |o: &mut String, name: &str| {
        let _ = writeln!(o, "{MARKER} {name}");
    };
    sec(&mut o, "owed");
    let prefix = format!("{OWED}/");
    for (path, f) in &s.files {
        if path.starts_with(&prefix) && f.kind == FileKind::File {
            o.push_str(&String::from_utf8_lossy(&f.content));
        }
    }
    sec(&mut o, "os");
    let _ = writeln!(
        o,
        "ID={}\nVERSION_ID=\"{}\"\nPRETTY_NAME=\"{}\"",
        s.os.id, s.os.version_id, s.os.pretty_name
    );
    sec(&mut o, "hostname");
    let _ = writeln!(o, "{}", s.hostname);
    sec(&mut o, "passwd");
    for (n, u) in &s.users {
        let _ = writeln!(
            o,
            "{n}:x:{}:{}:{}:{}:{}",
            u.uid, u.gid, u.gecos, u.home, u.shell
        );
    }
    sec(&mut o, "group");
    for (n, g) in &s.groups {
        let _ = writeln!(o, "{n}:x:{}:{}", g.gid, g.members.join(","));
    }
    sec(&mut o, "packages");
    for p in var(script, "PACKAGES") {
        if let Some(v) = s.installed.get(&p) {
            let _ = writeln!(o, "{p}\tii \t{v}");
        }
    }
    sec(&mut o, "units");
    let units: Vec<String> = var(script, "UNITS")
        .into_iter()
        .map(|u| match s.units.get(&u) {
            Some(st) => format!(
                "Id={u}\nLoadState=loaded\nActiveState={}\nUnitFileState={}\nMainPID={}\n",
                st.active, st.enabled, st.main_pid
            ),
            None => format!(
                "Id={u}\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\nMainPID=0\n"
            ),
        })
        .collect();
    o.push_str(&units.join("\n"));
    sec(&mut o, "stat");
    let secrets = var(script, "SECRETS");
    let (mut small, mut hashed) = (Vec::new(), Vec::new());
    for p in var(script, "FILES") {
        if let Some(f) = s.files.get(&p) {
            o.push_str(&stat_line(&p, f));
            if f.kind == FileKind::File {
                if secrets.contains(&p) || f.content.len() > 65536 {
                    hashed.push(p)
                } else {
                    small.push(p)
                }
            }
        }
    }
    let _ = writeln!(o, "{MARKER} content {}", small.join(" "));
    let blob: Vec<u8> = small
        .iter()
        .flat_map(|p| s.files[p].content.clone())
        .collect();
    let _ = writeln!(
        o,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    );
    sec(&mut o, "sha256");
    for p in hashed {
        use sha2::Digest;
        let _ = writeln!(o, "{:x}  {p}", sha2::Sha256::digest(&s.files[&p].content));
    }
    sec(&mut o, "cpu");
    let cores = s.cpu.sockets * s.cpu.cores_per_socket;
    for cpu in 0..s.cpu.cpus {
        let core = cpu % cores.max(1);
        let _ = writeln!(
            o,
            "processor\t: {cpu}\nphysical id\t: {}\ncore id\t\t: {}",
            core / s.cpu.cores_per_socket.max(1),
            core % s.cpu.cores_per_socket.max(1)
        );
    }
    sec(&mut o, "memory");
    let _ = writeln!(o, "MemTotal:       {} kB", s.memory_mib * 1024);
    sec(&mut o, "gpus");
    for g in &s.gpus {
        let num = |v: Option<f64>| v.map_or("[N/A]".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            o,
            "{}, {}, {}, {}, {}",
            g.index,
            g.name,
            g.memory_mib.unwrap_or(0),
            num(g.power_limit_watts),
            num(g.power_draw_watts)
        );
    }
    sec(&mut o, "time");
    let _ = writeln!(o, "{:.6}\nyes", s.epoch);
    sec(&mut o, "ssh");
    let _ = writeln!(o, "192.0.2.1 50000 192.0.2.10 22");
    sec(&mut o, "addrs");
    let _ = writeln!(
        o,
        "2: eth0    inet 192.0.2.10/24 brd 192.0.2.255 scope global eth0"
    );
    sec(&mut o, "speeds");
    let _ = writeln!(o, "eth0 10000");
    for (name, command) in probe_commands(script) {
        if let Some((rc, out)) = fake_command(s, &command) {
            let _ = writeln!(
                o,
                "{MARKER} command {name}\n{out}\n{MARKER} command-exit {name} {rc}"
            );
        }
    }
    // `owned OWNER GROUP PATH...`: stat and cat as the owner, answered base64-encoded.
    for line in script.lines().filter(|l| l.starts_with("owned '")) {
        let words = shlex::split(line).unwrap_or_default();
        let (mut text, mut content) = (String::new(), Vec::<u8>::new());
        for p in words.iter().skip(3) {
            if let Some(f) = s.files.get(p) {
                text.push_str(&stat_line(p, f));
                if f.kind == FileKind::File && f.content.len() <= 65536 {
                    content.extend(&f.content);
                }
            }
        }
        let mut raw = format!("{text}\n--\n").into_bytes();
        raw.extend(content);
        let _ = writeln!(
            o,
            "{MARKER} owned {}\n{}",
            words[1],
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
    }
    RemoteOutput {
        status: 0,
        stdout: o,
        stderr: String::new(),
    }
}

/// A line as `stat -c '%n|%F|%a|%U|%G|%s'` prints it (links are not followed).
fn stat_line(path: &str, f: &FakeFile) -> String {
    let kind = match f.kind {
        FileKind::File if f.content.is_empty() => "regular empty file",
        FileKind::File => "regular file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symbolic link",
        FileKind::Other => "socket",
    };
    let size = if f.kind == FileKind::File {
        f.content.len()
    } else {
        4096
    };
    format!(
        "{path}|{kind}|{:o}|{}|{}|{size}\n",
        f.mode, f.owner, f.group
    )
}

fn apply(s: &mut FakeState, script: &str) -> (RemoteOutput, Stopped) {
    let mut out = RemoteOutput::default();
    if let Some(line) = script.lines().find(|l| l.starts_with("cc_begin ")) {
        // The step's lock check: refuse unless the lock is this run's; record the step.
        let words = shlex::split(line).unwrap_or_default();
        let (run, step) = (&words[1], &words[2]);
        if !(locked(s) && lock_file(s, "run").as_deref() == Some(run.as_str())) {
            out.stdout = format!("{MARKER} lost-lock\n");
            out.status = 3;
            return (out, Stopped::No);
        }
        set_lock_file(s, "step", &format!("1 1 1 {step}"));
    }
    for line in script.lines() {
        let Some(func) = line.split_whitespace().next() else {
            continue;
        };
        match func {
            "cc_op" => {
                if s.kill_after_ops == Some(0) {
                    return (out, Stopped::Killed);
                }
                if s.hang_after_ops == Some(0) {
                    s.hang_after_ops = None;
                    return (out, Stopped::Hung);
                }
                if s.cut_after_ops == Some(0) {
                    s.cut_after_ops = None;
                    return (out, Stopped::Cut);
                }
                if let Some((0, hook)) = &s.hook_after_ops {
                    let hook = hook.clone();
                    s.hook_after_ops = None;
                    (hook.0)();
                }
                for k in [
                    &mut s.kill_after_ops,
                    &mut s.hang_after_ops,
                    &mut s.cut_after_ops,
                ]
                .into_iter()
                .flatten()
                {
                    *k -= 1;
                }
                if let Some((k, _)) = &mut s.hook_after_ops {
                    *k -= 1;
                }
            }
            // The journal of owed handlers, as journal::PRELUDE keeps it.
            "cc_owe" => {
                let words = shlex::split(line).unwrap_or_default();
                let path = format!("{OWED}/{}", words[1]);
                s.files.entry(path).or_insert_with(|| FakeFile {
                    kind: FileKind::File,
                    mode: 0o644,
                    owner: "root".into(),
                    group: "root".into(),
                    content: format!("{}\n", words[2]).into_bytes(),
                });
                continue;
            }
            "cc_paid" => {
                let id = line.split_whitespace().nth(1).unwrap_or_default();
                s.files.remove(&format!("{OWED}/{id}"));
                s.handlers_paid.push(id.to_string());
                continue;
            }
            "cc_end" => {
                if locked(s) {
                    set_lock_file(s, "step", "");
                }
                continue;
            }
            _ => continue,
        }
        let words = shlex::split(line).unwrap_or_default();
        let n = &words[1];
        let result = run_op(s, &words[2], &words[3..]);
        for p in std::mem::take(&mut s.restored) {
            let _ = writeln!(out.stdout, "@@closetctl restored {p}");
        }
        match result {
            Ok(()) => {
                let _ = writeln!(out.stdout, "@@closetctl ok {n}");
            }
            // As cc_op: an owner's operation that fails is passed over.
            Err(e) if words[2].starts_with("cc_owner_") => {
                let _ = writeln!(out.stdout, "@@closetctl skipped {n}");
                out.stderr.push_str(&e);
                out.stderr.push('\n');
            }
            Err(e) => {
                let _ = writeln!(out.stdout, "@@closetctl failed {n}");
                out.stderr = e;
                out.status = 1;
                return (out, Stopped::No);
            }
        }
    }
    (out, Stopped::No)
}

/// The journal of owed handlers in the fake's file map.
const OWED: &str = "/var/lib/closetctl/owed";

fn run_op(s: &mut FakeState, func: &str, a: &[String]) -> Result<(), String> {
    s.journal.push(format!(
        "{func} {}",
        a.iter()
            .map(|w| if w.len() > 40 { "<data>" } else { w })
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let mode = |m: &str| u32::from_str_radix(m, 8).map_err(|e| e.to_string());
    let owner_exists = |s: &FakeState, u: &str, g: &str| {
        if !s.users.contains_key(u) {
            return Err(format!("chown: invalid user: '{u}:{g}'"));
        }
        if !s.groups.contains_key(g) {
            return Err(format!("chown: invalid group: '{u}:{g}'"));
        }
        Ok(())
    };
    match func {
        "cc_install" => {
            for p in a {
                let effect = s
                    .available
                    .get(p)
                    .cloned()
                    .ok_or_else(|| format!("E: Unable to locate package {p}"))?;
                s.installed.insert(p.clone(), "1.0".into());
                for (u, id) in &effect.system_users {
                    s.add_system_user(u, *id);
                }
                for (path, content) in &effect.files {
                    s.files.insert(
                        path.clone(),
                        FakeFile {
                            kind: FileKind::File,
                            mode: 0o400,
                            owner: "root".into(),
                            group: "root".into(),
                            content: content.clone(),
                        },
                    );
                }
                for u in &effect.units {
                    s.next_pid += 1;
                    s.units.insert(
                        u.clone(),
                        UnitState {
                            load: "loaded".into(),
                            active: "active".into(),
                            enabled: "enabled".into(),
                            main_pid: s.next_pid,
                        },
                    );
                }
            }
        }
        "cc_groupadd" => {
            let gid: u32 = a[1].parse().map_err(|_| "bad gid")?;
            if s.groups.contains_key(&a[0]) || s.groups.values().any(|g| g.gid == gid) {
                return Err(format!(
                    "groupadd: group '{}' or GID {gid} already exists",
                    a[0]
                ));
            }
            s.groups.insert(
                a[0].clone(),
                GroupEntry {
                    gid,
                    members: Vec::new(),
                },
            );
        }
        "cc_useradd" | "cc_usermod" => {
            let add = func == "cc_useradd";
            let (name, rest) = (&a[0], if add { &a[2..] } else { &a[1..] });
            let gid: u32 = rest[0].parse().map_err(|_| "bad gid")?;
            if !s.groups.values().any(|g| g.gid == gid) {
                return Err(format!("useradd: group '{gid}' does not exist"));
            }
            let uid = if add {
                let uid: u32 = a[1].parse().map_err(|_| "bad uid")?;
                if s.users.contains_key(name) || s.users.values().any(|u| u.uid == uid) {
                    return Err(format!(
                        "useradd: user '{name}' or UID {uid} already exists"
                    ));
                }
                uid
            } else {
                s.users
                    .get(name)
                    .ok_or(format!("usermod: user '{name}' does not exist"))?
                    .uid
            };
            let groups: Vec<&str> = rest[1].split(',').filter(|g| !g.is_empty()).collect();
            if let Some(g) = groups.iter().find(|g| !s.groups.contains_key(**g)) {
                return Err(format!("useradd: group '{g}' does not exist"));
            }
            for (gname, g) in s.groups.iter_mut() {
                g.members.retain(|m| m != name);
                if groups.contains(&gname.as_str()) {
                    g.members.push(name.clone());
                }
            }
            s.users.insert(
                name.clone(),
                PasswdEntry {
                    uid,
                    gid,
                    gecos: rest[4].clone(),
                    home: rest[3].clone(),
                    shell: rest[2].clone(),
                },
            );
            if add && rest.get(5).map(String::as_str) == Some("1") {
                let group = s
                    .groups
                    .iter()
                    .find(|(_, g)| g.gid == gid)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default();
                s.files.entry(rest[3].clone()).or_insert(FakeFile {
                    kind: FileKind::Directory,
                    mode: 0o700,
                    owner: name.clone(),
                    group,
                    content: Vec::new(),
                });
            }
        }
        "cc_dir" => {
            owner_exists(s, &a[1], &a[2])?;
            root_may_work_on(s, &a[0], true)?;
            s.files.insert(
                a[0].clone(),
                FakeFile {
                    kind: FileKind::Directory,
                    mode: mode(&a[3])?,
                    owner: a[1].clone(),
                    group: a[2].clone(),
                    content: Vec::new(),
                },
            );
        }
        "cc_write" => {
            owner_exists(s, &a[1], &a[2])?;
            root_may_work_on(s, &a[0], false)?;
            let content = base64::engine::general_purpose::STANDARD
                .decode(&a[4])
                .map_err(|e| e.to_string())?;
            // As cc_backup: keep the previous file, or mark that there was none.
            let (backup, absent) = (
                format!("/var/lib/closetctl/backup{}", a[0]),
                format!("/var/lib/closetctl/backup{}.absent", a[0]),
            );
            match s.files.get(&a[0]).cloned() {
                Some(old) => {
                    s.files.insert(backup, old);
                    s.files.remove(&absent);
                }
                None => {
                    s.files.remove(&backup);
                    s.files.insert(
                        absent,
                        FakeFile {
                            kind: FileKind::File,
                            mode: 0o600,
                            owner: "root".into(),
                            group: "root".into(),
                            content: Vec::new(),
                        },
                    );
                }
            }
            s.files.insert(
                a[0].clone(),
                FakeFile {
                    kind: FileKind::File,
                    mode: mode(&a[3])?,
                    owner: a[1].clone(),
                    group: a[2].clone(),
                    content,
                },
            );
        }
        "cc_attr" => {
            owner_exists(s, &a[1], &a[2])?;
            root_may_work_on(s, &a[0], true)?;
            let m = mode(&a[3])?;
            let f = s
                .files
                .get_mut(&a[0])
                .ok_or(format!("chown: cannot access '{}'", a[0]))?;
            (f.owner, f.group, f.mode) = (a[1].clone(), a[2].clone(), m);
        }
        "cc_systemctl" => {
            let (verb, unit) = (a[0].as_str(), &a[1]);
            if verb == "start" {
                check_broken(s, unit)?;
            }
            let next_pid = s.next_pid + 1;
            let u = s
                .units
                .get_mut(unit)
                .ok_or(format!("Failed to {verb} {unit}: Unit {unit} not found."))?;
            match verb {
                "enable" => u.enabled = "enabled".into(),
                "disable" => u.enabled = "disabled".into(),
                "start" if u.active != "active" => {
                    u.active = "active".into();
                    u.main_pid = next_pid;
                }
                "stop" => u.active = "inactive".into(),
                _ => {}
            }
            s.next_pid = next_pid;
        }
        "cc_restart" => {
            let unit = &a[0];
            s.next_pid += 1;
            let pid = s.next_pid;
            if let Err(e) = check_broken(s, unit) {
                for p in &a[1..] {
                    restore(s, p);
                }
                return Err(format!(
                    "{unit} did not come back; its last log lines:\n{e}"
                ));
            }
            let u = s
                .units
                .get_mut(unit)
                .ok_or(format!("Failed to restart {unit}: Unit {unit} not found."))?;
            u.active = "active".into();
            u.main_pid = pid;
        }
        "cc_owner_dir" | "cc_owner_write" | "cc_owner_attr" => {
            owner_exists(s, &a[1], &a[2])?;
            owner_works_on(s, func, a)?;
        }
        "cc_command" => run_command(s, &a[0])?,
        "cc_activate" => {
            let cmd = &a[0];
            if let Err(e) = check_command(s, cmd).and_then(|()| run_command(s, cmd)) {
                for p in &a[1..] {
                    restore(s, p);
                }
                return Err(format!(
                    "{e}\n`{cmd}` failed; putting the previous files back and running it again"
                ));
            }
        }
        "cc_restore_marked" => restore(s, &a[0]),
        "cc_check" => {
            if let Err(e) = check_command(s, &a[0]) {
                restore(s, &a[1]);
                return Err(format!(
                    "{e}\nthe new {} did not pass the check; putting the previous one back",
                    a[1]
                ));
            }
        }
        other => return Err(format!("fake host: unknown operation {other}")),
    }
    Ok(())
}

/// A person's account (Debian's 1000–59999, and nobody): root never works under a
/// directory such an account can change, as `cc_safe` in the prelude.
fn is_person(uid: u32) -> bool {
    uid >= 1000 && !(60000..65534).contains(&uid)
}

/// As the prelude's `cc_safe` (and `cc_nolink` when `no_link`): every directory above
/// `path` is a real directory no person owns and only its owner can write, and `path`
/// itself is not a link (a write replaces a link rather than following it).
fn root_may_work_on(s: &FakeState, path: &str, no_link: bool) -> Result<(), String> {
    let mut dir = path;
    while let Some(i) = dir.rfind('/') {
        dir = &dir[..i];
        if dir.is_empty() {
            break;
        }
        let Some(f) = s.files.get(dir) else { continue };
        let person = s.users.get(&f.owner).is_some_and(|u| is_person(u.uid));
        if f.kind != FileKind::Directory || person || f.mode & 0o022 != 0 {
            return Err(format!(
                "closetctl: refusing to work as root under {dir}: it is a {:?} owned by {}",
                f.kind, f.owner
            ));
        }
    }
    if no_link
        && s.files
            .get(path)
            .is_some_and(|f| f.kind == FileKind::Symlink)
    {
        return Err(format!("closetctl: refusing {path}: it is a symbolic link"));
    }
    Ok(())
}

/// `cc_owner_dir|write|attr PATH OWNER GROUP MODE [DATA]`, as the owner would: never
/// through a link, and only in a directory she owns (the kernel's check, simplified).
fn owner_works_on(s: &mut FakeState, func: &str, a: &[String]) -> Result<(), String> {
    let (path, owner, group) = (&a[0], &a[1], &a[2]);
    if s.owner_ops_fail {
        return Err(format!("{path}: Disk quota exceeded"));
    }
    let mode = u32::from_str_radix(&a[3], 8).map_err(|e| e.to_string())?;
    let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
    let is_link = |p: &str| s.files.get(p).is_some_and(|f| f.kind == FileKind::Symlink);
    if func == "cc_owner_write" && is_link(parent) {
        return Err(format!(
            "closetctl: refusing to write {path}: {parent} is a symbolic link"
        ));
    }
    if func != "cc_owner_write" && is_link(path) {
        return Err(format!("closetctl: refusing {path}: it is a symbolic link"));
    }
    let denied = || format!("{path}: Permission denied");
    match s.files.get(parent) {
        Some(d) if d.kind == FileKind::Directory && &d.owner == owner => {}
        _ => return Err(denied()),
    }
    match func {
        "cc_owner_attr" => {
            let f = s.files.get_mut(path.as_str()).ok_or_else(denied)?;
            if &f.owner != owner {
                return Err(denied());
            }
            (f.group, f.mode) = (group.clone(), mode);
        }
        "cc_owner_dir"
            if s.files
                .get(path.as_str())
                .is_some_and(|f| f.kind != FileKind::Directory) =>
        {
            return Err(format!(
                "mkdir: cannot create directory '{path}': File exists"
            ));
        }
        _ => {
            let (kind, content) = if func == "cc_owner_dir" {
                (FileKind::Directory, Vec::new())
            } else {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&a[4])
                    .map_err(|e| e.to_string())?;
                (FileKind::File, data)
            };
            s.files.insert(
                path.clone(),
                FakeFile {
                    kind,
                    mode,
                    owner: owner.clone(),
                    group: group.clone(),
                    content,
                },
            );
        }
    }
    Ok(())
}

/// As `cc_restore_marked`: the previous content from the backup, or no file if there
/// was none; noted for the script's `@@closetctl restored` lines.
fn restore(s: &mut FakeState, p: &str) {
    if let Some(b) = s
        .files
        .get(&format!("/var/lib/closetctl/backup{p}"))
        .cloned()
    {
        s.files.insert(p.to_string(), b);
    } else if s
        .files
        .contains_key(&format!("/var/lib/closetctl/backup{p}.absent"))
    {
        s.files.remove(p);
    } else {
        return;
    }
    s.restored.push(p.to_string());
}

/// A command that rejects a file's content (`scontrol reconfigure` and a slurm.conf
/// slurmctld will not take).
fn check_command(s: &FakeState, cmd: &str) -> Result<(), String> {
    if let Some((c, path, needle)) = &s.failing_command {
        let content = s
            .files
            .get(path)
            .map(|f| String::from_utf8_lossy(&f.content).to_string())
            .unwrap_or_default();
        if cmd.contains(c.as_str()) && content.contains(needle.as_str()) {
            return Err(format!("{c}: error: {path} is not accepted"));
        }
    }
    Ok(())
}

fn check_broken(s: &FakeState, unit: &str) -> Result<(), String> {
    if let Some((u, path, needle)) = &s.broken_unit {
        let content = s
            .files
            .get(path)
            .map(|f| String::from_utf8_lossy(&f.content).to_string())
            .unwrap_or_default();
        if u == unit && content.contains(needle.as_str()) {
            return Err(format!("{unit}: fatal: error in {path}"));
        }
    }
    Ok(())
}

/// The probe's extra commands: `(name, command)` from its `sec command` lines.
fn probe_commands(script: &str) -> Vec<(String, String)> {
    let mut lines = script.lines();
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        let Some(name) = l.strip_prefix("sec command ") else {
            continue;
        };
        let Some(cmd) = lines
            .next()
            .and_then(|c| c.strip_prefix("( "))
            .and_then(|c| c.split_once(" ) 2>/dev/null"))
        else {
            continue;
        };
        out.push((name.to_string(), cmd.0.to_string()));
    }
    out
}

fn active(s: &FakeState, unit: &str) -> bool {
    s.units.get(unit).is_some_and(|u| u.active == "active")
}

/// Whether `sacctmgr` reaches slurmdbd: it runs, and slurm.conf points at it.
fn slurmdbd_answers(s: &FakeState) -> bool {
    let conf = s
        .files
        .get("/etc/slurm/slurm.conf")
        .map(|f| String::from_utf8_lossy(&f.content).to_string())
        .unwrap_or_default();
    s.slurmdb.database
        && active(s, "slurmdbd.service")
        && conf.contains("AccountingStorageType=accounting_storage/slurmdbd")
}

/// What the read-only accounting commands print: `(exit code, stdout)`; `None` for a
/// command the fake does not know (its section is left out, as if not asked).
fn fake_command(s: &FakeState, cmd: &str) -> Option<(i32, String)> {
    let db = &s.slurmdb;
    let refused = (
        1,
        "sacctmgr: error: Sending PersistInit msg: Connection refused".to_string(),
    );
    if cmd.starts_with("mysql ") {
        if !s.installed.contains_key("mariadb-server") {
            return Some((127, String::new()));
        }
        let n = u8::from(db.database);
        return Some((0, format!("{n}\t{n}\t{n}")));
    }
    if cmd.contains("sacctmgr -nP show cluster") {
        return Some(if slurmdbd_answers(s) {
            (0, db.clusters.join("\n"))
        } else {
            refused
        });
    }
    if cmd.contains("sacctmgr -nP show assoc format=cluster,account,user,share") {
        let rows: Vec<String> = db
            .associations
            .iter()
            .map(|((c, a, u), share)| format!("{c}|{a}|{u}|{share}"))
            .collect();
        return Some(if slurmdbd_answers(s) {
            (0, rows.join("\n"))
        } else {
            refused
        });
    }
    if cmd.contains("sacctmgr -nP show user format=user,defaultaccount") {
        let rows: Vec<String> = db
            .defaults
            .iter()
            .map(|(u, a)| format!("{u}|{a}"))
            .collect();
        return Some(if slurmdbd_answers(s) {
            (0, rows.join("\n"))
        } else {
            refused
        });
    }
    if cmd.contains("squeue -h") {
        if !active(s, "slurmctld.service") {
            return Some((
                1,
                "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
                    .into(),
            ));
        }
        let rows: Vec<String> = db
            .jobs
            .iter()
            .map(|(id, u, a)| format!("{id} {u} {a}"))
            .collect();
        return Some((0, rows.join("\n")));
    }
    None
}

/// `cc_command`: the database setup script and `sacctmgr -i` changes are carried out
/// (each guarded command's `show ... | grep -q || add` is honoured by adding only
/// what is missing); any other command does nothing.
fn run_command(s: &mut FakeState, cmd: &str) -> Result<(), String> {
    if cmd.contains("/usr/local/lib/closetctl/slurm-database.sh") {
        if !active(s, "mariadb.service") {
            return Err("MariaDB does not answer after 30s".into());
        }
        let conf = s
            .files
            .get("/etc/slurm/slurmdbd.conf")
            .map(|f| String::from_utf8_lossy(&f.content).to_string())
            .unwrap_or_default();
        if !conf
            .lines()
            .any(|l| l.starts_with("StoragePass=") && l.len() > "StoragePass=".len())
        {
            return Err("no StoragePass in /etc/slurm/slurmdbd.conf".into());
        }
        s.slurmdb.database = true;
        return Ok(());
    }
    let Some(at) = cmd.rfind("sacctmgr -i ") else {
        return Ok(());
    };
    if !slurmdbd_answers(s) {
        return Err("sacctmgr: error: Problem talking to the database: Connection refused".into());
    }
    let action = cmd[at..].split(';').next().unwrap_or_default();
    let words =
        shlex::split(action).ok_or_else(|| format!("fake sacctmgr: cannot parse {action}"))?;
    s.slurmdb.commands.push(words[2..].join(" "));
    let kv = |k: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .map(String::from)
    };
    let db = &mut s.slurmdb;
    let has = |db: &FakeSlurmdb, key: &(String, String, String)| {
        db.associations.iter().any(|(k, _)| k == key)
    };
    match (words[2].as_str(), words[3].as_str()) {
        ("add", "cluster") => {
            let c = words[4].clone();
            if !db.clusters.contains(&c) {
                db.clusters.push(c.clone());
                db.associations
                    .push(((c.clone(), "root".into(), String::new()), "1".into()));
                db.associations
                    .push(((c, "root".into(), "root".into()), "1".into()));
                db.defaults
                    .entry("root".into())
                    .or_insert_with(|| "root".into());
            }
        }
        ("add", "account") => {
            let key = (
                kv("cluster").ok_or("no cluster")?,
                words[4].clone(),
                String::new(),
            );
            if !has(db, &key) {
                db.associations
                    .push((key, kv("fairshare").unwrap_or_else(|| "1".into())));
            }
        }
        ("add", "user") => {
            let (user, account, cluster) = (
                words[4].clone(),
                kv("account").ok_or("no account")?,
                kv("cluster").ok_or("no cluster")?,
            );
            if !has(db, &(cluster.clone(), account.clone(), String::new())) {
                return Err(format!(
                    " The account '{account}' doesn't exist on cluster {cluster}"
                ));
            }
            let key = (cluster, account.clone(), user.clone());
            if !has(db, &key) {
                if !db.defaults.contains_key(&user) {
                    db.defaults
                        .insert(user.clone(), kv("defaultaccount").unwrap_or(account));
                }
                db.associations
                    .push((key, kv("fairshare").unwrap_or_else(|| "1".into())));
            }
        }
        ("modify", what) => {
            let name = kv("name").ok_or("no name")?;
            if let Some(d) = kv("defaultaccount") {
                db.defaults.insert(name.clone(), d);
            }
            if let Some(share) = kv("fairshare") {
                let (account, user) = if what == "account" {
                    (name, String::new())
                } else {
                    (kv("account").ok_or("no account")?, name)
                };
                for ((c, a, u), sh) in db.associations.iter_mut() {
                    if Some(c.clone()) == kv("cluster") && *a == account && *u == user {
                        *sh = share.clone();
                    }
                }
            }
        }
        ("remove", "user") => {
            let (name, account, cluster) =
                (kv("name").ok_or("no name")?, kv("account"), kv("cluster"));
            if let Some((_, jobs)) = db
                .jobs
                .iter()
                .find(|(_, u, a)| *u == name && account.as_ref().is_none_or(|x| x == a))
                .map(|j| ((), j.0))
            {
                return Err(format!(" Error with request: Job(s) active, cancel job(s) before remove\n  JobID = {jobs}"));
            }
            db.associations.retain(|((c, a, u), _)| {
                !(*u == name
                    && cluster.as_ref().is_none_or(|x| x == c)
                    && account.as_ref().is_none_or(|x| x == a))
            });
            if !db.associations.iter().any(|((_, _, u), _)| *u == name) {
                db.defaults.remove(&name);
            }
        }
        _ => return Err(format!("fake sacctmgr: unsupported {action}")),
    }
    Ok(())
}

/// Mark a package as installed up front (for a "converged" or "drifted" fixture).
pub fn preinstall(s: &mut FakeState, packages: &[&str]) {
    for p in packages {
        s.installed.insert(p.to_string(), "1.0".into());
    }
}
