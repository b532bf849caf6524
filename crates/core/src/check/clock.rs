//! `check clock`: do the hosts' clocks agree closely enough for MUNGE? A MUNGE
//! credential lives 300 s by default; a host whose clock is off by that much rejects
//! every job credential (`Expired credential`, `Rewound credential` in Slurm's logs).
//!
//! Each host's offset is `epoch - local_epoch`: its clock against this machine's, both
//! read in the same probe round (the engine takes the midpoint of the round trip). The
//! cluster's reference is the median offset, so a host is judged by how far it is from
//! the others (`deviation`), not by this machine's clock:
//! - |deviation| ≥ 300 s (MUNGE's TTL): error; ≥ 30 s: warning.
//! - The largest pairwise skew between two hosts (max offset − min offset) with the same
//!   thresholds, naming both hosts.
//! - This machine ≥ 30 s away from the hosts' median: a warning (only closetctl's view
//!   is off; the cluster itself is fine).
//! - NTP not synchronized (`timedatectl`): a warning; unknown: reported, no warning.
//! - Host unreachable: an error.

use super::{round1, CheckKind, Severity};
use crate::diagnostic::{Code, Diagnostic};
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use serde::Serialize;

/// MUNGE's default credential time-to-live: clocks must agree within it.
pub const MUNGE_TTL_SECONDS: f64 = 300.0;
/// From this skew, a warning.
pub const WARN_SKEW_SECONDS: f64 = 30.0;

