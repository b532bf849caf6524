//! A fake closet in memory: hosts that answer the real probe script and carry out the
//! real apply scripts by interpreting their `cc_op` lines, so the engine, the plan and
//! idempotence are tested without a network. It counts every remote execution.
//!
//! It models what matters to closetctl: accounts, packages (with the units, system
//! users and files a package brings, as Debian's would), files, directories, units, the
//! apply lock, MUNGE and slurmctld as verification asks them, accounting, and failures
//! on demand (an unreachable host, a unit that will not start with a given file content).
//!
//! - [`state`]: a host's state and what a test may inject;
//! - [`probe`]: the fact probe's answer; [`lock`]: the apply lock's scripts;
//! - [`script`]: the step scripts' interpreter;
//! - [`accounts`]: `/etc/shadow`, `usermod -L -e`/`-U`, `chage -E`, processes
//!   (`ps`, `pkill`, `loginctl`) and `scancel`;
//! - [`slurmdb`]: MariaDB, slurmdbd and `sacctmgr`; [`munge`]: `munge -n` and
//!   `unmunge`; [`slurm`]: slurmctld's node states and `sinfo`; [`status`]: the
//!   status script's `scontrol -d -o show node|job` and `nvidia-smi`; [`resolver`]:
//!   `getent ahostsv4` for `check network`'s node names.

mod accounts;
mod lock;
mod munge;
mod probe;
mod resolver;
mod script;
mod slurm;
mod slurmdb;
mod state;
mod status;

pub use accounts::Shadow;
pub use slurmdb::FakeSlurmdb;
pub use state::{
    preinstall, FakeFile, FakeHook, FakeJob, FakeState, PackageEffect, MUNGE_KEY, MUNGE_UNIT,
};

use crate::facts::probe::HEADER as PROBE_HEADER;
use crate::inventory::Host;
use closetctl_core::lock::SCRIPT_HEADER as LOCK_HEADER;
use closetctl_exec::transport::{Cause, Connector, RemoteOutput, Transport, TransportError};
use lock::lock_script;
use probe::probe;
use script::{apply, Stopped};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// A connection to one fake host; it sees the others as slurmctld would (for `sinfo`).
#[derive(Debug, Clone)]
pub struct FakeConn {
    pub host: Arc<FakeHost>,
    name: String,
    killed: Arc<AtomicBool>,
    cluster: BTreeMap<String, Arc<FakeHost>>,
}

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
            Some(h) if h.with(|s| s.reachable) => Ok(FakeConn {
                host: h.clone(),
                name: host.name.clone(),
                killed: self.killed.clone(),
                cluster: self.hosts.clone(),
            }),
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
        &self.name
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
                host: self.name.clone(),
                after: limit,
                partial: self.hung_partial(),
            }),
        }
    }

    async fn run(&self, script: String) -> Result<RemoteOutput, TransportError> {
        let host = &self.host;
        let gone = || TransportError::Run {
            host: self.name.clone(),
            source: io_error(ErrorKind::Other, "closetctl is gone (killed)"),
        };
        if self.killed.load(Ordering::SeqCst) {
            return Err(gone());
        }
        host.runs.fetch_add(1, Ordering::SeqCst);
        host.scripts.lock().unwrap().push(script.clone());
        if script.contains(closetctl_core::concerns::slurm::verify::NODE_STATES) {
            return self.wait_for_nodes(&script);
        }
        if script.starts_with(closetctl_core::status::HEADER) {
            let views = self.views();
            let state = host.state.lock().unwrap();
            return Ok(status::answer(&state, &views, &script));
        }
        let (mut out, stopped) = {
            let mut state = host.state.lock().unwrap();
            if !state.reachable {
                return Err(TransportError::Run {
                    host: self.name.clone(),
                    source: io_error(ErrorKind::BrokenPipe, "Broken pipe"),
                });
            }
            if script.starts_with(PROBE_HEADER) {
                let mut out = probe(&mut state, &script);
                let locking = !script.contains("\nLOCK_RUN=''\n");
                if locking && state.lose_locking_probe_answers > 0 {
                    state.lose_locking_probe_answers -= 1;
                    return Err(TransportError::Run {
                        host: self.name.clone(),
                        source: io_error(ErrorKind::ConnectionReset, "Connection reset by peer"),
                    });
                }
                if locking && state.garble_locking_probe_answers > 0 {
                    state.garble_locking_probe_answers -= 1;
                    out.stdout.truncate(out.stdout.len() / 3);
                }
                return Ok(out);
            }
            if script == closetctl_core::concerns::munge::verify::MAKE {
                return Ok(munge::munge_n(&mut state));
            }
            if script.starts_with(closetctl_core::concerns::munge::verify::DECODE) {
                return Ok(munge::decode_script(&mut state, &script));
            }
            if let Some(rest) = script.strip_prefix(LOCK_HEADER) {
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
                host: self.name.clone(),
                source: io_error(ErrorKind::ConnectionReset, "Connection reset by peer"),
                partial: out,
            }),
            Stopped::Killed => {
                self.killed.store(true, Ordering::SeqCst);
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

impl FakeConn {
    /// Verification's `sinfo` wait loop: slurmctld's view of every host, each host's
    /// state read on its own (this one's too), never two locks at once.
    fn wait_for_nodes(&self, script: &str) -> Result<RemoteOutput, TransportError> {
        let views = self.views();
        let state = self.host.state.lock().unwrap();
        if !state.reachable {
            return Err(TransportError::Run {
                host: self.name.clone(),
                source: io_error(ErrorKind::BrokenPipe, "Broken pipe"),
            });
        }
        Ok(slurm::wait_script(&state, &views, script))
    }

    /// slurmctld's view of every host, each host's state read on its own.
    fn views(&self) -> BTreeMap<String, slurm::NodeView> {
        self.cluster
            .iter()
            .map(|(n, h)| (n.clone(), h.with(|s| slurm::NodeView::of(s))))
            .collect()
    }

    /// What the step script that hangs here printed so far.
    fn hung_partial(&self) -> RemoteOutput {
        self.host.hung_output.lock().unwrap().clone()
    }
}

/// An I/O error as the SSH transport would report it underneath.
fn io_error(kind: ErrorKind, message: &str) -> Cause {
    Cause::Io(std::io::Error::new(kind, message))
}
