//! Plan and apply as the commands run them: probe every host at once (a second, small
//! round trip only where the answer showed the plan needs more, see
//! [`engine::ask_more`]), plan, ask, carry the plan out step by step while the locks
//! are kept fresh, release them, plan again and verify with the cluster's own tools.
//! Apply probes first without the lock, as plan does: when that plan has nothing to do
//! (and no selected host's lock is held), apply ends there, a plan's cost, verifying
//! only when asked; otherwise it probes again over the same connections, taking the
//! selected hosts' locks first thing, and plans from those facts. The command line
//! only adds flags, printing and exit codes.

use crate::diagnostic::Diagnostic;
use crate::engine::{self, ApplyReport, Connections, Events, HostOutcome};
use crate::interrupt::Stop;
use crate::transport::reuse::Reuse;
use crate::transport::Connector;
use crate::verify;
use closetctl_core::desired::{followup_commands, probe_request};
use closetctl_core::facts::probe::ProbeRequest;
use closetctl_core::facts::ClusterFacts;
use closetctl_core::loaded::{LoadError, Loaded};
use closetctl_core::plan::{self, Plan};
use closetctl_core::verification::Scope;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

/// One probe request per inventory host. Templates may read any host's facts
/// (slurm.conf lists every node), so every host is probed, but only the selected ones
/// take the lock.
pub fn probe_requests(
    loaded: &Loaded,
    hosts: &[String],
    lock: Option<crate::lock::Owner>,
) -> Result<BTreeMap<String, ProbeRequest>, LoadError> {
    let selected = loaded.select(hosts)?;
    Ok(loaded
        .inventory
        .hosts
        .iter()
        .map(|h| {
            let mut req = probe_request(&loaded.inventory, &loaded.playbooks, h);
            if selected.iter().any(|s| s.name == h.name) {
                req.lock.clone_from(&lock);
            }
            (h.name.clone(), req)
        })
        .collect())
}

/// Gather facts for the selected hosts (taking the apply lock when `lock` is given) and plan.
pub async fn plan_with<C: Connector + 'static>(
    connector: Arc<C>,
    loaded: &Loaded,
    hosts: &[String],
    lock: Option<crate::lock::Owner>,
    events: Option<Events>,
) -> Result<(Plan, ClusterFacts, Connections<C::Conn>), LoadError> {
    let requests = probe_requests(loaded, hosts, lock)?;
    let limit = std::time::Duration::from_secs(loaded.inventory.timeouts.probe_secs.into());
    let (connections, mut facts) =
        engine::gather_with(connector, &loaded.inventory.hosts, requests, events, limit).await;
    let more: BTreeMap<String, BTreeMap<String, String>> = loaded
        .inventory
        .hosts
        .iter()
        .filter_map(|h| {
            let commands = followup_commands(
                &loaded.inventory,
                &loaded.playbooks,
                h,
                facts.hosts.get(&h.name)?,
            );
            (!commands.is_empty()).then(|| (h.name.clone(), commands))
        })
        .collect();
    if !more.is_empty() {
        engine::ask_more(&connections, more, &mut facts, limit).await;
    }
    let plan = plan::plan(&loaded.inputs(), &facts, hosts);
    Ok((plan, facts, connections))
}

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub hosts: Vec<String>,
    /// Check MUNGE and Slurm with their own tools after apply changed something.
    pub verify: bool,
    /// Check them also when nothing changed (`apply --verify`); otherwise a no-op
    /// apply is a plan: it returns after the probe, with nothing but the locks released.
    pub verify_unchanged: bool,
    /// Who takes the locks; `None` is this process with a fresh run id.
    pub owner: Option<crate::lock::Owner>,
    /// Pulled by Ctrl-C/SIGTERM (or a test).
    pub stop: Stop,
}

