//! The shared test kit: the example inventory and its fixture facts, temp inventories
//! ([`Closet`]), fake closets ([`cluster`], [`converged`]), plan and apply on them, the
//! binary ([`closetctl`]), and small readers of a fake host's state.

use assert_cmd::Command;
use closetctl::report::Reporter;
// Loading and orchestration, as the commands use them: the modules take them from here.
use closetctl_core::facts::{ClusterFacts, CpuTopology, FileKind, Gpu, HostFacts};
use closetctl_core::inventory::Inventory;
pub use closetctl_core::loaded::Loaded;
use closetctl_core::lock::{Owner, LOCK_DIR};
use closetctl_core::plan::render::{self, Style};
use closetctl_core::plan::{HostPlan, HostStatus, Plan};
pub use closetctl_exec::orchestrate::{apply_with, plan_with, ApplyOptions, ApplyOutcome};
use closetctl_testkit::fake::{FakeCluster, FakeFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `inventory.example.toml` at the top of the repository.
pub fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.example.toml")
}

/// The example inventory, parsed and validated.
pub fn example() -> Inventory {
    Inventory::load(&example_path()).unwrap_or_else(|e| panic!("{e}"))
}

/// `n` GPUs as nvidia-smi reports them.
pub fn gpus(name: &str, n: u32, mem: u64, watts: f64) -> Vec<Gpu> {
    (0..n)
        .map(|index| Gpu {
            index,
            name: name.into(),
            memory_mib: Some(mem),
            power_limit_watts: Some(watts),
            power_draw_watts: Some(60.0),
        })
        .collect()
}

/// A host's hardware facts.
pub fn hardware(
    cpus: u32,
    sockets: u32,
    cores: u32,
    threads: u32,
    mem: u64,
    gpus: Vec<Gpu>,
) -> HostFacts {
    HostFacts {
        cpu: CpuTopology {
            cpus,
            sockets,
            cores_per_socket: cores,
            threads_per_core: threads,
        },
        memory_mib: mem,
        gpus,
        ..HostFacts::default()
    }
}

/// The example inventory with the facts its hosts would report: `head` (no GPU),
/// `gpu1` (4 × A100) and `gpu2` (2 × RTX 4090).
pub fn example_with_facts() -> (Inventory, ClusterFacts) {
    let mut facts = ClusterFacts::default();
    facts
        .hosts
        .insert("head".into(), hardware(8, 1, 4, 2, 31_848, vec![]));
    facts.hosts.insert(
        "gpu1".into(),
        hardware(
            128,
            2,
            32,
            2,
            1_031_820,
            gpus("NVIDIA A100-SXM4-80GB", 4, 81920, 400.0),
        ),
    );
    facts.hosts.insert(
        "gpu2".into(),
        hardware(
            32,
            1,
            16,
            2,
            128_610,
            gpus("NVIDIA GeForce RTX 4090", 2, 24564, 450.0),
        ),
    );
    (example(), facts)
}

/// An inventory (and any lab playbooks, templates or secrets) in a fresh temp dir.
pub struct Closet {
    pub dir: tempfile::TempDir,
}

