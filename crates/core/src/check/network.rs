//! `check network`: is each host's cluster link fast enough? The interface is the one
//! the probe found carrying the SSH connection (`facts.link`): on a closet, the same
//! network NFS data loading and Slurm traffic use.
//!
//! - 10,000 Mb/s or more: ok.
//! - Slower: a warning (1 GbE moves ~110 MB/s: NFS data loading becomes the bottleneck).
//! - Speed not reported (virtual NICs, some drivers): `unknown`, not a failure.
//! - Host unreachable: an error.
//!
//! And whether the login host resolves every compute node's name: SkyPilot on Slurm
//! runs `getent ahostsv4 NODE` there for every node `sinfo` lists, while Slurm itself
//! uses the NodeAddr closetctl writes, so nothing else notices a login host that cannot.
//! One probe command on the login host ([`node_names_request`], the check's probe
//! only) prints `NAME ADDRESS` per node, ADDRESS empty when the name does not resolve.
//!
//! - Resolves to the inventory address (to anything, when that address is a name or
//!   IPv6): ok.
//! - Resolves elsewhere, or not at all: a warning.
//! - Login host unreachable: no finding here (its link row already is an error).

use super::{CheckKind, Severity};
use crate::diagnostic::{Code, Diagnostic};
use crate::facts::probe::ProbeRequest;
use crate::facts::{ClusterFacts, HostFacts};
use crate::inventory::{Inventory, Role};
use crate::shell::quote;
use serde::Serialize;
use std::collections::BTreeMap;

/// Below this link speed, a warning.
pub const MIN_LINK_MBPS: u32 = 10_000;

/// What was found about one host's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// At least [`MIN_LINK_MBPS`].
    Ok,
    /// Below [`MIN_LINK_MBPS`].
    Slow,
    /// The link or its speed is not known.
    Unknown,
    /// The host did not answer the probe.
    Unreachable,
}

impl LinkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Ok => "ok",
            LinkStatus::Slow => "slow",
            LinkStatus::Unknown => "unknown",
            LinkStatus::Unreachable => "unreachable",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            LinkStatus::Ok | LinkStatus::Unknown => Severity::Ok,
            LinkStatus::Slow => Severity::Warning,
            LinkStatus::Unreachable => Severity::Error,
        }
    }

    /// The status for a reported speed.
    pub fn for_speed(speed_mbps: Option<u32>) -> LinkStatus {
        match speed_mbps {
            None => LinkStatus::Unknown,
            Some(s) if s < MIN_LINK_MBPS => LinkStatus::Slow,
            Some(_) => LinkStatus::Ok,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostLink {
    pub host: String,
    pub interface: Option<String>,
    pub address: Option<String>,
    pub speed_mbps: Option<u32>,
    pub status: LinkStatus,
    pub severity: Severity,
    /// Why the host was unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkReport {
    /// Every host, in inventory order.
    pub hosts: Vec<HostLink>,
    /// The compute nodes' names as the login host resolves them; `None` when there is
    /// no login host, no compute node, or the login host did not answer.
    pub node_names: Option<NodeNames>,
}

/// Probe command (the check's probe of the login host): `NAME ADDRESS` per compute
/// node, ADDRESS the first IPv4 address `getent ahostsv4 NAME` gives, empty when none.
pub const NODE_NAMES_FACTS: &str = "node-names";
/// What follows the quoted names in the command: one `getent` per name, its first
/// word (the address) taken by the shell, no other process.
pub const NODE_NAMES_LOOP: &str =
    "; do set -- $(getent ahostsv4 \"$n\"); printf '%s %s\\n' \"$n\" \"${1-}\"; done";
/// What precedes the quoted names (globbing off: the answer is split unquoted).
pub const NODE_NAMES_START: &str = "set -f; for n in ";

/// The command that resolves `names` (inventory-validated names, quoted anyway).
pub fn node_names_command<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(quote).collect();
    format!("{NODE_NAMES_START}{}{NODE_NAMES_LOOP}", names.join(" "))
}

/// The compute nodes whose names the login host must resolve, in inventory order.
fn compute_nodes(inventory: &Inventory) -> impl Iterator<Item = &crate::inventory::Host> {
    inventory.hosts.iter().filter(|h| h.has_role(Role::Compute))
}

/// The login host and what its probe must add for the check: `None` without a login
/// host or without compute nodes.
pub fn node_names_request(inventory: &Inventory) -> Option<(String, ProbeRequest)> {
    let login = inventory.login_host()?;
    let mut nodes = compute_nodes(inventory).peekable();
    nodes.peek()?;
    let mut req = ProbeRequest::default();
    req.commands.insert(
        NODE_NAMES_FACTS.into(),
        node_names_command(nodes.map(|h| h.name.as_str())),
    );
    Some((login.name.clone(), req))
}

/// The names the command's answer resolved, by name (`None`: did not resolve); `None`
/// when the command did not answer.
pub fn resolved_names(facts: &HostFacts) -> Option<BTreeMap<String, Option<String>>> {
    let out = facts
        .commands
        .get(NODE_NAMES_FACTS)
        .filter(|c| c.exit_code == 0)?;
    Some(
        out.stdout
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next()?;
                Some((name.to_string(), w.next().map(str::to_string)))
            })
            .collect(),
    )
}

