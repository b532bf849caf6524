//! MariaDB, slurmdbd and `sacctmgr` on the fake controller: what the probe's read-only
//! accounting commands print (matched exactly against
//! [`closetctl_core::concerns::accounting::association`]'s command and constants), and
//! the database setup script and `sacctmgr -i` changes carried out as `sacctmgr` would.

use super::state::FakeState;
use closetctl_core::concerns::accounting::association::{accounting_command, JOBS_COMMAND};
use closetctl_core::concerns::accounting::SLURMDBD_CONF;
use closetctl_core::concerns::slurm::SLURM_CONF;
use std::collections::BTreeMap;

/// The database setup script (the `slurm_acct_db` handler's command in the accounting
/// playbook, `25-accounting.toml`: playbook data, not a Rust constant).
const DATABASE_SCRIPT: &str = "/usr/local/lib/closetctl/slurm-database.sh";

/// The accounting database as `sacctmgr -i` leaves it and `sacctmgr -nP show` prints it.
#[derive(Debug, Clone, Default)]
pub struct FakeSlurmdb {
    /// `slurm_acct_db`, `slurm@localhost` and its grant exist (the setup script ran).
    pub database: bool,
    pub clusters: Vec<String>,
    /// `(cluster, account, user)` -> share, in insertion order like sacctmgr's listing.
    pub associations: Vec<((String, String, String), String)>,
    /// User -> default account.
    pub defaults: BTreeMap<String, String>,
    /// Active jobs `(id, user, account)` as `squeue -h -o '%i %u %a'` prints them.
    pub jobs: Vec<(u32, String, String)>,
    /// Every `sacctmgr -i` command carried out.
    pub commands: Vec<String>,
}

/// Whether `sacctmgr` reaches slurmdbd: it runs, and slurm.conf points at it.
fn slurmdbd_answers(s: &FakeState) -> bool {
    s.slurmdb.database
        && s.active("slurmdbd.service")
        && s.text(SLURM_CONF)
            .contains("AccountingStorageType=accounting_storage/slurmdbd")
}

/// The cluster an accounting probe command names, when `cmd` is exactly the probe's
/// [`accounting_command`] for it.
fn accounting_cluster(cmd: &str) -> Option<String> {
    let at = cmd.find("name=''")? + "name=''".len();
    let name = &cmd[at..at + cmd[at..].find("''")?];
    (closetctl_core::inventory::is_valid_name(name) && cmd == accounting_command(name))
        .then(|| name.to_string())
}

/// What the probe's read-only accounting commands print: `(exit code, stdout)`; `None`
/// for a command the fake does not know (its section is left out, as if not asked).
/// Commands are matched exactly against the probe's own constants.
pub(crate) fn answer(s: &FakeState, cmd: &str) -> Option<(i32, String)> {
    let db = &s.slurmdb;
    if let Some(cluster) = accounting_cluster(cmd) {
        if !s.installed.contains_key("mariadb-server") {
            return Some((127, String::new()));
        }
        // What `mysql` reads from slurmdbd's tables (see `accounting_command`): the
        // database row always, the rest once the database exists. Clusters,
        // associations and users only ever come from `sacctmgr -i`, which needs
        // slurmdbd, so they are empty until it ran.
        let n = u8::from(db.database);
        let mut rows = vec![format!("0\t{n}\t{n}\t{n}")];
        if db.database {
            rows.extend(db.clusters.iter().map(|c| format!("1\t{c}\t\t\t0")));
            for ((c, a, u), share) in &db.associations {
                let share = if share == "parent" {
                    "2147483647"
                } else {
                    share
                };
                rows.push(format!("2\t{c}\t{a}\t{u}\t{share}"));
            }
            for (user, account) in &db.defaults {
                rows.push(format!("3\t{user}\t\t\t0"));
                if !account.is_empty() && db.clusters.contains(&cluster) {
                    rows.push(format!("4\t{user}\t{account}\t\t0"));
                }
            }
        }
        return Some((0, rows.join("\n")));
    }
    if cmd == JOBS_COMMAND {
        if !s.active("slurmctld.service") {
            return Some((
                1,
                "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
                    .into(),
            ));
        }
        let rows: Vec<String> = db
            .jobs
            .iter()
            .map(|(id, u, a)| format!("{id} {u} {a}"))
            .collect();
        return Some((0, rows.join("\n")));
    }
    None
}