/// What an apply did: the plan it ran, the per-host outcome, and the plan after it.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    pub plan: Plan,
    pub report: ApplyReport,
    pub after: Option<Plan>,
    /// Checks with the cluster's own tools after apply (MUNGE across hosts, Slurm nodes).
    pub verification: Vec<Diagnostic>,
    /// Hosts whose lock could not be released, and why: it may remain.
    pub locks_left: BTreeMap<String, String>,
    /// A stop (Ctrl-C, SIGTERM) ended the apply early; `confirmed` says whether that
    /// was after the question (steps may have run) or at it (nothing changed).
    pub interrupted: bool,
    pub confirmed: bool,
}

impl ApplyOutcome {
    pub fn success(&self) -> bool {
        !self.interrupted
            && self.report.all_ok()
            && self.after.as_ref().is_none_or(|p| !p.has_changes())
            && self
                .verification
                .iter()
                .all(|f| f.severity != crate::diagnostic::Severity::Error)
    }
}

/// How long to wait (wall clock) for Slurm nodes to come up after apply.
pub const NODE_WAIT_SECONDS: u32 = 120;

/// Plan (with the lock when there is something to do), run `confirm` on the plan,
/// apply, unlock, verify.
pub async fn apply_with<C: Connector + 'static>(
    connector: Arc<C>,
    loaded: &Loaded,
    options: &ApplyOptions,
    events: Option<Events>,
    confirm: impl FnOnce(&Plan) -> bool,
) -> Result<ApplyOutcome, LoadError> {
    apply_asking(connector, loaded, options, events, |plan| {
        std::future::ready(confirm(plan))
    })
    .await
}

/// [`apply_with`] with a question that takes time (a person at a terminal): a stop
/// while it is open releases the locks and changes nothing.
pub async fn apply_asking<C, F>(
    connector: Arc<C>,
    loaded: &Loaded,
    options: &ApplyOptions,
    events: Option<Events>,
    confirm: impl FnOnce(&Plan) -> F,
) -> Result<ApplyOutcome, LoadError>
where
    C: Connector + 'static,
    F: Future<Output = bool>,
{
    let owner = options
        .owner
        .clone()
        .unwrap_or_else(crate::local::current_owner);
    let run = owner.run.clone();
    let stop = &options.stop;
    let selected: Vec<String> = loaded
        .select(&options.hosts)?
        .into_iter()
        .map(|h| h.name)
        .collect();
    // First a probe without the lock, as plan's: when it shows nothing to do and no
    // selected host's lock held, the apply is a plan and ends here, having taken no
    // lock (so nothing to release: no second round trip).
    let (plan, facts, connections) =
        plan_with(connector.clone(), loaded, &options.hosts, None, None).await?;
    let held = selected
        .iter()
        .any(|h| facts.hosts.get(h).is_some_and(|f| f.lock_held.is_some()));
    if stop.requested() || (!plan.has_changes() && !held) {
        return Ok(unchanged(plan, loaded, &facts, &connections, options, BTreeMap::new()).await);
    }
    // Then the facts again under the lock, over the same connections: facts gathered
    // under the lock cannot predate another apply's changes. Until the probes answer,
    // any selected host may hold this run's lock.
    stop.hold(selected.clone());
    let again = Arc::new(Reuse::new(connector.clone(), connections.hosts));
    let (plan, facts, connections) =
        plan_with(again, loaded, &options.hosts, Some(owner), None).await?;
    let locked: Vec<String> = facts
        .hosts
        .iter()
        .filter(|(_, f)| f.lock_acquired)
        .map(|(h, _)| h.clone())
        .collect();
    stop.released(selected.into_iter().filter(|h| !locked.contains(h)));
    let refresher = engine::keep_fresh(&connections, &locked, &run);
    let confirmed = plan.has_changes()
        && !stop.requested()
        && tokio::select! {
            ok = confirm(&plan) => ok,
            _ = stop.wait() => false,
        };
    if !confirmed || stop.requested() {
        drop(refresher);
        let locks_left = release(&facts, &connections, &run, stop).await;
        return Ok(unchanged(plan, loaded, &facts, &connections, options, locks_left).await);
    }
    let control = engine::ApplyControl {
        run: run.clone(),
        timeouts: loaded.inventory.timeouts.clone(),
        stop: stop.clone(),
    };
    // Steps that need a missing secret are refused; every other step runs.
    let mut report = engine::apply(
        &plan.runnable(),
        &loaded.step_order(),
        &connections,
        &control,
        events,
    )
    .await;
    refuse(&mut report, &plan.refused_steps());
    drop(refresher);
    let locks_left = release(&facts, &connections, &run, stop).await;
    drop(connections);
    if stop.requested() {
        return Ok(ApplyOutcome {
            plan,
            report,
            after: None,
            verification: Vec::new(),
            locks_left,
            interrupted: true,
            confirmed: true,
        });
    }
    let (after, after_facts, connections) =
        plan_with(connector, loaded, &options.hosts, None, None).await?;
    let mut verification = Vec::new();
    if options.verify {
        // Only the hosts this apply converged (or found converged): a host that was
        // skipped or failed is not waited for.
        let good: BTreeSet<&str> = report
            .hosts
            .iter()
            .filter(|(_, o)| matches!(o, HostOutcome::Converged { .. } | HostOutcome::Unchanged))
            .map(|(h, _)| h.as_str())
            .collect();
        verification = verify_hosts(loaded, &after_facts, &connections, &good).await;
    }
    Ok(ApplyOutcome {
        plan,
        report,
        after: Some(after),
        verification,
        locks_left,
        interrupted: false,
        confirmed: true,
    })
}

