//! The command line: flags (clap), the shared loading of inventory, playbooks and
//! secrets, and the error type whose variants map to hints and exit codes.
//! Each subcommand lives in its own file.

pub mod adduser;
pub mod apply;
mod check;
pub mod completions;
pub mod deluser;
mod export;
pub mod facts;
pub mod plan;
pub mod render;
pub mod status;
pub mod tailscale;
pub mod unlock;

pub(crate) use closetctl_core::loaded::{LoadError, Loaded};

use crate::desired::DesiredError;
use crate::diagnostic::Diagnostic;
use crate::inventory::{Inventory, InventoryError};
use crate::playbook::PlaybookError;
use crate::secrets::SecretError;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Parser)]
#[command(
    name = "closetctl",
    version,
    about = "Turn a few GPU machines in a closet into one Slurm cluster, from one inventory file"
)]
pub struct Cli {
    /// More log output on stderr (repeat for more); CLOSETCTL_LOG sets a filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show, per host, what apply would change (a diff against the live hosts).
    Plan(plan::PlanArgs),
    /// Converge the hosts to the inventory, step by step.
    Apply(apply::ApplyArgs),
    /// Add a user to the inventory (keeping its comments and layout).
    Adduser(adduser::AdduserArgs),
    /// Someone leaves: disable her in the inventory (kept, never deleted) and show what apply will do.
    Deluser(deluser::DeluserArgs),
    /// Print the facts one probe gathers from each host.
    Facts(facts::FactsArgs),
    /// Render every managed file for each host into a directory.
    Render(render::RenderArgs),
    /// Preflight checks: power, cooling, network, clock, uids
    Check(check::CheckArgs),
    /// The GPU pool at a glance: nodes, GPUs allocated/free, jobs, live GPU figures (read only, any user).
    Status(status::StatusArgs),
    /// Tailscale: the tailnet policy rendered from the inventory (print or push).
    Tailscale(tailscale::TailscaleArgs),
    /// Export the cluster for other tools (a SkyPilot SSH node pool).
    Export(export::ExportArgs),
    /// Break the apply locks of applies that are gone (shows each holder, asks first).
    Unlock(unlock::UnlockArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completions(completions::CompletionsArgs),
    /// Print the man page closetctl(1), or write all pages into a directory.
    Manpage(completions::ManpageArgs),
}

/// Flags every command that reads the inventory shares.
#[derive(Debug, Clone, Args)]
pub struct InventoryArgs {
    /// The inventory file.
    #[arg(
        short = 'i',
        long = "inventory",
        env = "CLOSETCTL_INVENTORY",
        default_value = "inventory.toml"
    )]
    pub inventory: PathBuf,
}

/// Flags that select hosts.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Only these hosts (repeatable); default all.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
}

/// What apply may do to someone whose access ended, beyond locking her out.
#[derive(Debug, Clone, Default, Args)]
pub struct LeavingArgs {
    /// Cancel the active jobs of users whose access ended, so their Slurm associations
    /// can be removed (without it, apply refuses the controller and names the jobs).
    #[arg(long)]
    pub cancel_jobs: bool,
    /// End the processes and login sessions of users whose access ended.
    #[arg(long)]
    pub end_sessions: bool,
}

/// `alice: access removed on 3 hosts, 2 associations, 1 tailnet group`, one line per
/// user whose access the plan removes.
pub fn access_lines(plan: &crate::plan::Plan) -> String {
    plan.summary
        .iter()
        .map(|d| format!("{}: {}\n", d.subject, d.message))
        .collect()
}

#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Desired(#[from] DesiredError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A command will not do what was asked; the diagnostics say why, one per line.
    #[error("{}", .0.text())]
    Refused(Refusal),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why a command refuses: a sentence, the diagnostics behind it (a preflight error,
/// ...), and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub reason: String,
    pub diagnostics: Vec<Diagnostic>,
    pub hint: Option<String>,
}

impl Refusal {
    /// The reason, then each diagnostic's sentence on its own indented line.
    pub fn text(&self) -> String {
        let mut out = self.reason.clone();
        if !self.diagnostics.is_empty() {
            out.push(':');
        }
        for d in &self.diagnostics {
            out.push_str("\n  ");
            out.push_str(&d.text());
        }
        out
    }
}

impl CliError {
    /// A refusal with nothing but its reason.
    pub fn refused(reason: impl Into<String>) -> CliError {
        CliError::Refused(Refusal {
            reason: reason.into(),
            diagnostics: Vec::new(),
            hint: None,
        })
    }

    /// A separate line of advice, printed after the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Refused(r) => r.hint.clone(),
            CliError::Inventory(InventoryError::Read { .. })
            | CliError::Load(LoadError::Inventory(InventoryError::Read { .. })) => {
                Some("give the inventory with `-i FILE` or CLOSETCTL_INVENTORY; `inventory.example.toml` is a commented example".into())
            }
            CliError::Inventory(InventoryError::Invalid { .. })
            | CliError::Load(LoadError::Inventory(InventoryError::Invalid { .. })) => {
                Some("nothing was changed on any host".into())
            }
            _ => None,
        }
    }
}

pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter =
        EnvFilter::try_from_env("CLOSETCTL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Run one parsed command line; the result is the exit code.
pub async fn run(cli: Cli) -> Result<i32, CliError> {
    match cli.command {
        Command::Plan(a) => plan::run(a).await,
        Command::Apply(a) => apply::run(a).await,
        Command::Adduser(a) => adduser::run(a).await,
        Command::Deluser(a) => deluser::run(a).await,
        Command::Facts(a) => facts::run(a).await,
        Command::Render(a) => render::run(a).await,
        Command::Check(a) => check::run(a).await,
        Command::Status(a) => status::run(a).await,
        Command::Tailscale(a) => tailscale::run(a).await,
        Command::Export(a) => export::run(a).await,
        Command::Unlock(a) => unlock::run(a).await,
        Command::Completions(a) => completions::run_completions(a).await,
        Command::Manpage(a) => completions::run_manpage(a).await,
    }
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset.
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

pub fn ssh_connector(
    inventory: &Inventory,
) -> Result<std::sync::Arc<crate::transport::ssh::SshConnector>, CliError> {
    crate::transport::ssh::SshConnector::new(&inventory.ssh)
        .map(std::sync::Arc::new)
        .map_err(|source| CliError::Io {
            what: "cannot prepare the ssh configuration".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;

    #[test]
    fn a_refusal_keeps_its_diagnostics_and_shows_each_on_its_line() {
        let over = Diagnostic::error(Code::CircuitLoad, "wall", "circuit `wall` is over budget")
            .hint("the breaker will trip");
        let e = CliError::Refused(Refusal {
            reason: "the closet is over its power or cooling budget".into(),
            diagnostics: vec![over.clone()],
            hint: Some("pass --force to apply anyway".into()),
        });
        assert_eq!(
            e.to_string(),
            "the closet is over its power or cooling budget:\n  circuit `wall` is over budget; the breaker will trip"
        );
        assert_eq!(e.hint().as_deref(), Some("pass --force to apply anyway"));
        let CliError::Refused(r) = &e else {
            unreachable!()
        };
        assert_eq!(r.diagnostics, [over]);
        assert_eq!(CliError::refused("no").to_string(), "no");
    }
}
