//! The accounting module: Slurm fair share with slurmdbd and MariaDB on the controller,
//! and the associations that fair share counts usage against, from the inventory.
//!
//! Two playbook modules live here: `accounting-database` (the MariaDB database and
//! user slurmdbd stores into; runs before slurmctld starts) and
//! `accounting-associations` (the cluster, one account per inventory group or declared
//! `[[slurm.account]]`, each user associated with the accounts of their groups, the
//! first group being the default account; runs after slurmctld).
//!
//! Associations slurmdbd has that the inventory does not want are removed when they
//! belong to an inventory user or an inventory account; others (made by hand for
//! people closetctl does not know) are left alone, like unmanaged accounts. Removing an
//! association that still has active jobs is refused: the controller is in conflict,
//! with the job ids named, until they finish or are cancelled.

pub mod association;

use crate::diagnostic::{Code, Diagnostic};
use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory};
use crate::resource::{Accounting, Association, Resource, SlurmdbFacts};
use std::collections::BTreeSet;

/// Module names a playbook step may use.
pub const DATABASE_MODULE: &str = "accounting-database";
pub const ASSOCIATIONS_MODULE: &str = "accounting-associations";

/// The file slurmdbd reads (with the database password; shown only as a fingerprint).
pub const SLURMDBD_CONF: &str = "/etc/slurm/slurmdbd.conf";

/// Shares of an account or user association when the inventory gives none.
pub const DEFAULT_FAIRSHARE: u32 = 1;

/// The `accounting` concern: slurmdbd, its database and the fair-share associations.
pub struct FairShare;

impl super::Concern for FairShare {
    fn name(&self) -> &'static str {
        "accounting"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[
            ("25-accounting.toml", include_str!("25-accounting.toml")),
            ("35-associations.toml", include_str!("35-associations.toml")),
        ]
    }
    fn templates(&self) -> &'static [super::Shipped] {
        &[
            ("slurmdbd.conf.j2", include_str!("slurmdbd.conf.j2")),
            (
                "mariadb-closetctl.cnf.j2",
                include_str!("mariadb-closetctl.cnf.j2"),
            ),
            (
                "mariadb-slurm-database.sh.j2",
                include_str!("mariadb-slurm-database.sh.j2"),
            ),
        ]
    }
    fn modules(&self) -> &'static [&'static str] {
        &[DATABASE_MODULE, ASSOCIATIONS_MODULE]
    }
    fn conditions(&self) -> &'static [&'static str] {
        &["fair_share"]
    }
    fn condition(&self, _name: &str, inventory: &Inventory) -> bool {
        inventory
            .slurm
            .as_ref()
            .is_some_and(|s| s.fair_share.enabled)
    }
    fn resources(&self, module: &str, i: &super::HostInputs) -> Vec<Resource> {
        resources(module, i.inventory, i.host, i.facts)
    }
    fn conflicts(&self, inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        conflicts(inventory, host, facts)
    }
}

/// Whether fair share is on and `host` is the Slurm controller.
pub fn applies(inventory: &Inventory, host: &Host) -> bool {
    inventory
        .slurm
        .as_ref()
        .is_some_and(|s| s.fair_share.enabled && s.controller == host.name)
}

/// What the inventory wants slurmdbd to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub cluster: String,
    /// `(account, fairshare)` in inventory order: declared accounts, then one per group.
    pub accounts: Vec<(String, u32)>,
    /// `(user, accounts)`: the first account is the user's default.
    pub users: Vec<(String, Vec<String>)>,
}

