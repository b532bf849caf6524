//! `closetctl plan`: gather facts from every host at once and show what apply would
//! change. `--detailed-exitcode` exits 2 when there are changes (Terraform's rule).

use super::{CliError, HostArgs, InventoryArgs, Loaded};
use crate::desired::probe_request;
use crate::engine::{self, Connections, Events};
use crate::facts::probe::ProbeRequest;
use crate::facts::ClusterFacts;
use crate::plan::{self, render, Plan};
use crate::transport::Connector;
use clap::Args;
use std::collections::BTreeMap;
use std::sync::Arc;

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
}

/// One probe request per inventory host. Templates may read any host's facts
/// (slurm.conf lists every node), so every host is probed, but only the selected ones
/// take the lock.
pub fn probe_requests(
    loaded: &Loaded,
    hosts: &[String],
    lock: Option<crate::lock::Owner>,
) -> Result<BTreeMap<String, ProbeRequest>, CliError> {
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
) -> Result<(Plan, ClusterFacts, Connections<C::Conn>), CliError> {
    let requests = probe_requests(loaded, hosts, lock)?;
    let limit = std::time::Duration::from_secs(loaded.inventory.timeouts.probe_secs.into());
    let (connections, facts) =
        engine::gather_with(connector, &loaded.inventory.hosts, requests, events, limit).await;
    let plan = plan::plan(&loaded.inputs(), &facts, hosts);
    Ok((plan, facts, connections))
}

pub async fn run(args: PlanArgs) -> Result<i32, CliError> {
    let loaded = Loaded::load(&args.inventory.inventory)?;
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
    }
    Ok(exit_code(&plan, args.detailed_exitcode))
}

/// 1 when any host could not be planned; else 2 for changes with `--detailed-exitcode`.
pub fn exit_code(plan: &Plan, detailed: bool) -> i32 {
    if plan.has_blockers() {
        1
    } else if detailed && plan.has_changes() {
        2
    } else {
        0
    }
}
