//! The users module: the inventory's groups and users, the same on every host.
//!
//! Groups come before users; each user gets their home (where `/home` is local: on
//! every host without NFS, on the NFS server with it) and `~/.ssh/authorized_keys`.
//! Before anything changes, [`conflicts`] compares the inventory with the live
//! accounts: a UID or GID held by another name, or an account with another ID, is a
//! conflict. closetctl never renumbers an account (files on NFS would be orphaned).
//!
//! A home belongs to its user, so what closetctl puts inside it (`~/.ssh` and its
//! keys) is written *as that user* ([`Actor::Owner`]); only the home directory itself,
//! in root's `/home`, is made by root. A `~/.ssh` that is a symbolic link is never
//! used: that user's keys are left out (and [`warnings`] names her) while everyone
//! else's are installed.

pub mod ids;

use ids::{id_state, IdState};

use crate::diagnostic::{Code, Diagnostic};
use crate::facts::{FileKind, HostFacts};
use crate::inventory::{Host, Inventory, User};
use crate::ops::Actor;
use crate::resource::{Directory, File, Resource, UserAccount};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The `users` concern: groups, accounts, homes and SSH keys.
pub struct Users;

impl super::Concern for Users {
    fn name(&self) -> &'static str {
        "users"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[("10-users.toml", include_str!("10-users.toml"))]
    }
    fn modules(&self) -> &'static [&'static str] {
        &["users"]
    }
    fn resources(&self, _module: &str, i: &super::HostInputs) -> Vec<Resource> {
        resources(i.inventory, i.host, i.facts)
    }
    fn host_warnings(&self, inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        warnings(inventory, host, facts)
    }
    fn conflicts(&self, inventory: &Inventory, _host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        conflicts(inventory, facts)
    }
    fn unmanaged(&self, inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
        unmanaged(inventory, facts)
    }
}

/// `~/.ssh` of a user.
fn ssh_dir(user: &User) -> String {
    format!("{}/.ssh", user.home)
}

/// Why a user's `~/.ssh` cannot be used on this host, if it cannot: her home or
/// `~/.ssh` is a link, `~/.ssh` is not a directory or not hers, `authorized_keys` is
/// not a file. closetctl does not work around any of these as root; she (or an admin)
/// fixes it, and her keys are installed by the next apply.
fn unusable_ssh_dir(user: &User, facts: &HostFacts) -> Option<String> {
    let ssh = ssh_dir(user);
    let keys = format!("{ssh}/authorized_keys");
    let state = |p: &str| facts.files.get(p);
    for p in [&user.home, &ssh] {
        if state(p).is_some_and(|f| f.kind == FileKind::Symlink) {
            return Some(format!("`{p}` is a symbolic link"));
        }
    }
    match state(&ssh) {
        Some(f) if f.kind != FileKind::Directory => {
            return Some(format!("`{ssh}` is not a directory"))
        }
        Some(f) if f.owner != user.name => {
            return Some(format!("`{ssh}` belongs to `{}`, not to her", f.owner))
        }
        _ => {}
    }
    match state(&keys) {
        Some(f) if !matches!(f.kind, FileKind::File | FileKind::Symlink) => {
            Some(format!("`{keys}` is not a file"))
        }
        _ => None,
    }
}

