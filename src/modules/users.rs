//! The users module: the inventory's groups and users, the same on every host.
//!
//! Groups come before users; each user gets their home (where `/home` is local: on
//! every host without NFS, on the NFS server with it) and `~/.ssh/authorized_keys`.
//! Before anything changes, [`conflicts`] compares the inventory with the live
//! accounts: a UID or GID held by another name, or an account with another ID, is a
//! conflict. closetctl never renumbers an account (files on NFS would be orphaned).

use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory};
use crate::resource::{Directory, File, Resource, UserAccount};
use std::collections::BTreeSet;

pub fn resources(inventory: &Inventory, host: &Host) -> Vec<Resource> {
    let groups = inventory.managed_groups();
    let managed: BTreeSet<String> = groups.iter().map(|g| g.name.clone()).collect();
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
        }));
        if !u.ssh_keys.is_empty() {
            let ssh_dir = format!("{}/.ssh", u.home);
            out.push(Resource::Directory(Directory {
                path: ssh_dir.clone(),
                owner: u.name.clone(),
                group: u.primary_group.clone(),
                mode: 0o700,
            }));
            let mut content = String::from(
                "# Managed by closetctl from the inventory; local edits are replaced.\n",
            );
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
            }));
        }
    }
    out
}

/// Accounts on the host that contradict the inventory.
pub fn conflicts(inventory: &Inventory, facts: &HostFacts) -> Vec<String> {
    let mut out = Vec::new();
    for g in inventory.managed_groups() {
        match facts.groups.get(&g.name) {
            Some(live) if live.gid != g.gid => out.push(format!(
                "group `{}` has gid {} here; the inventory says {}",
                g.name, live.gid, g.gid
            )),
            Some(_) => {}
            None => {
                if let Some((holder, _)) = facts.groups.iter().find(|(_, e)| e.gid == g.gid) {
                    out.push(format!(
                        "gid {} for group `{}` is already held here by group `{holder}`",
                        g.gid, g.name
                    ));
                }
            }
        }
    }
    for u in &inventory.users {
        match facts.users.get(&u.name) {
            Some(live) if live.uid != u.uid => out.push(format!(
                "user `{}` has uid {} here; the inventory says {} (closetctl will not renumber it: files owned by {} would be orphaned)",
                u.name, live.uid, u.uid, live.uid
            )),
            Some(_) => {}
            None => {
                if let Some((holder, _)) = facts.users.iter().find(|(_, e)| e.uid == u.uid) {
                    out.push(format!("uid {} for user `{}` is already held here by user `{holder}`", u.uid, u.name));
                }
            }
        }
    }
    out
}

/// People accounts on the host (UID in the managed range) that the inventory lacks.
pub fn unmanaged(inventory: &Inventory, facts: &HostFacts) -> Vec<String> {
    facts
        .users
        .iter()
        .filter(|(name, e)| {
            e.uid >= inventory.cluster.id_min && e.uid < 60000 && inventory.user(name).is_none()
        })
        .map(|(name, e)| {
            format!(
                "user `{name}` (uid {}) is not in the inventory; left as is",
                e.uid
            )
        })
        .collect()
}
