//! How long the pure core takes to plan a big closet: 500 hosts × 50 users and 10
//! groups, half of the hosts fresh and half converged, with no I/O in the loop.
//!
//! Run with `cargo bench --bench plan`. The converged facts are built from the desired
//! state itself, and checked to plan as "no changes" before anything is timed.

use closetctl_core::desired::{host_steps, Inputs, Secrets};
use closetctl_core::facts::{
    ClusterFacts, FileKind, FileState, GroupEntry, HostFacts, PackageState, PasswdEntry, UnitState,
};
use closetctl_core::inventory::Inventory;
use closetctl_core::playbook::Playbooks;
use closetctl_core::resource::Resource;
use sha2::{Digest, Sha256};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

const HOSTS: usize = 500;
const USERS: usize = 50;
const GROUPS: usize = 10;
/// At least this many timed plans, and more while under [`BUDGET_SECS`].
const MIN_ITERATIONS: usize = 3;
const MAX_ITERATIONS: usize = 20;
const BUDGET_SECS: f64 = 20.0;

fn inventory_text() -> String {
    let mut s = String::from("[cluster]\nname = \"bench\"\n");
    for h in 0..HOSTS {
        let roles = if h == 0 {
            "[\"controller\", \"login\"]"
        } else {
            "[\"compute\"]"
        };
        s.push_str(&format!(
            "\n[[host]]\nname = \"node{h:03}\"\naddress = \"10.{}.{}.{}\"\nroles = {roles}\n",
            h / 65536,
            h / 256 % 256,
            h % 256
        ));
    }
    for g in 0..GROUPS {
        s.push_str(&format!(
            "\n[[group]]\nname = \"lab{g}\"\ngid = {}\n",
            5000 + g
        ));
    }
    for u in 0..USERS {
        let groups = format!("[\"lab{}\", \"lab{}\"]", u % GROUPS, (u + 3) % GROUPS);
        s.push_str(&format!(
            "\n[[user]]\nname = \"user{u:02}\"\nuid = {}\ngroups = {groups}\n",
            2000 + u
        ));
        if u % 2 == 0 {
            s.push_str(&format!(
                "ssh_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{u:02}q2mWg3xJ0u7rXn0aQ8y1bqk4L9cS2d5e user{u:02}@laptop\"]\n"
            ));
        }
    }
    s
}

/// A fresh Debian host: root and a few system accounts.
fn fresh(name: &str) -> HostFacts {
    let mut f = HostFacts {
        hostname: name.into(),
        ..HostFacts::default()
    };
    for (n, id) in [("root", 0), ("daemon", 1), ("nobody", 65534)] {
        f.users.insert(
            n.into(),
            PasswdEntry {
                uid: id,
                gid: id,
                gecos: String::new(),
                home: "/".into(),
                shell: "/usr/sbin/nologin".into(),
            },
        );
        f.groups.insert(
            n.into(),
            GroupEntry {
                gid: id,
                members: Vec::new(),
            },
        );
    }
    f
}

