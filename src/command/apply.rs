//! `closetctl apply`: plan (taking each host's apply lock in the same probe), show the
//! plan, ask, carry it out step by step, release the locks, verify with a fresh plan,
//! and summarise per host. Exit 0 only when every selected host converged.

use super::{CliError, HostArgs, InventoryArgs, Loaded};
use crate::engine::{self, ApplyReport, HostOutcome};
use crate::interrupt::Stop;
use crate::plan::{render, Plan};
use crate::report::Reporter;
use crate::transport::Connector;
use crate::verify::{self, Finding};
use clap::Args;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::pin::Pin;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Do not ask before changing anything.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Apply even though `check power` or `check cooling` finds the closet over budget.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub hosts: Vec<String>,
    /// Check MUNGE and Slurm with their own tools after apply.
    pub verify: bool,
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
    pub verification: Vec<Finding>,
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
            && self.verification.iter().all(|f| f.ok)
    }
}

/// How long to wait (wall clock) for Slurm nodes to come up after apply.
pub const NODE_WAIT_SECONDS: u32 = 120;

/// Plan with the lock, run `confirm` on the plan, apply, unlock, verify.
pub async fn apply_with<C: Connector + 'static>(
    connector: Arc<C>,
    loaded: &Loaded,
    options: &ApplyOptions,
    reporter: &Reporter,
    confirm: impl FnOnce(&Plan) -> bool,
) -> Result<ApplyOutcome, CliError> {
    apply_asking(connector, loaded, options, reporter, |plan| {
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
    reporter: &Reporter,
    confirm: impl FnOnce(&Plan) -> F,
) -> Result<ApplyOutcome, CliError>
where
    C: Connector + 'static,
    F: Future<Output = bool>,
{
    let owner = options
        .owner
        .clone()
        .unwrap_or_else(closetctl_exec::local::current_owner);
    let run = owner.run.clone();
    let stop = &options.stop;
    // Until the probes answer, any selected host may hold this run's lock.
    let selected: Vec<String> = loaded
        .select(&options.hosts)?
        .into_iter()
        .map(|h| h.name)
        .collect();
    stop.hold(selected.clone());
    let (plan, facts, connections) =
        super::plan_with(connector.clone(), loaded, &options.hosts, Some(owner), None).await?;
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
        let report = ApplyReport::before(&empty_of(&plan));
        return Ok(ApplyOutcome {
            plan,
            report,
            after: None,
            verification: Vec::new(),
            locks_left,
            interrupted: stop.requested(),
            confirmed: false,
        });
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
        Some(reporter.sender()),
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
        super::plan_with(connector, loaded, &options.hosts, None, None).await?;
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
        let checked = engine::Connections {
            hosts: connections
                .hosts
                .iter()
                .filter(|(h, _)| good.contains(h.as_str()))
                .map(|(h, c)| (h.clone(), c.clone()))
                .collect(),
        };
        verification.extend(verify::munge(&loaded.inventory, &checked).await);
        if let Some(ctx) = crate::concerns::slurm::context(&loaded.inventory, &after_facts)
            .filter(|ctx| good.contains(ctx.controller.as_str()))
        {
            verification
                .extend(verify::slurm(&ctx, &loaded.inventory, &checked, NODE_WAIT_SECONDS).await);
        }
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
    p
}

pub async fn run(args: ApplyArgs) -> Result<i32, CliError> {
    let loaded = Loaded::load(&args.inventory.inventory)?;
    let over: Vec<String> = crate::check::offline_findings(&loaded.inventory)
        .into_iter()
        .filter(|f| f.severity == crate::check::Severity::Error)
        .map(|f| f.message)
        .collect();
    if !over.is_empty() {
        if !args.force {
            return Err(CliError::Refused(format!(
                "the closet is over its power or cooling budget:\n  {}\nFix the inventory or the closet, or pass --force to apply anyway",
                over.join("\n  ")
            )));
        }
        eprintln!(
            "warning: applying with --force although the closet is over budget:\n  {}",
            over.join("\n  ")
        );
    }
    let connector = super::ssh_connector(&loaded.inventory)?;
    let style = render::Style {
        color: super::use_color(),
    };
    let reporter = Reporter::start();
    let yes = args.yes;
    let stop = Stop::default();
    crate::interrupt::listen(stop.clone(), loaded.inventory.timeouts.grace_secs);
    let options = ApplyOptions {
        hosts: args.hosts.hosts,
        verify: true,
        owner: None,
        stop,
    };
    let outcome = apply_asking(connector, &loaded, &options, &reporter, |plan| {
        print!("{}", render::text(plan, style));
        let answer: Pin<Box<dyn Future<Output = bool> + Send>> = if yes {
            Box::pin(std::future::ready(true))
        } else {
            Box::pin(ask_async("Apply these changes?"))
        };
        answer
    })
    .await?;
    reporter.finish().await;
    if outcome.interrupted && !outcome.confirmed {
        println!(
            "\nInterrupted before anything changed; {}",
            locks_sentence(&outcome.locks_left)
        );
        return Ok(130);
    }
    if !outcome.plan.has_changes() {
        print!("{}", render::text(&outcome.plan, style));
        println!("Nothing to apply.");
        return Ok(if outcome.plan.has_blockers() { 1 } else { 0 });
    }
    if !outcome.confirmed {
        println!("Nothing was changed.");
        return Ok(1);
    }
    println!("\n{}", summary(&outcome));
    Ok(if outcome.interrupted {
        130
    } else if outcome.success() {
        0
    } else {
        1
    })
}

/// `the locks were released.` or which may remain.
fn locks_sentence(left: &BTreeMap<String, String>) -> String {
    if left.is_empty() {
        "every lock this apply took was released.".into()
    } else {
        let hosts: Vec<String> = left.iter().map(|(h, why)| format!("{h} ({why})")).collect();
        format!(
            "the lock could not be released on: {}; the next plan shows it as stale with the command that clears it.",
            hosts.join(", ")
        )
    }
}

/// [`ask`] without blocking the runtime, so Ctrl-C is heard while the question is open.
async fn ask_async(question: &'static str) -> bool {
    tokio::task::spawn_blocking(move || ask(question))
        .await
        .unwrap_or(false)
}

pub(crate) fn ask(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: stdin is not a terminal; pass --yes to apply without asking");
        return false;
    }
    print!("{question} Only `yes` is accepted: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim() == "yes"
}

/// The per-host summary after apply.
pub fn summary(outcome: &ApplyOutcome) -> String {
    let mut s = String::from("Apply summary:\n");
    for (host, o) in &outcome.report.hosts {
        let line = match o {
            HostOutcome::Converged { changes } => {
                let owed = outcome
                    .plan
                    .hosts
                    .iter()
                    .find(|h| &h.host == host)
                    .map_or(0, |h| h.owed_count());
                if owed > 0 {
                    format!(
                        "  {host}: converged ({changes} changes, {owed} owed handler{} run)",
                        if owed == 1 { "" } else { "s" }
                    )
                } else {
                    format!("  {host}: converged ({changes} changes)")
                }
            }
            HostOutcome::Unchanged => format!("  {host}: unchanged"),
            HostOutcome::Failed { step, error } => format!(
                "  {host}: FAILED in step {step}: {}",
                error.replace('\n', "\n      ")
            ),
            HostOutcome::Skipped { reason } => format!("  {host}: SKIPPED: {reason}"),
            HostOutcome::Interrupted { before_step } => {
                format!("  {host}: INTERRUPTED before step {before_step} (the steps before it ran)")
            }
        };
        s.push_str(&line);
        s.push('\n');
        if let Some(ops) = outcome.report.passed_over.get(host) {
            s.push_str(&format!(
                "    NOT CONVERGED: passed over, as the home they are in is not usable: {}\n",
                ops.join("; ")
            ));
        }
    }
    if let Some(after) = &outcome.after {
        let ready = after
            .hosts
            .iter()
            .filter(|h| h.status == crate::plan::HostStatus::Ready && h.has_work());
        for h in ready {
            if matches!(
                outcome.report.hosts.get(&h.host),
                Some(HostOutcome::Converged { .. })
            ) {
                s.push_str(&format!("  {}: still differs after apply ({} changes); run `closetctl plan --host {}`\n", h.host, h.change_count(), h.host));
            }
        }
    }
    if !outcome.verification.is_empty() {
        s.push_str("Verification:\n");
        for f in &outcome.verification {
            s.push_str(&format!(
                "  {} {}: {}\n",
                if f.ok { "ok  " } else { "FAIL" },
                f.check,
                f.detail
            ));
        }
    }
    let failed = outcome
        .report
        .hosts
        .values()
        .filter(|o| !matches!(o, HostOutcome::Converged { .. } | HostOutcome::Unchanged))
        .count();
    if outcome.interrupted {
        s.push_str(&format!(
            "Interrupted: no step started after the stop; {} Run apply again to finish (handlers still owed run then).",
            locks_sentence(&outcome.locks_left)
        ));
        return s;
    }
    if failed == 0 {
        s.push_str("All hosts converged.");
    } else {
        s.push_str(&format!("{failed} of {} hosts did not converge; the others did. Fix the cause and run apply again.", outcome.report.hosts.len()));
    }
    if !outcome.locks_left.is_empty() {
        s.push_str(&format!("\nLocks: {}", locks_sentence(&outcome.locks_left)));
    }
    s
}
