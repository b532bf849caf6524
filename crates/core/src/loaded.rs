//! Everything closetctl reads before it contacts a host: the inventory, the playbooks
//! (built in, plus a lab's own beside the inventory) and the secrets the steps need,
//! loaded and validated as one. Local files only; nothing reaches a host.

use crate::desired::{Inputs, Secrets};
use crate::inventory::{Inventory, InventoryError};
use crate::playbook::{PlaybookError, Playbooks};
use crate::secrets::SecretError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("inventory `{}`: [timeouts.steps] names `{name}`, which no playbook has (steps: {steps}); nothing was changed", path.display())]
    UnknownTimeoutStep {
        path: PathBuf,
        name: String,
        steps: String,
    },
    #[error("unknown host `{0}`: it is not in the inventory")]
    UnknownHost(String),
}

/// Inventory, playbooks and secrets, loaded and validated before any host is contacted.
pub struct Loaded {
    pub inventory: Inventory,
    pub playbooks: Playbooks,
    pub secrets: Secrets,
}

impl Loaded {
    pub fn load(path: &std::path::Path) -> Result<Loaded, LoadError> {
        let mut inventory = Inventory::load(path)?;
        inventory.run.today = Some(today());
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
            return Err(LoadError::UnknownTimeoutStep {
                path: path.to_path_buf(),
                name: name.clone(),
                steps: steps.join(", "),
            });
        }
        let names = crate::desired::secrets_needed(&inventory, &playbooks);
        let mut secrets = crate::secrets::load(&inventory.cluster.secrets_dir, &names)?;
        crate::concerns::load_secrets(&inventory, &playbooks, &mut secrets)?;
        Ok(Loaded {
            inventory,
            playbooks,
            secrets,
        })
    }

    /// Set the run's flags for a leaving user's jobs and sessions.
    pub fn allow(&mut self, cancel_jobs: bool, end_sessions: bool) {
        self.inventory.run.cancel_jobs = cancel_jobs;
        self.inventory.run.end_sessions = end_sessions;
    }

    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            inventory: &self.inventory,
            playbooks: &self.playbooks,
            secrets: &self.secrets,
        }
    }

    /// The selected hosts (all when `names` is empty); unknown names are errors.
    pub fn select(&self, names: &[String]) -> Result<Vec<crate::inventory::Host>, LoadError> {
        for n in names {
            if self.inventory.host(n).is_none() {
                return Err(LoadError::UnknownHost(n.clone()));
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

/// Today on this machine's clock, in days since 1970-01-01 (UTC): the day account
/// expiries are judged against.
pub fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}
