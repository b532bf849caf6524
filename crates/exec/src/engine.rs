//! The engine: gathers facts from every host at once and carries out a plan, step by
//! step, all hosts of a step in parallel. It never prints; it sends [`Event`]s that a
//! reporter turns into lines, progress bars or JSON.
//!
//! Gathering is one connection and one probe per host, within a time limit. Apply runs
//! one batched script per host per step (packages in one `apt-get install`, handlers at
//! the end of the step), each within its time limit; a host that fails or times out
//! stops there while the others go on. A stop (Ctrl-C) lets no new step start and ends
//! running ones on their hosts after a grace period. The apply lock the probe took is
//! released on every host that took it, and kept fresh while the apply runs.
//!
//! It logs through `tracing` (to stderr, never into a plan or report): at `info`, each
//! host's connect and probe times and the probe's output size, each step's script, size
//! and time, the handlers that ran, and the lock taken, refreshed and released; at
//! `debug`, every script as sent and the tails of its output. Scripts are logged in
//! their loggable form ([`ops::loggable_framed_script`]): file content, the only way a
//! secret travels, appears as its size and fingerprint. Formatting happens only when
//! the level is enabled; logging adds no round trip.
//!
//! Errors are typed per concern ([`GatherError`], [`StepError`], [`RemoteError`]), name
//! their host and keep their source; reports carry their rendered text.

use crate::facts::probe::{self, ProbeError, ProbeRequest};
use crate::facts::{ClusterFacts, HostFacts};
use crate::interrupt::Stop;
use crate::inventory::{Host, Timeouts};
use crate::journal;
use crate::lock;
use crate::ops;
use crate::plan::{HostPlan, HostStatus, Plan, StepPlan};
use crate::resource::ResourceKind;
use crate::shell::quote;
use crate::transport::{chain, Connector, RemoteOutput, Transport, TransportError};
use serde::Serialize;
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tracing::{debug, info, Level};

/// Why a host gave no facts (it is unreachable for this run). The text is what plans
/// and reports show.
#[derive(Debug, Error)]
pub enum GatherError {
    #[error("no answer within {} s (connect and probe)", limit.as_secs())]
    Late { host: String, limit: Duration },
    #[error("{source}")]
    Transport {
        host: String,
        #[source]
        source: TransportError,
    },
    #[error("the probe failed (exit {status}): {stderr_tail}")]
    ProbeFailed {
        host: String,
        status: i32,
        stderr_tail: String,
    },
    #[error("{source}")]
    Unreadable {
        host: String,
        #[source]
        source: ProbeError,
    },
    /// The probe was to take the lock and failed as `failure` says; `released` tells
    /// what became of the lock it may have taken.
    #[error("{}", after_lock(failure, released))]
    AfterLock {
        #[source]
        failure: Box<GatherError>,
        released: Result<bool, RemoteError>,
    },
}

impl GatherError {
    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            GatherError::Late { host, .. }
            | GatherError::Transport { host, .. }
            | GatherError::ProbeFailed { host, .. }
            | GatherError::Unreadable { host, .. } => host,
            GatherError::AfterLock { failure, .. } => failure.host(),
        }
    }
}

fn after_lock(failure: &GatherError, released: &Result<bool, RemoteError>) -> String {
    match released {
        Ok(true) => format!("{failure} (the lock its probe had taken is released)"),
        Ok(false) => format!("{failure} (its probe had not taken the lock)"),
        Err(why) => format!(
            "{failure}; the lock its probe may have taken could not be released ({why}): it will show as stale"
        ),
    }
}

/// A short script of closetctl's own (a lock release, an end, a rollback) that did not
/// do its job on a host.
#[derive(Debug, Error)]
pub enum RemoteError {
    #[error("no answer within {} s", limit.as_secs())]
    Late { host: String, limit: Duration },
    #[error("{source}")]
    Transport {
        host: String,
        #[source]
        source: Box<TransportError>,
    },
    /// The script ran and failed; the last lines of its stderr.
    #[error("{stderr_tail}")]
    Failed {
        host: String,
        status: i32,
        stderr_tail: String,
    },
}

impl RemoteError {
    fn transport(source: TransportError) -> RemoteError {
        RemoteError::Transport {
            host: source.host().to_string(),
            source: Box::new(source),
        }
    }

    fn failed(host: &str, out: &RemoteOutput) -> RemoteError {
        RemoteError::Failed {
            host: host.to_string(),
            status: out.status,
            stderr_tail: last_lines(&out.stderr, 3),
        }
    }
}

/// Why a step failed on a host (later steps do not run there). The text is what the
/// apply report shows.
#[derive(Debug, Error)]
pub enum StepError {
    #[error("this apply no longer holds the host's lock (it was broken or taken over); the step changed nothing")]
    LostLock { host: String },
    /// An operation (or the step's frame) failed; `op` describes it.
    #[error("{op} failed: {stderr_tail}")]
    OpFailed {
        host: String,
        op: String,
        stderr_tail: String,
    },
    #[error("timed out after {} s while running {running}; {ended}", after.as_secs())]
    Timeout {
        host: String,
        after: Duration,
        running: String,
        /// What ending the script on the host did.
        ended: String,
        #[source]
        source: TransportError,
    },
    #[error("the connection broke while running {running}: {}", lost_cause(source))]
    Lost {
        host: String,
        running: String,
        #[source]
        source: TransportError,
    },
    #[error("interrupted: {running} had not finished after the {} s grace period; {ended}", grace.as_secs())]
    Interrupted {
        host: String,
        running: String,
        grace: Duration,
        ended: String,
    },
    #[error("{source}")]
    Transport {
        host: String,
        #[source]
        source: TransportError,
    },
    /// Another host rejected the same file in this run.
    #[error("not run: {by} did not accept the same {path} (its step {in_step} failed), so this host keeps the previous one")]
    NotRun {
        host: String,
        by: String,
        path: String,
        in_step: String,
    },
}

impl StepError {
    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            StepError::LostLock { host }
            | StepError::OpFailed { host, .. }
            | StepError::Timeout { host, .. }
            | StepError::Lost { host, .. }
            | StepError::Interrupted { host, .. }
            | StepError::Transport { host, .. }
            | StepError::NotRun { host, .. } => host,
        }
    }
}

/// What broke a connection, as the report says it.
fn lost_cause(e: &TransportError) -> String {
    match e {
        TransportError::Lost { source, .. } => chain(source),
        other => other.to_string(),
    }
}

