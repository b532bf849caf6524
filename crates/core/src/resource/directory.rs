//! Directory resource: a directory with owner, group and mode.

use super::{attribute_details, mode_text, Action, Change, ResourceKind};
use crate::facts::{FileKind, HostFacts};
use crate::ops::{Actor, Op};

#[derive(Debug, Clone)]
pub struct Directory {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: u32,
    /// Root, or the owner for a directory inside her own home.
    pub actor: Actor,
}

impl Directory {
    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        let op = Op::Directory {
            path: self.path.clone(),
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode,
            actor: self.actor,
        };
        let mut c = match facts.files.get(&self.path) {
            None => {
                let mut c = Change::new(ResourceKind::Directory, &self.path, Action::Create);
                c.details.push(format!(
                    "{}:{} {}",
                    self.owner,
                    self.group,
                    mode_text(self.mode)
                ));
                c
            }
            Some(current) if current.kind != FileKind::Directory => {
                let mut c = Change::new(ResourceKind::Directory, &self.path, Action::Update);
                c.details.push(format!("exists but is a {:?}, not a directory: apply will fail until it is moved away", current.kind).to_lowercase());
                c
            }
            Some(current) => {
                let details = attribute_details(&self.owner, &self.group, self.mode, current);
                if details.is_empty() {
                    return None;
                }
                let mut c = Change::new(ResourceKind::Directory, &self.path, Action::Update);
                c.details = details;
                c
            }
        };
        c.ops.push(op);
        Some(c)
    }
}
