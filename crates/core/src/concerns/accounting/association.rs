//! Slurm accounting resources: the MariaDB database slurmdbd stores into, the cluster
//! registered in slurmdbd, its accounts and the user associations that fair share
//! counts usage against.
//!
//! Facts come from two read-only probe commands on the controller: one `mysql` query
//! for the database and everything `sacctmgr -nP show cluster|assoc|user` would print
//! (read from slurmdbd's tables), and `squeue` for active jobs when an association is
//! to be removed (a follow-up probe, see [`Accounting::probe`]). A command that failed
//! (no MariaDB yet, slurmdbd never started on a fresh host) reads as "nothing exists",
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

/// Probe command, one `mysql` process for every accounting fact: the database, its user
/// and grant, the registered clusters, every association and every user's default
/// account, as tab-separated rows tagged by their first column (see
/// [`accounting_command`]). It reads the tables slurmdbd keeps in `slurm_acct_db`
/// directly: what `sacctmgr -nP show cluster`, `show assoc` and `show user` print
/// (compared row for row with slurmdbd 22.05 on MariaDB 10.11, Debian 12), for the cost
/// of one client start instead of three `sacctmgr` runs, each loading Slurm's plugins
/// and asking slurmdbd over a MUNGE-authenticated connection (about 0.4 s apiece on an
/// emulated guest).
pub const ACCOUNTING_FACTS: &str = "slurm-accounting";
/// Row tags of [`accounting_command`]'s answer.
const ROW_DATABASE: &str = "0";
const ROW_CLUSTER: &str = "1";
const ROW_ASSOCIATION: &str = "2";
const ROW_USER: &str = "3";
const ROW_DEFAULT: &str = "4";
/// The shares slurmdbd stores for `fairshare=parent`, which sacctmgr prints as `parent`.
const SHARES_PARENT: &str = "2147483647";