/// How the login host resolves one node's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameStatus {
    /// To the inventory address (to any address, when that is a name or IPv6).
    Ok,
    /// To another address.
    Differs,
    /// Not at all.
    Missing,
}

impl NameStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NameStatus::Ok => "ok",
            NameStatus::Differs => "differs",
            NameStatus::Missing => "missing",
        }
    }

    /// The status of a name whose inventory address is `address` and that resolved to
    /// `resolved`.
    pub fn of(address: &str, resolved: Option<&str>) -> NameStatus {
        let Some(resolved) = resolved else {
            return NameStatus::Missing;
        };
        match address.parse::<std::net::Ipv4Addr>() {
            Ok(v4) if resolved.parse::<std::net::Ipv4Addr>().ok() != Some(v4) => {
                NameStatus::Differs
            }
            _ => NameStatus::Ok,
        }
    }
}

/// The compute nodes' names on the login host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeNames {
    /// The login host (the first `login` host, else the controller).
    pub login_host: String,
    /// Every compute node, in inventory order.
    pub nodes: Vec<NodeName>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeName {
    pub node: String,
    /// The inventory address.
    pub address: String,
    /// The first IPv4 address the login host resolved the name to; `null`: none.
    pub resolved: Option<String>,
    pub status: NameStatus,
    pub severity: Severity,
}

/// The node-name part: `None` when the login host gave no facts (or no answer).
fn node_names(inventory: &Inventory, facts: &ClusterFacts) -> Option<NodeNames> {
    let login = inventory.login_host()?;
    let resolved = resolved_names(facts.host(&login.name)?)?;
    let nodes: Vec<NodeName> = compute_nodes(inventory)
        .map(|h| {
            let got = resolved.get(&h.name).cloned().flatten();
            let status = NameStatus::of(&h.address, got.as_deref());
            NodeName {
                node: h.name.clone(),
                address: h.address.clone(),
                resolved: got,
                status,
                severity: if status == NameStatus::Ok {
                    Severity::Ok
                } else {
                    Severity::Warning
                },
            }
        })
        .collect();
    (!nodes.is_empty()).then(|| NodeNames {
        login_host: login.name.clone(),
        nodes,
    })
}

/// The network check over the gathered facts.
pub fn check(inventory: &Inventory, facts: &ClusterFacts) -> NetworkReport {
    let hosts = inventory
        .hosts
        .iter()
        .map(|h| match facts.host(&h.name) {
            Some(f) => {
                let speed = f.link.as_ref().and_then(|l| l.speed_mbps);
                let status = LinkStatus::for_speed(speed);
                HostLink {
                    host: h.name.clone(),
                    interface: f.link.as_ref().map(|l| l.interface.clone()),
                    address: f.link.as_ref().map(|l| l.address.clone()),
                    speed_mbps: speed,
                    status,
                    severity: status.severity(),
                    error: None,
                }
            }
            None => HostLink {
                host: h.name.clone(),
                interface: None,
                address: None,
                speed_mbps: None,
                status: LinkStatus::Unreachable,
                severity: Severity::Error,
                error: Some(unreachable_reason(facts, &h.name)),
            },
        })
        .collect();
    NetworkReport {
        hosts,
        node_names: node_names(inventory, facts),
    }
}