/// What the engine reports while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    FactsGathered {
        host: String,
        millis: u128,
    },
    HostUnreachable {
        host: String,
        error: String,
    },
    StepStarted {
        host: String,
        step: String,
        operations: usize,
    },
    StepFinished {
        host: String,
        step: String,
    },
    /// The install phase ([`INSTALL_FIRST`]) failed in apt itself (a package it cannot
    /// find, a broken dependency): each step installs its own packages instead.
    InstallDeferred {
        host: String,
        error: String,
    },
    /// Operations done as a home's owner that failed and were passed over.
    PassedOver {
        host: String,
        step: String,
        operations: Vec<String>,
    },
    HostFailed {
        host: String,
        step: String,
        error: String,
    },
}

pub type Events = UnboundedSender<Event>;

/// Send an event; a reporter that went away is not an error.
fn emit(events: &Option<Events>, e: Event) {
    if let Some(tx) = events {
        let _ = tx.send(e);
    }
}

/// Connections to the hosts that answered.
pub struct Connections<T> {
    pub hosts: BTreeMap<String, Arc<T>>,
}

/// Connect to every host and run its probe, all hosts at once, with the default limit
/// for connect + probe.
pub async fn gather<C>(
    connector: Arc<C>,
    hosts: &[Host],
    requests: BTreeMap<String, ProbeRequest>,
    events: Option<Events>,
) -> (Connections<C::Conn>, ClusterFacts)
where
    C: Connector + 'static,
{
    let limit = Duration::from_secs(crate::inventory::Timeouts::default().probe_secs.into());
    gather_with(connector, hosts, requests, events, limit).await
}

/// How long releasing a lock may take before closetctl gives up on it.
pub const RELEASE_LIMIT: Duration = Duration::from_secs(15);

/// [`gather`] with `limit` for connect + probe on each host. A host that takes longer
/// is unreachable. When the probe was to take the lock and its answer is lost, late or
/// unreadable, the lock is released again (only if it is this run's), over a new
/// connection if need be. A lock someone else holds is judged live or stale here.
pub async fn gather_with<C>(
    connector: Arc<C>,
    hosts: &[Host],
    requests: BTreeMap<String, ProbeRequest>,
    events: Option<Events>,
    limit: Duration,
) -> (Connections<C::Conn>, ClusterFacts)
where
    C: Connector + 'static,
{
    let mut set = JoinSet::new();
    for host in hosts {
        let connector = connector.clone();
        let host = host.clone();
        let request = requests.get(&host.name).cloned().unwrap_or_default();
        set.spawn(async move {
            let started = Instant::now();
            let result = probe_host(&*connector, &host, &request, limit).await;
            (host.name, result, started.elapsed().as_millis())
        });
    }
    let mut connections = Connections {
        hosts: BTreeMap::new(),
    };
    let mut facts = ClusterFacts::default();
    while let Some(joined) = set.join_next().await {
        let (name, result, millis) = joined.expect("probe task panicked");
        match result {
            Ok((conn, mut host_facts)) => {
                if let Some(held) = &mut host_facts.lock_held {
                    held.verdict = Some(lock::verdict(
                        held,
                        host_facts.time.epoch,
                        &crate::local::LocalMachine,
                    ));
                }
                emit(
                    &events,
                    Event::FactsGathered {
                        host: name.clone(),
                        millis,
                    },
                );
                connections.hosts.insert(name.clone(), Arc::new(conn));
                facts.hosts.insert(name, host_facts);
            }
            Err(error) => {
                info!(host = %name, millis, "unreachable: {error}");
                let error = error.to_string();
                emit(
                    &events,
                    Event::HostUnreachable {
                        host: name.clone(),
                        error: error.clone(),
                    },
                );
                facts.unreachable.insert(name, error);
            }
        }
    }
    (connections, facts)
}

/// A second, small round trip to the hosts whose first answer showed that the plan
/// needs more ([`closetctl_core::desired::followup_commands`]): their commands alone,
/// over the probe's connections, all hosts at once, within `limit`. The outputs join
/// the host's facts; a command whose host did not answer reads as failed (exit -1),
/// as a command that failed in the probe does.
pub async fn ask_more<T: Transport>(
    connections: &Connections<T>,
    commands: BTreeMap<String, BTreeMap<String, String>>,
    facts: &mut ClusterFacts,
    limit: Duration,
) {
    let mut set = JoinSet::new();
    for (host, commands) in commands {
        let Some(conn) = connections.hosts.get(&host).cloned() else {
            continue;
        };
        set.spawn(async move {
            let script = probe::commands_script(&commands);
            log_script(&host, "the follow-up probe", &script);
            let started = Instant::now();
            let answer = tokio::time::timeout(limit, conn.run(script)).await;
            let millis = started.elapsed().as_millis();
            let mut outputs = match answer {
                Ok(Ok(out)) => {
                    log_output(&host, "the follow-up probe", &out);
                    probe::parse_commands(&out.stdout)
                }
                Ok(Err(e)) => {
                    info!(host = %host, millis, "the follow-up probe failed: {e}");
                    BTreeMap::new()
                }
                Err(_) => {
                    info!(host = %host, millis, "the follow-up probe did not answer in time");
                    BTreeMap::new()
                }
            };
            info!(host = %host, millis, commands = commands.len(), "follow-up probe");
            for name in commands.into_keys() {
                outputs.entry(name).or_insert(crate::facts::CommandOutput {
                    exit_code: -1,
                    stdout: String::new(),
                });
            }
            (host, outputs)
        });
    }
    while let Some(joined) = set.join_next().await {
        let (host, outputs) = joined.expect("follow-up probe task panicked");
        if let Some(f) = facts.hosts.get_mut(&host) {
            f.commands.extend(outputs);
        }
    }
}

