//! `check network`: is each host's cluster link fast enough? The interface is the one
//! the probe found carrying the SSH connection (`facts.link`): on a closet, the same
//! network NFS data loading and Slurm traffic use.
//!
//! - 10,000 Mb/s or more: ok.
//! - Slower: a warning (1 GbE moves ~110 MB/s: NFS data loading becomes the bottleneck).
//! - Speed not reported (virtual NICs, some drivers): `unknown`, not a failure.
//! - Host unreachable: an error.

use super::{CheckKind, Severity};
use crate::diagnostic::{Code, Diagnostic};
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use serde::Serialize;

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
    NetworkReport { hosts }
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

    #[test]
    fn ten_gigabit_is_the_threshold() {
        assert_eq!(LinkStatus::for_speed(Some(9_999)), LinkStatus::Slow);
        assert_eq!(LinkStatus::for_speed(Some(10_000)), LinkStatus::Ok);
        assert_eq!(LinkStatus::for_speed(None), LinkStatus::Unknown);
    }
}
