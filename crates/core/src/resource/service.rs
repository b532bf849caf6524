//! Service resource: a systemd unit that must be enabled and/or running.

use super::{Action, Change, ResourceKind};
use crate::facts::HostFacts;
use crate::ops::Op;

#[derive(Debug, Clone)]
pub struct Service {
    /// Full unit name, `munge.service`.
    pub unit: String,
    pub enabled: bool,
    pub running: bool,
}

impl Service {
    pub fn new(name: &str, enabled: bool, running: bool) -> Service {
        let unit = if name.contains('.') {
            name.to_string()
        } else {
            format!("{name}.service")
        };
        Service {
            unit,
            enabled,
            running,
        }
    }

    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        let state = facts.units.get(&self.unit).cloned().unwrap_or_default();
        let installed = state.load == "loaded";
        let mut c = Change::new(
            ResourceKind::Service,
            &self.unit,
            if installed {
                Action::Update
            } else {
                Action::Create
            },
        );
        if self.enabled && !state.is_enabled() {
            c.details.push("enable".into());
            c.ops.push(Op::Enable(self.unit.clone()));
        }
        if self.running && !state.is_running() {
            c.details.push("start".into());
            c.ops.push(Op::Start(self.unit.clone()));
        }
        if !self.running && state.is_running() {
            c.details.push("stop".into());
            c.ops.push(Op::Stop(self.unit.clone()));
        }
        if c.ops.is_empty() {
            None
        } else {
            Some(c)
        }
    }
}