/// Connect and probe one host within `limit`.
async fn probe_host<C: Connector>(
    connector: &C,
    host: &Host,
    request: &ProbeRequest,
    limit: Duration,
) -> Result<(C::Conn, HostFacts), GatherError> {
    let name = host.name.as_str();
    let deadline = tokio::time::Instant::now() + limit;
    let late = || GatherError::Late {
        host: name.to_string(),
        limit,
    };
    let transport = |source| GatherError::Transport {
        host: name.to_string(),
        source,
    };
    let started = Instant::now();
    let conn = match tokio::time::timeout_at(deadline, connector.connect(host)).await {
        Err(_) => return Err(late()),
        Ok(Err(e)) => return Err(transport(e)),
        Ok(Ok(conn)) => conn,
    };
    let connect_millis = started.elapsed().as_millis() as u64;
    info!(host = %name, millis = connect_millis, "connected");
    let script = probe::script(request);
    log_script(name, "the fact probe", &script);
    let script_bytes = script.len();
    let sent = now();
    let probing = Instant::now();
    let answer = tokio::time::timeout_at(deadline, conn.run(script)).await;
    let received = now();
    let probe_millis = probing.elapsed().as_millis() as u64;
    if let Ok(Ok(out)) = &answer {
        info!(
            host = %name,
            millis = probe_millis,
            script_bytes,
            stdout_bytes = out.stdout.len(),
            stderr_bytes = out.stderr.len(),
            status = out.status,
            "probe answered"
        );
        log_output(name, "the fact probe", out);
    }
    let parsed = match answer {
        Err(_) => Err(late()),
        Ok(Err(e)) => Err(transport(e)),
        Ok(Ok(out)) if !out.success() && !out.stdout.contains(probe::MARKER) => {
            Err(GatherError::ProbeFailed {
                host: name.to_string(),
                status: out.status,
                stderr_tail: last_lines(&out.stderr, 5),
            })
        }
        Ok(Ok(out)) => {
            probe::parse(&out.stdout, request).map_err(|source| GatherError::Unreadable {
                host: name.to_string(),
                source,
            })
        }
    };
    match parsed {
        Ok(mut facts) => {
            facts.time.local_epoch = (sent + received) / 2.0;
            facts.probe.connect_millis = connect_millis;
            facts.probe.probe_millis = probe_millis;
            info!(host = %name, "probe timings: {}", probe::timings_line(&facts.probe));
            if let Some(owner) = &request.lock {
                if facts.lock_acquired {
                    info!(host = %name, run = %owner.run, "took the apply lock");
                } else {
                    info!(host = %name, run = %owner.run, "did not take the apply lock (it is held)");
                }
            }
            Ok((conn, facts))
        }
        Err(error) => match &request.lock {
            // The probe may have taken the lock before its answer went missing.
            Some(owner) => {
                let released = release_after_failure(connector, host, &conn, &owner.run).await;
                Err(GatherError::AfterLock {
                    failure: Box::new(error),
                    released,
                })
            }
            None => Err(error),
        },
    }
}

/// Release `run`'s lock over `conn`, or over a new connection when that one is gone;
/// whether there was one to release.
async fn release_after_failure<C: Connector>(
    connector: &C,
    host: &Host,
    conn: &C::Conn,
    run: &str,
) -> Result<bool, RemoteError> {
    let name = host.name.as_str();
    let script = lock::release_script(run);
    log_script(name, "the lock release", &script);
    let released = |out: &RemoteOutput| lock::answer(&out.stdout) == Some("released");
    match tokio::time::timeout(RELEASE_LIMIT, conn.run(script.clone())).await {
        Ok(Ok(out)) if out.success() => {
            log_output(name, "the lock release", &out);
            info!(
                host = %name,
                released = released(&out),
                "lock release after a failed probe"
            );
            return Ok(released(&out));
        }
        _ => {}
    }
    let again = async {
        let fresh = connector
            .connect(host)
            .await
            .map_err(RemoteError::transport)?;
        let out = fresh.run(script).await.map_err(RemoteError::transport)?;
        log_output(name, "the lock release", &out);
        if out.success() {
            Ok(released(&out))
        } else {
            Err(RemoteError::failed(name, &out))
        }
    };
    let result = tokio::time::timeout(RELEASE_LIMIT, again)
        .await
        .unwrap_or_else(|_| {
            Err(RemoteError::Late {
                host: name.to_string(),
                limit: RELEASE_LIMIT,
            })
        });
    match &result {
        Ok(released) => info!(
            host = %name,
            released, "lock release after a failed probe, over a new connection"
        ),
        Err(e) => info!(host = %name, "lock release after a failed probe failed: {e}"),
    }
    result
}

/// How many lines of a script's stdout and stderr the debug log shows.
const LOG_TAIL: usize = 20;

/// At debug level: a script as sent (callers pass its loggable form when it carries
/// operations, see [`ops::loggable_framed_script`]).
fn log_script(host: &str, what: &str, script: &str) {
    debug!(host = %host, bytes = script.len(), "{what}, as sent:\n{script}");
}