/// An apply that changed nothing: no change to make, a stop, or a "no" at the
/// question. When there was nothing to change, `--verify` still checks every host that
/// answered.
async fn unchanged<T: crate::transport::Transport + 'static>(
    plan: Plan,
    loaded: &Loaded,
    facts: &ClusterFacts,
    connections: &Connections<T>,
    options: &ApplyOptions,
    locks_left: BTreeMap<String, String>,
) -> ApplyOutcome {
    let stopped = options.stop.requested();
    let mut verification = Vec::new();
    if !plan.has_changes() && options.verify_unchanged && !stopped {
        let answered: BTreeSet<&str> = facts.hosts.keys().map(String::as_str).collect();
        verification = verify_hosts(loaded, facts, connections, &answered).await;
    }
    ApplyOutcome {
        report: ApplyReport::before(&empty_of(&plan)),
        plan,
        after: None,
        verification,
        locks_left,
        interrupted: stopped,
        confirmed: false,
    }
}

/// Every concern's checks with the cluster's own tools, on the `good` hosts.
async fn verify_hosts<T: crate::transport::Transport + 'static>(
    loaded: &Loaded,
    facts: &ClusterFacts,
    connections: &Connections<T>,
    good: &BTreeSet<&str>,
) -> Vec<Diagnostic> {
    let scope = Scope {
        inventory: &loaded.inventory,
        facts,
        hosts: loaded
            .inventory
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .filter(|h| good.contains(h.as_str()) && connections.hosts.contains_key(h))
            .collect(),
        wait_seconds: NODE_WAIT_SECONDS,
    };
    verify::all(&scope, connections).await
}

/// A host whose other steps went through did not converge when a step was refused.
fn refuse(report: &mut ApplyReport, refused: &[crate::plan::RefusedStep]) {
    for r in refused {
        if let Some(o @ (HostOutcome::Converged { .. } | HostOutcome::Unchanged)) =
            report.hosts.get_mut(&r.host)
        {
            *o = HostOutcome::Failed {
                step: r.step.clone(),
                error: r.reason(),
            };
        }
    }
}

/// Release this run's locks; the hosts where that failed.
async fn release<T: crate::transport::Transport>(
    facts: &crate::facts::ClusterFacts,
    connections: &engine::Connections<T>,
    run: &str,
    stop: &Stop,
) -> BTreeMap<String, String> {
    let left = engine::unlock(facts, connections, run).await;
    let released: Vec<String> = stop
        .held()
        .into_iter()
        .filter(|h| !left.contains_key(h))
        .collect();
    stop.released(released);
    left
}

/// The plan with its steps removed, to report outcomes without running anything.
fn empty_of(plan: &Plan) -> Plan {
    let mut p = plan.clone();
    for h in &mut p.hosts {
        h.steps.clear();
    }
    p.summary.clear();
    p
}
