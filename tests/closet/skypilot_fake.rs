//! What `apply` makes true for SkyPilot on Slurm, on a fake closet: sshd and rsync on
//! every compute node (SkyPilot reaches a job's node with `srun ... sshd -i` and copies
//! its runtime there with rsync over srun), slurm-client and rsync on the login host
//! (it rsyncs its sbatch script there and runs sinfo/sbatch as the researcher), and
//! GRES types SkyPilot's GPU names match, the node names in the login host's
//! /etc/hosts (SkyPilot resolves them there). The VM scenario 92-skypilot runs the real
//! client against real guests.

use crate::kit::{apply, cluster, gpus, plan, Closet};
use closetctl_core::facts::FileKind;
use closetctl_testkit::fake::{FakeCluster, FakeFile};
use std::sync::Arc;

const INVENTORY: &str = r#"[cluster]
name = "testcloset"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "login"]

[[host]]
name = "node1"
address = "10.0.0.2"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }

[[host]]
name = "node2"
address = "10.0.0.3"
roles = ["compute"]
gpus = { model = "rtx-4090", count = 2 }

[slurm]
controller = "head"
"#;

/// head, node1 with four A100 80GB and node2 with two RTX 4090, as INVENTORY says.
fn closet_with_gpus() -> Arc<FakeCluster> {
    let fake = cluster(&["head", "node1", "node2"]);
    fake.host("node1")
        .with(|s| s.gpus = gpus("NVIDIA A100-SXM4-80GB", 4, 81920, 400.0));
    fake.host("node2")
        .with(|s| s.gpus = gpus("NVIDIA GeForce RTX 4090", 2, 24564, 450.0));
    fake
}

#[tokio::test]
async fn apply_installs_what_skypilot_runs_on_the_nodes_and_the_login_host() {
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();
    let fake = closet_with_gpus();
    for h in ["head", "node1", "node2"] {
        fake.host(h).with(|s| {
            assert!(
                !s.installed.contains_key("rsync"),
                "{h} starts without rsync"
            );
            assert!(!s.installed.contains_key("openssh-server"));
        });
    }
    assert!(apply(&fake, &loaded).await.success());
    assert!(!plan(&fake, &loaded).await.has_changes());

    for node in ["node1", "node2"] {
        fake.host(node).with(|s| {
            for p in ["openssh-server", "rsync", "curl", "slurmd"] {
                assert!(s.installed.contains_key(p), "{p} on {node}");
            }
        });
    }
    fake.host("head").with(|s| {
        for p in ["slurm-client", "rsync"] {
            assert!(s.installed.contains_key(p), "{p} on the login host");
        }
        let conf = s.text("/etc/slurm/slurm.conf");
        assert!(conf.contains(" Gres=gpu:a100-80gb:4 "), "{conf}");
        assert!(conf.contains(" Gres=gpu:rtx4090:2 "), "{conf}");
    });
}

#[tokio::test]
async fn apply_names_the_nodes_in_the_login_hosts_etc_hosts_and_keeps_its_lines() {
    let closet = Closet::new(INVENTORY);
    let loaded = closet.load();
    let fake = closet_with_gpus();
    let theirs = "127.0.0.1\tlocalhost\n10.0.0.1 head # the admin's\n";
    fake.host("head").with(|s| {
        s.files.insert(
            "/etc/hosts".into(),
            FakeFile::root(FileKind::File, 0o644, theirs.as_bytes().to_vec()),
        )
    });
    assert!(apply(&fake, &loaded).await.success());
    assert!(!plan(&fake, &loaded).await.has_changes());
    fake.host("head").with(|s| {
        let hosts = s.text("/etc/hosts");
        assert!(hosts.starts_with(theirs), "{hosts}");
        assert!(
            hosts.ends_with("\n10.0.0.2 node1\n10.0.0.3 node2\n# END closetctl\n"),
            "{hosts}"
        );
    });
    for node in ["node1", "node2"] {
        fake.host(node).with(|s| {
            assert!(
                !s.files.contains_key("/etc/hosts"),
                "{node}'s /etc/hosts untouched"
            )
        });
    }
}