/// At debug level: the tails of what a script printed.
fn log_output(host: &str, what: &str, out: &RemoteOutput) {
    if tracing::enabled!(Level::DEBUG) {
        debug!(
            host = %host,
            status = out.status,
            "{what}: stdout ({} bytes) ends:\n{}\nstderr ({} bytes) ends:\n{}",
            out.stdout.len(),
            last_lines(&out.stdout, LOG_TAIL),
            out.stderr.len(),
            last_lines(&out.stderr, LOG_TAIL)
        );
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The last `n` non-empty lines of some output.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How apply left one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum HostOutcome {
    /// Every step ran; `changes` resources changed.
    Converged { changes: usize },
    /// Nothing needed changing.
    Unchanged,
    /// A step failed; later steps did not run on this host.
    Failed { step: String, error: String },
    /// Apply did not touch the host.
    Skipped { reason: String },
    /// A stop (Ctrl-C) came before this host's step `before_step`; earlier steps ran.
    Interrupted { before_step: String },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub hosts: BTreeMap<String, HostOutcome>,
    /// Operations done as a home's owner that failed and were passed over (her
    /// `~/.ssh` was not usable): the host went on without them, but is not converged.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub passed_over: BTreeMap<String, Vec<String>>,
}

impl ApplyReport {
    /// What apply will report for each host before any step runs: the hosts it will
    /// change, leave alone, or skip (and why).
    pub fn before(plan: &Plan) -> ApplyReport {
        let mut report = ApplyReport::default();
        for hp in &plan.hosts {
            let outcome = match hp.status {
                HostStatus::Ready if !hp.has_work() => HostOutcome::Unchanged,
                HostStatus::Ready => HostOutcome::Converged {
                    changes: hp.change_count(),
                },
                HostStatus::Unreachable => HostOutcome::Skipped {
                    reason: format!("unreachable: {}", hp.error.clone().unwrap_or_default()),
                },
                HostStatus::Conflict => HostOutcome::Skipped {
                    reason: format!(
                        "conflicts: {}",
                        hp.conflicts
                            .iter()
                            .map(|c| c.text())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                },
                HostStatus::Locked | HostStatus::Error => HostOutcome::Skipped {
                    reason: hp.error.clone().unwrap_or_default(),
                },
            };
            report.hosts.insert(hp.host.clone(), outcome);
        }
        report
    }

    pub fn all_ok(&self) -> bool {
        self.passed_over.is_empty()
            && self
                .hosts
                .values()
                .all(|o| matches!(o, HostOutcome::Converged { .. } | HostOutcome::Unchanged))
    }
}

/// The script of one step on one host: the lock check, the journal records of the
/// handlers it owes, its ops, each handler's record cleared right after the handler.
pub fn step_script(host: &str, sp: &StepPlan, run: &str) -> (String, Vec<ops::Op>) {
    let ops = sp.ops();
    let script = step_script_as(host, sp, run, &ops, false);
    (script, ops)
}

/// [`step_script`] as logs show it (file content as its size and fingerprint).
pub fn loggable_step_script(host: &str, sp: &StepPlan, run: &str) -> String {
    step_script_as(host, sp, run, &sp.ops(), true)
}

fn step_script_as(host: &str, sp: &StepPlan, run: &str, ops: &[ops::Op], loggable: bool) -> String {
    let first_handler = ops.len() - sp.handlers.len();
    let paid: Vec<String> = sp
        .handlers
        .iter()
        .map(|h| journal::id(&sp.name, &h.name))
        .collect();
    let owes: Vec<journal::Owed> = sp
        .owes
        .iter()
        .map(|o| journal::Owed {
            run: run.to_string(),
            ..o.clone()
        })
        .collect();
    // An install that an interrupted apply left half-done is finished first (dpkg
    // refuses any other install until then); a failure there is the install's.
    let heal = if matches!(ops.first(), Some(ops::Op::InstallPackages(_))) {
        "cc_dpkg_heal || { printf '@@closetctl failed 0\\n'; exit 1; }\n"
    } else {
        ""
    };
    let before = format!(
        "cc_begin {} {}\n{}{heal}",
        quote(run),
        quote(&sp.name),
        journal::owe_lines(&owes)
    );
    let functions = format!("{}{}", lock::STEP_PRELUDE, journal::PRELUDE);
    let title = format!("step {} on {host}", sp.name);
    let after = |n: usize| {
        n.checked_sub(first_handler)
            .map_or(String::new(), |i| journal::paid_line(&paid[i]))
    };
    if loggable {
        ops::loggable_framed_script(&title, &functions, &before, ops, after, "cc_end\n")
    } else {
        ops::framed_script(&title, &functions, &before, ops, after, "cc_end\n")
    }
}

/// How an apply runs: under which lock, with which limits, and how it is stopped.
#[derive(Debug, Clone, Default)]
pub struct ApplyControl {
    /// The run id of the locks the probe took.
    pub run: String,
    pub timeouts: Timeouts,
    /// Pulled by Ctrl-C: no new step starts; running ones get `timeouts.grace_secs`.
    pub stop: Stop,
}

/// Refreshes this run's locks while it lives (see [`keep_fresh`]); dropping it stops.
pub struct Refresher(tokio::task::JoinHandle<()>);

impl Drop for Refresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Refresh `run`'s lock on `hosts` every [`lock::REFRESH_EVERY`], all hosts at once,
/// so that another closetctl never judges a running apply's lock stale.
pub fn keep_fresh<T: Transport>(
    connections: &Connections<T>,
    hosts: &[String],
    run: &str,
) -> Refresher {
    let conns: Vec<Arc<T>> = hosts
        .iter()
        .filter_map(|h| connections.hosts.get(h).cloned())
        .collect();
    let script = lock::refresh_script(run);
    Refresher(tokio::spawn(async move {
        let mut tick = tokio::time::interval(lock::REFRESH_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let mut set = JoinSet::new();
            for conn in &conns {
                let (conn, script) = (conn.clone(), script.clone());
                set.spawn(async move {
                    let host = conn.host();
                    log_script(host, "the lock refresh", &script);
                    let started = Instant::now();
                    match tokio::time::timeout(lock::REFRESH_EVERY, conn.run(script)).await {
                        Ok(Ok(out)) => {
                            log_output(host, "the lock refresh", &out);
                            info!(
                                host = %host,
                                millis = started.elapsed().as_millis(),
                                status = out.status,
                                "refreshed the apply lock"
                            );
                        }
                        Ok(Err(e)) => info!(host = %host, "refreshing the apply lock failed: {e}"),
                        Err(_) => info!(
                            host = %host,
                            "refreshing the apply lock got no answer within {} s",
                            lock::REFRESH_EVERY.as_secs()
                        ),
                    }
                });
            }
            while set.join_next().await.is_some() {}
        }
    }))
}

/// How long ending a step on its host, and then hearing from the step, may take.
pub const END_LIMIT: Duration = Duration::from_secs(30);

/// Carry out `plan` on the connected hosts, steps in `step_order`, all hosts of a step
/// at once. Each step script has its time limit; after it, or after the grace period
/// of a stop, the script is ended on its host. Once a stop is asked for, no new step
/// starts and the hosts that had more to do are reported interrupted.
pub async fn apply<T: Transport>(
    plan: &Plan,
    step_order: &[String],
    connections: &Connections<T>,
    control: &ApplyControl,
    events: Option<Events>,
) -> ApplyReport {
    let mut report = ApplyReport::before(plan);
    // What each host wrote in this run (path -> SHA-256), for rollbacks across hosts,
    // and the files a host rejected ((path, SHA-256) -> (host, step)).
    let mut written: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut refused: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    let (installed, failed) =
        install_first(plan, step_order, &report, connections, control, &events).await;
    for (host, error) in failed {
        emit(
            &events,
            Event::HostFailed {
                host: host.clone(),
                step: INSTALL_FIRST.into(),
                error: error.clone(),
            },
        );
        report.hosts.insert(
            host,
            HostOutcome::Failed {
                step: INSTALL_FIRST.into(),
                error,
            },
        );
    }
    // Step barriers. Every step is still a barrier: all hosts finish step N (and the
    // cross-host rollback below runs) before any host starts step N+1. The install
    // phase above took the packages, most of a fresh converge's time, out of the
    // steps, so what a barrier makes a host wait for now is the other hosts' config
    // writes and handlers. The barriers a closet needs (they must stay when hosts
    // move on independently):
    // - `nfs-server` on the server before `nfs-client` anywhere: a client mounts the
    //   export, which must exist (and homes live there before users log in);
    // - the controller's `accounting-database` (MariaDB, slurmdbd) before its
    //   slurmctld starts with accounting, and slurmctld before `accounting-associations`
    //   (same host: the step order alone keeps these);
    // - `munge` on every host before Slurm on any: slurmd and slurmctld authenticate
    //   each other with the one key;
    // - `slurm-node-config`, `slurm-controller`, `slurm-compute` on all hosts
    //   together: a slurm.conf the controller or a node rejects is put back on every
    //   host that wrote it in this run (`refused`, `roll_back`), which needs every
    //   host to have run that step; and nodes register with slurmctld once it runs on
    //   the controller.
    // The others (users, motd, tailscale, the per-host checks) have no host depending
    // on another's; letting hosts pass them without waiting is issue 17's open part.
    for step in step_order {
        let mut set = JoinSet::new();
        for hp in &plan.hosts {
            if !matches!(
                report.hosts.get(&hp.host),
                Some(HostOutcome::Converged { .. })
            ) {
                continue;
            }
            let Some(sp) = hp.steps.iter().find(|s| &s.name == step) else {
                continue;
            };
            let without_installs;
            let sp = if installed.contains(&hp.host) {
                without_installs = without_package_ops(sp);
                &without_installs
            } else {
                sp
            };
            // A step whose only work was its packages, installed above: nothing is left
            // to run (and a stop names the first step that still had work).
            if sp.ops().is_empty() {
                continue;
            }
            let Some(conn) = connections.hosts.get(&hp.host).cloned() else {
                continue;
            };
            if control.stop.requested() {
                report.hosts.insert(
                    hp.host.clone(),
                    HostOutcome::Interrupted {
                        before_step: step.clone(),
                    },
                );
                continue;
            }
            let (script, ops) = step_script(&hp.host, sp, &control.run);
            // A file another host rejected in this run is not written here either.
            if let Some(((path, _), (by, in_step))) = written_files(&ops)
                .into_iter()
                .find_map(|f| refused.get_key_value(&f))
            {
                let error = StepError::NotRun {
                    host: hp.host.clone(),
                    by: by.clone(),
                    path: path.clone(),
                    in_step: in_step.clone(),
                };
                info!(host = %hp.host, step = %step, "{error}");
                report.hosts.insert(
                    hp.host.clone(),
                    HostOutcome::Failed {
                        step: step.clone(),
                        error: error.to_string(),
                    },
                );
                continue;
            }
            if tracing::enabled!(Level::DEBUG) {
                let shown = loggable_step_script(&hp.host, sp, &control.run);
                log_script(&hp.host, &format!("step {step}"), &shown);
            }
            // Handler names by op index, to log the handlers that ran.
            let first_handler = ops.len() - sp.handlers.len();
            let handlers: Vec<String> = sp.handlers.iter().map(|h| h.name.clone()).collect();
            let installs = sp.changes.iter().any(|c| c.kind == ResourceKind::Package);
            let limit = control.timeouts.step(step, installs);
            let grace = Duration::from_secs(control.timeouts.grace_secs.into());
            let (host, step, events) = (hp.host.clone(), step.clone(), events.clone());
            let (stop, run) = (control.stop.clone(), control.run.clone());
            set.spawn(async move {
                emit(
                    &events,
                    Event::StepStarted {
                        host: host.clone(),
                        step: step.clone(),
                        operations: ops.len(),
                    },
                );
                info!(
                    host = %host,
                    step = %step,
                    script = %format_args!("step {step} on {host}"),
                    script_bytes = script.len(),
                    operations = ops.len(),
                    limit_secs = limit.as_secs(),
                    "step started"
                );
                let started = Instant::now();
                let (result, stdout) =
                    run_step(&*conn, &host, script, &ops, limit, &stop, grace, &run).await;
                let millis = started.elapsed().as_millis();
                let done_at: Vec<usize> = stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("@@closetctl ok ")?.trim().parse().ok())
                    .collect();
                for i in &done_at {
                    if let Some(handler) = i.checked_sub(first_handler).and_then(|h| handlers.get(h)) {
                        info!(host = %host, step = %step, handler = %handler, "handler ran");
                    }
                }
                let done: Vec<ops::Op> = done_at
                    .iter()
                    .filter_map(|i| ops.get(*i).cloned())
                    .collect();
                let written = written_files(&done);
                let restored = ops::restored(&stdout);
                let passed_over: Vec<String> = ops::skipped_ops(&stdout)
                    .into_iter()
                    .filter_map(|i| ops.get(i).map(ops::Op::describe))
                    .collect();
                if !passed_over.is_empty() {
                    emit(
                        &events,
                        Event::PassedOver {
                            host: host.clone(),
                            step: step.clone(),
                            operations: passed_over.clone(),
                        },
                    );
                }
                let result = result.map_err(|e| {
                    info!(host = %host, step = %step, millis, ops_done = done_at.len(), "step failed: {e}");
                    e.to_string()
                });
                match &result {
                    Ok(()) => {
                        info!(host = %host, step = %step, millis, ops_done = done_at.len(), "step finished");
                        emit(
                            &events,
                            Event::StepFinished {
                                host: host.clone(),
                                step: step.clone(),
                            },
                        )
                    }
                    Err(error) => emit(
                        &events,
                        Event::HostFailed {
                            host: host.clone(),
                            step: step.clone(),
                            error: error.clone(),
                        },
                    ),
                }
                (host, step, result, written, restored, passed_over)
            });
        }
        let mut rejected = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (host, step, result, wrote, restored, passed_over) =
                joined.expect("apply task panicked");
            if !passed_over.is_empty() {
                report
                    .passed_over
                    .entry(host.clone())
                    .or_default()
                    .extend(passed_over);
            }
            let mine = written.entry(host.clone()).or_default();
            for (path, hash) in wrote {
                mine.insert(path, hash);
            }
            for path in restored {
                // A file this host rejected: the version it wrote in this run.
                if let Some(hash) = mine.remove(&path) {
                    rejected.push((host.clone(), step.clone(), path, hash));
                }
            }
            if let Err(error) = result {
                report
                    .hosts
                    .insert(host, HostOutcome::Failed { step, error });
            }
        }
        for (by, step, path, hash) in &rejected {
            refused
                .entry((path.clone(), hash.clone()))
                .or_insert_with(|| (by.clone(), step.clone()));
        }
        roll_back(
            &rejected,
            &mut written,
            &mut report,
            connections,
            control,
            &events,
        )
        .await;
    }
    report
}

/// The steps of `hp` in apply order.
fn steps_in_order<'a>(
    hp: &'a HostPlan,
    step_order: &'a [String],
) -> impl Iterator<Item = &'a StepPlan> {
    step_order
        .iter()
        .filter_map(|step| hp.steps.iter().find(|s| &s.name == step))
}

