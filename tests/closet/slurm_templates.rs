//! Slurm configuration rendered from `inventory.example.toml` with fixture facts:
//! slurm.conf (node lines from live hardware, GRES from nvidia-smi), gres.conf with
//! explicit device files, cgroup.conf; the GPU mismatch conflict; disruption labels.

use crate::kit::{example_path, example_with_facts};
use closetctl_core::concerns::{self, slurm};
use closetctl_core::desired::{host_steps, Inputs, Secrets};
use closetctl_core::facts::ClusterFacts;
use closetctl_core::inventory::Inventory;
use closetctl_core::playbook::Playbooks;
use closetctl_core::resource::Resource;

fn rendered(inventory: &Inventory, facts: &ClusterFacts, host: &str, path: &str) -> String {
    let playbooks = Playbooks::load(None).unwrap();
    let secrets: Secrets = [
        ("munge.key".to_string(), vec![7u8; 1024]),
        (
            "slurmdbd.password".to_string(),
            b"fixture-password".to_vec(),
        ),
    ]
    .into();
    let inputs = Inputs {
        inventory,
        playbooks: &playbooks,
        secrets: &secrets,
    };
    let steps = host_steps(&inputs, inventory.host(host).unwrap(), facts).unwrap();
    let file = steps
        .iter()
        .flat_map(|s| &s.resources)
        .find_map(|r| match r {
            Resource::File(f) if f.path == path => {
                Some(String::from_utf8(f.content.clone()).unwrap())
            }
            _ => None,
        });
    file.unwrap_or_else(|| panic!("{host} has no {path}"))
}

#[test]
fn slurm_conf_for_the_example_closet() {
    let (inventory, facts) = example_with_facts();
    let conf = rendered(&inventory, &facts, "gpu1", "/etc/slurm/slurm.conf");
    // The same bytes on every Slurm host.
    assert_eq!(
        conf,
        rendered(&inventory, &facts, "head", "/etc/slurm/slurm.conf")
    );
    assert_eq!(
        conf,
        rendered(&inventory, &facts, "gpu2", "/etc/slurm/slurm.conf")
    );
    insta::assert_snapshot!("slurm_conf", conf);
}

#[test]
fn gres_conf_and_cgroup_conf_for_the_example_closet() {
    let (inventory, facts) = example_with_facts();
    insta::assert_snapshot!(
        "gres_conf",
        rendered(&inventory, &facts, "head", "/etc/slurm/gres.conf")
    );
    insta::assert_snapshot!(
        "cgroup_conf",
        rendered(&inventory, &facts, "gpu2", "/etc/slurm/cgroup.conf")
    );
}

#[test]
fn a_host_reporting_fewer_gpus_than_declared_is_a_conflict() {
    let (inventory, mut facts) = example_with_facts();
    facts.hosts.get_mut("gpu1").unwrap().gpus.truncate(2);
    let gpu1 = inventory.host("gpu1").unwrap();
    let conflicts = concerns::conflicts(&inventory, gpu1, &facts.hosts["gpu1"]);
    assert_eq!(
        conflicts.iter().map(|c| (c.code, c.text())).collect::<Vec<_>>(),
        vec![(closetctl_core::diagnostic::Code::GpuMismatch, "the inventory declares 4 × a100-sxm4-80gb but the host reports 2 × NVIDIA A100-SXM4-80GB; a node configured with GPUs it lacks would drain, so fix `gpus` in the inventory".to_string())]
    );
    // The node line follows the live hardware, not the inventory.
    let ctx = slurm::context(&inventory, &facts).unwrap();
    assert!(
        ctx.nodes
            .iter()
            .any(|n| n.name == "gpu1" && n.gres == "gpu:a100-80gb:2"),
        "{ctx:?}"
    );
    let gpu2 = inventory.host("gpu2").unwrap();
    assert!(concerns::conflicts(&inventory, gpu2, &facts.hosts["gpu2"]).is_empty());
}

