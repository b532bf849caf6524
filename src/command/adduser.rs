//! `closetctl adduser`: add a user to the inventory, refusing a name or UID already
//! taken in the file or live on any reachable host (naming the host), and keeping the
//! file's comments and layout.
//!
//! The edit is checked first against the file as read, before any host is contacted;
//! after the (slow) look at the hosts it is applied again under the inventory's lock to
//! the file as it is then ([`edit::update_file`]): an edit made meanwhile is kept, and a
//! name or UID it took is refused with nothing written.

use super::{CliError, InventoryArgs, Loaded};
use crate::concerns::users::ids::{id_state, IdState};
use crate::facts::ClusterFacts;
use crate::inventory::edit::{self, EditError, NewUser};
use clap::Args;
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub struct AdduserArgs {
    /// The login name.
    pub name: String,
    #[arg(long)]
    pub uid: u32,
    /// Primary group id (default: a private group with gid = uid).
    #[arg(long)]
    pub gid: Option<u32>,
    /// A lab group from the inventory (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// An OpenSSH public key (repeatable).
    #[arg(long = "ssh-key")]
    pub ssh_keys: Vec<String>,
    /// Do not check the live hosts.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub inventory: InventoryArgs,
}

impl From<EditError> for CliError {
    fn from(e: EditError) -> CliError {
        match e {
            EditError::Inventory(i) => CliError::Inventory(i),
            other => CliError::refused(other.to_string()),
        }
    }
}

/// Hosts where the name or the UID is already in use, with what holds it.
pub fn live_conflicts(facts: &ClusterFacts, name: &str, uid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for (host, f) in &facts.hosts {
        let live = f.users.iter().map(|(n, e)| (n.as_str(), e.uid));
        match id_state(name, uid, live) {
            IdState::Same => out.push(format!(
                "host `{host}` already has a user `{name}` (uid {uid})"
            )),
            IdState::OtherId(have) => out.push(format!(
                "host `{host}` already has a user `{name}` (uid {have})"
            )),
            IdState::HeldBy(holder) => out.push(format!(
                "host `{host}`: uid {uid} is held by user `{holder}`"
            )),
            IdState::Missing => {}
        }
    }
    out
}

pub async fn run(args: AdduserArgs) -> Result<i32, CliError> {
    let path = args.inventory.inventory.clone();
    let source = std::fs::read_to_string(&path).map_err(|source| {
        crate::inventory::InventoryError::Read {
            path: path.clone(),
            source,
        }
    })?;
    let user = NewUser {
        name: args.name.clone(),
        uid: args.uid,
        gid: args.gid,
        groups: args.groups,
        ssh_keys: args.ssh_keys,
    };
    edit::add_user(&path, &source, &user)?;
    if !args.offline {
        let loaded = Loaded::load(&path)?;
        let connector = super::ssh_connector(&loaded.inventory)?;
        let requests = BTreeMap::new();
        let (_, facts) =
            crate::engine::gather(connector, &loaded.inventory.hosts, requests, None).await;
        let conflicts = live_conflicts(&facts, &user.name, user.uid);
        if !conflicts.is_empty() {
            return Err(CliError::refused(format!(
                "not added: {}",
                conflicts.join("; ")
            )));
        }
        for (host, why) in &facts.unreachable {
            eprintln!("warning: could not check host `{host}` ({why}); check it before apply");
        }
    }
    edit::update_file(
        &path,
        |current| edit::add_user(&path, current, &user),
        |lock| {
            eprintln!(
                "waiting for the lock {} (another closetctl is editing the inventory)",
                lock.display()
            )
        },
    )?;
    println!(
        "Added user `{}` (uid {}) to {}.",
        user.name,
        user.uid,
        path.display()
    );
    println!(
        "Next: `closetctl plan -i {0}` to review, then `closetctl apply -i {0}`.",
        path.display()
    );
    Ok(0)
}