/// The packages a host's steps install, in step order, each once.
fn packages_of(hp: &HostPlan, step_order: &[String]) -> Vec<String> {
    let mut packages: Vec<String> = Vec::new();
    for sp in steps_in_order(hp, step_order) {
        for op in sp.ops() {
            if let ops::Op::InstallPackages(p) = op {
                for name in p {
                    if !packages.contains(&name) {
                        packages.push(name);
                    }
                }
            }
        }
    }
    packages
}

/// The handlers that the package changes of `hp` fire (in any step), as the journal
/// records them: the install phase owes them before it installs anything, so that an
/// apply stopped after the install and before those steps leaves them owed (the next
/// plan sees the packages installed, so no change would fire them any more).
fn package_owes(hp: &HostPlan, step_order: &[String], run: &str) -> Vec<journal::Owed> {
    let packages: Vec<String> = hp
        .steps
        .iter()
        .flat_map(|s| &s.changes)
        .filter(|c| c.kind == ResourceKind::Package)
        .map(|c| c.resource())
        .collect();
    let mut owes: Vec<journal::Owed> = Vec::new();
    for sp in steps_in_order(hp, step_order) {
        for o in &sp.owes {
            if o.because.iter().any(|b| packages.contains(b))
                && !owes.iter().any(|x| x.id() == o.id())
            {
                owes.push(journal::Owed {
                    run: run.to_string(),
                    recorded_by: INSTALL_FIRST.to_string(),
                    ..o.clone()
                });
            }
        }
    }
    owes
}

