//! Which handlers a change fires: the built-in Slurm playbooks, planned against a host
//! whose files drifted in one way or another, table by table.
//!
//! Handlers with a `disruption` fire only when the most disruptive change they watch
//! (ranked by `disruption_rank`: restart > reconfigure > none) has that label; a
//! `slurm.conf` change is labelled by `classify` (`restart` for node lines and the other
//! restart keys or a new file, `reconfigure` for partitions and other keys, `none` for
//! comments), `gres.conf` and `cgroup.conf` always `restart`.

use closetctl_core::desired::{secrets_needed, Desired, Inputs, Secrets};
use closetctl_core::facts::{
    ClusterFacts, FileKind, FileState, GroupEntry, HostFacts, PackageState, PasswdEntry, UnitState,
};
use closetctl_core::inventory::Inventory;
use closetctl_core::playbook::Playbooks;
use closetctl_core::resource::disruption_rank;
use closetctl_core::resource::Resource;
use sha2::{Digest, Sha256};
use std::path::Path;

const INVENTORY: &str = r#"
[cluster]
name = "handlers"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "login"]

[[host]]
name = "node1"
address = "10.0.0.2"
roles = ["compute"]

[[group]]
name = "lab"
gid = 2001

[[user]]
name = "alice"
uid = 1001
groups = ["lab"]

[slurm]
controller = "head"
fair_share = false
"#;

const SLURM_CONF: &str = "/etc/slurm/slurm.conf";
const GRES_CONF: &str = "/etc/slurm/gres.conf";
const CGROUP_CONF: &str = "/etc/slurm/cgroup.conf";

fn file_state(content: &[u8], mode: u32, owner: &str, group: &str) -> FileState {
    FileState {
        kind: FileKind::File,
        mode,
        owner: owner.into(),
        group: group.into(),
        size: content.len() as u64,
        sha256: Some(format!("{:x}", Sha256::digest(content))),
        content: std::str::from_utf8(content).ok().map(String::from),
        bytes: Some(content.to_vec()),
    }
}

/// A fresh host with 8 CPUs and 16 GB (its Slurm node line comes from these).
fn hardware(name: &str) -> HostFacts {
    let mut f = HostFacts {
        hostname: name.into(),
        memory_mib: 16_000,
        ..HostFacts::default()
    };
    f.cpu.cpus = 8;
    f.cpu.sockets = 1;
    f.cpu.cores_per_socket = 4;
    f.cpu.threads_per_core = 2;
    f
}

/// A host that already has every resource of its desired state.
fn converged(desired: &Desired, inventory: &Inventory, name: &str) -> HostFacts {
    let mut f = hardware(name);
    let steps = desired.host_steps(inventory.host(name).unwrap()).unwrap();
    for r in steps.iter().flat_map(|s| &s.resources) {
        match r {
            Resource::Package(p) => {
                f.packages.insert(
                    p.clone(),
                    PackageState {
                        installed: true,
                        version: "1".into(),
                    },
                );
            }
            Resource::Group { name, gid } => {
                f.groups.insert(
                    name.clone(),
                    GroupEntry {
                        gid: *gid,
                        members: Vec::new(),
                    },
                );
            }
            Resource::User(u) => {
                f.users.insert(
                    u.name.clone(),
                    PasswdEntry {
                        uid: u.uid,
                        gid: u.gid,
                        gecos: u.comment.clone(),
                        home: u.home.clone(),
                        shell: u.shell.clone(),
                    },
                );
                for g in &u.groups {
                    f.groups.get_mut(g).unwrap().members.push(u.name.clone());
                }
            }
            Resource::Directory(d) => {
                let mut state = file_state(b"", d.mode, &d.owner, &d.group);
                state.kind = FileKind::Directory;
                (state.sha256, state.content, state.bytes) = (None, None, None);
                f.files.insert(d.path.clone(), state);
            }
            Resource::File(file) => {
                f.files.insert(
                    file.path.clone(),
                    file_state(&file.content, file.mode, &file.owner, &file.group),
                );
            }
            Resource::Service(s) => {
                f.units.insert(
                    s.unit.clone(),
                    UnitState {
                        load: "loaded".into(),
                        active: "active".into(),
                        enabled: "enabled".into(),
                    },
                );
            }
            // Active users without `expires`: no shadow fact is needed to be converged.
            Resource::Login(_) => {}
            other => panic!("the test inventory has no {other:?}"),
        }
    }
    f
}

/// How a host's copy of a file differs from the desired one.
#[derive(Clone, Copy, Debug)]
enum Drift {
    /// A partition's time limit: `scontrol reconfigure` is enough.
    PartitionLine,
    /// An extra key on the node line: slurmctld and slurmd restart.
    NodeLine,
    /// Both of the above in the one file.
    NodeAndPartitionLines,
    /// A comment only: nothing to activate.
    Comment,
    /// Not there at all.
    Missing,
}

fn drift(facts: &mut HostFacts, path: &str, how: Drift) {
    let current = facts.files[path].content.clone().unwrap();
    let old = match how {
        Drift::PartitionLine => {
            assert!(current.contains("MaxTime=INFINITE"), "{current}");
            current.replace("MaxTime=INFINITE", "MaxTime=1-00:00:00")
        }
        Drift::NodeLine => {
            assert!(current.contains("State=UNKNOWN"), "{current}");
            current.replace("State=UNKNOWN", "Weight=2 State=UNKNOWN")
        }
        Drift::NodeAndPartitionLines => current
            .replace("State=UNKNOWN", "Weight=2 State=UNKNOWN")
            .replace("MaxTime=INFINITE", "MaxTime=1-00:00:00"),
        Drift::Comment => format!("# edited by hand\n{current}"),
        Drift::Missing => {
            facts.files.remove(path);
            return;
        }
    };
    let state = &facts.files[path];
    let (mode, owner, group) = (state.mode, state.owner.clone(), state.group.clone());
    facts.files.insert(
        path.into(),
        file_state(old.as_bytes(), mode, &owner, &group),
    );
}

