//! How long the pure core takes to plan a big closet: 500 hosts × 50 users and 10
//! groups, half of the hosts fresh and half converged, with no I/O in the loop; then
//! the same with 250 hosts, so the cost per host shows whether planning is linear.
//! A second inventory adds Slurm (one controller, every other host a compute node) and
//! NFS /home, whose cluster-wide files (`slurm.conf`, `gres.conf`, `/etc/exports`)
//! list every host.
//!
//! Run with `cargo bench --bench plan`. The converged facts are built from the desired
//! state itself, and checked to plan as "no changes" before anything is timed. Times
//! are wall clock and, beside them, the CPU time of the planning thread (from
//! `/proc/thread-self/schedstat`), which other work on a busy machine inflates less.
//! With `CLOSETCTL_BENCH_DUMP=dir`, each closet's plan is written there as JSON (to
//! check that a change to the core leaves plans byte for byte as they were).

use closetctl_core::desired::{secrets_needed, Desired, Inputs, Secrets};
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

/// The figure to beat: the median `plan::plan` of 500 hosts (users only), as issue 14
/// reported it for [`BASELINE_OF`] (`cargo bench`, release).
const BASELINE_MS: f64 = 374.0;
const BASELINE_OF: &str = "d9412b1, 2026-11-30";
/// The closet sizes planned; the first is the one [`BASELINE_MS`] was measured at.
const SIZES: [usize; 2] = [500, 250];
const USERS: usize = 50;
const GROUPS: usize = 10;
/// At least this many timed plans, and more while under [`BUDGET_SECS`].
const MIN_ITERATIONS: usize = 3;
const MAX_ITERATIONS: usize = 20;
const BUDGET_SECS: f64 = 8.0;

