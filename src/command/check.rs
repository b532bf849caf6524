//! `closetctl check [power|cooling|network|clock|uids|all]`: preflight checks of the
//! closet itself (breakers, cooling, links and node names, clocks, account IDs) before and
//! after apply.
//!
//! Power and cooling need only the inventory; network, clock and uids (and `--live`)
//! gather facts with one probe per host. `--offline` runs only what needs no host.
//! Exit 0 when nothing is an error (warnings allowed), 1 otherwise. The logic lives in
//! [`crate::check`]; this file parses flags and runs the selected checks, gathering
//! facts ([`gather`]) only when one needs them, and prints the report ([`render`]).

mod gather;
mod render;
mod table;

pub use gather::check_with;
pub use render::{json, text};

use super::{CliError, InventoryArgs};
use crate::check::{self, CheckKind, Report, Severity};
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use crate::plan::render::Style;
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Which check to run.
    #[arg(value_enum, default_value_t = Which::All)]
    pub which: Which,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Contact the hosts for power and cooling: the GPUs' enforced power limits
    /// (nvidia-smi power.limit) replace the table figures; the current draw is shown.
    #[arg(long)]
    pub live: bool,
    /// Print the report as JSON (schema in docs/check-json.md).
    #[arg(long)]
    pub json: bool,
    /// Never contact a host: run only power and cooling (with `all`).
    #[arg(long, conflicts_with = "live")]
    pub offline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// Worst-case load per circuit against 80 % of the breaker.
    Power,
    /// Heat of all hosts against the `[cooling]` capacity.
    Cooling,
    /// Link speed of each host's cluster interface, and the compute nodes' names as the
    /// login host resolves them (contacts the hosts).
    Network,
    /// Clock skew between the hosts against MUNGE's TTL (contacts the hosts).
    Clock,
    /// Inventory users and groups on every host (contacts the hosts).
    Uids,
    /// Accounts whose `expires` day is within 30 days (or past).
    Users,
    /// All of them.
    All,
}

impl Which {
    /// The checks to run, in order.
    pub fn checks(self, offline: bool) -> Vec<CheckKind> {
        let all = CheckKind::ALL.to_vec();
        match self {
            Which::Power => vec![CheckKind::Power],
            Which::Cooling => vec![CheckKind::Cooling],
            Which::Network => vec![CheckKind::Network],
            Which::Clock => vec![CheckKind::Clock],
            Which::Uids => vec![CheckKind::Uids],
            Which::Users => vec![CheckKind::Users],
            Which::All if offline => all.into_iter().filter(|k| !k.needs_facts()).collect(),
            Which::All => all,
        }
    }
}

pub async fn run(args: CheckArgs) -> Result<i32, CliError> {
    let mut inventory = Inventory::load(&args.inventory.inventory)?;
    inventory.run.today = Some(closetctl_core::loaded::today());
    let checks = args.which.checks(args.offline);
    if args.offline {
        if let Some(k) = checks.iter().find(|k| k.needs_facts()) {
            return Err(CliError::refused(format!(
                "`check {}` needs facts from the hosts; it cannot run with --offline",
                k.as_str()
            )));
        }
    }
    let needs_facts = args.live || checks.iter().any(|k| k.needs_facts());
    let report = if needs_facts {
        match super::ssh_connector(&inventory) {
            Ok(connector) => check_with(connector, &inventory, &checks, args.live).await,
            Err(e) => {
                // Still run the offline checks: every host counts as unreachable.
                let facts = ClusterFacts {
                    hosts: BTreeMap::new(),
                    unreachable: inventory
                        .hosts
                        .iter()
                        .map(|h| (h.name.clone(), e.to_string()))
                        .collect(),
                };
                check::run(&inventory, &checks, Some(&facts), args.live)
            }
        }
    } else {
        check::run(&inventory, &checks, None, false)
    };
    if args.json {
        println!("{}", json(&report));
    } else {
        print!(
            "{}",
            text(
                &report,
                Style {
                    color: super::use_color()
                }
            )
        );
    }
    Ok(exit_code(&report))
}

/// 1 when any finding is an error, else 0.
pub fn exit_code(report: &Report) -> i32 {
    i32::from(report.severity == Severity::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_all_runs_only_power_and_cooling() {
        assert_eq!(
            Which::All.checks(true),
            vec![CheckKind::Power, CheckKind::Cooling]
        );
        assert_eq!(Which::All.checks(false).len(), 5);
    }
}