/// A step whose packages are already installed: its changes without their installs.
fn without_package_ops(sp: &StepPlan) -> StepPlan {
    let mut sp = sp.clone();
    for c in &mut sp.changes {
        c.ops
            .retain(|op| !matches!(op, ops::Op::InstallPackages(_)));
    }
    sp
}

/// Every op `apply` runs on `hp`, in order, with the step it runs in, when the install
/// phase succeeds: one [`INSTALL_FIRST`] install of every step's packages, then each
/// step's ops without its installs (its handlers last, as in [`step_script`]). The op
/// counts of the interruption tests come from here.
pub fn apply_order(hp: &HostPlan, step_order: &[String]) -> Vec<(String, ops::Op)> {
    let packages = packages_of(hp, step_order);
    let mut order: Vec<(String, ops::Op)> = Vec::new();
    if !packages.is_empty() {
        order.push((
            INSTALL_FIRST.to_string(),
            ops::Op::InstallPackages(packages),
        ));
    }
    for sp in steps_in_order(hp, step_order) {
        let sp = without_package_ops(sp);
        order.extend(sp.ops().into_iter().map(|op| (sp.name.clone(), op)));
    }
    order
}

/// The install phase's script for `hp`: under this run's lock (as a step named
/// [`INSTALL_FIRST`]), the owed handlers of [`package_owes`] recorded, an install an
/// interrupted apply left half-done finished, then one install of `packages`.
fn install_script(hp: &HostPlan, step_order: &[String], run: &str, ops: &[ops::Op]) -> String {
    let begin = format!(
        "cc_begin {} {INSTALL_FIRST}\n{}cc_dpkg_heal || {{ printf '@@closetctl failed 0\\n'; exit 1; }}\n",
        quote(run),
        journal::owe_lines(&package_owes(hp, step_order, run)),
    );
    ops::framed_script(
        &format!("packages on {}", hp.host),
        &format!("{}{}", lock::STEP_PRELUDE, journal::PRELUDE),
        &begin,
        ops,
        |_| String::new(),
        "cc_end\n",
    )
}

/// Before the first step: on every host at once, one `apt-get install` for the
/// packages of all its steps (apt resolves, unpacks and runs triggers once, and a
/// host's installs no longer wait, step by step, for the other hosts' steps). The
/// hosts where it worked run their steps without their installs. Where it did not
/// (a package apt cannot find, a stop), the steps install as before, so a failure is
/// reported in the step that needs the package. A host where the phase timed out, was
/// stopped past the grace period, lost its link or its lock fails here, in
/// [`INSTALL_FIRST`] (returned with the error): its steps do not run. Services a
/// package starts before its step writes their configuration are started or restarted
/// by that step, as when the step installed them itself a moment before writing it;
/// the handlers a package change fires are recorded as owed first (see
/// [`package_owes`]).
async fn install_first<T: Transport>(
    plan: &Plan,
    step_order: &[String],
    report: &ApplyReport,
    connections: &Connections<T>,
    control: &ApplyControl,
    events: &Option<Events>,
) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let mut set = JoinSet::new();
    for hp in &plan.hosts {
        if !matches!(
            report.hosts.get(&hp.host),
            Some(HostOutcome::Converged { .. })
        ) || control.stop.requested()
        {
            continue;
        }
        let packages = packages_of(hp, step_order);
        let Some(conn) = connections.hosts.get(&hp.host).cloned() else {
            continue;
        };
        if packages.is_empty() {
            continue;
        }
        let ops = vec![ops::Op::InstallPackages(packages)];
        let script = install_script(hp, step_order, &control.run, &ops);
        log_script(&hp.host, "the package install", &script);
        let limit = control.timeouts.step(INSTALL_FIRST, true);
        let grace = Duration::from_secs(control.timeouts.grace_secs.into());
        let host = hp.host.clone();
        let (stop, run) = (control.stop.clone(), control.run.clone());
        let events = events.clone();
        set.spawn(async move {
            info!(host = %host, packages = %ops[0].describe(), "installing every step's packages");
            emit(
                &events,
                Event::StepStarted {
                    host: host.clone(),
                    step: INSTALL_FIRST.into(),
                    operations: ops.len(),
                },
            );
            let started = Instant::now();
            let (result, _) = run_step(&*conn, &host, script, &ops, limit, &stop, grace, &run).await;
            let millis = started.elapsed().as_millis();
            match &result {
                Ok(()) => info!(host = %host, step = INSTALL_FIRST, millis, "step finished"),
                Err(e) => info!(host = %host, step = INSTALL_FIRST, millis, "installing every step's packages at once failed, the steps install their own: {e}"),
            }
            let outcome = match result {
                Ok(()) => {
                    emit(
                        &events,
                        Event::StepFinished {
                            host: host.clone(),
                            step: INSTALL_FIRST.into(),
                        },
                    );
                    Ok(())
                }
                // apt's own failure: the steps install their packages and report it.
                Err(e @ StepError::OpFailed { .. }) => {
                    emit(
                        &events,
                        Event::InstallDeferred {
                            host: host.clone(),
                            error: e.to_string(),
                        },
                    );
                    Err(None)
                }
                Err(e) => Err(Some(e.to_string())),
            };
            (host, outcome)
        });
    }
    let mut done = BTreeSet::new();
    let mut failed = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        match joined.expect("install task panicked") {
            (host, Ok(())) => {
                done.insert(host);
            }
            (host, Err(Some(error))) => {
                failed.insert(host, error);
            }
            (_, Err(None)) => {}
        }
    }
    (done, failed)
}

/// The name the package phase runs under (lock record, time limit, log lines).
pub const INSTALL_FIRST: &str = "packages";

/// SHA-256 of each file the ops wrote, by path.
fn written_files(ops: &[ops::Op]) -> Vec<(String, String)> {
    ops.iter()
        .filter_map(|op| match op {
            ops::Op::WriteFile { path, content, .. } => {
                Some((path.clone(), format!("{:x}", sha2::Sha256::digest(content))))
            }
            _ => None,
        })
        .collect()
}