#[test]
fn an_unreachable_node_keeps_its_current_line_or_is_left_out() {
    let (inventory, mut facts) = example_with_facts();
    let before = rendered(&inventory, &facts, "head", "/etc/slurm/slurm.conf");
    let gpu2 = facts.hosts.remove("gpu2").unwrap();
    // No current slurm.conf anywhere: gpu2 is left out of nodes and partitions.
    let ctx = slurm::context(&inventory, &facts).unwrap();
    assert!(!ctx.nodes.iter().any(|n| n.name == "gpu2"));
    assert!(ctx.partitions.iter().all(|p| !p.line.contains("gpu2")));
    assert_eq!(ctx.warnings.len(), 1, "{:?}", ctx.warnings);
    // With the controller's current slurm.conf in the facts, the line is kept as is.
    let mut head = facts.hosts["head"].clone();
    head.files.insert(
        slurm::SLURM_CONF.into(),
        closetctl_core::facts::FileState {
            kind: closetctl_core::facts::FileKind::File,
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            size: before.len() as u64,
            sha256: None,
            content: Some(before.clone()),
            bytes: Some(before.clone().into_bytes()),
        },
    );
    facts.hosts.insert("head".into(), head);
    assert_eq!(
        rendered(&inventory, &facts, "head", "/etc/slurm/slurm.conf"),
        before
    );
    let _ = gpu2;
}

#[test]
fn partition_edits_are_labelled_reconfigure_and_hardware_edits_restart() {
    let (inventory, facts) = example_with_facts();
    let before = rendered(&inventory, &facts, "head", "/etc/slurm/slurm.conf");
    let text = std::fs::read_to_string(example_path())
        .unwrap()
        .replace("max_time = \"7-00:00:00\"", "max_time = \"2-00:00:00\"");
    let edited = Inventory::parse(&example_path(), &text).unwrap();
    let after = rendered(&edited, &facts, "head", "/etc/slurm/slurm.conf");
    assert_ne!(before, after);
    assert_eq!(slurm::classify(Some(&before), &after), "reconfigure");
    let mut more_memory = facts.clone();
    more_memory.hosts.get_mut("gpu2").unwrap().memory_mib *= 2;
    let after = rendered(&inventory, &more_memory, "head", "/etc/slurm/slurm.conf");
    assert_eq!(slurm::classify(Some(&before), &after), "restart");
}

/// Fair share charges GPU time: `AccountingStorageTRES` names `gres/gpu` and every GPU
/// type in the closet, every partition carries `TRESBillingWeights` from
/// `[slurm.fair_share]`; a weight edit only reconfigures, a new GPU type restarts
/// slurmctld (new TRES are registered when it starts); without fair share neither line.
#[test]
fn gpu_accounting_lines_follow_the_fair_share_weights() {
    let (inventory, facts) = example_with_facts();
    let before = rendered(&inventory, &facts, "head", "/etc/slurm/slurm.conf");
    assert!(
        before.contains("\nAccountingStorageTRES=gres/gpu,gres/gpu:a100-80gb,gres/gpu:rtx4090\n")
    );
    assert!(before.contains(" TRESBillingWeights=CPU=1,GRES/gpu=10 State=UP\n"));

    let text = std::fs::read_to_string(example_path()).unwrap().replace(
        "fair_share = true ",
        "fair_share = { gpu_weight = 25, cpu_weight = 0.5 }",
    );
    let weighted = Inventory::parse(&example_path(), &text).unwrap();
    let after = rendered(&weighted, &facts, "head", "/etc/slurm/slurm.conf");
    assert!(
        after.contains(" TRESBillingWeights=CPU=0.5,GRES/gpu=25 State=UP\n"),
        "{after}"
    );
    assert_eq!(slurm::classify(Some(&before), &after), "reconfigure");

    // node2's RTX 4090s replaced by A100s: one GPU type fewer in the TRES list.
    let mut one_type = facts.clone();
    one_type.hosts.get_mut("gpu2").unwrap().gpus =
        crate::kit::gpus("NVIDIA A100-SXM4-80GB", 2, 81920, 400.0);
    let after = rendered(&inventory, &one_type, "head", "/etc/slurm/slurm.conf");
    assert!(after.contains("\nAccountingStorageTRES=gres/gpu,gres/gpu:a100-80gb\n"));
    assert_eq!(
        slurm::classify(
            Some("AccountingStorageTRES=gres/gpu\n"),
            "AccountingStorageTRES=gres/gpu,gres/gpu:a100-80gb\n"
        ),
        "restart"
    );

    let text = std::fs::read_to_string(example_path())
        .unwrap()
        .replace("fair_share = true ", "fair_share = false");
    let off = Inventory::parse(&example_path(), &text).unwrap();
    let conf = rendered(&off, &facts, "head", "/etc/slurm/slurm.conf");
    assert!(!conf.contains("AccountingStorageTRES"));
    assert!(!conf.contains("TRESBillingWeights"));
}