/// The probe command for [`ACCOUNTING_FACTS`]; default accounts are read on `cluster`
/// (sacctmgr shows a user's default on the cluster of `slurm.conf`: the inventory's).
/// Rows, tab-separated:
///
/// - `0 <users> <databases> <grants>`: `slurm@localhost`, `slurm_acct_db` and the
///   user's grant on it, each `1` when present;
/// - `1 <cluster>`: a registered cluster (`show cluster`);
/// - `2 <cluster> <account> <user> <shares>`: an association, the user empty for the
///   account's own (`show assoc`);
/// - `3 <user>`: a user slurmdbd knows, and `4 <user> <account>` their default account
///   on `cluster` (`show user format=user,defaultaccount`).
///
/// Until slurmdbd has created its tables only the first row comes (the statements that
/// name them are prepared only once `information_schema` lists them); without MariaDB
/// the command fails and everything reads as absent. `cluster` matches the inventory's
/// name pattern (`[a-z_][a-z0-9_-]*`), so it is safe in the SQL string and the shell
/// word; table names are quoted with backticks (escaped for the shell's double quotes).
pub fn accounting_command(cluster: &str) -> String {
    assert!(
        crate::inventory::validate::is_valid_name(cluster),
        "cluster name {cluster:?} was validated with the inventory"
    );
    let sql = format!(
        r#"select 0,
 (select count(*) from mysql.user where user='slurm' and host='localhost'),
 (select count(*) from information_schema.schemata where schema_name='slurm_acct_db'),
 (select count(*) from mysql.db where user='slurm' and host='localhost' and db='slurm_acct_db');
set @r := null;
set @q := if((select count(*) from information_schema.tables where table_schema='slurm_acct_db'
 and table_name in ('cluster_table', 'user_table')) = 2,
 'select concat(''select 1, name, space(0), space(0), 0 from slurm_acct_db.cluster_table where deleted=0
 union all select 3, name, space(0), space(0), 0 from slurm_acct_db.user_table where deleted=0'',
 ifnull(group_concat(concat('' union all select 2, '', quote(name), '', acct, user, shares
 from slurm_acct_db.\`'', name, ''_assoc_table\` where deleted=0'') separator ''''), space(0)),
 ifnull((select concat('' union all select 4, user, acct, space(0), 0
 from slurm_acct_db.\`'', name, ''_assoc_table\` where deleted=0 and is_def=1 and length(user)>0'')
 from slurm_acct_db.cluster_table where deleted=0 and name=''{cluster}''), space(0)))
 into @r from slurm_acct_db.cluster_table where deleted=0', 'do 0');
prepare s from @q; execute s;
set @q := ifnull(@r, 'do 0'); prepare s from @q; execute s"#
    );
    let sql: Vec<&str> = sql.lines().map(str::trim).collect();
    format!("mysql -N -B -e \"{}\"", sql.join(" "))
}
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
    Database { cluster: String },
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
    /// Whether slurmdbd's tables answered (it has started once on this database).
    pub answered: bool,
    pub clusters: BTreeSet<String>,
    /// `(cluster, account, user)` -> share; accounts have an empty user.
    pub associations: BTreeMap<(String, String, String), String>,
    /// User -> default account (empty when they have none on the cluster).
    pub defaults: BTreeMap<String, String>,
    /// Active jobs: `(id, user, account)`.
    pub jobs: Vec<(String, String, String)>,
}

/// The rows of [`accounting_command`]'s answer, split at tabs, when it succeeded; a
/// failed command (no MariaDB yet) reads as no rows.
fn accounting_rows(facts: &HostFacts) -> Vec<Vec<&str>> {
    facts
        .commands
        .get(ACCOUNTING_FACTS)
        .filter(|c| c.exit_code == 0)
        .map(|c| {
            c.stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.split('\t').collect())
                .collect()
        })
        .unwrap_or_default()
}

impl SlurmdbFacts {
    /// Parse the probe commands' output; a failed command reads as "nothing".
    pub fn from_facts(facts: &HostFacts) -> SlurmdbFacts {
        let mut f = SlurmdbFacts::default();
        let mut defaults = Vec::new();
        for row in accounting_rows(facts) {
            let field = |i: usize| row.get(i).copied().unwrap_or_default().to_string();
            match row[0] {
                ROW_CLUSTER => {
                    f.answered = true;
                    f.clusters.insert(field(1));
                }
                ROW_ASSOCIATION => {
                    let share = match field(4) {
                        s if s == SHARES_PARENT => "parent".to_string(),
                        s => s,
                    };
                    f.associations
                        .insert((field(1), field(2), field(3)), share);
                }
                ROW_USER => {
                    f.answered = true;
                    f.defaults.entry(field(1)).or_default();
                }
                ROW_DEFAULT => defaults.push((field(1), field(2))),
                _ => {}
            }
        }
        for (user, account) in defaults {
            if let Some(d) = f.defaults.get_mut(&user) {
                *d = account;
            }
        }
        let ok = |name: &str| {
            facts
                .commands
                .get(name)
                .filter(|c| c.exit_code == 0)
                .map(|c| c.stdout.as_str())
        };
        for l in ok(JOBS_FACTS).unwrap_or_default().lines() {
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
            Accounting::Database { .. } => ResourceKind::Database,
            Accounting::Cluster { .. } => ResourceKind::SlurmCluster,
            Accounting::Account { .. } => ResourceKind::SlurmAccount,
            Accounting::Association(_) => ResourceKind::Association,
        }
    }

    /// The probe commands this resource needs: every accounting resource shares one, and
    /// an association to remove needs the active jobs. Removals come from the facts, so
    /// `squeue` runs only in the follow-up probe of the rare plan that removes one
    /// ([`crate::desired::followup_commands`]), not in every plan's probe.
    pub fn probe(&self, req: &mut ProbeRequest) {
        let cluster = match self {
            Accounting::Database { cluster }
            | Accounting::Cluster { name: cluster }
            | Accounting::Account { cluster, .. }
            | Accounting::Association(Association { cluster, .. }) => cluster,
        };
        req.commands
            .insert(ACCOUNTING_FACTS.into(), accounting_command(cluster));
        if matches!(self, Accounting::Association(Association { remove: true, .. })) {
            req.commands.insert(JOBS_FACTS.into(), JOBS_COMMAND.into());
        }
    }

    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        match self {
            Accounting::Database { .. } => database_diff(facts),
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
    let rows = accounting_rows(facts);
    let counts: Vec<&str> = rows
        .iter()
        .find(|r| r[0] == ROW_DATABASE)
        .map(|r| r[1..].to_vec())
        .unwrap_or_default();
    let present = |i: usize| counts.get(i).is_some_and(|n| *n != "0");
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
