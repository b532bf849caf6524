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

use crate::facts::probe::{self, ProbeRequest};
use crate::facts::{ClusterFacts, HostFacts};
use crate::interrupt::Stop;
use crate::inventory::{Host, Timeouts};
use crate::journal;
use crate::lock;
use crate::ops;
use crate::plan::{HostStatus, Plan, StepPlan};
use crate::resource::ResourceKind;
use crate::shell::quote;
use crate::transport::{Connector, Transport, TransportError};
use serde::Serialize;
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

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

/// Connect and probe one host within `limit`.
async fn probe_host<C: Connector>(
    connector: &C,
    host: &Host,
    request: &ProbeRequest,
    limit: Duration,
) -> Result<(C::Conn, HostFacts), String> {
    let deadline = tokio::time::Instant::now() + limit;
    let late = || format!("no answer within {} s (connect and probe)", limit.as_secs());
    let conn = match tokio::time::timeout_at(deadline, connector.connect(host)).await {
        Err(_) => return Err(late()),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(conn)) => conn,
    };
    let sent = now();
    let answer = tokio::time::timeout_at(deadline, conn.run(probe::script(request))).await;
    let received = now();
    let parsed = match answer {
        Err(_) => Err(late()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(out)) if !out.success() && !out.stdout.contains(probe::MARKER) => Err(format!(
            "the probe failed (exit {}): {}",
            out.status,
            last_lines(&out.stderr, 5)
        )),
        Ok(Ok(out)) => probe::parse(&out.stdout, request).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(mut facts) => {
            facts.time.local_epoch = (sent + received) / 2.0;
            Ok((conn, facts))
        }
        Err(error) => match &request.lock {
            // The probe may have taken the lock before its answer went missing.
            Some(owner) => {
                let released = release_after_failure(connector, host, &conn, &owner.run).await;
                Err(match released {
                    Ok(true) => format!("{error} (the lock its probe had taken is released)"),
                    Ok(false) => format!("{error} (its probe had not taken the lock)"),
                    Err(why) => format!(
                        "{error}; the lock its probe may have taken could not be released ({why}): it will show as stale"
                    ),
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
) -> Result<bool, String> {
    let script = lock::release_script(run);
    let released =
        |out: &crate::transport::RemoteOutput| lock::answer(&out.stdout) == Some("released");
    match tokio::time::timeout(RELEASE_LIMIT, conn.run(script.clone())).await {
        Ok(Ok(out)) if out.success() => return Ok(released(&out)),
        _ => {}
    }
    let again = async {
        let fresh = connector.connect(host).await.map_err(|e| e.to_string())?;
        let out = fresh.run(script).await.map_err(|e| e.to_string())?;
        if out.success() {
            Ok(released(&out))
        } else {
            Err(last_lines(&out.stderr, 3))
        }
    };
    tokio::time::timeout(RELEASE_LIMIT, again)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", RELEASE_LIMIT.as_secs())))
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
    let script = ops::framed_script(
        &format!("step {} on {host}", sp.name),
        &functions,
        &before,
        &ops,
        |n| {
            n.checked_sub(first_handler)
                .map_or(String::new(), |i| journal::paid_line(&paid[i]))
        },
        "cc_end\n",
    );
    (script, ops)
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
                    let _ = tokio::time::timeout(lock::REFRESH_EVERY, conn.run(script)).await;
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
                report.hosts.insert(
                    hp.host.clone(),
                    HostOutcome::Failed {
                        step: step.clone(),
                        error: format!(
                            "not run: {by} did not accept the same {path} (its step {in_step} failed), so this host keeps the previous one"
                        ),
                    },
                );
                continue;
            }
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
                let (result, stdout) =
                    run_step(&*conn, script, &ops, limit, &stop, grace, &run).await;
                let done: Vec<ops::Op> = stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("@@closetctl ok ")?.trim().parse().ok())
                    .filter_map(|i: usize| ops.get(i).cloned())
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
                match &result {
                    Ok(()) => emit(
                        &events,
                        Event::StepFinished {
                            host: host.clone(),
                            step: step.clone(),
                        },
                    ),
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
            let script = ops::framed_script(
                &format!("roll back {path} on {host}"),
                lock::STEP_PRELUDE,
                &format!("cc_begin {} 'roll back'\n", quote(&control.run)),
                &ops,
                |_| String::new(),
                "cc_end\n",
            );
            let (host, by, step, path) = (host.clone(), by.clone(), step.clone(), path.clone());
            set.spawn(async move {
                let result = tokio::time::timeout(END_LIMIT, conn.run(script)).await;
                let done = matches!(&result, Ok(Ok(out)) if out.success());
                let mut error = format!(
                    "rolled back {path}: {by} did not accept the same file (its step {step} failed), so this host keeps the previous one"
                );
                if !done {
                    error = format!(
                        "{path} is the version {by} did not accept (its step {step} failed) and putting the previous one back failed: {}",
                        match result {
                            Err(_) => format!("no answer within {} s", END_LIMIT.as_secs()),
                            Ok(Err(e)) => e.to_string(),
                            Ok(Ok(out)) => last_lines(&out.stderr, 3),
                        }
                    );
                }
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
async fn run_step<T: Transport>(
    conn: &T,
    script: String,
    ops: &[ops::Op],
    limit: Duration,
    stop: &Stop,
    grace: Duration,
    run: &str,
) -> (Result<(), String>, String) {
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
            let error = format!(
                "interrupted: {} had not finished after the {} s grace period; {}",
                running_op(&partial, ops),
                grace.as_secs(),
                ended
            );
            return (Err(error), partial);
        }
    };
    let stdout = match &result {
        Ok(out) => out.stdout.clone(),
        Err(TransportError::Lost { partial, .. } | TransportError::Timeout { partial, .. }) => {
            partial.stdout.clone()
        }
        Err(_) => String::new(),
    };
    let outcome = match result {
        Ok(out) if out.success() => Ok(()),
        Ok(out) if out.stdout.lines().any(|l| l == "@@closetctl lost-lock") => Err(
            "this apply no longer holds the host's lock (it was broken or taken over); the step changed nothing"
                .into(),
        ),
        Ok(out) => {
            let what = ops::failed_op(&out.stdout)
                .and_then(|i| ops.get(i))
                .map_or("the step".to_string(), |op| op.describe());
            Err(format!("{what} failed: {}", last_lines(&out.stderr, 15)))
        }
        Err(TransportError::Timeout { after, partial, .. }) => {
            let ended = end_step(conn, run).await;
            Err(format!(
                "timed out after {} s while running {}; {}",
                after.as_secs(),
                running_op(&partial.stdout, ops),
                ended
            ))
        }
        Err(TransportError::Lost {
            message, partial, ..
        }) => Err(format!(
            "the connection broke while running {}: {message}",
            running_op(&partial.stdout, ops)
        )),
        Err(e) => Err(e.to_string()),
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
    match tokio::time::timeout(END_LIMIT, conn.run(lock::end_step_script(run))).await {
        Ok(Ok(out)) if out.stdout.contains("@@closetctl ended") => {
            "its processes were ended on the host".into()
        }
        Ok(Ok(_)) => "it was no longer running on the host".into(),
        Ok(Err(e)) => format!(
            "its processes could not be ended ({e}); the next apply shows the host's lock as stale once the host answers"
        ),
        Err(_) => format!(
            "its processes could not be ended (no answer within {} s); the next apply shows the host's lock as stale once the host answers",
            END_LIMIT.as_secs()
        ),
    }
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
                let result = match tokio::time::timeout(RELEASE_LIMIT, conn.run(script)).await {
                    Err(_) => Err(format!("no answer within {} s", RELEASE_LIMIT.as_secs())),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok(out)) if out.success() => Ok(()),
                    Ok(Ok(out)) => Err(last_lines(&out.stderr, 3)),
                };
                (name, result)
            });
        }
    }
    let mut failed = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((name, Err(why))) = joined {
            failed.insert(name, why);
        }
    }
    failed
}
