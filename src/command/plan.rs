//! `closetctl plan`: gather facts from every host at once and show what apply would
//! change. Exit 1 when apply would refuse something; `--detailed-exitcode` exits 2
//! when there are changes (Terraform's rule).

use super::{CliError, HostArgs, InventoryArgs, Loaded};
use crate::plan::{render, Plan};
use clap::Args;
use closetctl_exec::orchestrate::plan_with;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Print the plan as JSON (schema in docs/plan-json.md).
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan as `apply` with these flags would.
    #[command(flatten)]
    pub leaving: super::LeavingArgs,
}

pub async fn run(args: PlanArgs) -> Result<i32, CliError> {
    let mut loaded = Loaded::load(&args.inventory.inventory)?;
    loaded.allow(args.leaving.cancel_jobs, args.leaving.end_sessions);
    let connector = super::ssh_connector(&loaded.inventory)?;
    let (plan, _, _) = plan_with(connector, &loaded, &args.hosts.hosts, None, None).await?;
    if args.json {
        println!("{}", render::json(&plan));
    } else {
        print!(
            "{}",
            render::text(
                &plan,
                render::Style {
                    color: super::use_color()
                }
            )
        );
        print!("{}", super::access_lines(&plan));
    }
    Ok(exit_code(&plan, args.detailed_exitcode))
}

/// 1 when apply would refuse something (a preflight error, a conflict, a host that
/// could not be planned: [`Plan::apply_refuses`], the rule apply follows); else 2 for
/// changes with `--detailed-exitcode`.
pub fn exit_code(plan: &Plan, detailed: bool) -> i32 {
    if plan.apply_refuses() {
        1
    } else if detailed && plan.has_changes() {
        2
    } else {
        0
    }
}
