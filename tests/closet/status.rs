//! `closetctl status` against a fake closet whose controller answers `scontrol -d -o
//! show node|job` as Slurm 22.05 prints them and whose nodes answer `nvidia-smi`:
//! GPUs allocated/free by type with two users' jobs, the table and JSON (snapshots),
//! drivers that differ, a node or the controller that does not answer; and the binary
//! itself run on "the controller" (this machine, asked with a local `sh`, no SSH) with
//! `scontrol` and `nvidia-smi` on PATH printing output captured from the VM closet.

use crate::kit::{apply, closetctl, cluster, gpus, plan, Closet};
use closetctl::command::status::{ask, exit_code};
use closetctl_core::status::{self, render, Status};
use closetctl_testkit::fake::{FakeCluster, FakeJob};
use std::sync::Arc;

const INVENTORY: &str = r#"[cluster]
name = "testcloset"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "login"]
circuit = "rack"

[[host]]
name = "node1"
address = "10.0.0.2"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }
circuit = "rack"

[[host]]
name = "node2"
address = "10.0.0.3"
roles = ["compute"]
gpus = { model = "rtx-4090", count = 2 }
circuit = "rack"

[[group]]
name = "vision-lab"
gid = 2001

[[user]]
name = "alice"
uid = 1001
groups = ["vision-lab"]

[[user]]
name = "bob"
uid = 1002
groups = ["vision-lab"]

[slurm]
controller = "head"
fair_share = false

[[power.circuit]]
name = "rack"
volts = 240
amps = 30
"#;

const TAKEN_AT: &str = "2026-11-30T11:40:00Z";

fn job(id: u32, user: &str, uid: u32, state: &str, node: &str) -> FakeJob {
    FakeJob {
        id,
        name: "sleep".into(),
        user: user.into(),
        uid,
        account: "vision-lab".into(),
        state: state.into(),
        partition: "gpu".into(),
        node: node.into(),
        cpus: 1,
        memory_mib: 3880,
        gres: None,
        run_seconds: 0,
        limit_seconds: None,
        reason: String::new(),
    }
}

/// A converged closet (node1 4 × A100, node2 2 × RTX 4090) where alice runs
/// `--gres=gpu:a100-80gb:2` on node1, bob a CPU job on node2, and alice's second GPU job
/// waits for resources.
async fn busy_closet(closet: &Closet) -> Arc<FakeCluster> {
    let loaded = closet.load();
    let fake = cluster(&["head", "node1", "node2"]);
    fake.host("node1")
        .with(|s| s.gpus = gpus("NVIDIA A100-SXM4-80GB", 4, 81920, 400.0));
    fake.host("node2")
        .with(|s| s.gpus = gpus("NVIDIA GeForce RTX 4090", 2, 24564, 450.0));
    assert!(apply(&fake, &loaded).await.success());
    assert!(!plan(&fake, &loaded).await.has_changes());
    fake.host("node1").with(|s| {
        s.gpu_utilization.insert(0, 97);
        s.gpu_utilization.insert(1, 95);
    });
    fake.host("head").with(|s| {
        s.slurm_jobs = vec![
            FakeJob {
                gres: Some((Some("a100-80gb".into()), 2)),
                run_seconds: 125,
                limit_seconds: Some(3600),
                ..job(12, "alice", 1001, "RUNNING", "node1")
            },
            FakeJob {
                name: "train-cpu".into(),
                cpus: 4,
                run_seconds: 3723,
                ..job(13, "bob", 1002, "RUNNING", "node2")
            },
            FakeJob {
                gres: Some((None, 8)),
                reason: "Resources".into(),
                limit_seconds: Some(86_400),
                ..job(14, "alice", 1001, "PENDING", "")
            },
        ];
    });
    fake
}

async fn status_of(fake: &Arc<FakeCluster>, closet: &Closet) -> Status {
    let inventory = closet.load().inventory;
    let answers = ask(fake.clone(), &inventory, None, &mut Default::default()).await;
    status::assemble(&inventory, &answers, TAKEN_AT)
}

#[tokio::test]
async fn two_users_jobs_show_as_allocated_and_free_gpus() {
    let closet = Closet::new(INVENTORY);
    let fake = busy_closet(&closet).await;
    let runs_before = fake.host("head").runs();
    let s = status_of(&fake, &closet).await;
    // One round trip to each host.
    assert_eq!(fake.host("head").runs(), runs_before + 1);
    let node1 = s.nodes.iter().find(|n| n.name == "node1").unwrap();
    assert_eq!(
        (
            node1.gpus[0].gpu_type.as_deref(),
            node1.gpus[0].total,
            node1.gpus[0].allocated,
            node1.gpus[0].free
        ),
        (Some("a100-80gb"), 4, 2, 2)
    );
    assert_eq!(node1.short_state, "mix");
    let node2 = s.nodes.iter().find(|n| n.name == "node2").unwrap();
    assert_eq!((node2.gpus[0].allocated, node2.gpus[0].free), (0, 2));
    assert_eq!(node2.cpus.allocated, 4);
    assert_eq!(
        (
            s.summary.gpus_total,
            s.summary.gpus_allocated,
            s.summary.gpus_free
        ),
        (6, 2, 4)
    );
    assert_eq!((s.summary.jobs_running, s.summary.jobs_pending), (2, 1));
    let alice = &s.jobs[0];
    assert_eq!(
        (
            alice.user.as_str(),
            alice.gpus,
            alice.gpu_type.as_deref(),
            alice.time_left_seconds
        ),
        ("alice", 2, Some("a100-80gb"), Some(3600 - 125))
    );
    assert_eq!(s.jobs[2].reason.as_deref(), Some("Resources"));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(exit_code(&s), 0);
    // Six GPUs drawing 60 W each (live), plus the base figures `check power` uses.
    let rack = &s.circuits[0];
    assert_eq!(rack.gpu_draw_watts, 6.0 * 60.0);
    assert!(rack.unknown_hosts.is_empty());
    insta::assert_snapshot!("busy_closet_table", render::text(&s));
    insta::assert_snapshot!("busy_closet_json", render::json(&s));
}

