//! User resource: an account with a fixed UID, primary GID, supplementary groups,
//! shell, home and comment.
//!
//! Only membership of groups closetctl manages is changed; other memberships a local
//! admin added (say `docker`) are kept. A UID mismatch is never fixed here: the users
//! module reports it as a conflict before planning.

use super::{Action, Change, ResourceKind};
use crate::facts::HostFacts;
use crate::ops::Op;
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct UserAccount {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<String>,
    pub shell: String,
    pub home: String,
    pub comment: String,
    /// Whether useradd creates the home (false where /home is an NFS mount).
    pub create_home: bool,
    /// Every group closetctl manages, to leave other memberships alone.
    pub managed_groups: Arc<BTreeSet<String>>,
}

impl UserAccount {
    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        let Some(current) = facts.users.get(&self.name) else {
            let mut c = Change::new(ResourceKind::User, &self.name, Action::Create);
            c.details
                .push(format!("uid {}, gid {}", self.uid, self.gid));
            if !self.groups.is_empty() {
                c.details.push(format!("groups {}", self.groups.join(",")));
            }
            c.details
                .push(format!("home {}, shell {}", self.home, self.shell));
            c.ops.push(Op::UserAdd {
                name: self.name.clone(),
                uid: self.uid,
                gid: self.gid,
                groups: self.groups.clone(),
                shell: self.shell.clone(),
                home: self.home.clone(),
                comment: self.comment.clone(),
                create_home: self.create_home,
            });
            return Some(c);
        };
        let current_groups: BTreeSet<String> = facts
            .groups
            .iter()
            .filter(|(_, g)| g.members.contains(&self.name))
            .map(|(n, _)| n.clone())
            .collect();
        let desired_groups: BTreeSet<String> = current_groups
            .iter()
            .filter(|g| !self.managed_groups.contains(*g))
            .cloned()
            .chain(self.groups.iter().cloned())
            .collect();
        let mut details = Vec::new();
        if current.gid != self.gid {
            details.push(format!("gid {} -> {}", current.gid, self.gid));
        }
        if current_groups != desired_groups {
            let show = |s: &BTreeSet<String>| {
                if s.is_empty() {
                    "(none)".to_string()
                } else {
                    s.iter().cloned().collect::<Vec<_>>().join(",")
                }
            };
            details.push(format!(
                "groups {} -> {}",
                show(&current_groups),
                show(&desired_groups)
            ));
        }
        if current.shell != self.shell {
            details.push(format!("shell {} -> {}", current.shell, self.shell));
        }
        if current.home != self.home {
            details.push(format!("home {} -> {}", current.home, self.home));
        }
        if current.gecos != self.comment {
            details.push(format!("comment `{}` -> `{}`", current.gecos, self.comment));
        }
        if details.is_empty() {
            return None;
        }
        let mut c = Change::new(ResourceKind::User, &self.name, Action::Update);
        c.details = details;
        c.ops.push(Op::UserMod {
            name: self.name.clone(),
            gid: self.gid,
            groups: desired_groups.into_iter().collect(),
            shell: self.shell.clone(),
            home: self.home.clone(),
            comment: self.comment.clone(),
        });
        Some(c)
    }
}