/// The bench inventory: `hosts` hosts (the first is the controller, login and NFS
/// server), and with `services` Slurm and NFS /home.
fn inventory_text(hosts: usize, services: bool) -> String {
    let mut s = String::from("[cluster]\nname = \"bench\"\n");
    if services {
        s.push_str("\n[slurm]\ncontroller = \"node000\"\nfair_share = false\n");
        s.push_str("\n[nfs]\nserver = \"node000\"\nnetwork = \"10.0.0.0/8\"\nexports = [{ path = \"/home\" }]\n");
    }
    for h in 0..hosts {
        let roles = if h == 0 && services {
            "[\"controller\", \"login\", \"nfs-server\"]"
        } else if h == 0 {
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
fn converged(desired: &Desired, inventory: &Inventory, host: &str) -> HostFacts {
    let mut f = fresh(host);
    let steps = desired
        .host_steps(inventory.host(host).unwrap())
        .expect("desired state renders");
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

/// CPU time this thread has run, in ms (`None` where /proc does not say).
fn thread_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e6)
}

/// Timings of repeated runs, in ms.
#[derive(Clone, Copy)]
struct Timed {
    median_ms: f64,
    best_ms: f64,
    /// Median CPU time of the planning thread.
    cpu_ms: Option<f64>,
    iterations: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(mut f: impl FnMut()) -> Timed {
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let timing = Instant::now();
    while wall.len() < MIN_ITERATIONS
        || (wall.len() < MAX_ITERATIONS && timing.elapsed().as_secs_f64() < BUDGET_SECS)
    {
        let c = thread_cpu_ms();
        let t = Instant::now();
        f();
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.extend(c.zip(thread_cpu_ms()).map(|(a, b)| b - a));
    }
    Timed {
        best_ms: wall.iter().copied().fold(f64::INFINITY, f64::min),
        iterations: wall.len(),
        median_ms: median(wall),
        cpu_ms: (!cpu.is_empty()).then(|| median(cpu)),
    }
}

/// Plan a closet of `hosts` hosts; print what it took and return the median in ms.
fn bench(hosts: usize, services: bool) -> Timed {
    let started = Instant::now();
    let text = inventory_text(hosts, services);
    let inventory =
        Inventory::parse(Path::new("bench.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let parse_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        (
            inventory.hosts.len(),
            inventory.users.len(),
            inventory.groups.len()
        ),
        (hosts, USERS, GROUPS)
    );
    let playbooks = Playbooks::load(None).expect("built-in playbooks load");
    let secrets: Secrets = secrets_needed(&inventory, &playbooks)
        .into_iter()
        .map(|name| {
            let value = Sha256::digest(name.as_bytes()).to_vec();
            (name, value)
        })
        .collect();
    let inputs = Inputs {
        inventory: &inventory,
        playbooks: &playbooks,
        secrets: &secrets,
    };

    let mut facts = ClusterFacts::default();
    for h in &inventory.hosts {
        facts.hosts.insert(h.name.clone(), fresh(&h.name));
    }
    // The desired state does not depend on whether a host has converged (node lines
    // come from the hardware, which fresh and converged facts share).
    let desired = Desired::new(&inputs, &facts);
    let converged_hosts: Vec<(String, HostFacts)> = inventory
        .hosts
        .iter()
        .skip(hosts / 2)
        .map(|h| (h.name.clone(), converged(&desired, &inventory, &h.name)))
        .collect();
    drop(desired);
    facts.hosts.extend(converged_hosts);

    // Sanity: the converged half plans nothing, the fresh half plans every account.
    let plan = closetctl_core::plan::plan(&inputs, &facts, &[]);
    assert_eq!(plan.hosts.len(), hosts);
    let changed = plan.hosts.iter().filter(|h| h.change_count() > 0).count();
    assert_eq!(changed, hosts / 2, "converged facts must plan no changes");
    let per_fresh_host = plan.hosts[hosts / 2 - 1].change_count();
    assert!(per_fresh_host >= GROUPS + USERS, "{per_fresh_host}");

    if let Some(dir) = std::env::var_os("CLOSETCTL_BENCH_DUMP") {
        let name = format!(
            "plan-{hosts}{}.json",
            if services { "-services" } else { "" }
        );
        let json = serde_json::to_string_pretty(&plan).expect("a plan serializes");
        std::fs::write(Path::new(&dir).join(name), json).expect("the dump is written");
    }
    let timed = time(|| {
        let plan = closetctl_core::plan::plan(black_box(&inputs), black_box(&facts), &[]);
        black_box(&plan);
    });
    let Timed {
        median_ms,
        best_ms,
        cpu_ms,
        iterations,
    } = timed;
    // Where the time goes: the desired state of one host, given every host's facts
    // (as plan does) or only its own.
    let one = &inventory.hosts[hosts - 1];
    let t = Instant::now();
    black_box(closetctl_core::desired::host_steps(&inputs, one, &facts).unwrap());
    let steps_all_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut own = ClusterFacts::default();
    own.hosts
        .insert(one.name.clone(), facts.hosts[&one.name].clone());
    let t = Instant::now();
    black_box(closetctl_core::desired::host_steps(&inputs, one, &own).unwrap());
    let steps_own_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let rendered =
        closetctl_core::plan::render::text(&plan, closetctl_core::plan::render::Style::plain());
    let render_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "plan: {hosts} hosts x {USERS} users + {GROUPS} groups{} ({} fresh with up to {per_fresh_host} changes each, {} converged)",
        if services { ", Slurm and NFS /home" } else { "" },
        hosts - hosts / 2,
        hosts / 2
    );
    println!(
        "  inventory parse + validate: {parse_ms:.1} ms ({} bytes of TOML)",
        text.len()
    );
    let baseline = if !services && hosts == SIZES[0] {
        format!(
            " ({:.2}× the {BASELINE_MS:.0} ms of {BASELINE_OF})",
            median_ms / BASELINE_MS
        )
    } else {
        String::new()
    };
    let cpu = cpu_ms.map_or(String::new(), |c| format!("; CPU median {c:.1} ms"));
    println!(
        "  plan::plan over {iterations} iterations: median {median_ms:.1} ms{baseline} per plan, {:.0} µs per host; best {best_ms:.1} ms{cpu}",
        median_ms * 1e3 / hosts as f64
    );
    println!(
        "  desired::host_steps for one host: {steps_all_ms:.2} ms with all {hosts} hosts' facts, {steps_own_ms:.2} ms with its own only"
    );
    println!(
        "  render::text: {render_ms:.1} ms ({} lines)",
        rendered.lines().count()
    );
    timed
}

fn main() {
    for services in [false, true] {
        let timings: Vec<Timed> = SIZES.iter().map(|&n| bench(n, services)).collect();
        let per_host: Vec<String> = SIZES
            .iter()
            .zip(&timings)
            .map(|(&n, t)| {
                let per = |ms: f64| ms * 1e3 / n as f64;
                let cpu = t
                    .cpu_ms
                    .map_or(String::new(), |c| format!(" ({:.0} µs CPU)", per(c)));
                format!("{:.0} µs{cpu} at {n} hosts", per(t.median_ms))
            })
            .collect();
        println!(
            "  linearity{}: {} (a linear core costs the same per host)\n",
            if services { " with Slurm and NFS" } else { "" },
            per_host.join(", ")
        );
    }
}
