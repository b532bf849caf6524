//! Fair share on fake hosts: plan → apply → plan is empty for the accounting steps,
//! a user added to the inventory gets an association, an association with active jobs
//! is not removed (the job ids are named), and the database password is in no plan
//! text, plan JSON, op description or command line.

use base64::Engine as _;
use closetctl::command::{apply_with, plan_with, ApplyOptions, Loaded};
use closetctl::report::Reporter;
use closetctl_core::plan::render::{self, Style};
use closetctl_core::plan::{HostStatus, Plan};
use closetctl_testkit::fake::FakeCluster;
use std::sync::Arc;

const INVENTORY: &str = r#"[cluster]
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
groups = ["nlp-lab"]

[slurm]
controller = "head"
"#;

const STEPS: [&str; 3] = ["accounting-database", "slurmdbd", "accounting-associations"];

struct Closet {
    dir: tempfile::TempDir,
}

impl Closet {
    fn new(text: &str) -> Closet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inventory.toml"), text).unwrap();
        Closet { dir }
    }

    fn set(&self, text: &str) {
        std::fs::write(self.dir.path().join("inventory.toml"), text).unwrap();
    }

    fn load(&self) -> Loaded {
        Loaded::load(&self.dir.path().join("inventory.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("secrets/slurmdbd.password")).unwrap()
    }
}

async fn plan(fake: &Arc<FakeCluster>, loaded: &Loaded) -> Plan {
    plan_with(fake.clone(), loaded, &[], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

async fn apply(fake: &Arc<FakeCluster>, loaded: &Loaded) -> closetctl::command::ApplyOutcome {
    let reporter = Reporter::start();
    let outcome = apply_with(
        fake.clone(),
        loaded,
        &ApplyOptions::default(),
        Some(reporter.sender()),
        |_| true,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    reporter.finish().await;
    outcome
}

fn text(plan: &Plan) -> String {
    render::text(plan, Style::plain())
}

/// The accounting steps' lines of the controller's plan.
fn accounting_lines(plan: &Plan) -> Vec<String> {
    let head = plan.hosts.iter().find(|h| h.host == "head").unwrap();
    head.steps
        .iter()
        .filter(|s| STEPS.contains(&s.name.as_str()))
        .flat_map(|s| {
            s.changes
                .iter()
                .map(|c| {
                    format!(
                        "{}: {} {}: {}",
                        s.name,
                        c.action.symbol(),
                        c.resource(),
                        c.details.join(", ")
                    )
                })
                .chain(
                    s.handlers
                        .iter()
                        .map(|h| format!("{}: * {}", s.name, h.name)),
                )
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_no_password(closet: &Closet, fake: &FakeCluster, plan: &Plan) {
    let password = closet.password();
    assert_eq!(password.len(), 32);
    let encoded = base64::engine::general_purpose::STANDARD.encode(password.as_bytes());
    for shown in [text(plan), render::json(plan)] {
        assert!(!shown.contains(&password), "password in the plan:\n{shown}");
    }
    for step in plan.hosts.iter().flat_map(|h| &h.steps) {
        for op in step.ops() {
            let debug = format!("{op:?} {}", op.describe());
            assert!(
                !debug.contains(&password) && !debug.contains(&encoded),
                "password in {debug}"
            );
        }
    }
    // Scripts travel on stdin; only `cc_command` lines become a command line (`sh -c`).
    for host in fake.hosts.values() {
        for script in host.scripts.lock().unwrap().iter() {
            for line in script.lines().filter(|l| l.contains("cc_command")) {
                assert!(
                    !line.contains(&password),
                    "password on a command line: {line}"
                );
            }
        }
    }
}

#[tokio::test]
async fn plan_apply_plan_is_empty_for_the_accounting_steps() {
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();
    let fake = Arc::new(FakeCluster::debian(&["head", "node1"]));

    let first = plan(&fake, &loaded).await;
    assert_eq!(
        accounting_lines(&first),
        vec![
            "accounting-database: + package mariadb-server: install",
            "accounting-database: + package slurmdbd: install",
            "accounting-database: + file /etc/mysql/mariadb.conf.d/60-closetctl.cnf: root:root 0644",
            "accounting-database: + file /usr/local/lib/closetctl/slurm-database.sh: root:root 0700",
            "accounting-database: + file /etc/slurm/slurmdbd.conf: slurm:slurm 0600",
            "accounting-database: + service mariadb.service: enable, start",
            "accounting-database: + database slurm_acct_db: create user slurm@localhost, database slurm_acct_db, grant on slurm_acct_db.* (password: secret slurmdbd.password)",
            "accounting-database: * restart mariadb",
            "accounting-database: * set up the Slurm database",
            "slurmdbd: + service slurmdbd.service: enable, start",
            "slurmdbd: * restart slurmdbd",
            "accounting-associations: + slurm-cluster closet: register in slurmdbd",
            "accounting-associations: + slurm-account vision-lab: fairshare 1",
            "accounting-associations: + slurm-account nlp-lab: fairshare 1",
            "accounting-associations: + association vision-lab/alice: fairshare 1, default account",
            "accounting-associations: + association nlp-lab/bob: fairshare 1, default account",
        ]
    );
    let shown = text(&first);
    assert!(
        shown.contains(
            "+ file /etc/slurm/slurmdbd.conf: slurm:slurm 0600 [secret slurmdbd.password: sha256:"
        ),
        "{shown}"
    );
    assert!(
        !shown.contains("+StoragePass="),
        "slurmdbd.conf is never shown as a diff:\n{shown}"
    );
    assert!(
        !accounting_lines(&first).is_empty()
            && first
                .hosts
                .iter()
                .find(|h| h.host == "node1")
                .unwrap()
                .steps
                .iter()
                .all(|s| !STEPS.contains(&s.name.as_str()))
    );

    let outcome = apply(&fake, &loaded).await;
    assert!(outcome.report.all_ok(), "{:?}", outcome.report);
    let after = outcome.after.clone().unwrap();
    assert!(
        accounting_lines(&after).is_empty(),
        "{:?}",
        accounting_lines(&after)
    );
    assert!(!after.has_changes(), "{}", text(&after));
    let again = plan(&fake, &loaded).await;
    assert!(!again.has_changes(), "{}", text(&again));
    assert_no_password(&closet, &fake, &first);

    fake.host("head").with(|s| {
        assert!(s.slurmdb.database);
        assert_eq!(
            s.slurmdb.commands,
            vec![
                "add cluster closet",
                "add account vision-lab cluster=closet fairshare=1",
                "add account nlp-lab cluster=closet fairshare=1",
                "add user alice account=vision-lab cluster=closet fairshare=1 defaultaccount=vision-lab",
                "add user bob account=nlp-lab cluster=closet fairshare=1 defaultaccount=nlp-lab",
            ]
        );
        let conf = String::from_utf8(s.files["/etc/slurm/slurmdbd.conf"].content.clone()).unwrap();
        assert!(conf.contains(&format!("StoragePass={}\n", closet.password())));
        assert_eq!((s.files["/etc/slurm/slurmdbd.conf"].mode, s.files["/etc/slurm/slurmdbd.conf"].owner.as_str()), (0o600, "slurm"));
        let slurm_conf = String::from_utf8(s.files["/etc/slurm/slurm.conf"].content.clone()).unwrap();
        assert!(slurm_conf.contains("AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=10.0.0.1\nPriorityType=priority/multifactor\n"));
    });
    // The database is set up before slurmdbd starts, slurmdbd before slurmctld.
    let sent = fake.host("head").scripts.lock().unwrap().join("\n");
    let at = |needle: &str| {
        sent.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in\n{sent}"))
    };
    assert!(
        at("cc_activate 'sh /usr/local/lib/closetctl/slurm-database.sh'")
            < at("cc_systemctl start 'slurmdbd.service'")
    );
    assert!(
        at("cc_systemctl start 'slurmdbd.service'") < at("cc_systemctl start 'slurmctld.service'")
    );
    assert!(at("cc_systemctl start 'slurmctld.service'") < at("sacctmgr -i add cluster"));
}

#[tokio::test]
async fn a_new_user_is_associated_and_a_busy_association_is_not_removed() {
    let closet = Closet::new(INVENTORY);
    let fake = Arc::new(FakeCluster::debian(&["head", "node1"]));
    assert!(apply(&fake, &closet.load()).await.success());

    let with_carol = INVENTORY.replace("[slurm]\n", "[[user]]\nname = \"carol\"\nuid = 1003\ngroups = [\"vision-lab\", \"nlp-lab\"]\n\n[slurm]\n");
    closet.set(&with_carol);
    let loaded = closet.load();
    let p = plan(&fake, &loaded).await;
    assert_eq!(
        accounting_lines(&p),
        vec![
            "accounting-associations: + association vision-lab/carol: fairshare 1, default account",
            "accounting-associations: + association nlp-lab/carol: fairshare 1",
        ]
    );
    assert!(apply(&fake, &loaded).await.success());
    assert!(accounting_lines(&plan(&fake, &loaded).await).is_empty());

    // carol leaves nlp-lab while a job of hers runs under it: refused, ids named.
    fake.host("head").with(|s| {
        s.slurmdb.jobs = vec![
            (57, "carol".into(), "nlp-lab".into()),
            (58, "bob".into(), "nlp-lab".into()),
        ]
    });
    closet.set(&with_carol.replace(
        "groups = [\"vision-lab\", \"nlp-lab\"]",
        "groups = [\"vision-lab\"]",
    ));
    let loaded = closet.load();
    let p = plan(&fake, &loaded).await;
    let head = p.hosts.iter().find(|h| h.host == "head").unwrap();
    assert_eq!(head.status, HostStatus::Conflict);
    assert_eq!(
        head.conflicts,
        vec!["association nlp-lab/carol is to be removed but carol has active jobs 57 under it; wait for them to finish or `scancel 57`, then apply again"]
    );
    let outcome = apply(&fake, &loaded).await;
    assert!(!outcome.success());
    assert!(fake.host("head").with(|s| s
        .slurmdb
        .associations
        .iter()
        .any(|((_, a, u), _)| a == "nlp-lab" && u == "carol")));

    // The job ended: the association goes, carol keeps vision-lab as her default.
    fake.host("head")
        .with(|s| s.slurmdb.jobs.retain(|(id, _, _)| *id != 57));
    assert!(apply(&fake, &loaded).await.success());
    fake.host("head").with(|s| {
        let carol: Vec<&str> = s
            .slurmdb
            .associations
            .iter()
            .filter(|((_, _, u), _)| u == "carol")
            .map(|((_, a, _), _)| a.as_str())
            .collect();
        assert_eq!(carol, vec!["vision-lab"]);
        assert_eq!(s.slurmdb.defaults["carol"], "vision-lab");
    });
    assert!(accounting_lines(&plan(&fake, &loaded).await).is_empty());
}

#[tokio::test]
async fn fair_share_off_has_no_accounting_steps() {
    let closet = Closet::new(&INVENTORY.replace(
        "controller = \"head\"\n",
        "controller = \"head\"\nfair_share = false\n",
    ));
    let loaded = closet.load();
    let fake = Arc::new(FakeCluster::debian(&["head", "node1"]));
    let p = plan(&fake, &loaded).await;
    assert!(accounting_lines(&p).is_empty());
    assert!(
        !closet.dir.path().join("secrets/slurmdbd.password").exists(),
        "no password made when fair share is off"
    );
    let outcome = apply(&fake, &loaded).await;
    assert!(
        outcome.success(),
        "{:?}\n{}",
        outcome.report,
        outcome.after.as_ref().map(text).unwrap_or_default()
    );
    let conf = fake
        .host("head")
        .with(|s| String::from_utf8(s.files["/etc/slurm/slurm.conf"].content.clone()).unwrap());
    for key in [
        "AccountingStorage",
        "PriorityType",
        "PriorityWeight",
        "PriorityDecayHalfLife",
    ] {
        assert!(!conf.contains(key), "{key} in\n{conf}");
    }
}