/// Keep the cluster consistent when a host rejected a file it shares with others
/// (`slurm.conf` is the same bytes everywhere): every other host that wrote the same
/// bytes for that path in this run gets its previous version back and stops there, so
/// no node stays on a configuration its controller refused.
async fn roll_back<T: Transport>(
    rejected: &[(String, String, String, String)],
    written: &mut BTreeMap<String, BTreeMap<String, String>>,
    report: &mut ApplyReport,
    connections: &Connections<T>,
    control: &ApplyControl,
    events: &Option<Events>,
) {
    let mut set = JoinSet::new();
    for (by, step, path, hash) in rejected {
        for (host, files) in written.iter_mut() {
            if host == by || files.get(path) != Some(hash) {
                continue;
            }
            files.remove(path);
            let Some(conn) = connections.hosts.get(host).cloned() else {
                continue;
            };
            let ops = [ops::Op::Restore(path.clone())];
            let title = format!("roll back {path} on {host}");
            let begin = format!("cc_begin {} 'roll back'\n", quote(&control.run));
            let script = ops::framed_script(
                &title,
                lock::STEP_PRELUDE,
                &begin,
                &ops,
                |_| String::new(),
                "cc_end\n",
            );
            if tracing::enabled!(Level::DEBUG) {
                let shown = ops::loggable_framed_script(
                    &title,
                    lock::STEP_PRELUDE,
                    &begin,
                    &ops,
                    |_| String::new(),
                    "cc_end\n",
                );
                log_script(host, "the roll-back", &shown);
            }
            let (host, by, step, path) = (host.clone(), by.clone(), step.clone(), path.clone());
            set.spawn(async move {
                let result = match tokio::time::timeout(END_LIMIT, conn.run(script)).await {
                    Err(_) => Err(RemoteError::Late {
                        host: host.clone(),
                        limit: END_LIMIT,
                    }),
                    Ok(Err(e)) => Err(RemoteError::transport(e)),
                    Ok(Ok(out)) => {
                        log_output(&host, "the roll-back", &out);
                        if out.success() {
                            Ok(())
                        } else {
                            Err(RemoteError::failed(&host, &out))
                        }
                    }
                };
                let error = match result {
                    Ok(()) => format!(
                        "rolled back {path}: {by} did not accept the same file (its step {step} failed), so this host keeps the previous one"
                    ),
                    Err(why) => format!(
                        "{path} is the version {by} did not accept (its step {step} failed) and putting the previous one back failed: {why}"
                    ),
                };
                info!(host = %host, step = %step, "{error}");
                (host, step, error)
            });
        }
    }
    while let Some(joined) = set.join_next().await {
        let (host, step, error) = joined.expect("rollback task panicked");
        emit(
            events,
            Event::HostFailed {
                host: host.clone(),
                step: step.clone(),
                error: error.clone(),
            },
        );
        let error = match report.hosts.get(&host) {
            Some(HostOutcome::Failed { error: first, .. }) => format!("{first}; {error}"),
            _ => error,
        };
        report
            .hosts
            .insert(host, HostOutcome::Failed { step, error });
    }
}

/// Run one step script: to its end, to its time limit, or to the end of the grace
/// period after a stop. In the last two cases the script is ended on its host.
#[allow(clippy::too_many_arguments)]
async fn run_step<T: Transport>(
    conn: &T,
    host: &str,
    script: String,
    ops: &[ops::Op],
    limit: Duration,
    stop: &Stop,
    grace: Duration,
    run: &str,
) -> (Result<(), StepError>, String) {
    let running = conn.run_for(script, limit);
    tokio::pin!(running);
    let grace_over = async {
        stop.wait().await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        r = &mut running => r,
        _ = grace_over => {
            let ended = end_step(conn, run).await;
            let heard = tokio::time::timeout(END_LIMIT, &mut running).await;
            let partial = match &heard {
                Ok(Ok(out)) => out.stdout.clone(),
                Ok(Err(TransportError::Lost { partial, .. } | TransportError::Timeout { partial, .. })) => partial.stdout.clone(),
                _ => String::new(),
            };
            let error = StepError::Interrupted {
                host: host.to_string(),
                running: running_op(&partial, ops),
                grace,
                ended,
            };
            return (Err(error), partial);
        }
    };
    match &result {
        Ok(out) => log_output(host, "the step", out),
        Err(TransportError::Lost { partial, .. } | TransportError::Timeout { partial, .. }) => {
            log_output(host, "the step (partial)", partial)
        }
        Err(_) => {}
    }
    let stdout = match &result {
        Ok(out) => out.stdout.clone(),
        Err(TransportError::Lost { partial, .. } | TransportError::Timeout { partial, .. }) => {
            partial.stdout.clone()
        }
        Err(_) => String::new(),
    };
    let host = host.to_string();
    let outcome = match result {
        Ok(out) if out.success() => Ok(()),
        Ok(out) if out.stdout.lines().any(|l| l == "@@closetctl lost-lock") => {
            Err(StepError::LostLock { host })
        }
        Ok(out) => {
            let op = ops::failed_op(&out.stdout)
                .and_then(|i| ops.get(i))
                .map_or("the step".to_string(), |op| op.describe());
            Err(StepError::OpFailed {
                host,
                op,
                stderr_tail: last_lines(&out.stderr, 15),
            })
        }
        Err(source @ TransportError::Timeout { .. }) => {
            let TransportError::Timeout { after, partial, .. } = &source else {
                unreachable!("matched above")
            };
            let (after, running) = (*after, running_op(&partial.stdout, ops));
            let ended = end_step(conn, run).await;
            Err(StepError::Timeout {
                host,
                after,
                running,
                ended,
                source,
            })
        }
        Err(source @ TransportError::Lost { .. }) => {
            let TransportError::Lost { partial, .. } = &source else {
                unreachable!("matched above")
            };
            Err(StepError::Lost {
                host,
                running: running_op(&partial.stdout, ops),
                source,
            })
        }
        Err(source) => Err(StepError::Transport { host, source }),
    };
    (outcome, stdout)
}

/// `` `install munge` (op 1 of 6) ``: the first op a script's output does not report
/// done.
fn running_op(stdout: &str, ops: &[ops::Op]) -> String {
    let done = stdout
        .lines()
        .filter(|l| l.starts_with("@@closetctl ok "))
        .count();
    match ops.get(done) {
        Some(op) => format!("`{}` (op {} of {})", op.describe(), done + 1, ops.len()),
        None => "the step's last lines".to_string(),
    }
}

