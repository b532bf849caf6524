//! `closetctl unlock`: break the apply locks an apply left behind when it was killed or
//! lost its hosts. Reads the lock of every selected host at once, shows each holder, and
//! breaks only the locks whose holder is provably gone (see [`crate::lock`]), after
//! asking unless `--yes`. A lock whose holder may still run is never broken. Breaking
//! also ends that apply's step script if one still runs on the host, and removes the
//! lock only if it still carries the run id that was shown.

use super::{CliError, HostArgs, InventoryArgs, Loaded};
use crate::engine::last_lines;
use crate::lock::{self, Verdict};
use crate::transport::{Connector, Transport};
use clap::Args;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Break stale locks without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// A host's lock as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Free,
    /// Its holder may still run: never broken.
    Live {
        holder: String,
        why: String,
    },
    /// Its holder is provably gone.
    Stale {
        holder: String,
        why: String,
        run: String,
        step: Option<String>,
    },
    Unreachable(String),
}

/// What unlock did on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotLocked,
    KeptLive {
        holder: String,
        why: String,
    },
    Broken {
        holder: String,
        ended: Option<String>,
    },
    /// The lock changed since it was read (someone else broke or took it): left alone.
    Changed,
    Declined,
    Failed(String),
    Unreachable(String),
}

impl Outcome {
    fn ok(&self) -> bool {
        matches!(self, Outcome::NotLocked | Outcome::Broken { .. })
    }
}

/// One line about what was found on `host`.
pub fn found_line(host: &str, found: &Found) -> String {
    match found {
        Found::Free => format!("{host}: not locked"),
        Found::Live { holder, why } => {
            format!("{host}: held by an apply that may still run: {holder} ({why}); not broken")
        }
        Found::Stale {
            holder, why, step, ..
        } => {
            let mut l = format!("{host}: stale lock: {holder}: {why}");
            if let Some(step) = step {
                l.push_str(&format!("; it was in step {step}"));
            }
            l
        }
        Found::Unreachable(e) => format!("{host}: unreachable: {e}"),
    }
}

/// One line about what was done on `host`.
pub fn outcome_line(host: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::NotLocked => format!("{host}: not locked"),
        Outcome::KeptLive { holder, why } => {
            format!("{host}: NOT broken: held by an apply that may still run: {holder} ({why})")
        }
        Outcome::Broken { holder, ended } => match ended {
            Some(step) => format!(
                "{host}: broke the lock of {holder} (its step {step} was still running and was ended)"
            ),
            None => format!("{host}: broke the lock of {holder}"),
        },
        Outcome::Changed => {
            format!("{host}: the lock changed since it was read (left alone; run unlock again)")
        }
        Outcome::Declined => format!("{host}: left locked"),
        Outcome::Failed(e) => format!("{host}: FAILED to break the lock: {e}"),
        Outcome::Unreachable(e) => format!("{host}: unreachable: {e}"),
    }
}

