//! Slurm accounting resources: the MariaDB database slurmdbd stores into, the cluster
//! registered in slurmdbd, its accounts and the user associations that fair share
//! counts usage against.
//!
//! Facts come from read-only probe commands on the controller (`mysql` counts,
//! `sacctmgr -nP show ...`, `squeue`), named by the constants below. A command that
//! failed (no MariaDB yet, slurmdbd not up on a fresh host) reads as "nothing exists",
//! so a fresh controller gets a plan that adds everything. Changes run `sacctmgr -i`
//! commands, each guarded so that something already there (slurmctld registers its
//! cluster itself on start) is not an error. No password ever appears here: the
//! database is set up by a script that reads it from `slurmdbd.conf` on the host.

use crate::facts::probe::ProbeRequest;
use crate::facts::HostFacts;
use crate::ops::Op;
use crate::resource::{Action, Change, ResourceKind};
use crate::shell::quote;
use std::collections::{BTreeMap, BTreeSet};

/// Probe command: `user<TAB>database<TAB>grant` counts, each `1` when present.
pub const DATABASE_FACTS: &str = "slurm-database";
pub const DATABASE_COMMAND: &str = "mysql -N -B -e \"select (select count(*) from mysql.user where user='slurm' and host='localhost'), (select count(*) from information_schema.schemata where schema_name='slurm_acct_db'), (select count(*) from mysql.db where user='slurm' and host='localhost' and db='slurm_acct_db')\"";
/// Probe command: one registered cluster name per line.
pub const CLUSTERS_FACTS: &str = "slurm-clusters";
pub const CLUSTERS_COMMAND: &str = "timeout 20 sacctmgr -nP show cluster format=cluster";
/// Probe command: `cluster|account|user|share` per association.
pub const ASSOCIATIONS_FACTS: &str = "slurm-associations";
pub const ASSOCIATIONS_COMMAND: &str =
    "timeout 20 sacctmgr -nP show assoc format=cluster,account,user,share";
/// Probe command: `user|defaultaccount` per user.
pub const USERS_FACTS: &str = "slurm-users";
pub const USERS_COMMAND: &str = "timeout 20 sacctmgr -nP show user format=user,defaultaccount";
/// Probe command: `jobid user account` per active (pending or running) job.
pub const JOBS_FACTS: &str = "slurm-jobs";
pub const JOBS_COMMAND: &str = "timeout 20 squeue -h -o '%i %u %a'";

/// The database, its user and the user's grant, as the probe's `mysql` counts say.
pub const DATABASE: &str = "slurm_acct_db";

/// Waits (up to 30 s) until slurmdbd answers, before the first change of a step.
const WAIT_FOR_SLURMDBD: &str =
    "t=0; until sacctmgr -nP show cluster format=cluster >/dev/null 2>&1; do [ $t -lt 30 ] || break; t=$((t+1)); sleep 1; done; ";

/// One accounting thing closetctl manages on the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounting {
    /// `slurm_acct_db` and `slurm@localhost` with its grant. The change has no ops of
    /// its own: the step's handler runs the setup script (which also runs when
    /// `slurmdbd.conf`, and so the password, changed).
    Database,
    /// The cluster registered in slurmdbd.
    Cluster { name: String },
    /// An account under `root` with its fair-share shares.
    Account {
        cluster: String,
        name: String,
        fairshare: u32,
    },
    /// A user's association with an account.
    Association(Association),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub cluster: String,
    pub account: String,
    pub user: String,
    pub fairshare: u32,
    /// This account is the user's default account (their first group).
    pub default: bool,
    /// The association exists but the inventory no longer wants it.
    pub remove: bool,
    /// With `remove`: the user keeps no association on this cluster at all.
    pub last: bool,
    /// With `remove`: her active jobs under it, cancelled first (`apply --cancel-jobs`).
    pub cancel_jobs: Vec<String>,
    /// With `remove`: why her access ended (`disabled: left`), when it did.
    pub ended: Option<String>,
}

/// What the probe commands say about slurmdbd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmdbFacts {
    /// Whether `sacctmgr` answered (slurmdbd up).
    pub answered: bool,
    pub clusters: BTreeSet<String>,
    /// `(cluster, account, user)` -> share; accounts have an empty user.
    pub associations: BTreeMap<(String, String, String), String>,
    /// User -> default account.
    pub defaults: BTreeMap<String, String>,
    /// Active jobs: `(id, user, account)`.
    pub jobs: Vec<(String, String, String)>,
}