impl Desired {
    pub fn from_inventory(inventory: &Inventory) -> Option<Desired> {
        let slurm = inventory.slurm.as_ref().filter(|s| s.fair_share.enabled)?;
        let mut accounts: Vec<(String, u32)> = slurm
            .accounts
            .iter()
            .map(|a| (a.name.clone(), a.fairshare.unwrap_or(DEFAULT_FAIRSHARE)))
            .collect();
        for g in &inventory.groups {
            if !accounts.iter().any(|(a, _)| *a == g.name) {
                accounts.push((g.name.clone(), DEFAULT_FAIRSHARE));
            }
        }
        let is_account = |name: &str| accounts.iter().any(|(a, _)| a == name);
        let mut users = Vec::new();
        // Someone whose access ended keeps no association: removals take hers away.
        for u in inventory.active_users() {
            let mut mine: Vec<String> =
                u.groups.iter().filter(|g| is_account(g)).cloned().collect();
            for a in slurm.accounts.iter().filter(|a| a.users.contains(&u.name)) {
                if !mine.contains(&a.name) {
                    mine.push(a.name.clone());
                }
            }
            if !mine.is_empty() {
                users.push((u.name.clone(), mine));
            }
        }
        Some(Desired {
            cluster: slurm.cluster_name.clone(),
            accounts,
            users,
        })
    }

    fn wants(&self, account: &str, user: &str) -> bool {
        self.users
            .iter()
            .any(|(u, accts)| u == user && accts.iter().any(|a| a == account))
    }

    /// Live user associations to remove: those of an inventory user or in an
    /// inventory account that the inventory does not list (never `root`'s).
    pub fn removals(&self, inventory: &Inventory, db: &SlurmdbFacts) -> Vec<Association> {
        let managed_accounts: BTreeSet<&str> =
            self.accounts.iter().map(|(a, _)| a.as_str()).collect();
        db.user_associations(&self.cluster)
            .into_iter()
            .filter(|(a, u)| {
                u != "root"
                    && (inventory.user(u).is_some() || managed_accounts.contains(a.as_str()))
            })
            .filter(|(a, u)| !self.wants(a, u))
            .map(|(account, user)| Association {
                cluster: self.cluster.clone(),
                last: !self.users.iter().any(|(u, _)| *u == user),
                // `apply --cancel-jobs`: a leaving user's jobs go with her association.
                cancel_jobs: if inventory.run.cancel_jobs
                    && inventory
                        .user(&user)
                        .is_some_and(|u| u.access_ended(inventory.run.today))
                {
                    db.jobs_of(&user, &account)
                } else {
                    Vec::new()
                },
                ended: inventory
                    .user(&user)
                    .filter(|u| u.access_ended(inventory.run.today))
                    .map(|u| u.ended_because()),
                account,
                user,
                fairshare: DEFAULT_FAIRSHARE,
                default: false,
                remove: true,
            })
            .collect()
    }
}

/// The resources of the `accounting-database` or `accounting-associations` module.
pub fn resources(
    module: &str,
    inventory: &Inventory,
    host: &Host,
    facts: Option<&HostFacts>,
) -> Vec<Resource> {
    let Some(desired) = Desired::from_inventory(inventory).filter(|_| applies(inventory, host))
    else {
        return Vec::new();
    };
    if module == DATABASE_MODULE {
        return vec![Resource::Accounting(Accounting::Database {
            cluster: desired.cluster.clone(),
        })];
    }
    let mut out = vec![Resource::Accounting(Accounting::Cluster {
        name: desired.cluster.clone(),
    })];
    for (name, fairshare) in &desired.accounts {
        out.push(Resource::Accounting(Accounting::Account {
            cluster: desired.cluster.clone(),
            name: name.clone(),
            fairshare: *fairshare,
        }));
    }
    // Default accounts first: a new user is created with its default, and a user's
    // default moves before the association it leaves is removed.
    for (user, accounts) in &desired.users {
        for (i, account) in accounts.iter().enumerate() {
            out.push(Resource::Accounting(Accounting::Association(Association {
                cluster: desired.cluster.clone(),
                account: account.clone(),
                user: user.clone(),
                fairshare: DEFAULT_FAIRSHARE,
                default: i == 0,
                remove: false,
                last: false,
                cancel_jobs: Vec::new(),
                ended: None,
            })));
        }
    }
    if let Some(f) = facts {
        let db = SlurmdbFacts::from_facts(f);
        out.extend(
            desired
                .removals(inventory, &db)
                .into_iter()
                .map(|a| Resource::Accounting(Accounting::Association(a))),
        );
    }
    out
}