impl Closet {
    /// `inventory.toml` with `text`.
    pub fn new(text: &str) -> Closet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inventory.toml"), text).unwrap();
        Closet { dir }
    }

    /// `inventory.toml` with `text`, and `files` by path below the dir.
    pub fn with_files(text: &str, files: &[(&str, &str)]) -> Closet {
        let closet = Closet::new(text);
        for (name, content) in files {
            closet.write(name, content);
        }
        closet
    }

    /// Write a file below the dir (its directories made as needed).
    pub fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Replace the inventory's text.
    pub fn set(&self, text: &str) {
        self.write("inventory.toml", text);
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("inventory.toml")
    }

    /// The inventory, playbooks and secrets loaded as `closetctl` loads them.
    pub fn load(&self) -> Loaded {
        Loaded::load(&self.path()).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Fresh Debian hosts by name.
pub fn cluster(hosts: &[&str]) -> Arc<FakeCluster> {
    Arc::new(FakeCluster::debian(hosts))
}

/// The plan for every host.
pub async fn plan(fake: &Arc<FakeCluster>, loaded: &Loaded) -> Plan {
    plan_hosts(fake, loaded, &[]).await
}

/// The plan for the named hosts (every host when none).
pub async fn plan_hosts(fake: &Arc<FakeCluster>, loaded: &Loaded, hosts: &[&str]) -> Plan {
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    plan_with(fake.clone(), loaded, &hosts, None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// Apply without asking, with default options (no verification).
pub async fn apply(fake: &Arc<FakeCluster>, loaded: &Loaded) -> ApplyOutcome {
    apply_opts(fake, loaded, &ApplyOptions::default()).await
}

/// Apply without asking.
pub async fn apply_opts(
    fake: &Arc<FakeCluster>,
    loaded: &Loaded,
    options: &ApplyOptions,
) -> ApplyOutcome {
    let reporter = Reporter::start();
    let outcome = apply_with(
        fake.clone(),
        loaded,
        options,
        Some(reporter.sender()),
        |_| true,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    reporter.finish().await;
    outcome
}

/// Fresh hosts that one apply of `loaded` converged (checked: the plan after is empty).
pub async fn converged(loaded: &Loaded, hosts: &[&str]) -> Arc<FakeCluster> {
    let fake = cluster(hosts);
    let outcome = apply(&fake, loaded).await;
    assert!(outcome.success(), "{:?}", outcome.report);
    assert!(!plan(&fake, loaded).await.has_changes());
    fake
}

/// The plan as `closetctl plan` prints it, without colour.
pub fn text(plan: &Plan) -> String {
    render::text(plan, Style::plain())
}

pub fn host_plan<'p>(plan: &'p Plan, host: &str) -> &'p HostPlan {
    plan.hosts
        .iter()
        .find(|h| h.host == host)
        .unwrap_or_else(|| panic!("no host {host} in the plan"))
}

pub fn status(plan: &Plan, host: &str) -> HostStatus {
    host_plan(plan, host).status
}

/// The names of a host's planned steps, in order.
pub fn step_names(plan: &Plan, host: &str) -> Vec<String> {
    host_plan(plan, host)
        .steps
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

/// A fake host's file as text.
pub fn file_text(fake: &FakeCluster, host: &str, path: &str) -> Option<String> {
    fake.host(host).with(|s| {
        s.files
            .get(path)
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
    })
}

pub fn uid_of(fake: &FakeCluster, host: &str, user: &str) -> Option<u32> {
    fake.host(host).with(|s| s.users.get(user).map(|u| u.uid))
}

/// Every op a fake host carried out, in order.
pub fn journal(fake: &FakeCluster, host: &str) -> Vec<String> {
    fake.host(host).with(|s| s.journal.clone())
}

/// Whether a fake host's apply lock is held.
pub fn locked(fake: &FakeCluster, host: &str) -> bool {
    fake.host(host).with(|s| s.files.contains_key(LOCK_DIR))
}

/// Another apply's lock on a fake host, as an older closetctl left it: only its
/// `holder` file, naming `holder`.
pub fn hold_lock(fake: &FakeCluster, host: &str, holder: &str) {
    fake.host(host).with(|s| {
        s.files.insert(
            format!("{LOCK_DIR}/holder"),
            FakeFile::root(FileKind::File, 0o644, format!("{holder}\n").into_bytes()),
        );
    });
}

/// This machine's closetctl, but with a pid that is gone: a killed apply.
pub fn killed_owner() -> Owner {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let mut o = closetctl_exec::local::current_owner();
    o.pid = pid;
    o
}

/// The `closetctl` binary, with no inventory or log level from the environment and no
/// colour.
pub fn closetctl() -> Command {
    let mut cmd = Command::cargo_bin("closetctl").unwrap();
    cmd.env_remove("CLOSETCTL_INVENTORY")
        .env_remove("CLOSETCTL_LOG")
        .env("NO_COLOR", "1");
    cmd
}
