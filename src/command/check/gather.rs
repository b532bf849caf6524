//! Facts for the checks that need them: one probe per host, all at once, no lock.

use crate::check::{self, CheckKind, Report};
use crate::engine;
use crate::facts::probe::ProbeRequest;
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use crate::transport::Connector;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Gather facts from every host (one probe each, all at once) and run the checks.
pub async fn check_with<C: Connector + 'static>(
    connector: Arc<C>,
    inventory: &Inventory,
    checks: &[CheckKind],
    live: bool,
) -> Report {
    let facts = gather(connector, inventory, checks).await;
    check::run(inventory, checks, Some(&facts), live)
}

/// The facts the checks read (accounts, GPUs, time, link) come with every probe; no
/// packages, units or files are asked for and no lock is taken.
pub async fn gather<C: Connector + 'static>(
    connector: Arc<C>,
    inventory: &Inventory,
    checks: &[CheckKind],
) -> ClusterFacts {
    let requests = requests(inventory, checks);
    let (_, facts) = engine::gather(connector, &inventory.hosts, requests, None).await;
    facts
}

/// Each host's probe request for the checks: everything the probe can tell, and for
/// `check network` the login host resolves the compute nodes' names (one command).
pub fn requests(inventory: &Inventory, checks: &[CheckKind]) -> BTreeMap<String, ProbeRequest> {
    let mut requests: BTreeMap<String, ProbeRequest> = inventory
        .hosts
        .iter()
        .map(|h| (h.name.clone(), ProbeRequest::everything()))
        .collect();
    if checks.contains(&CheckKind::Network) {
        if let Some((login, req)) = check::network::node_names_request(inventory) {
            requests.entry(login).or_default().merge(req);
        }
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Severity;
    use crate::command::check::{exit_code, json, text};
    use crate::diagnostic::Diagnostic;
    use crate::facts::{Gpu, PasswdEntry};
    use crate::plan::render::Style;
    use closetctl_testkit::fake::FakeCluster;
    use std::path::Path;

    fn inventory() -> Inventory {
        Inventory::parse(
            Path::new("/tmp/check-command-test.toml"),
            r#"
[cluster]
name = "closet"
secrets_dir = "/tmp/closetctl-check-command-test"

[[host]]
name = "head"
address = "10.0.0.10"
roles = ["controller"]
circuit = "a"

[[host]]
name = "node1"
address = "10.0.0.11"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }
circuit = "a"

[[user]]
name = "alice"
uid = 1001

[[power.circuit]]
name = "a"
volts = 240
amps = 30
"#,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn facts_from_the_probe_feed_every_check() {
        let inv = inventory();
        let fake = Arc::new(FakeCluster::debian(&["head", "node1"]));
        fake.host("node1").with(|s| {
            s.gpus = (0..4)
                .map(|i| Gpu {
                    index: i,
                    name: "NVIDIA A100-SXM4-80GB".into(),
                    memory_mib: Some(81920),
                    power_limit_watts: Some(250.0),
                    power_draw_watts: Some(60.0),
                })
                .collect();
            s.epoch += 600.0;
            s.users.insert(
                "alice".into(),
                PasswdEntry {
                    uid: 1999,
                    gid: 1999,
                    gecos: String::new(),
                    home: "/home/alice".into(),
                    shell: "/bin/bash".into(),
                },
            );
        });
        let report = check_with(fake.clone(), &inv, &CheckKind::ALL, true).await;
        // node1 live: 4 × 250 W + 350 W = 1,350 W; head 250 W; circuit 1,600 of 5,760 W.
        let power = report.power.as_ref().unwrap();
        assert_eq!(power.hosts[1].load_watts, 1350.0);
        assert_eq!(power.circuits[0].load_watts, 1600.0);
        assert_eq!(power.circuits[0].draw_watts, Some(240.0));
        // The fake's links are 10 GbE.
        assert!(report
            .network
            .as_ref()
            .unwrap()
            .hosts
            .iter()
            .all(|h| h.speed_mbps == Some(10_000)));
        // node1's clock is 600 s ahead of head's.
        assert_eq!(
            report
                .clock
                .as_ref()
                .unwrap()
                .max_pairwise
                .as_ref()
                .unwrap()
                .seconds,
            600.0
        );
        let errors: Vec<&Diagnostic> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors
            .iter()
            .any(|f| f.check == Some(CheckKind::Clock) && f.subject == "cluster"));
        assert!(errors.iter().any(|f| f.check == Some(CheckKind::Uids)
            && f.message.contains("user `alice` has uid 1999 on `node1`")));
        assert_eq!(exit_code(&report), 1);
        let text = text(&report, Style::plain());
        assert!(text.contains("4 x 250"), "{text}");
        assert!(text.contains("result: FAILED"), "{text}");
    }

    #[tokio::test]
    async fn an_unreachable_host_is_an_error_row_but_power_still_runs() {
        let inv = inventory();
        let fake = Arc::new(FakeCluster::debian(&["head", "node1"]));
        fake.host("node1").with(|s| s.reachable = false);
        let report = check_with(fake, &inv, &CheckKind::ALL, false).await;
        let power = report.power.as_ref().unwrap();
        // Table figures: 250 + (4 × 400 + 350) = 2,200 W.
        assert_eq!(power.circuits[0].load_watts, 2200.0);
        let net = report.network.as_ref().unwrap();
        assert_eq!(net.hosts[1].status, check::network::LinkStatus::Unreachable);
        assert_eq!(exit_code(&report), 1);
        let text = text(&report, Style::plain());
        assert!(text.contains("unreachable"), "{text}");
    }

    /// The VM closet of vm-test/up: head, node1 (4 x A100 SXM4 at 400 W), node2
    /// (2 x RTX 4090, capped to 300 W), all on one 240 V / 30 A circuit.
    fn vm_closet() -> (Inventory, Arc<FakeCluster>) {
        let inv = Inventory::parse(
            Path::new("/tmp/check-vm-closet.toml"),
            r#"
[cluster]
name = "closet"
secrets_dir = "/tmp/closetctl-check-command-test"

[[host]]
name = "head"
address = "10.77.0.10"
roles = ["controller", "nfs-server", "login"]
circuit = "closet-a"

[[host]]
name = "node1"
address = "10.77.0.11"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }
circuit = "closet-a"

[[host]]
name = "node2"
address = "10.77.0.12"
roles = ["compute"]
gpus = { model = "rtx-4090", count = 2 }
circuit = "closet-a"

[[user]]
name = "alice"
uid = 1001

[[power.circuit]]
name = "closet-a"
volts = 240
amps = 30

[cooling]
capacity_btu_per_hour = 36000
"#,
        )
        .unwrap();
        let fake = Arc::new(FakeCluster::debian(&["head", "node1", "node2"]));
        let cards = |name: &str, n: u32, limit: f64, draw: f64| -> Vec<Gpu> {
            (0..n)
                .map(|i| Gpu {
                    index: i,
                    name: name.into(),
                    memory_mib: Some(24564),
                    power_limit_watts: Some(limit),
                    power_draw_watts: Some(draw),
                })
                .collect()
        };
        fake.host("node1")
            .with(|s| s.gpus = cards("NVIDIA A100-SXM4-80GB", 4, 400.0, 61.27));
        fake.host("node2")
            .with(|s| s.gpus = cards("NVIDIA GeForce RTX 4090", 2, 300.0, 27.43));
        (inv, fake)
    }

    #[tokio::test]
    async fn check_network_shows_how_the_login_host_resolves_the_node_names() {
        let (inv, fake) = vm_closet();
        // head's /etc/hosts: node1 right, node2 stale; node1 resolves nothing itself
        // (it is not asked).
        fake.host("head").with(|s| {
            s.resolver.insert("node1".into(), "10.77.0.11".into());
            s.resolver.insert("node2".into(), "10.77.0.99".into());
        });
        let report = check_with(fake.clone(), &inv, &[CheckKind::Network], false).await;
        let out = text(&report, Style::plain());
        insta::assert_snapshot!("network_node_names_text", out);
        insta::assert_snapshot!("network_node_names_json", json(&report));
        assert_eq!(exit_code(&report), 0, "a warning, not a failure");

        // An empty resolver: nothing resolves, a warning per node.
        fake.host("head").with(|s| s.resolver.clear());
        let report = check_with(fake.clone(), &inv, &[CheckKind::Network], false).await;
        let warned: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.code == crate::diagnostic::Code::NodeName)
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(
            warned,
            vec![
                "host `head`: node name `node1` does not resolve",
                "host `head`: node name `node2` does not resolve"
            ]
        );

        // head unreachable: its link row is the error, no name row or finding.
        fake.host("head").with(|s| s.reachable = false);
        let report = check_with(fake, &inv, &[CheckKind::Network], false).await;
        let net = report.network.as_ref().unwrap();
        assert!(net.node_names.is_none());
        assert!(report
            .findings
            .iter()
            .all(|f| f.code != crate::diagnostic::Code::NodeName));
        assert!(!text(&report, Style::plain()).contains("node names"));
    }

    #[test]
    fn only_the_checks_probe_of_the_login_host_resolves_node_names() {
        use crate::check::network::NODE_NAMES_FACTS;
        let (inv, _) = vm_closet();
        let reqs = requests(&inv, &[CheckKind::Network]);
        assert!(reqs["head"].commands.contains_key(NODE_NAMES_FACTS));
        assert!(reqs["node1"].commands.is_empty() && reqs["node2"].commands.is_empty());
        // Without `check network` (clock, uids, ...) nobody is asked.
        let reqs = requests(&inv, &[CheckKind::Clock, CheckKind::Uids]);
        assert!(reqs.values().all(|r| r.commands.is_empty()));
        // plan and apply probe with desired::probe_request: never this command.
        let playbooks = crate::playbook::Playbooks::load(None).unwrap();
        for h in &inv.hosts {
            let req = crate::desired::probe_request(&inv, &playbooks, h);
            assert!(!req.commands.contains_key(NODE_NAMES_FACTS), "{}", h.name);
            let script = crate::facts::probe::script(&req);
            assert!(!script.contains("getent ahostsv4"), "{}", h.name);
        }
    }

    #[tokio::test]
    async fn live_power_rows_as_the_vm_scenario_reads_them() {
        let (inv, fake) = vm_closet();
        let report = check_with(fake.clone(), &inv, &[CheckKind::Power], true).await;
        let out = text(&report, Style::plain());
        // node1: 4 x 400 W + 350 W = 1,950 W; node2: 2 x 300 W + 350 W = 950 W;
        // head 250 W: 3,150 W of 5,760 W = 54.7 %; GPU draw 4 x 61.27 + 2 x 27.43 = 299.9 W.
        let line = |first: &str| {
            out.lines()
                .find(|l| l.starts_with(first))
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("closet-a"),
            "closet-a head, node1, node2 3150 5760 2610 54.7 % 300 ok",
            "{out}"
        );
        assert_eq!(
            line("node1"),
            "node1 closet-a 4 x a100-sxm4-80gb 1600 350 1950 4 x 400 245 live",
            "{out}"
        );
        assert_eq!(
            line("node2"),
            "node2 closet-a 2 x rtx-4090 600 350 950 2 x 300 55 live",
            "{out}"
        );
        // CLOSETCTL_CHECK_DUMP=DIR writes the texts and JSON that 40-check.sh matches
        // (live power; all checks with node2 600 s ahead and a hand-made alice), to try
        // the scenario's patterns without VMs.
        if let Some(dir) = std::env::var_os("CLOSETCTL_CHECK_DUMP") {
            std::fs::write(Path::new(&dir).join("power-live.txt"), &out).unwrap();
            std::fs::write(Path::new(&dir).join("power-live.json"), json(&report)).unwrap();
            fake.host("node2").with(|s| {
                s.epoch += 600.0;
                s.users.insert(
                    "alice".into(),
                    PasswdEntry {
                        uid: 1999,
                        gid: 100,
                        gecos: String::new(),
                        home: "/home/alice".into(),
                        shell: "/bin/sh".into(),
                    },
                );
            });
            let report = check_with(fake, &inv, &CheckKind::ALL, false).await;
            std::fs::write(
                Path::new(&dir).join("all.txt"),
                text(&report, Style::plain()),
            )
            .unwrap();
            std::fs::write(Path::new(&dir).join("all.json"), json(&report)).unwrap();
        }
    }
}