/// End this run's step script on the host; what happened, for the report.
async fn end_step<T: Transport>(conn: &T, run: &str) -> String {
    let host = conn.host();
    let script = lock::end_step_script(run);
    log_script(host, "the end of the step", &script);
    let said = match tokio::time::timeout(END_LIMIT, conn.run(script)).await {
        Ok(Ok(out)) => {
            log_output(host, "the end of the step", &out);
            if out.stdout.contains("@@closetctl ended") {
                "its processes were ended on the host".into()
            } else {
                "it was no longer running on the host".into()
            }
        }
        Ok(Err(e)) => format!(
            "its processes could not be ended ({e}); the next apply shows the host's lock as stale once the host answers"
        ),
        Err(_) => format!(
            "its processes could not be ended (no answer within {} s); the next apply shows the host's lock as stale once the host answers",
            END_LIMIT.as_secs()
        ),
    };
    info!(host = %host, "ending the step: {said}");
    said
}

/// Release `run`'s lock on every host whose probe took it, all at once. The hosts
/// where that did not work (their lock may remain), with the reason.
pub async fn unlock<T: Transport>(
    facts: &ClusterFacts,
    connections: &Connections<T>,
    run: &str,
) -> BTreeMap<String, String> {
    let mut set = JoinSet::new();
    for (name, conn) in &connections.hosts {
        if facts.host(name).is_some_and(|f| f.lock_acquired) {
            let (conn, name, script) = (conn.clone(), name.clone(), lock::release_script(run));
            set.spawn(async move {
                log_script(&name, "the lock release", &script);
                let started = Instant::now();
                let result = match tokio::time::timeout(RELEASE_LIMIT, conn.run(script)).await {
                    Err(_) => Err(RemoteError::Late {
                        host: name.clone(),
                        limit: RELEASE_LIMIT,
                    }),
                    Ok(Err(e)) => Err(RemoteError::transport(e)),
                    Ok(Ok(out)) => {
                        log_output(&name, "the lock release", &out);
                        if out.success() {
                            Ok(())
                        } else {
                            Err(RemoteError::failed(&name, &out))
                        }
                    }
                };
                let millis = started.elapsed().as_millis();
                match &result {
                    Ok(()) => info!(host = %name, millis, "released the apply lock"),
                    Err(e) => info!(host = %name, millis, "releasing the apply lock failed: {e}"),
                }
                (name, result)
            });
        }
    }
    let mut failed = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((name, Err(why))) = joined {
            failed.insert(name, why.to_string());
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Owed;
    use crate::plan::HandlerRun;
    use crate::resource::{Action, Change};

    fn package(name: &str) -> Change {
        let mut c = Change::new(ResourceKind::Package, name, Action::Create);
        c.ops.push(ops::Op::InstallPackages(vec![name.into()]));
        c
    }

    fn group(name: &str, gid: u32) -> Change {
        let mut c = Change::new(ResourceKind::Group, name, Action::Create);
        c.ops.push(ops::Op::GroupAdd {
            name: name.into(),
            gid,
        });
        c
    }

    fn owed(step: &str, handler: &str, because: &str, by: &str) -> Owed {
        Owed {
            step: step.into(),
            handler: handler.into(),
            action: format!("run `{handler}`"),
            because: vec![because.into()],
            restore: Vec::new(),
            run: String::new(),
            recorded_by: by.into(),
        }
    }

    fn step(
        name: &str,
        changes: Vec<Change>,
        handlers: &[(&str, &str)],
        owes: Vec<Owed>,
    ) -> StepPlan {
        StepPlan {
            name: name.into(),
            changes,
            handlers: handlers
                .iter()
                .map(|(h, because)| HandlerRun {
                    name: (*h).into(),
                    action: format!("run `{h}`"),
                    because: vec![(*because).into()],
                    owed: false,
                    op: ops::Op::Command((*h).into()),
                })
                .collect(),
            owes,
            checks: Vec::new(),
        }
    }

    /// Two steps with packages: `base` (munge, and a group whose change fires
    /// `refresh-groups` in `late`) and `late` (munge again, slurmd, and a handler that
    /// watches the slurmd package).
    fn host_plan() -> HostPlan {
        HostPlan {
            host: "node1".into(),
            status: HostStatus::Ready,
            error: None,
            conflicts: Vec::new(),
            unmanaged: Vec::new(),
            warnings: Vec::new(),
            unlock: None,
            steps: vec![
                step(
                    "base",
                    vec![package("munge"), group("lab", 2001)],
                    &[],
                    vec![owed("late", "refresh-groups", "group lab", "base")],
                ),
                step(
                    "late",
                    vec![package("munge"), package("slurmd")],
                    &[
                        ("refresh-groups", "group lab"),
                        ("start-slurmd", "package slurmd"),
                    ],
                    vec![owed("late", "start-slurmd", "package slurmd", "late")],
                ),
            ],
        }
    }

    #[test]
    fn apply_order_installs_every_package_once_first_then_the_steps_without_installs() {
        let order = ["base".to_string(), "late".to_string()];
        let got: Vec<(String, String)> = apply_order(&host_plan(), &order)
            .into_iter()
            .map(|(s, op)| (s, op.describe()))
            .collect();
        let want: Vec<(String, String)> = [
            (INSTALL_FIRST, "install munge slurmd"),
            ("base", "groupadd lab (2001)"),
            ("late", "run `refresh-groups`"),
            ("late", "run `start-slurmd`"),
        ]
        .iter()
        .map(|(s, d)| (s.to_string(), d.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_install_owes_the_handlers_a_package_fires_before_installing() {
        let order = ["base".to_string(), "late".to_string()];
        let hp = host_plan();
        let ops = vec![ops::Op::InstallPackages(packages_of(&hp, &order))];
        let script = install_script(&hp, &order, "run-1", &ops);
        let owes: Vec<&str> = script
            .lines()
            .filter(|l| l.starts_with("cc_owe "))
            .collect();
        // Only the handler a package fires; the group's handler is owed by its own step.
        assert_eq!(owes.len(), 1, "{script}");
        assert!(
            owes[0].starts_with(&format!("cc_owe {} ", journal::id("late", "start-slurmd"))),
            "{script}"
        );
        assert!(
            owes[0].contains("\"recorded_by\":\"packages\""),
            "{}",
            owes[0]
        );
        assert!(owes[0].contains("\"run\":\"run-1\""), "{}", owes[0]);
        let begin = script.find("cc_begin ").unwrap();
        let owe = script.find("cc_owe ").unwrap();
        let heal = script.find("cc_dpkg_heal ||").unwrap();
        let install = script.rfind("cc_install").unwrap();
        assert!(begin < owe && owe < heal && heal < install, "{script}");
    }
}