/// Severity of a skew (its absolute value is used).
pub fn skew_severity(seconds: f64) -> Severity {
    let s = seconds.abs();
    if s >= MUNGE_TTL_SECONDS {
        Severity::Error
    } else if s >= WARN_SKEW_SECONDS {
        Severity::Warning
    } else {
        Severity::Ok
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostClock {
    pub host: String,
    /// Host clock minus this machine's clock, seconds (`None`: unreachable).
    pub offset_seconds: Option<f64>,
    /// Offset minus the median offset of all reachable hosts.
    pub deviation_seconds: Option<f64>,
    /// `yes`, `no` or `unknown`.
    pub ntp_synchronized: &'static str,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The two hosts furthest apart and by how much.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairwiseSkew {
    pub seconds: f64,
    /// The host whose clock is furthest ahead.
    pub ahead: String,
    /// The host whose clock is furthest behind.
    pub behind: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockReport {
    pub hosts: Vec<HostClock>,
    /// Median host offset against this machine (`None` without reachable hosts).
    pub reference_offset_seconds: Option<f64>,
    /// `None` with fewer than two reachable hosts.
    pub max_pairwise: Option<PairwiseSkew>,
}

/// The clock check over the gathered facts.
pub fn check(inventory: &Inventory, facts: &ClusterFacts) -> ClockReport {
    let offsets: Vec<(String, f64)> = inventory
        .hosts
        .iter()
        .filter_map(|h| {
            facts
                .host(&h.name)
                .map(|f| (h.name.clone(), f.time.epoch - f.time.local_epoch))
        })
        .collect();
    let median = median(offsets.iter().map(|(_, o)| *o).collect());
    let hosts = inventory
        .hosts
        .iter()
        .map(|h| match facts.host(&h.name) {
            Some(f) => {
                let offset = f.time.epoch - f.time.local_epoch;
                let deviation = offset - median.unwrap_or(offset);
                let ntp = match f.time.ntp_synchronized {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                };
                let ntp_severity = if ntp == "no" {
                    Severity::Warning
                } else {
                    Severity::Ok
                };
                HostClock {
                    host: h.name.clone(),
                    offset_seconds: Some(round1(offset)),
                    deviation_seconds: Some(round1(deviation)),
                    ntp_synchronized: ntp,
                    severity: skew_severity(deviation).max(ntp_severity),
                    error: None,
                }
            }
            None => HostClock {
                host: h.name.clone(),
                offset_seconds: None,
                deviation_seconds: None,
                ntp_synchronized: "unknown",
                severity: Severity::Error,
                error: Some(super::network::unreachable_reason(facts, &h.name)),
            },
        })
        .collect();
    let ahead = offsets.iter().max_by(|a, b| a.1.total_cmp(&b.1));
    let behind = offsets.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    let max_pairwise = match (ahead, behind) {
        (Some(a), Some(b)) if offsets.len() >= 2 => Some(PairwiseSkew {
            seconds: round1(a.1 - b.1),
            ahead: a.0.clone(),
            behind: b.0.clone(),
            severity: skew_severity(a.1 - b.1),
        }),
        _ => None,
    };
    ClockReport {
        hosts,
        reference_offset_seconds: median.map(round1),
        max_pairwise,
    }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

impl ClockReport {
    pub fn findings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for h in &self.hosts {
            let d = match (h.offset_seconds, h.deviation_seconds) {
                (Some(offset), Some(dev)) => {
                    let m = format!(
                        "host `{}`: clock {dev:+.1} s from the cluster ({offset:+.1} s from this machine), NTP synchronized: {}",
                        h.host, h.ntp_synchronized
                    );
                    let hint = match skew_severity(dev) {
                        Severity::Error => Some(format!(
                            "at or beyond MUNGE's {MUNGE_TTL_SECONDS:.0} s credential TTL: Slurm will reject its credentials"
                        )),
                        Severity::Warning => Some("drifting: enable NTP (systemd-timesyncd or chrony)".to_string()),
                        _ if h.ntp_synchronized == "no" => Some("enable NTP (systemd-timesyncd or chrony)".to_string()),
                        _ => None,
                    };
                    let mut d = Diagnostic::new(h.severity, Code::ClockOffset, &h.host, m);
                    d.hint = hint;
                    d
                }
                _ => Diagnostic::new(
                    h.severity,
                    Code::HostUnreachable,
                    &h.host,
                    format!(
                        "host `{}` is unreachable: {}",
                        h.host,
                        h.error.as_deref().unwrap_or("no facts")
                    ),
                ),
            };
            out.push(d.from_check(CheckKind::Clock).on(&h.host));
        }
        if let Some(p) = &self.max_pairwise {
            out.push(
                Diagnostic::new(
                    p.severity,
                    Code::ClockSkew,
                    "cluster",
                    format!(
                        "max pairwise clock skew {:.1} s (`{}` ahead of `{}`)",
                        p.seconds, p.ahead, p.behind
                    ),
                )
                .hint(format!("MUNGE needs under {MUNGE_TTL_SECONDS:.0} s"))
                .from_check(CheckKind::Clock),
            );
        }
        if let Some(r) = self
            .reference_offset_seconds
            .filter(|r| r.abs() >= WARN_SKEW_SECONDS)
        {
            out.push(
                Diagnostic::warning(
                    Code::LocalClock,
                    "this machine",
                    format!(
                        "this machine's clock is {:+.1} s from the hosts' (their median)",
                        -r
                    ),
                )
                .hint("the hosts are judged against each other")
                .from_check(CheckKind::Clock),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures;
    use crate::facts::{HostFacts, TimeFacts};

    fn at(epoch: f64, local_epoch: f64, ntp: Option<bool>) -> HostFacts {
        HostFacts {
            time: TimeFacts {
                epoch,
                local_epoch,
                ntp_synchronized: ntp,
            },
            ..HostFacts::default()
        }
    }

    fn three_hosts() -> Inventory {
        fixtures::inventory(
            r#"
[[host]]
name = "head"
address = "10.0.0.10"
roles = ["controller"]

[[host]]
name = "node1"
address = "10.0.0.11"
roles = ["compute"]

[[host]]
name = "node2"
address = "10.0.0.12"
roles = ["compute"]
"#,
        )
    }

    use crate::inventory::Inventory;

    #[test]
    fn a_host_600_seconds_ahead_is_an_error() {
        // Offsets (epoch − local_epoch): head +0.5, node1 −0.5, node2 +600.0 s.
        // Median +0.5 → node2 deviates 599.5 s ≥ 300 s → error; pairwise
        // 600.0 − (−0.5) = 600.5 s between node2 (ahead) and node1 (behind) → error.
        let inv = three_hosts();
        let mut facts = ClusterFacts::default();
        facts
            .hosts
            .insert("head".into(), at(1_000.5, 1_000.0, Some(true)));
        facts
            .hosts
            .insert("node1".into(), at(1_999.5, 2_000.0, Some(true)));
        facts
            .hosts
            .insert("node2".into(), at(3_600.0, 3_000.0, None));
        let r = check(&inv, &facts);
        assert_eq!(r.reference_offset_seconds, Some(0.5));
        assert_eq!(r.hosts[2].offset_seconds, Some(600.0));
        assert_eq!(r.hosts[2].deviation_seconds, Some(599.5));
        assert_eq!(
            (r.hosts[2].severity, r.hosts[2].ntp_synchronized),
            (Severity::Error, "unknown")
        );
        assert_eq!(r.hosts[0].severity, Severity::Ok);
        let p = r.max_pairwise.as_ref().unwrap();
        assert_eq!(
            (p.seconds, p.ahead.as_str(), p.behind.as_str(), p.severity),
            (600.5, "node2", "node1", Severity::Error)
        );
        let f = r.findings();
        assert!(
            f[2].message
                .starts_with("host `node2`: clock +599.5 s from the cluster"),
            "{}",
            f[2].message
        );
        assert!(
            f[3].message.contains("600.5 s (`node2` ahead of `node1`)"),
            "{}",
            f[3].message
        );
        assert_eq!(super::super::worst(&f), Severity::Error);
    }

    #[test]
    fn thirty_seconds_is_a_warning_and_ntp_off_is_a_warning() {
        assert_eq!(skew_severity(29.9), Severity::Ok);
        assert_eq!(skew_severity(-30.0), Severity::Warning);
        assert_eq!(skew_severity(299.9), Severity::Warning);
        assert_eq!(skew_severity(300.0), Severity::Error);
        let inv = three_hosts();
        let mut facts = ClusterFacts::default();
        facts
            .hosts
            .insert("head".into(), at(100.0, 100.0, Some(false)));
        facts
            .hosts
            .insert("node1".into(), at(100.0, 100.0, Some(true)));
        facts.unreachable.insert("node2".into(), "timed out".into());
        let r = check(&inv, &facts);
        assert_eq!(
            (r.hosts[0].severity, r.hosts[0].ntp_synchronized),
            (Severity::Warning, "no")
        );
        assert_eq!(r.hosts[1].severity, Severity::Ok);
        assert_eq!(r.hosts[2].severity, Severity::Error);
        assert_eq!(r.max_pairwise.as_ref().unwrap().seconds, 0.0);
    }

    #[test]
    fn this_machine_off_is_only_a_warning() {
        // Every host is 600 s ahead of this machine: they agree with each other.
        let inv = three_hosts();
        let mut facts = ClusterFacts::default();
        for h in ["head", "node1", "node2"] {
            facts
                .hosts
                .insert(h.into(), at(1_600.0, 1_000.0, Some(true)));
        }
        let f = check(&inv, &facts).findings();
        assert_eq!(super::super::worst(&f), Severity::Warning);
        assert_eq!(f.last().unwrap().subject, "this machine");
        assert!(f.last().unwrap().message.contains("-600.0 s"));
    }
}