/// `facts` is `None` while the probe request is built: every path is asked for.
pub fn resources(inventory: &Inventory, host: &Host, facts: Option<&HostFacts>) -> Vec<Resource> {
    let groups = inventory.managed_groups();
    // One set shared by every user's resource (cloning it per user per host was a third
    // of a 500-host plan).
    let managed: Arc<BTreeSet<String>> = Arc::new(groups.iter().map(|g| g.name.clone()).collect());
    let local_home = inventory.home_is_local(host);
    let mut out: Vec<Resource> = groups
        .iter()
        .map(|g| Resource::Group {
            name: g.name.clone(),
            gid: g.gid,
        })
        .collect();
    for u in &inventory.users {
        out.push(Resource::User(UserAccount {
            name: u.name.clone(),
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            shell: u.shell.clone(),
            home: u.home.clone(),
            comment: u.comment.clone().unwrap_or_default(),
            create_home: local_home,
            managed_groups: managed.clone(),
        }));
        if !local_home {
            continue;
        }
        out.push(Resource::Directory(Directory {
            path: u.home.clone(),
            owner: u.name.clone(),
            group: u.primary_group.clone(),
            mode: 0o700,
            actor: Actor::Root,
        }));
        if u.ssh_keys.is_empty() || facts.is_some_and(|f| unusable_ssh_dir(u, f).is_some()) {
            continue;
        }
        let ssh_dir = ssh_dir(u);
        out.push(Resource::Directory(Directory {
            path: ssh_dir.clone(),
            owner: u.name.clone(),
            group: u.primary_group.clone(),
            mode: 0o700,
            actor: Actor::Owner,
        }));
        let mut content =
            String::from("# Managed by closetctl from the inventory; local edits are replaced.\n");
        for k in &u.ssh_keys {
            content.push_str(k);
            content.push('\n');
        }
        out.push(Resource::File(File {
            path: format!("{ssh_dir}/authorized_keys"),
            owner: u.name.clone(),
            group: u.primary_group.clone(),
            mode: 0o600,
            content: content.into_bytes(),
            secret: None,
            disruption: None,
            actor: Actor::Owner,
        }));
    }
    out
}

/// Users whose keys are left out on this host because their `~/.ssh` cannot be used
/// (see `unusable_ssh_dir`).
pub fn warnings(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    if !inventory.home_is_local(host) {
        return Vec::new();
    }
    inventory
        .users
        .iter()
        .filter(|u| !u.ssh_keys.is_empty())
        .filter_map(|u| {
            let why = unusable_ssh_dir(u, facts)?;
            Some(
                Diagnostic::warning(Code::SshDirUnusable, &u.name, format!("user `{}`: {why}", u.name))
                    .hint("closetctl does not work around it as root, so her SSH keys are not installed here until `~/.ssh` is her own directory"),
            )
        })
        .collect()
}

/// Accounts on the host that contradict the inventory (see [`ids`] for the rule).
pub fn conflicts(inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let groups = facts.groups.iter().map(|(n, e)| (n.as_str(), e.gid));
    for g in inventory.managed_groups() {
        match id_state(&g.name, g.gid, groups.clone()) {
            IdState::OtherId(have) => out.push(Diagnostic::error(
                Code::GidConflict,
                &g.name,
                format!(
                    "group `{}` has gid {have} here; the inventory says {}",
                    g.name, g.gid
                ),
            )),
            IdState::HeldBy(holder) => out.push(Diagnostic::error(
                Code::GidTaken,
                &g.name,
                format!(
                    "gid {} for group `{}` is already held here by group `{holder}`",
                    g.gid, g.name
                ),
            )),
            IdState::Same | IdState::Missing => {}
        }
    }
    let users = facts.users.iter().map(|(n, e)| (n.as_str(), e.uid));
    for u in &inventory.users {
        match id_state(&u.name, u.uid, users.clone()) {
            IdState::OtherId(have) => out.push(Diagnostic::error(
                Code::UidConflict,
                &u.name,
                format!(
                    "user `{}` has uid {have} here; the inventory says {} (closetctl will not renumber it: files owned by {have} would be orphaned)",
                    u.name, u.uid
                ),
            )),
            IdState::HeldBy(holder) => out.push(Diagnostic::error(
                Code::UidTaken,
                &u.name,
                format!(
                    "uid {} for user `{}` is already held here by user `{holder}`",
                    u.uid, u.name
                ),
            )),
            IdState::Same | IdState::Missing => {}
        }
    }
    out
}

/// People accounts on the host (UID in the managed range) that the inventory lacks.
pub fn unmanaged(inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
    facts
        .users
        .iter()
        .filter(|(name, e)| {
            e.uid >= inventory.cluster.id_min && e.uid < 60000 && inventory.user(name).is_none()
        })
        .map(|(name, e)| {
            Diagnostic::info(
                Code::UnmanagedUser,
                name,
                format!("user `{name}` (uid {}) is not in the inventory", e.uid),
            )
            .hint("left as is")
        })
        .collect()
}