/// Why a host has no facts.
pub(crate) fn unreachable_reason(facts: &ClusterFacts, host: &str) -> String {
    facts
        .unreachable
        .get(host)
        .cloned()
        .unwrap_or_else(|| "no facts gathered".to_string())
}

impl NetworkReport {
    pub fn findings(&self) -> Vec<Diagnostic> {
        let mut out = self.link_findings();
        if let Some(n) = &self.node_names {
            out.extend(n.nodes.iter().map(|node| node.finding(&n.login_host)));
        }
        out
    }

    fn link_findings(&self) -> Vec<Diagnostic> {
        self.hosts
            .iter()
            .map(|h| {
                let on = h.interface.as_deref().map(|i| format!(" on {i}")).unwrap_or_default();
                let message = match h.status {
                    LinkStatus::Ok => format!("host `{}`: link{on} at {} Mb/s", h.host, h.speed_mbps.unwrap_or(0)),
                    LinkStatus::Slow => format!(
                        "host `{}`: link{on} at {} Mb/s, below {MIN_LINK_MBPS} Mb/s: NFS data loading will be the bottleneck",
                        h.host,
                        h.speed_mbps.unwrap_or(0)
                    ),
                    LinkStatus::Unknown => format!("host `{}`: link{on} speed unknown (not reported by the driver)", h.host),
                    LinkStatus::Unreachable => {
                        format!("host `{}` is unreachable: {}", h.host, h.error.as_deref().unwrap_or("no facts"))
                    }
                };
                let code = match h.status {
                    LinkStatus::Unreachable => Code::HostUnreachable,
                    _ => Code::LinkSpeed,
                };
                Diagnostic::new(h.severity, code, &h.host, message)
                    .from_check(CheckKind::Network)
                    .on(&h.host)
            })
            .collect()
    }
}

