//! `closetctl apply`: plan (with nothing to apply it stops there, having taken no lock;
//! `--verify` still checks MUNGE and Slurm), otherwise plan again taking each host's
//! apply lock in that probe, show the plan, ask, carry it out step by step, release the
//! locks, verify with a fresh plan, and summarise per host. Exit 0 only when every
//! selected host converged.

use super::{CliError, HostArgs, InventoryArgs, Loaded, Refusal};
use crate::diagnostic::{self, Diagnostic, Form};
use crate::engine::HostOutcome;
use crate::interrupt::Stop;
use crate::plan::render;
use crate::report::Reporter;
use clap::Args;
use closetctl_exec::orchestrate::{apply_asking, ApplyOptions, ApplyOutcome};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::pin::Pin;

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
    #[command(flatten)]
    pub leaving: super::LeavingArgs,
    /// Verify with the cluster's own tools (MUNGE across hosts, Slurm's nodes) even when
    /// nothing changed; after a change they always run.
    #[arg(long)]
    pub verify: bool,
}

pub async fn run(args: ApplyArgs) -> Result<i32, CliError> {
    let mut loaded = Loaded::load(&args.inventory.inventory)?;
    loaded.allow(args.leaving.cancel_jobs, args.leaving.end_sessions);
    // The same rule as `plan`'s exit code (`Plan::apply_refuses`), before any host is
    // contacted: the preflight errors power and cooling find in the inventory.
    let preflight = crate::check::offline_findings(&loaded.inventory);
    let over: Vec<Diagnostic> = crate::plan::refusing(&preflight)
        .into_iter()
        .cloned()
        .collect();
    if !over.is_empty() {
        let refusal = Refusal {
            reason: "the closet is over its power or cooling budget".into(),
            diagnostics: over,
            hint: Some("fix the inventory or the closet, or pass --force to apply anyway".into()),
        };
        if !args.force {
            return Err(CliError::Refused(refusal));
        }
        eprintln!("warning: applying with --force although the closet is over budget:");
        for d in &refusal.diagnostics {
            eprintln!("  {}", d.text());
        }
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
        verify_unchanged: args.verify,
        owner: None,
        stop,
    };
    let outcome = apply_asking(
        connector,
        &loaded,
        &options,
        Some(reporter.sender()),
        |plan| {
            print!("{}", render::text(plan, style));
            let answer: Pin<Box<dyn Future<Output = bool> + Send>> = if yes {
                Box::pin(std::future::ready(true))
            } else {
                Box::pin(ask_async("Apply these changes?"))
            };
            answer
        },
    )
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
        let failed = print_verification(&outcome.verification);
        return Ok(if outcome.plan.has_blockers() || failed {
            1
        } else {
            0
        });
    }
    if !outcome.confirmed {
        println!("Nothing was changed.");
        return Ok(1);
    }
    println!("\n{}", summary(&outcome));
    print!("{}", super::access_lines(&outcome.plan));
    Ok(if outcome.interrupted {
        130
    } else if outcome.success() {
        0
    } else {
        1
    })
}

/// `apply --verify` with nothing to apply: the checks' lines; whether one failed.
fn print_verification(verification: &[Diagnostic]) -> bool {
    if verification.is_empty() {
        return false;
    }
    println!("Verification:");
    for f in verification {
        println!(
            "  {}",
            diagnostic::line(f, Form::Verify, render::Style::plain())
        );
    }
    verification
        .iter()
        .any(|f| f.severity == crate::diagnostic::Severity::Error)
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
                "  {}\n",
                diagnostic::line(f, Form::Verify, render::Style::plain())
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