/// Removals that would hit active jobs: apply refuses the controller, naming them.
pub fn conflicts(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    let Some(desired) = Desired::from_inventory(inventory).filter(|_| applies(inventory, host))
    else {
        return Vec::new();
    };
    let db = SlurmdbFacts::from_facts(facts);
    desired
        .removals(inventory, &db)
        .iter()
        .filter_map(|a| {
            let jobs = db.jobs_of(&a.user, &a.account);
            let hint = if a.ended.is_some() {
                format!(
                    "wait for them to finish, `scancel {}`, or apply with `--cancel-jobs` to cancel them",
                    jobs.join(" ")
                )
            } else {
                format!(
                    "wait for them to finish or `scancel {}`, then apply again",
                    jobs.join(" ")
                )
            };
            (!jobs.is_empty() && a.cancel_jobs.is_empty()).then(|| {
                Diagnostic::error(
                    Code::AssociationBusy,
                    a.name(),
                    format!(
                        "association {} is to be removed but {} has active jobs {} under it",
                        a.name(),
                        a.user,
                        jobs.join(", ")
                    ),
                )
                .hint(hint)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concerns::accounting::association::{ACCOUNTING_FACTS, JOBS_FACTS};
    use crate::facts::CommandOutput;
    use crate::resource::Change;
    use std::path::Path;

    const INVENTORY: &str = r#"
[cluster]
name = "closet"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller"]

[[host]]
name = "node1"
address = "10.0.0.2"
roles = ["compute"]

[[group]]
name = "vision-lab"
gid = 2001

[[group]]
name = "nlp-lab"
gid = 2002

[[user]]
name = "alice"
uid = 1001
groups = ["vision-lab"]

[[user]]
name = "bob"
uid = 1002
groups = ["nlp-lab", "vision-lab"]

[slurm]
controller = "head"

[[slurm.account]]
name = "nlp-lab"
fairshare = 30
"#;

    fn inventory(text: &str) -> Inventory {
        Inventory::parse(Path::new("inventory.toml"), text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn out(stdout: &str, exit_code: i32) -> CommandOutput {
        CommandOutput {
            exit_code,
            stdout: stdout.into(),
        }
    }

    /// The probe's accounting rows for what `sacctmgr -nP show cluster format=cluster`,
    /// `show assoc format=cluster,account,user,share` and `show user
    /// format=user,defaultaccount` would print (`|`-separated, one per line), with the
    /// database, its user and grant present.
    fn slurmdb(clusters: &str, associations: &str, users: &str) -> CommandOutput {
        let mut rows = vec!["0\t1\t1\t1".to_string()];
        rows.extend(clusters.lines().map(|c| format!("1\t{c}\t\t\t0")));
        for l in associations.lines().map(str::trim) {
            let p: Vec<&str> = l.split('|').collect();
            let share = if p[3] == "parent" { "2147483647" } else { p[3] };
            rows.push(format!("2\t{}\t{}\t{}\t{share}", p[0], p[1], p[2]));
        }
        for (user, default) in users.lines().filter_map(|l| l.split_once('|')) {
            rows.push(format!("3\t{user}\t\t\t0"));
            if !default.is_empty() {
                rows.push(format!("4\t{user}\t{default}\t\t0"));
            }
        }
        out(&rows.join("\n"), 0)
    }

    const LIVE_ASSOCIATIONS: &str = "closet|root||1\ncloset|root|root|1\ncloset|vision-lab||1\ncloset|vision-lab|alice|1\ncloset|vision-lab|bob|1\n\
                 closet|vision-lab|carol|1\ncloset|nlp-lab||1\ncloset|nlp-lab|bob|1\ncloset|guests||1\ncloset|guests|visitor|1\n\
                 other|vision-lab|zed|1";

    /// Facts on a controller where carol left vision-lab for the inventory, bob's
    /// default is wrong and nlp-lab still has 1 share.
    fn live() -> HostFacts {
        let mut f = HostFacts::default();
        f.commands.insert(
            ACCOUNTING_FACTS.into(),
            slurmdb(
                "closet",
                LIVE_ASSOCIATIONS,
                "root|root\nalice|vision-lab\nbob|vision-lab\ncarol|vision-lab\nvisitor|guests",
            ),
        );
        f.commands.insert(JOBS_FACTS.into(), out("", 0));
        f
    }

    fn changes(inv: &Inventory, facts: &HostFacts) -> Vec<Change> {
        let head = inv.host("head").unwrap();
        resources(ASSOCIATIONS_MODULE, inv, head, Some(facts))
            .iter()
            .filter_map(|r| r.diff(facts))
            .collect()
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                format!(
                    "{} {}: {}",
                    c.action.symbol(),
                    c.resource(),
                    c.details.join(", ")
                )
            })
            .collect()
    }

    #[test]
    fn accounts_from_groups_and_declarations_default_first() {
        let inv = inventory(INVENTORY);
        let d = Desired::from_inventory(&inv).unwrap();
        assert_eq!(
            d.accounts,
            vec![("nlp-lab".to_string(), 30), ("vision-lab".to_string(), 1)]
        );
        assert_eq!(
            d.users,
            vec![
                ("alice".to_string(), vec!["vision-lab".to_string()]),
                (
                    "bob".to_string(),
                    vec!["nlp-lab".to_string(), "vision-lab".to_string()]
                )
            ]
        );
    }

    #[test]
    fn a_fresh_controller_adds_everything_without_mariadb_or_slurmdbd_tables() {
        let inv = inventory(INVENTORY);
        let expected = vec![
            "+ slurm-cluster closet: register in slurmdbd",
            "+ slurm-account nlp-lab: fairshare 30",
            "+ slurm-account vision-lab: fairshare 1",
            "+ association vision-lab/alice: fairshare 1, default account",
            "+ association nlp-lab/bob: fairshare 1, default account",
            "+ association vision-lab/bob: fairshare 1",
        ];
        let mut facts = HostFacts::default();
        // No MariaDB yet: mysql fails.
        facts.commands.insert(
            ACCOUNTING_FACTS.into(),
            out("", 1),
        );
        assert_eq!(lines(&changes(&inv, &facts)), expected);
        // MariaDB and the database, but slurmdbd never started: only the first row.
        facts
            .commands
            .insert(ACCOUNTING_FACTS.into(), out("0\t1\t1\t1\n", 0));
        assert_eq!(lines(&changes(&inv, &facts)), expected);
    }

    /// The probe's `mysql` answer and what `sacctmgr -nP` printed on the same slurmdbd
    /// 22.05 database (MariaDB 10.11, Debian 12; clusters closet and other, a `parent`
    /// share, zed with no association on closet, carol and an account removed) read as
    /// the same facts: the association facts are what sacctmgr would say.
    #[test]
    fn the_mysql_rows_read_as_what_sacctmgr_printed() {
        const MYSQL: &str = "0\t1\t1\t1\n1\tcloset\t\t\t0\n1\tother\t\t\t0\n3\talice\t\t\t0\n3\tbob\t\t\t0\n\
            3\troot\t\t\t0\n3\tvisitor\t\t\t0\n3\tzed\t\t\t0\n2\tcloset\troot\t\t1\n2\tcloset\troot\troot\t1\n\
            2\tcloset\tvision-lab\t\t1\n2\tcloset\tnlp-lab\t\t30\n2\tcloset\tguests\t\t1\n2\tcloset\tvision-lab\talice\t1\n\
            2\tcloset\tnlp-lab\tbob\t3\n2\tcloset\tvision-lab\tbob\t1\n2\tcloset\tguests\tvisitor\t2147483647\n\
            2\tother\troot\t\t1\n2\tother\troot\troot\t1\n2\tother\tguests\t\t1\n2\tother\tguests\tvisitor\t2147483647\n\
            2\tother\tguests\tzed\t1\n4\troot\troot\t\t0\n4\talice\tvision-lab\t\t0\n4\tbob\tnlp-lab\t\t0\n\
            4\tvisitor\tguests\t\t0\n";
        const CLUSTERS: &str = "closet\nother";
        const ASSOCIATIONS: &str = "closet|root||1\ncloset|root|root|1\ncloset|guests||1\ncloset|guests|visitor|parent\n\
            closet|nlp-lab||30\ncloset|nlp-lab|bob|3\ncloset|vision-lab||1\ncloset|vision-lab|alice|1\ncloset|vision-lab|bob|1\n\
            other|root||1\nother|root|root|1\nother|guests||1\nother|guests|visitor|parent\nother|guests|zed|1";
        const USERS: &str = "alice|vision-lab\nbob|nlp-lab\nroot|root\nvisitor|guests\nzed|";
        let mut facts = HostFacts::default();
        facts.commands.insert(ACCOUNTING_FACTS.into(), out(MYSQL, 0));
        let got = SlurmdbFacts::from_facts(&facts);
        let want = SlurmdbFacts {
            answered: true,
            clusters: CLUSTERS.lines().map(String::from).collect(),
            associations: ASSOCIATIONS
                .lines()
                .map(|l| {
                    let p: Vec<&str> = l.trim().split('|').collect();
                    ((p[0].into(), p[1].into(), p[2].into()), p[3].into())
                })
                .collect(),
            defaults: USERS
                .lines()
                .filter_map(|l| l.split_once('|'))
                .map(|(u, a)| (u.into(), a.into()))
                .collect(),
            jobs: Vec::new(),
        };
        assert_eq!(got, want);
        assert_eq!(got.defaults["zed"], "", "no default on closet");
        assert_eq!(got.associations[&("closet".into(), "guests".into(), "visitor".into())], "parent");
        // The test helper writes the same rows from sacctmgr's text.
        facts
            .commands
            .insert(ACCOUNTING_FACTS.into(), slurmdb(CLUSTERS, ASSOCIATIONS, USERS));
        assert_eq!(SlurmdbFacts::from_facts(&facts), want);
    }

    #[test]
    fn one_command_for_every_accounting_fact_naming_the_cluster_and_squeue_only_for_a_removal() {
        let inv = inventory(INVENTORY);
        let head = inv.host("head").unwrap();
        let asked = |facts: Option<&HostFacts>| {
            let mut req = crate::facts::probe::ProbeRequest::default();
            for module in [DATABASE_MODULE, ASSOCIATIONS_MODULE] {
                for r in resources(module, &inv, head, facts) {
                    if let Resource::Accounting(a) = r {
                        a.probe(&mut req);
                    }
                }
            }
            req
        };
        // Every plan's probe: the one query, no squeue.
        let req = asked(None);
        assert_eq!(req.commands.keys().collect::<Vec<_>>(), vec![ACCOUNTING_FACTS]);
        // Facts with an association the inventory no longer wants (carol's): its jobs.
        assert_eq!(
            asked(Some(&live())).commands.keys().collect::<Vec<_>>(),
            vec![ACCOUNTING_FACTS, JOBS_FACTS]
        );
        let command = &req.commands[ACCOUNTING_FACTS];
        assert!(command.starts_with("mysql -N -B -e \""), "{command}");
        assert!(command.contains("name=''closet''"), "{command}");
        assert!(!command.contains("sacctmgr"), "{command}");
        assert!(!command.contains('$'), "nothing the shell expands: {command}");
    }

    #[test]
    fn associations_diff_against_sacctmgr_output() {
        let inv = inventory(INVENTORY);
        let c = changes(&inv, &live());
        assert_eq!(
            lines(&c),
            vec![
                "~ slurm-account nlp-lab: fairshare 1 -> 30",
                "~ association nlp-lab/bob: default account vision-lab -> nlp-lab",
                "- association vision-lab/carol: the inventory has no account for carol any more",
            ],
            "root, guests/visitor (unmanaged) and the other cluster are left alone"
        );
        let ops: Vec<String> = c
            .iter()
            .flat_map(|c| &c.ops)
            .map(|o| o.describe())
            .collect();
        assert_eq!(
            ops,
            vec![
                "run `sacctmgr -i modify account where name='nlp-lab' cluster='closet' set fairshare=30`",
                "run `sacctmgr -i modify user where name='bob' set defaultaccount='nlp-lab'`",
                "run `if sacctmgr -nP show assoc where cluster='closet' user='carol' format=user | grep -q .; then sacctmgr -i remove user where name='carol' cluster='closet'; fi`",
            ]
        );
    }

    #[test]
    fn leaving_one_of_two_accounts_removes_only_that_association() {
        let text = INVENTORY.replace(
            "groups = [\"nlp-lab\", \"vision-lab\"]",
            "groups = [\"nlp-lab\"]",
        );
        let inv = inventory(&text);
        let mut facts = live();
        facts.commands.insert(
            ACCOUNTING_FACTS.into(),
            slurmdb(
                "closet",
                LIVE_ASSOCIATIONS,
                "alice|vision-lab\nbob|nlp-lab\ncarol|vision-lab",
            ),
        );
        let c = changes(&inv, &facts);
        let bob: Vec<&Change> = c.iter().filter(|c| c.name.ends_with("/bob")).collect();
        assert_eq!(lines(&bob.iter().map(|c| (*c).clone()).collect::<Vec<_>>()), vec!["- association vision-lab/bob: the inventory no longer has bob in vision-lab"]);
        assert_eq!(
            bob[0].ops[0].describe(),
            "run `sacctmgr -i remove user where name='bob' account='vision-lab' cluster='closet'`"
        );
    }

    #[test]
    fn removing_an_association_with_active_jobs_is_refused_naming_them() {
        let inv = inventory(INVENTORY);
        let mut facts = live();
        facts.commands.insert(
            JOBS_FACTS.into(),
            out(
                "41 carol vision-lab\n42 alice vision-lab\n43 carol vision-lab\n",
                0,
            ),
        );
        let head = inv.host("head").unwrap();
        assert_eq!(
            conflicts(&inv, head, &facts)
                .iter()
                .map(|d| d.text())
                .collect::<Vec<_>>(),
            vec!["association vision-lab/carol is to be removed but carol has active jobs 41, 43 under it; wait for them to finish or `scancel 41 43`, then apply again"]
        );
        facts
            .commands
            .insert(JOBS_FACTS.into(), out("42 alice vision-lab\n", 0));
        assert!(conflicts(&inv, head, &facts).is_empty());
        assert!(
            crate::concerns::conflicts(&inv, inv.host("node1").unwrap(), &facts).is_empty(),
            "only the controller"
        );
    }

    #[test]
    fn converged_associations_are_no_change() {
        let inv = inventory(INVENTORY);
        let mut facts = HostFacts::default();
        facts.commands.insert(
            ACCOUNTING_FACTS.into(),
            slurmdb(
                "closet",
                "closet|root||1\ncloset|root|root|1\ncloset|nlp-lab||30\ncloset|nlp-lab|bob|1\ncloset|vision-lab||1\ncloset|vision-lab|alice|1\ncloset|vision-lab|bob|1",
                "root|root\nalice|vision-lab\nbob|nlp-lab",
            ),
        );
        assert!(
            changes(&inv, &facts).is_empty(),
            "{:?}",
            lines(&changes(&inv, &facts))
        );
    }

    #[test]
    fn nothing_without_fair_share_or_off_the_controller() {
        let inv = inventory(&INVENTORY.replace(
            "controller = \"head\"",
            "controller = \"head\"\nfair_share = false",
        ));
        assert!(resources(DATABASE_MODULE, &inv, inv.host("head").unwrap(), None).is_empty());
        let inv = inventory(INVENTORY);
        assert!(resources(ASSOCIATIONS_MODULE, &inv, inv.host("node1").unwrap(), None).is_empty());
        assert_eq!(
            resources(DATABASE_MODULE, &inv, inv.host("head").unwrap(), None).len(),
            1
        );
    }
}
