//! `closetctl apply`: plan (taking each host's apply lock in the same probe), show the
//! plan, ask, carry it out step by step, release the locks, verify with a fresh plan,
//! and summarise per host. Exit 0 only when every selected host converged.

use super::{CliError, HostArgs, InventoryArgs, Loaded};
use crate::engine::{self, ApplyReport, HostOutcome};
use crate::plan::{render, Plan};
use crate::report::Reporter;
use crate::transport::Connector;
use crate::verify::{self, Finding};
use clap::Args;
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
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
}

/// What an apply did: the plan it ran, the per-host outcome, and the plan after it.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    pub plan: Plan,
    pub report: ApplyReport,
    pub after: Option<Plan>,
    /// Checks with the cluster's own tools after apply (MUNGE across hosts, Slurm nodes).
    pub verification: Vec<Finding>,
}

impl ApplyOutcome {
    pub fn success(&self) -> bool {
        self.report.all_ok()
            && self.after.as_ref().is_none_or(|p| !p.has_changes())
            && self.verification.iter().all(|f| f.ok)
    }
}

/// How long to wait for Slurm nodes to come up after apply.
pub const NODE_WAIT_SECONDS: u32 = 120;

/// Plan with the lock, run `confirm` on the plan, apply, unlock, verify.
pub async fn apply_with<C: Connector + 'static>(
    connector: Arc<C>,
    loaded: &Loaded,
    options: &ApplyOptions,
    reporter: &Reporter,
    confirm: impl FnOnce(&Plan) -> bool,
) -> Result<ApplyOutcome, CliError> {
    let holder = engine::lock_holder();
    let (plan, facts, connections) = super::plan_with(
        connector.clone(),
        loaded,
        &options.hosts,
        Some(holder),
        None,
    )
    .await?;
    if !plan.has_changes() || !confirm(&plan) {
        engine::unlock(&facts, &connections).await;
        let report = ApplyReport::before(&empty_of(&plan));
        return Ok(ApplyOutcome {
            plan,
            report,
            after: None,
            verification: Vec::new(),
        });
    }
    // Steps that need a missing secret are refused; every other step runs.
    let mut report = engine::apply(
        &plan.runnable(),
        &loaded.step_order(),
        &connections,
        Some(reporter.sender()),
    )
    .await;
    refuse(&mut report, &plan.refused_steps());
    engine::unlock(&facts, &connections).await;
    drop(connections);
    let (after, after_facts, connections) =
        super::plan_with(connector, loaded, &options.hosts, None, None).await?;
    let mut verification = Vec::new();
    if options.verify {
        verification.extend(verify::munge(&loaded.inventory, &connections).await);
        if let Some(ctx) = crate::modules::slurm::context(&loaded.inventory, &after_facts) {
            verification.extend(
                verify::slurm(&ctx, &loaded.inventory, &connections, NODE_WAIT_SECONDS).await,
            );
        }
    }
    Ok(ApplyOutcome {
        plan,
        report,
        after: Some(after),
        verification,
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
    let options = ApplyOptions {
        hosts: args.hosts.hosts,
        verify: true,
    };
    let mut declined = false;
    let outcome = apply_with(connector, &loaded, &options, &reporter, |plan| {
        print!("{}", render::text(plan, style));
        if yes {
            return true;
        }
        let ok = ask("Apply these changes?");
        declined = !ok;
        ok
    })
    .await?;
    reporter.finish().await;
    if !outcome.plan.has_changes() {
        print!("{}", render::text(&outcome.plan, style));
        println!("Nothing to apply.");
        return Ok(if outcome.plan.has_blockers() { 1 } else { 0 });
    }
    if declined {
        println!("Nothing was changed.");
        return Ok(1);
    }
    println!("\n{}", summary(&outcome));
    Ok(if outcome.success() { 0 } else { 1 })
}

fn ask(question: &str) -> bool {
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
                format!("  {host}: converged ({changes} changes)")
            }
            HostOutcome::Unchanged => format!("  {host}: unchanged"),
            HostOutcome::Failed { step, error } => format!(
                "  {host}: FAILED in step {step}: {}",
                error.replace('\n', "\n      ")
            ),
            HostOutcome::Skipped { reason } => format!("  {host}: SKIPPED: {reason}"),
        };
        s.push_str(&line);
        s.push('\n');
    }
    if let Some(after) = &outcome.after {
        let ready = after
            .hosts
            .iter()
            .filter(|h| h.status == crate::plan::HostStatus::Ready && h.change_count() > 0);
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
    if failed == 0 {
        s.push_str("All hosts converged.");
    } else {
        s.push_str(&format!("{failed} of {} hosts did not converge; the others did. Fix the cause and run apply again.", outcome.report.hosts.len()));
    }
    s
}