/// Each case: the drifted files, the `slurm.conf` label the plan shows (if it changed),
/// then the handlers fired on the controller and on the compute node, in plan order.
type Case = (
    &'static [(&'static str, Drift)],
    Option<&'static str>,
    &'static [&'static str],
    &'static [&'static str],
);

const CASES: &[Case] = &[
    (&[], None, &[], &[]),
    (
        &[(SLURM_CONF, Drift::PartitionLine)],
        Some("reconfigure"),
        &["reconfigure slurm"],
        &["reload slurmd"],
    ),
    (
        &[(SLURM_CONF, Drift::NodeLine)],
        Some("restart"),
        &["restart slurmctld"],
        &["restart slurmd"],
    ),
    (&[(SLURM_CONF, Drift::Comment)], Some("none"), &[], &[]),
    (
        &[(SLURM_CONF, Drift::Missing)],
        Some("restart"),
        &["restart slurmctld"],
        &["restart slurmd"],
    ),
    (
        &[(GRES_CONF, Drift::Comment)],
        None,
        &["restart slurmctld"],
        &["restart slurmd"],
    ),
    (
        &[(CGROUP_CONF, Drift::Comment)],
        None,
        &["restart slurmctld"],
        &["restart slurmd"],
    ),
    // Each handler ranks the changes *it* watches: a reconfigure-only slurm.conf change
    // beside a gres.conf change restarts (the restart handlers watch both, restart
    // wins) and also reconfigures (those handlers watch slurm.conf alone).
    (
        &[
            (SLURM_CONF, Drift::PartitionLine),
            (GRES_CONF, Drift::Comment),
        ],
        Some("reconfigure"),
        &["restart slurmctld", "reconfigure slurm"],
        &["restart slurmd", "reload slurmd"],
    ),
    // A node-line change beside a partition change in the same file is one change,
    // labelled by its worst line: restart only.
    (
        &[(SLURM_CONF, Drift::NodeAndPartitionLines)],
        Some("restart"),
        &["restart slurmctld"],
        &["restart slurmd"],
    ),
    // A slurm.conf change labelled `none` does not hold back a restart that another
    // watched file needs.
    (
        &[(SLURM_CONF, Drift::Comment), (CGROUP_CONF, Drift::Comment)],
        Some("none"),
        &["restart slurmctld"],
        &["restart slurmd"],
    ),
];

#[test]
fn handlers_fire_for_the_most_disruptive_watched_change() {
    let inventory = Inventory::parse(Path::new("handlers.toml"), INVENTORY).unwrap();
    let playbooks = Playbooks::load(None).unwrap();
    let secrets: Secrets = secrets_needed(&inventory, &playbooks)
        .into_iter()
        .map(|n| (n, b"0123456789abcdef0123456789abcdef".to_vec()))
        .collect();
    let inputs = Inputs {
        inventory: &inventory,
        playbooks: &playbooks,
        secrets: &secrets,
    };
    let mut base = ClusterFacts::default();
    for h in ["head", "node1"] {
        base.hosts.insert(h.into(), hardware(h));
    }
    let desired = Desired::new(&inputs, &base);
    let hosts: Vec<HostFacts> = ["head", "node1"]
        .iter()
        .map(|h| converged(&desired, &inventory, h))
        .collect();
    drop(desired);
    let mut base = ClusterFacts::default();
    for (name, f) in ["head", "node1"].iter().zip(hosts) {
        base.hosts.insert(name.to_string(), f);
    }

    for (i, (drifts, label, controller, compute)) in CASES.iter().enumerate() {
        let mut facts = base.clone();
        for f in facts.hosts.values_mut() {
            for (path, how) in drifts.iter() {
                drift(f, path, *how);
            }
        }
        let plan = closetctl_core::plan::plan(&inputs, &facts, &[]);
        for (hp, expected) in plan.hosts.iter().zip([controller, compute]) {
            assert_eq!(
                hp.status,
                closetctl_core::plan::HostStatus::Ready,
                "case {i}: {hp:?}"
            );
            let changed: Vec<&str> = hp
                .steps
                .iter()
                .flat_map(|s| &s.changes)
                .map(|c| c.name.as_str())
                .collect();
            let mut drifted: Vec<&str> = drifts.iter().map(|(p, _)| *p).collect();
            drifted.sort();
            let mut changed_sorted = changed.clone();
            changed_sorted.sort();
            assert_eq!(changed_sorted, drifted, "case {i} on {}", hp.host);
            let slurm_conf_label = hp
                .steps
                .iter()
                .flat_map(|s| &s.changes)
                .find(|c| c.name == SLURM_CONF)
                .map(|c| c.disruption.as_deref().unwrap_or("unlabelled"));
            assert_eq!(slurm_conf_label, *label, "case {i} on {}", hp.host);
            let fired: Vec<&str> = hp
                .steps
                .iter()
                .flat_map(|s| &s.handlers)
                .map(|h| h.name.as_str())
                .collect();
            assert_eq!(
                fired, **expected,
                "case {i} ({drifts:?}) on {}: handlers fired",
                hp.host
            );
        }
    }
}

#[test]
fn disruption_ranks_order_the_labels() {
    // restart > reconfigure > everything else (none, remount, unknown).
    let table = [
        ("restart", 2),
        ("reconfigure", 1),
        ("none", 0),
        ("remount", 0),
        ("", 0),
    ];
    for (label, rank) in table {
        assert_eq!(disruption_rank(label), rank, "{label}");
    }
}