impl SlurmdbFacts {
    /// Parse the probe commands' output; a failed command reads as "nothing".
    pub fn from_facts(facts: &HostFacts) -> SlurmdbFacts {
        let ok = |name: &str| {
            facts
                .commands
                .get(name)
                .filter(|c| c.exit_code == 0)
                .map(|c| c.stdout.as_str())
        };
        let mut f = SlurmdbFacts {
            answered: ok(CLUSTERS_FACTS).is_some(),
            ..SlurmdbFacts::default()
        };
        let lines = |text: Option<&str>| -> Vec<String> {
            text.unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        };
        f.clusters = lines(ok(CLUSTERS_FACTS)).into_iter().collect();
        for l in lines(ok(ASSOCIATIONS_FACTS)) {
            let p: Vec<&str> = l.split('|').collect();
            if p.len() >= 4 {
                f.associations
                    .insert((p[0].into(), p[1].into(), p[2].into()), p[3].into());
            }
        }
        for l in lines(ok(USERS_FACTS)) {
            if let Some((user, account)) = l.split_once('|') {
                f.defaults.insert(user.into(), account.into());
            }
        }
        for l in lines(ok(JOBS_FACTS)) {
            let p: Vec<&str> = l.split_whitespace().collect();
            if p.len() >= 2 {
                f.jobs.push((
                    p[0].into(),
                    p[1].into(),
                    p.get(2).copied().unwrap_or("").into(),
                ));
            }
        }
        f
    }

    /// The users' associations on `cluster`: `(account, user)` pairs.
    pub fn user_associations(&self, cluster: &str) -> Vec<(String, String)> {
        self.associations
            .keys()
            .filter(|(c, _, u)| c == cluster && !u.is_empty())
            .map(|(_, a, u)| (a.clone(), u.clone()))
            .collect()
    }

    /// Active job ids of `user` charged to `account`.
    pub fn jobs_of(&self, user: &str, account: &str) -> Vec<String> {
        self.jobs
            .iter()
            .filter(|(_, u, a)| u == user && (a == account || a.is_empty()))
            .map(|(id, _, _)| id.clone())
            .collect()
    }
}

impl Accounting {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Accounting::Database => ResourceKind::Database,
            Accounting::Cluster { .. } => ResourceKind::SlurmCluster,
            Accounting::Account { .. } => ResourceKind::SlurmAccount,
            Accounting::Association(_) => ResourceKind::Association,
        }
    }

    /// The probe commands this resource needs.
    pub fn probe(&self, req: &mut ProbeRequest) {
        if *self == Accounting::Database {
            req.commands
                .insert(DATABASE_FACTS.into(), DATABASE_COMMAND.into());
            return;
        }
        for (name, command) in [
            (CLUSTERS_FACTS, CLUSTERS_COMMAND),
            (ASSOCIATIONS_FACTS, ASSOCIATIONS_COMMAND),
            (USERS_FACTS, USERS_COMMAND),
            (JOBS_FACTS, JOBS_COMMAND),
        ] {
            req.commands.insert(name.into(), command.into());
        }
    }

    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        match self {
            Accounting::Database => database_diff(facts),
            Accounting::Cluster { name } => {
                let db = SlurmdbFacts::from_facts(facts);
                if db.clusters.contains(name) {
                    return None;
                }
                let mut c = Change::new(ResourceKind::SlurmCluster, name, Action::Create);
                c.details.push("register in slurmdbd".into());
                let n = quote(name);
                c.ops.push(Op::Command(format!(
                    "{WAIT_FOR_SLURMDBD}sacctmgr -nP show cluster format=cluster | grep -qx {n} || sacctmgr -i add cluster {n}"
                )));
                Some(c)
            }
            Accounting::Account {
                cluster,
                name,
                fairshare,
            } => {
                let db = SlurmdbFacts::from_facts(facts);
                let (cl, a) = (quote(cluster), quote(name));
                match db
                    .associations
                    .get(&(cluster.clone(), name.clone(), String::new()))
                {
                    Some(share) if *share == fairshare.to_string() => None,
                    Some(share) => {
                        let mut c = Change::new(ResourceKind::SlurmAccount, name, Action::Update);
                        c.details.push(format!("fairshare {share} -> {fairshare}"));
                        c.ops.push(Op::Command(format!("sacctmgr -i modify account where name={a} cluster={cl} set fairshare={fairshare}")));
                        Some(c)
                    }
                    None => {
                        let mut c = Change::new(ResourceKind::SlurmAccount, name, Action::Create);
                        c.details.push(format!("fairshare {fairshare}"));
                        c.ops.push(Op::Command(format!(
                            "{WAIT_FOR_SLURMDBD}sacctmgr -nP show assoc where cluster={cl} account={a} format=account | grep -qx {a} || sacctmgr -i add account {a} cluster={cl} fairshare={fairshare}"
                        )));
                        Some(c)
                    }
                }
            }
            Accounting::Association(a) => a.diff(&SlurmdbFacts::from_facts(facts)),
        }
    }
}

