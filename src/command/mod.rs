//! The command line: flags (clap), the shared loading of inventory, playbooks and
//! secrets, and the error type whose variants map to hints and exit codes.
//! Each subcommand lives in its own file.

pub mod adduser;
pub mod apply;
mod check;
pub mod completions;
mod export;
pub mod facts;
pub mod plan;
pub mod render;
pub mod tailscale;
pub mod unlock;

pub use apply::{apply_with, ApplyOptions, ApplyOutcome};
pub use plan::plan_with;

use crate::desired::{DesiredError, Inputs, Secrets};
use crate::inventory::{Inventory, InventoryError};
use crate::playbook::{PlaybookError, Playbooks};
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
    /// Print the facts one probe gathers from each host.
    Facts(facts::FactsArgs),
    /// Render every managed file for each host into a directory.
    Render(render::RenderArgs),
    /// Preflight checks: power, cooling, network, clock, uids
    Check(check::CheckArgs),
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
    #[error("unknown host `{0}`: it is not in the inventory")]
    UnknownHost(String),
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// A separate line of advice, printed after the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Inventory(InventoryError::Read { .. }) => {
                Some("give the inventory with `-i FILE` or CLOSETCTL_INVENTORY; `inventory.example.toml` is a commented example".into())
            }
            CliError::Inventory(InventoryError::Invalid { .. }) => Some("nothing was changed on any host".into()),
            _ => None,
        }
    }
}

/// Inventory, playbooks and secrets, loaded and validated before any host is contacted.
pub struct Loaded {
    pub inventory: Inventory,
    pub playbooks: Playbooks,
    pub secrets: Secrets,
}

impl Loaded {
    pub fn load(path: &std::path::Path) -> Result<Loaded, CliError> {
        let inventory = Inventory::load(path)?;
        let extra = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let playbooks = Playbooks::load(Some(extra))?;
        let steps: Vec<&str> = playbooks.steps.iter().map(|s| s.name.as_str()).collect();
        if let Some(name) = inventory
            .timeouts
            .steps
            .keys()
            .find(|n| !steps.contains(&n.as_str()))
        {
            return Err(CliError::Refused(format!(
                "inventory `{}`: [timeouts.steps] names `{name}`, which no playbook has (steps: {}); nothing was changed",
                path.display(),
                steps.join(", ")
            )));
        }
        let names = crate::desired::secrets_needed(&inventory, &playbooks);
        let mut secrets = crate::secrets::load(&inventory.cluster.secrets_dir, &names)?;
        // The Tailscale auth key: from its own file or variable, only when the step runs.
        // A key that is not there is no error here: the plan shows where to put it and
        // apply refuses only the steps that need it (see `concerns::tailscale::node`).
        if let Some(ts) = inventory
            .tailscale
            .as_ref()
            .filter(|_| crate::concerns::tailscale::step_applies(&inventory, &playbooks))
        {
            let name = crate::concerns::tailscale::enrollment::SECRET_NAME;
            match crate::secrets::load_external(
                name,
                ts.auth_key_file.as_deref(),
                ts.auth_key_env.as_deref(),
            ) {
                Ok(key) => {
                    secrets.insert(name.to_string(), key);
                }
                Err(e) if crate::secrets::is_absent(&e) => {
                    tracing::info!(secret = %name, "not there; steps that need it will be refused: {e}");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Loaded {
            inventory,
            playbooks,
            secrets,
        })
    }

    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            inventory: &self.inventory,
            playbooks: &self.playbooks,
            secrets: &self.secrets,
        }
    }

    /// The selected hosts (all when `names` is empty); unknown names are errors.
    pub fn select(&self, names: &[String]) -> Result<Vec<crate::inventory::Host>, CliError> {
        for n in names {
            if self.inventory.host(n).is_none() {
                return Err(CliError::UnknownHost(n.clone()));
            }
        }
        Ok(self
            .inventory
            .hosts
            .iter()
            .filter(|h| names.is_empty() || names.contains(&h.name))
            .cloned()
            .collect())
    }

    /// The step names in run order.
    pub fn step_order(&self) -> Vec<String> {
        self.playbooks
            .steps
            .iter()
            .map(|s| s.name.clone())
            .collect()
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
        Command::Facts(a) => facts::run(a).await,
        Command::Render(a) => render::run(a).await,
        Command::Check(a) => check::run(a).await,
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