/// Read the lock of each host, all at once, and judge its holder.
async fn inspect<C: Connector + 'static>(
    connector: Arc<C>,
    hosts: Vec<crate::inventory::Host>,
    limit: Duration,
) -> BTreeMap<String, (Found, Option<Arc<C::Conn>>)> {
    let mut set = JoinSet::new();
    for host in hosts {
        let connector = connector.clone();
        set.spawn(async move {
            let work = async {
                let conn = connector.connect(&host).await.map_err(|e| e.to_string())?;
                let out = conn
                    .run(lock::inspect_script())
                    .await
                    .map_err(|e| e.to_string())?;
                let (answer, now) = lock::parse_inspect(&out.stdout).ok_or_else(|| {
                    format!(
                        "cannot read its lock (exit {}): {}",
                        out.status,
                        last_lines(&out.stderr, 3)
                    )
                })?;
                Ok::<_, String>((conn, answer, now))
            };
            let found = match tokio::time::timeout(limit, work).await {
                Err(_) => (
                    Found::Unreachable(format!("no answer within {} s", limit.as_secs())),
                    None,
                ),
                Ok(Err(e)) => (Found::Unreachable(e), None),
                Ok(Ok((conn, answer, now))) => {
                    let found = match answer.held {
                        None => Found::Free,
                        Some(held) => {
                            let holder = held.describe();
                            match lock::verdict(&held, now, &closetctl_exec::local::LocalMachine) {
                                Verdict::Live(why) => Found::Live { holder, why },
                                Verdict::Stale(why) => Found::Stale {
                                    holder,
                                    why,
                                    step: held.step_name().map(String::from),
                                    run: held.run,
                                },
                            }
                        }
                    };
                    (found, Some(Arc::new(conn)))
                }
            };
            (host.name, found)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(Ok((name, found))) = set.join_next().await {
        out.insert(name, found);
    }
    out
}

/// Read the selected hosts' locks, let `confirm` see what was found (it is called only
/// when there is a stale lock), and break the stale ones.
pub async fn unlock_with<C: Connector + 'static>(
    connector: Arc<C>,
    loaded: &Loaded,
    hosts: &[String],
    confirm: impl FnOnce(&BTreeMap<String, Found>) -> bool,
) -> Result<BTreeMap<String, Outcome>, CliError> {
    let selected = loaded.select(hosts)?;
    let limit = Duration::from_secs(loaded.inventory.timeouts.probe_secs.into());
    let inspected = inspect(connector, selected, limit).await;
    let found: BTreeMap<String, Found> = inspected
        .iter()
        .map(|(h, (f, _))| (h.clone(), f.clone()))
        .collect();
    let any_stale = found.values().any(|f| matches!(f, Found::Stale { .. }));
    let go = any_stale && confirm(&found);
    let mut set = JoinSet::new();
    let mut outcomes = BTreeMap::new();
    for (host, (f, conn)) in inspected {
        let outcome = match f {
            Found::Free => Outcome::NotLocked,
            Found::Live { holder, why } => Outcome::KeptLive { holder, why },
            Found::Unreachable(e) => Outcome::Unreachable(e),
            Found::Stale { .. } if !go => Outcome::Declined,
            Found::Stale { holder, run, .. } => {
                let conn = conn.expect("an inspected host is connected");
                set.spawn(async move {
                    let result = tokio::time::timeout(
                        Duration::from_secs(60),
                        conn.run(lock::break_script(&run)),
                    )
                    .await;
                    let outcome = match result {
                        Err(_) => Outcome::Failed("no answer within 60 s".into()),
                        Ok(Err(e)) => Outcome::Failed(e.to_string()),
                        Ok(Ok(out)) => {
                            let ended = out
                                .stdout
                                .lines()
                                .find_map(|l| l.strip_prefix("@@closetctl ended "))
                                .map(|s| s.trim().to_string());
                            match out.stdout.lines().any(|l| l == "@@closetctl broken") {
                                true => Outcome::Broken { holder, ended },
                                false if out.stdout.contains("@@closetctl changed") => {
                                    Outcome::Changed
                                }
                                false => Outcome::Failed(format!(
                                    "exit {}: {}",
                                    out.status,
                                    last_lines(&out.stderr, 3)
                                )),
                            }
                        }
                    };
                    (host, outcome)
                });
                continue;
            }
        };
        outcomes.insert(host, outcome);
    }
    while let Some(Ok((host, outcome))) = set.join_next().await {
        outcomes.insert(host, outcome);
    }
    Ok(outcomes)
}

pub async fn run(args: UnlockArgs) -> Result<i32, CliError> {
    let loaded = Loaded::load(&args.inventory.inventory)?;
    let connector = super::ssh_connector(&loaded.inventory)?;
    let yes = args.yes;
    let outcomes = unlock_with(connector, &loaded, &args.hosts.hosts, |found| {
        for (host, f) in found
            .iter()
            .filter(|(_, f)| matches!(f, Found::Stale { .. }))
        {
            println!("{}", found_line(host, f));
        }
        if yes {
            return true;
        }
        let stale: Vec<&str> = found
            .iter()
            .filter(|(_, f)| matches!(f, Found::Stale { .. }))
            .map(|(h, _)| h.as_str())
            .collect();
        super::apply::ask(&format!(
            "Break the stale lock{} on {}?",
            if stale.len() == 1 { "" } else { "s" },
            stale.join(", ")
        ))
    })
    .await?;
    for (host, o) in &outcomes {
        println!("{}", outcome_line(host, o));
    }
    Ok(if outcomes.values().all(Outcome::ok) {
        0
    } else {
        1
    })
}