fn database_diff(facts: &HostFacts) -> Option<Change> {
    let counts: Vec<String> = facts
        .commands
        .get(DATABASE_FACTS)
        .filter(|c| c.exit_code == 0)
        .map(|c| c.stdout.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let present = |i: usize| counts.get(i).is_some_and(|n| n != "0");
    let missing: Vec<&str> = [
        (0, "user slurm@localhost"),
        (1, "database slurm_acct_db"),
        (2, "grant on slurm_acct_db.*"),
    ]
    .iter()
    .filter(|(i, _)| !present(*i))
    .map(|(_, what)| *what)
    .collect();
    if missing.is_empty() {
        return None;
    }
    let action = if missing.len() == 3 {
        Action::Create
    } else {
        Action::Update
    };
    let mut c = Change::new(ResourceKind::Database, DATABASE, action);
    c.details.push(format!(
        "create {} (password: secret slurmdbd.password)",
        missing.join(", ")
    ));
    Some(c)
}

impl Association {
    /// `vision-lab/alice`
    pub fn name(&self) -> String {
        format!("{}/{}", self.account, self.user)
    }

    fn diff(&self, db: &SlurmdbFacts) -> Option<Change> {
        let (cl, a, u) = (
            quote(&self.cluster),
            quote(&self.account),
            quote(&self.user),
        );
        let current = db.associations.get(&(
            self.cluster.clone(),
            self.account.clone(),
            self.user.clone(),
        ));
        if self.remove {
            current?;
            let mut c = Change::new(ResourceKind::Association, self.name(), Action::Remove);
            if !self.cancel_jobs.is_empty() {
                let ids = self.cancel_jobs.join(" ");
                c.details.push(format!(
                    "cancel her active jobs {} first (--cancel-jobs)",
                    self.cancel_jobs.join(", ")
                ));
                // Job ids are squeue's digits (and `_` or `+` of arrays): checked, then
                // passed as words. Removal waits (up to 60 s) until they are gone.
                let safe = self
                    .cancel_jobs
                    .iter()
                    .all(|j| !j.is_empty() && j.chars().all(|ch| ch.is_ascii_alphanumeric() || "_+".contains(ch)));
                if safe {
                    c.ops.push(Op::Command(format!(
                        "scancel {ids}; t=0; while squeue -h -u {u} -o %i | grep -q .; do [ $t -lt 60 ] || break; t=$((t+1)); sleep 1; done"
                    )));
                }
            }
            if let Some(why) = &self.ended {
                c.details.push(format!("{} ({why})", self.user));
            }
            if self.last {
                c.details.push(format!(
                    "the inventory has no account for {} any more",
                    self.user
                ));
                c.ops.push(Op::Command(format!(
                    "if sacctmgr -nP show assoc where cluster={cl} user={u} format=user | grep -q .; then sacctmgr -i remove user where name={u} cluster={cl}; fi"
                )));
            } else {
                c.details.push(format!(
                    "the inventory no longer has {} in {}",
                    self.user, self.account
                ));
                c.ops.push(Op::Command(format!(
                    "sacctmgr -i remove user where name={u} account={a} cluster={cl}"
                )));
            }
            return Some(c);
        }
        let live_default = db.defaults.get(&self.user);
        let set_default = format!("sacctmgr -i modify user where name={u} set defaultaccount={a}");
        let Some(share) = current else {
            let mut c = Change::new(ResourceKind::Association, self.name(), Action::Create);
            c.details.push(format!("fairshare {}", self.fairshare));
            let mut add = format!(
                "{WAIT_FOR_SLURMDBD}sacctmgr -nP show assoc where cluster={cl} account={a} user={u} format=user | grep -qx {u} || sacctmgr -i add user {u} account={a} cluster={cl} fairshare={}",
                self.fairshare
            );
            if self.default {
                c.details.push("default account".into());
                add.push_str(&format!(" defaultaccount={a}"));
            }
            c.ops.push(Op::Command(add));
            if self.default && live_default.is_some_and(|d| *d != self.account) {
                c.ops.push(Op::Command(set_default));
            }
            return Some(c);
        };
        let mut c = Change::new(ResourceKind::Association, self.name(), Action::Update);
        if *share != self.fairshare.to_string() {
            c.details
                .push(format!("fairshare {share} -> {}", self.fairshare));
            c.ops.push(Op::Command(format!(
                "sacctmgr -i modify user where name={u} account={a} cluster={cl} set fairshare={}",
                self.fairshare
            )));
        }
        if self.default && live_default != Some(&self.account) {
            c.details.push(format!(
                "default account {} -> {}",
                live_default.map_or("(none)", String::as_str),
                self.account
            ));
            c.ops.push(Op::Command(set_default));
        }
        if c.ops.is_empty() {
            None
        } else {
            Some(c)
        }
    }
}