impl NodeName {
    /// One finding per node, about the login host's resolver (host: the login host,
    /// subject: the node).
    fn finding(&self, login: &str) -> Diagnostic {
        let what = match (&self.resolved, self.status) {
            (Some(a), NameStatus::Ok) => format!("resolves to {a}"),
            (Some(a), _) => format!("resolves to {a}, not the inventory's {}", self.address),
            (None, _) => "does not resolve".to_string(),
        };
        let message = format!("host `{login}`: node name `{}` {what}", self.node);
        let d = Diagnostic::new(self.severity, Code::NodeName, &self.node, message)
            .from_check(CheckKind::Network)
            .on(login);
        if self.status == NameStatus::Ok {
            d
        } else {
            d.hint("SkyPilot on Slurm resolves node names on the login host: add them to DNS or /etc/hosts")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures;
    use crate::facts::{HostFacts, Link};

    fn with_link(speed: Option<u32>) -> HostFacts {
        HostFacts {
            link: Some(Link {
                interface: "eth0".into(),
                address: "10.0.0.11".into(),
                speed_mbps: speed,
            }),
            ..HostFacts::default()
        }
    }

    #[test]
    fn gigabit_is_a_warning_unknown_is_not_a_failure_unreachable_is_an_error() {
        let inv = fixtures::two_a100_hosts(240, 30, None);
        let mut facts = ClusterFacts::default();
        facts.hosts.insert("gpu1".into(), with_link(Some(1000)));
        facts.hosts.insert("gpu2".into(), with_link(None));
        let r = check(&inv, &facts);
        assert_eq!(
            (r.hosts[0].status, r.hosts[0].severity),
            (LinkStatus::Slow, Severity::Warning)
        );
        assert_eq!(
            (r.hosts[1].status, r.hosts[1].severity),
            (LinkStatus::Unknown, Severity::Ok)
        );
        let f = r.findings();
        assert!(
            f[0].message.contains("1000 Mb/s, below 10000 Mb/s"),
            "{}",
            f[0].message
        );
        assert!(f[1].message.contains("speed unknown"), "{}", f[1].message);

        facts.hosts.insert("gpu1".into(), with_link(Some(25_000)));
        facts.hosts.remove("gpu2");
        facts
            .unreachable
            .insert("gpu2".into(), "cannot connect to `gpu2`: timed out".into());
        let r = check(&inv, &facts);
        assert_eq!(r.hosts[0].status, LinkStatus::Ok);
        assert_eq!(
            (r.hosts[1].status, r.hosts[1].severity),
            (LinkStatus::Unreachable, Severity::Error)
        );
        assert!(r.findings()[1]
            .message
            .contains("gpu2` is unreachable: cannot connect"));
    }

    /// A login host and three compute nodes, one addressed by a DNS name.
    fn closet() -> Inventory {
        fixtures::inventory(
            r#"
[[host]]
name = "head"
address = "10.0.0.10"
roles = ["controller", "login"]

[[host]]
name = "gpu1"
address = "10.0.0.11"
roles = ["compute"]

[[host]]
name = "gpu2"
address = "10.0.0.12"
roles = ["compute"]

[[host]]
name = "gpu3"
address = "gpu3.lab.example"
roles = ["compute"]
"#,
        )
    }

    fn answered(stdout: &str) -> HostFacts {
        let mut f = with_link(None);
        f.commands.insert(
            NODE_NAMES_FACTS.into(),
            crate::facts::CommandOutput {
                exit_code: 0,
                stdout: stdout.into(),
            },
        );
        f
    }

    #[test]
    fn the_login_host_alone_resolves_every_compute_nodes_name_quoted() {
        let inv = closet();
        let (login, req) = node_names_request(&inv).unwrap();
        assert_eq!(login, "head");
        assert_eq!(
            req.commands[NODE_NAMES_FACTS],
            "set -f; for n in 'gpu1' 'gpu2' 'gpu3'; do set -- $(getent ahostsv4 \"$n\"); printf '%s %s\\n' \"$n\" \"${1-}\"; done"
        );
        assert_eq!(req.commands.len(), 1);
        // Nothing else: the rest of the check's probe is every host's.
        assert_eq!(
            req,
            ProbeRequest {
                commands: req.commands.clone(),
                ..ProbeRequest::default()
            }
        );
        // No login host and no controller, or no compute node: nothing to ask.
        let none = fixtures::inventory(
            "[[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\nroles = [\"controller\"]\n",
        );
        assert!(node_names_request(&none).is_none());
    }

    #[test]
    fn the_answer_parses_into_names_and_addresses_or_none() {
        let f = answered("gpu1 10.0.0.11\ngpu2 \ngpu3 192.0.2.7");
        let got = resolved_names(&f).unwrap();
        assert_eq!(got["gpu1"].as_deref(), Some("10.0.0.11"));
        assert_eq!(got["gpu2"], None);
        assert_eq!(got["gpu3"].as_deref(), Some("192.0.2.7"));
        assert!(resolved_names(&with_link(None)).is_none(), "no answer");
    }

    #[test]
    fn resolving_to_the_inventory_address_is_ok_elsewhere_or_not_at_all_a_warning() {
        assert_eq!(
            NameStatus::of("10.0.0.11", Some("10.0.0.11")),
            NameStatus::Ok
        );
        assert_eq!(
            NameStatus::of("10.0.0.11", Some("10.0.0.99")),
            NameStatus::Differs
        );
        assert_eq!(NameStatus::of("10.0.0.11", None), NameStatus::Missing);
        // An inventory name (or IPv6 address): resolving at all is enough for getent.
        assert_eq!(
            NameStatus::of("gpu3.lab.example", Some("192.0.2.7")),
            NameStatus::Ok
        );
        assert_eq!(
            NameStatus::of("gpu3.lab.example", None),
            NameStatus::Missing
        );
        assert_eq!(
            NameStatus::of("fd00::11", Some("192.0.2.7")),
            NameStatus::Ok
        );

        let inv = closet();
        let mut facts = ClusterFacts::default();
        // gpu1 right, gpu2 missing, gpu3 (a name address) resolves; head has a stale
        // /etc/hosts line for gpu1 in the second round.
        facts.hosts.insert(
            "head".into(),
            answered("gpu1 10.0.0.11\ngpu2 \ngpu3 192.0.2.7"),
        );
        let r = check(&inv, &facts);
        let names = r.node_names.as_ref().unwrap();
        assert_eq!(names.login_host, "head");
        let rows: Vec<_> = names
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.resolved.as_deref(), n.status, n.severity))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("gpu1", Some("10.0.0.11"), NameStatus::Ok, Severity::Ok),
                ("gpu2", None, NameStatus::Missing, Severity::Warning),
                ("gpu3", Some("192.0.2.7"), NameStatus::Ok, Severity::Ok),
            ]
        );
        let f: Vec<Diagnostic> = r
            .findings()
            .into_iter()
            .filter(|d| d.code == Code::NodeName)
            .collect();
        assert_eq!(f.len(), 3);
        assert_eq!(
            (f[1].host.as_deref(), f[1].subject.as_str()),
            (Some("head"), "gpu2")
        );
        assert_eq!(
            f[1].text(),
            "host `head`: node name `gpu2` does not resolve; SkyPilot on Slurm resolves node names on the login host: add them to DNS or /etc/hosts"
        );
        assert_eq!(
            f[0].text(),
            "host `head`: node name `gpu1` resolves to 10.0.0.11"
        );
        assert_eq!(f[0].severity, Severity::Ok);

        facts.hosts.insert(
            "head".into(),
            answered("gpu1 10.0.0.99\ngpu2 10.0.0.12\ngpu3 192.0.2.7"),
        );
        let r = check(&inv, &facts);
        let f = r.findings();
        let gpu1 = f
            .iter()
            .find(|d| d.code == Code::NodeName && d.subject == "gpu1")
            .unwrap();
        assert_eq!(gpu1.severity, Severity::Warning);
        assert!(
            gpu1.message
                .ends_with("node name `gpu1` resolves to 10.0.0.99, not the inventory's 10.0.0.11"),
            "{}",
            gpu1.message
        );
        assert!(gpu1
            .hint
            .as_deref()
            .unwrap()
            .contains("add them to DNS or /etc/hosts"));
    }

    #[test]
    fn an_unreachable_login_host_adds_no_name_finding() {
        let inv = closet();
        let mut facts = ClusterFacts::default();
        facts.unreachable.insert("head".into(), "timed out".into());
        for n in ["gpu1", "gpu2", "gpu3"] {
            facts.hosts.insert(n.into(), with_link(None));
        }
        let r = check(&inv, &facts);
        assert!(r.node_names.is_none());
        let f = r.findings();
        assert_eq!(f.len(), 4, "the link rows only: {f:#?}");
        assert!(f.iter().all(|d| d.code != Code::NodeName));
        assert_eq!(f[0].code, Code::HostUnreachable);
    }

    #[test]
    fn the_command_runs_under_real_sh_one_line_per_name() {
        let cmd = node_names_command(["localhost", "closetctl-no-such-node"]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("set -u; {cmd}"))
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut f = HostFacts::default();
        f.commands.insert(
            NODE_NAMES_FACTS.into(),
            crate::facts::CommandOutput {
                exit_code: 0,
                stdout: stdout.to_string(),
            },
        );
        let got = resolved_names(&f).unwrap();
        assert_eq!(got.len(), 2, "{stdout}");
        assert!(
            got["localhost"]
                .as_deref()
                .is_some_and(|a| a.starts_with("127.")),
            "{stdout}"
        );
        assert_eq!(got["closetctl-no-such-node"], None, "{stdout}");
    }

    #[test]
    fn ten_gigabit_is_the_threshold() {
        assert_eq!(LinkStatus::for_speed(Some(9_999)), LinkStatus::Slow);
        assert_eq!(LinkStatus::for_speed(Some(10_000)), LinkStatus::Ok);
        assert_eq!(LinkStatus::for_speed(None), LinkStatus::Unknown);
    }
}