/// A host that already matches the desired state of `host`.
fn converged(
    inputs: &Inputs,
    inventory: &Inventory,
    host: &str,
    facts: &ClusterFacts,
) -> HostFacts {
    let mut f = fresh(host);
    let steps =
        host_steps(inputs, inventory.host(host).unwrap(), facts).expect("desired state renders");
    let mut memberships: Vec<(String, String)> = Vec::new();
    for r in steps.iter().flat_map(|s| &s.resources) {
        match r {
            Resource::Package(p) => {
                f.packages.insert(
                    p.clone(),
                    PackageState {
                        installed: true,
                        version: "1.0".into(),
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
                memberships.extend(u.groups.iter().map(|g| (g.clone(), u.name.clone())));
            }
            Resource::Directory(d) => {
                f.files.insert(
                    d.path.clone(),
                    FileState {
                        kind: FileKind::Directory,
                        mode: d.mode,
                        owner: d.owner.clone(),
                        group: d.group.clone(),
                        size: 4096,
                        sha256: None,
                        content: None,
                        bytes: None,
                    },
                );
            }
            Resource::File(file) => {
                f.files.insert(
                    file.path.clone(),
                    FileState {
                        kind: FileKind::File,
                        mode: file.mode,
                        owner: file.owner.clone(),
                        group: file.group.clone(),
                        size: file.content.len() as u64,
                        sha256: Some(format!("{:x}", Sha256::digest(&file.content))),
                        content: String::from_utf8(file.content.clone()).ok(),
                        bytes: Some(file.content.clone()),
                    },
                );
            }
            Resource::Service(s) => {
                f.units.insert(
                    s.unit.clone(),
                    UnitState {
                        load: "loaded".into(),
                        active: "active".into(),
                        enabled: "enabled".into(),
                        main_pid: 1,
                    },
                );
            }
            // Kinds the bench inventory does not use; the sanity check below would
            // catch one that starts to matter.
            _ => {}
        }
    }
    for (group, user) in memberships {
        f.groups
            .get_mut(&group)
            .expect("a declared group")
            .members
            .push(user);
    }
    f
}

fn main() {
    let started = Instant::now();
    let text = inventory_text();
    let inventory =
        Inventory::parse(Path::new("bench.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let parse_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        (
            inventory.hosts.len(),
            inventory.users.len(),
            inventory.groups.len()
        ),
        (HOSTS, USERS, GROUPS)
    );
    let playbooks = Playbooks::load(None).expect("built-in playbooks load");
    let secrets = Secrets::new();
    let inputs = Inputs {
        inventory: &inventory,
        playbooks: &playbooks,
        secrets: &secrets,
    };

    let mut facts = ClusterFacts::default();
    for h in &inventory.hosts {
        facts.hosts.insert(h.name.clone(), fresh(&h.name));
    }
    let converged_names: Vec<String> = inventory
        .hosts
        .iter()
        .skip(HOSTS / 2)
        .map(|h| h.name.clone())
        .collect();
    for name in &converged_names {
        let f = converged(&inputs, &inventory, name, &facts);
        facts.hosts.insert(name.clone(), f);
    }

    // Sanity: the converged half plans nothing, the fresh half plans every account.
    let plan = closetctl_core::plan::plan(&inputs, &facts, &[]);
    assert_eq!(plan.hosts.len(), HOSTS);
    let changed = plan.hosts.iter().filter(|h| h.change_count() > 0).count();
    assert_eq!(changed, HOSTS / 2, "converged facts must plan no changes");
    let per_fresh_host = plan.hosts[0].change_count();
    assert!(per_fresh_host >= GROUPS + 2 * USERS, "{per_fresh_host}");

    let mut times = Vec::new();
    let timing = Instant::now();
    while times.len() < MIN_ITERATIONS
        || (times.len() < MAX_ITERATIONS && timing.elapsed().as_secs_f64() < BUDGET_SECS)
    {
        let t = Instant::now();
        let plan = closetctl_core::plan::plan(black_box(&inputs), black_box(&facts), &[]);
        black_box(&plan);
        times.push(t.elapsed().as_secs_f64());
    }
    let iterations = times.len();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median_ms = times[times.len() / 2] * 1e3;
    let best_ms = times[0] * 1e3;
    // Where the time goes: the desired state of one host, given every host's facts
    // (as plan does) or only its own.
    let one = &inventory.hosts[HOSTS - 1];
    let t = Instant::now();
    black_box(host_steps(&inputs, one, &facts).unwrap());
    let steps_all_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut own = ClusterFacts::default();
    own.hosts
        .insert(one.name.clone(), facts.hosts[&one.name].clone());
    let t = Instant::now();
    black_box(host_steps(&inputs, one, &own).unwrap());
    let steps_own_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let rendered =
        closetctl_core::plan::render::text(&plan, closetctl_core::plan::render::Style::plain());
    let render_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "plan: {HOSTS} hosts x {USERS} users + {GROUPS} groups ({} fresh with {per_fresh_host} changes each, {} converged)",
        HOSTS - HOSTS / 2,
        HOSTS / 2
    );
    println!(
        "  inventory parse + validate: {parse_ms:.1} ms ({} bytes of TOML)",
        text.len()
    );
    println!(
        "  plan::plan over {iterations} iterations: median {median_ms:.1} ms per plan ({:.0} µs per host), best {best_ms:.1} ms",
        median_ms * 1e3 / HOSTS as f64
    );
    println!(
        "  desired::host_steps for one host: {steps_all_ms:.2} ms with all {HOSTS} hosts' facts, {steps_own_ms:.2} ms with its own only"
    );
    println!(
        "  render::text: {render_ms:.1} ms ({} lines)",
        rendered.lines().count()
    );
}