#[tokio::test]
async fn drivers_that_differ_and_hosts_that_do_not_answer_are_warned_about() {
    let closet = Closet::new(INVENTORY);
    let fake = busy_closet(&closet).await;
    fake.host("node2").with(|s| {
        s.nvidia_driver = "550.54.15".into();
        s.cuda_version = "12.4".into();
    });
    let s = status_of(&fake, &closet).await;
    assert!(s.warnings.contains(&"NVIDIA driver versions differ between nodes: node1 535.183.01, node2 550.54.15 (a job may behave differently per node)".to_string()), "{:?}", s.warnings);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.starts_with("CUDA versions differ between nodes: node1 12.2, node2 12.4")));

    // node2 unreachable: Slurm still reports it (down*), without live figures.
    fake.host("node2").with(|s| s.reachable = false);
    let s = status_of(&fake, &closet).await;
    let node2 = s.nodes.iter().find(|n| n.name == "node2").unwrap();
    assert!(node2.live.is_none());
    assert!(node2
        .live_error
        .as_deref()
        .unwrap()
        .contains("cannot connect to `node2`"));
    assert_eq!(node2.short_state, "down*");
    assert!(
        s.warnings
            .iter()
            .any(|w| w.starts_with("node node2 is down*: Not responding")),
        "{:?}",
        s.warnings
    );
    assert_eq!(s.circuits[0].unknown_hosts, ["node2"]);
    assert_eq!(exit_code(&s), 0);

    // slurmctld down: no allocations, the nodes from the inventory, exit 1.
    fake.host("node2").with(|s| s.reachable = true);
    fake.host("head").with(|s| {
        s.units.get_mut("slurmctld.service").unwrap().active = "inactive".into();
    });
    let s = status_of(&fake, &closet).await;
    assert!(s.warnings[0].starts_with("controller head: `scontrol show node` failed (exit 1): slurm_load_node error: Unable to contact slurm controller"), "{:?}", s.warnings);
    assert_eq!(s.nodes.len(), 2);
    assert_eq!(s.nodes[0].state, "unknown");
    assert_eq!(s.nodes[0].live.as_ref().unwrap().gpus.len(), 4);
    assert_eq!(exit_code(&s), 1);
}

/// The binary on "the controller": an inventory whose controller (and only compute
/// node) is this machine, so it is asked with a local `sh -s` and no SSH at all, as a
/// plain user on head would. `scontrol` and `nvidia-smi` on PATH print output
/// captured on the VM closet's head and node1 (crates/core/src/status/testdata).
#[test]
fn the_binary_on_the_controller_asks_it_locally() {
    let me = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let closet = Closet::new(&format!(
        "[cluster]\nname = \"here\"\n\n[ssh]\nuser = \"nobody-at-all\"\n\n[[host]]\nname = \"node1\"\naddress = \"{me}\"\nroles = [\"controller\", \"compute\"]\ngpus = {{ model = \"a100-sxm4-80gb\", count = 4 }}\n\n[slurm]\ncontroller = \"node1\"\n"
    ));
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/core/src/status/testdata"
    );
    let bin = closet.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let tool = |name: &str, body: String| {
        use std::os::unix::fs::PermissionsExt;
        let p = bin.join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\n# Test fixture: prints output captured from the real tool.\n{body}"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    tool(
        "scontrol",
        format!("case \"$*\" in\n  '-d -o show node') cat {data}/scontrol-show-node.txt ;;\n  '-d -o show job') cat {data}/scontrol-show-job.txt ;;\n  *) exit 2 ;;\nesac\n"),
    );
    tool(
        "nvidia-smi",
        format!("case \"$1\" in\n  --query-gpu=*) cat {data}/nvidia-smi-query.csv ;;\n  --version) cat {data}/nvidia-smi-version.txt ;;\n  *) exit 2 ;;\nesac\n"),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = closetctl()
        .args(["status", "--json", "-i"])
        .arg(closet.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    let node1 = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node1")
        .unwrap();
    assert_eq!(node1["gpus"][0]["type"], "a100-80gb");
    assert_eq!(node1["gpus"][0]["allocated"], 2);
    assert_eq!(node1["gpus"][0]["free"], 2);
    assert_eq!(node1["live"]["gpus"].as_array().unwrap().len(), 4);
    assert_eq!(node1["live"]["cuda"], "12.2");
    let users: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["user"].as_str().unwrap())
        .collect();
    assert!(
        users.contains(&"alice") && users.contains(&"bob"),
        "{users:?}"
    );
}
