//! `closetctl status [-i FILE] [--json] [--watch [SECS]] [--user NAME]`: the GPU pool
//! at a glance for anyone with a login. One round trip to the controller (slurmctld's
//! nodes and jobs through `scontrol show`) and one per compute node (live `nvidia-smi`
//! figures), all at once; nothing is locked, written or run as root.
//!
//! Who connects: `--user NAME` if given; else the inventory's `[ssh] user` when
//! closetctl runs as root; else the user running it (a researcher's own login, with
//! her own keys: the inventory's `identity_file` is the admin's and is not used). A
//! host that is this machine (its inventory name or address is this host name) is
//! asked without SSH, so `closetctl status` on the login/controller host needs no key
//! for the controller; `sudo` is never used. The table and JSON come from
//! [`crate::status`]; the JSON schema is docs/status-json.md.

use super::{CliError, InventoryArgs};
use crate::inventory::{Host, Inventory};
use crate::status::{self, Answer, Status};
use crate::transport::{Connector, Transport};
use clap::Args;
use closetctl_exec::local::{self, LocalShell};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Print the status as JSON (schema in docs/status-json.md); with --watch, one
    /// document per line per refresh.
    #[arg(long)]
    pub json: bool,
    /// Refresh every SECS seconds (default 5) in place until Ctrl-C, over connections
    /// kept open.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "5")]
    pub watch: Option<u64>,
    /// Log in to the hosts as this user (default: the inventory's ssh user when run as
    /// root, else yourself).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

/// How long one host may take to answer (connect and script).
pub const HOST_LIMIT: Duration = Duration::from_secs(30);

/// The inventory's ssh settings for a read-only status: never `sudo`; the login user
/// as the module docs say.
pub fn status_ssh(
    inventory: &Inventory,
    user: Option<&str>,
    as_root: bool,
) -> crate::inventory::Ssh {
    let mut ssh = inventory.ssh.clone();
    ssh.become_root = false;
    let login = match user {
        Some(u) => Some(u.to_string()),
        None if as_root => ssh.user.clone(),
        None => local::login_name(),
    };
    if login != ssh.user {
        // The inventory's key belongs to its user.
        ssh.identity_file = None;
    }
    ssh.user = login;
    ssh
}

/// Connections kept open between refreshes (`--watch`), by host name.
pub type Kept<C> = BTreeMap<String, Arc<<C as Connector>::Conn>>;

/// Ask every target host its part, all at once; `local` names the host that is this
/// machine (run with `sh -s` here). Connections in `kept` are reused, and each that
/// answered is kept for the next refresh (one that failed is dropped and opened anew).
pub async fn ask<C: Connector + 'static>(
    connector: Arc<C>,
    inventory: &Inventory,
    local: Option<&str>,
    kept: &mut Kept<C>,
) -> BTreeMap<String, Answer> {
    let mut set = tokio::task::JoinSet::new();
    for (name, controller, gpus) in status::targets(inventory) {
        let Some(host) = inventory.host(&name).cloned() else {
            continue;
        };
        let script = status::script(controller, gpus);
        let connector = connector.clone();
        let here = local == Some(name.as_str());
        let open = kept.remove(&name);
        set.spawn(async move {
            if here {
                let a = answer(&LocalShell { name: name.clone() }, script).await;
                return (host_name(&host), a, None);
            }
            let conn = match open {
                Some(c) => c,
                None => match tokio::time::timeout(HOST_LIMIT, connector.connect(&host)).await {
                    Ok(Ok(c)) => Arc::new(c),
                    Ok(Err(e)) => {
                        return (host_name(&host), Err(crate::transport::chain(&e)), None)
                    }
                    Err(_) => {
                        let why = format!("no connection within {} s", HOST_LIMIT.as_secs());
                        return (host_name(&host), Err(why), None);
                    }
                },
            };
            let a = answer(conn.as_ref(), script).await;
            let keep = a.is_ok().then_some(conn);
            (host_name(&host), a, keep)
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((name, a, conn)) = joined {
            if let Some(c) = conn {
                kept.insert(name.clone(), c);
            }
            answers.insert(name, a);
        }
    }
    answers
}

fn host_name(h: &Host) -> String {
    h.name.clone()
}

async fn answer<T: Transport>(t: &T, script: String) -> Answer {
    match t.run_for(script, HOST_LIMIT).await {
        Ok(out) => Ok(out.stdout),
        Err(e) => Err(crate::transport::chain(&e)),
    }
}

/// One status of the closet: ask the hosts, put the answers together.
pub async fn status_with<C: Connector + 'static>(
    connector: Arc<C>,
    inventory: &Inventory,
    local: Option<&str>,
    kept: &mut Kept<C>,
) -> Status {
    let answers = ask(connector, inventory, local, kept).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    status::assemble(inventory, &answers, &crate::lock::utc_timestamp(now))
}

/// 0 when slurmctld answered, 1 when it did not (no allocations to show).
pub fn exit_code(s: &Status) -> i32 {
    i32::from(!s.slurmctld_answered)
}

pub async fn run(args: StatusArgs) -> Result<i32, CliError> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let ssh = status_ssh(&inventory, args.user.as_deref(), local::running_as_root());
    let connector = Arc::new(
        crate::transport::ssh::SshConnector::new(&ssh).map_err(|source| CliError::Io {
            what: "cannot prepare the ssh configuration".into(),
            source,
        })?,
    );
    let me = local::hostname();
    let here = inventory
        .hosts
        .iter()
        .find(|h| local::is_this_machine(h, me.as_deref()))
        .map(|h| h.name.clone());
    let mut kept = Kept::<crate::transport::ssh::SshConnector>::new();
    let Some(every) = args.watch else {
        let s = status_with(connector, &inventory, here.as_deref(), &mut kept).await;
        print!(
            "{}",
            if args.json {
                status::render::json(&s) + "\n"
            } else {
                status::render::text(&s)
            }
        );
        return Ok(exit_code(&s));
    };
    let every = Duration::from_secs(every.max(1));
    loop {
        let s = status_with(connector.clone(), &inventory, here.as_deref(), &mut kept).await;
        if args.json {
            println!("{}", status::render::json_line(&s));
        } else {
            // Home, clear the screen, then the table: the table refreshes in place.
            print!(
                "\x1b[H\x1b[2J{}\n(every {} s; Ctrl-C to stop)\n",
                status::render::text(&s),
                every.as_secs()
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(ssh: &str) -> Inventory {
        Inventory::parse(
            std::path::Path::new("/tmp/status-test.toml"),
            &format!("[cluster]\nname = \"c\"\n{ssh}\n[[host]]\nname = \"head\"\naddress = \"10.0.0.1\"\nroles = [\"controller\"]\n"),
        )
        .unwrap()
    }

    #[test]
    fn status_never_uses_sudo_and_a_plain_user_logs_in_as_herself() {
        let inv = inventory(
            "[ssh]\nuser = \"admin\"\nbecome = true\nidentity_file = \"/root/.ssh/id_ed25519\"\n",
        );
        let root = status_ssh(&inv, None, true);
        assert_eq!(root.user.as_deref(), Some("admin"));
        assert!(!root.become_root);
        assert!(root.identity_file.is_some());
        let alice = status_ssh(&inv, Some("alice"), false);
        assert_eq!(alice.user.as_deref(), Some("alice"));
        assert!(
            alice.identity_file.is_none(),
            "the admin's key is not alice's"
        );
        let me = status_ssh(&inv, None, false);
        assert_eq!(me.user, local::login_name());
        assert!(!me.become_root);
    }
}