/// `cc_command`: the database setup script and `sacctmgr -i` changes are carried out
/// (each guarded command's `show ... | grep -q || add` is honoured by adding only
/// what is missing); any other command does nothing.
pub(crate) fn run_command(s: &mut FakeState, cmd: &str) -> Result<(), String> {
    if cmd.contains(DATABASE_SCRIPT) {
        if !s.active("mariadb.service") {
            return Err("MariaDB does not answer after 30s".into());
        }
        if !s
            .text(SLURMDBD_CONF)
            .lines()
            .any(|l| l.starts_with("StoragePass=") && l.len() > "StoragePass=".len())
        {
            return Err(format!("no StoragePass in {SLURMDBD_CONF}"));
        }
        s.slurmdb.database = true;
        return Ok(());
    }
    let Some(at) = cmd.rfind("sacctmgr -i ") else {
        return Ok(());
    };
    if !slurmdbd_answers(s) {
        return Err("sacctmgr: error: Problem talking to the database: Connection refused".into());
    }
    let action = cmd[at..].split(';').next().unwrap_or_default();
    let words =
        shlex::split(action).ok_or_else(|| format!("fake sacctmgr: cannot parse {action}"))?;
    s.slurmdb.commands.push(words[2..].join(" "));
    let kv = |k: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .map(String::from)
    };
    let db = &mut s.slurmdb;
    let has = |db: &FakeSlurmdb, key: &(String, String, String)| {
        db.associations.iter().any(|(k, _)| k == key)
    };
    match (words[2].as_str(), words[3].as_str()) {
        ("add", "cluster") => {
            let c = words[4].clone();
            if !db.clusters.contains(&c) {
                db.clusters.push(c.clone());
                db.associations
                    .push(((c.clone(), "root".into(), String::new()), "1".into()));
                db.associations
                    .push(((c, "root".into(), "root".into()), "1".into()));
                db.defaults
                    .entry("root".into())
                    .or_insert_with(|| "root".into());
            }
        }
        ("add", "account") => {
            let key = (
                kv("cluster").ok_or("no cluster")?,
                words[4].clone(),
                String::new(),
            );
            if !has(db, &key) {
                db.associations
                    .push((key, kv("fairshare").unwrap_or_else(|| "1".into())));
            }
        }
        ("add", "user") => {
            let (user, account, cluster) = (
                words[4].clone(),
                kv("account").ok_or("no account")?,
                kv("cluster").ok_or("no cluster")?,
            );
            if !has(db, &(cluster.clone(), account.clone(), String::new())) {
                return Err(format!(
                    " The account '{account}' doesn't exist on cluster {cluster}"
                ));
            }
            let key = (cluster, account.clone(), user.clone());
            if !has(db, &key) {
                if !db.defaults.contains_key(&user) {
                    db.defaults
                        .insert(user.clone(), kv("defaultaccount").unwrap_or(account));
                }
                db.associations
                    .push((key, kv("fairshare").unwrap_or_else(|| "1".into())));
            }
        }
        ("modify", what) => {
            let name = kv("name").ok_or("no name")?;
            if let Some(d) = kv("defaultaccount") {
                db.defaults.insert(name.clone(), d);
            }
            if let Some(share) = kv("fairshare") {
                let (account, user) = if what == "account" {
                    (name, String::new())
                } else {
                    (kv("account").ok_or("no account")?, name)
                };
                for ((c, a, u), sh) in db.associations.iter_mut() {
                    if Some(c.clone()) == kv("cluster") && *a == account && *u == user {
                        *sh = share.clone();
                    }
                }
            }
        }
        ("remove", "user") => {
            let (name, account, cluster) =
                (kv("name").ok_or("no name")?, kv("account"), kv("cluster"));
            if let Some((_, jobs)) = db
                .jobs
                .iter()
                .find(|(_, u, a)| *u == name && account.as_ref().is_none_or(|x| x == a))
                .map(|j| ((), j.0))
            {
                return Err(format!(" Error with request: Job(s) active, cancel job(s) before remove\n  JobID = {jobs}"));
            }
            db.associations.retain(|((c, a, u), _)| {
                !(*u == name
                    && cluster.as_ref().is_none_or(|x| x == c)
                    && account.as_ref().is_none_or(|x| x == a))
            });
            if !db.associations.iter().any(|((_, _, u), _)| *u == name) {
                db.defaults.remove(&name);
            }
        }
        _ => return Err(format!("fake sacctmgr: unsupported {action}")),
    }
    Ok(())
}
