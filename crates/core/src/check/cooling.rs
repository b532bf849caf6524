//! `check cooling`: can the room take the heat? All the power the hosts draw ends up as
//! heat, so the heat load is the sum of every host's worst-case load from
//! [`super::power`] (on a circuit or not), converted at 1 W = 3.412 BTU/h and
//! 12,000 BTU/h = 1 ton of cooling, against `[cooling]`'s capacity.
//!
//! - Over capacity is an error; from 90 % of it, a warning. No `[cooling]` section is a
//!   warning (the room's capacity is unknown), never an error.
//! - Advisory (the seed's rule of thumb): one ton of cooling per two high-end GPU
//!   nodes. A host is high-end when it has 4 or more GPUs or a worst-case load of
//!   1,500 W or more. When the declared capacity is below that, it is a warning.

use super::power::HostLoad;
use super::{round1, CheckKind, Severity};
use crate::diagnostic::{Code, Diagnostic};
use crate::inventory::Inventory;
use serde::Serialize;

/// BTU per hour in one watt.
pub const BTU_PER_HOUR_PER_WATT: f64 = 3.412;
/// BTU per hour in one ton of cooling.
pub const BTU_PER_HOUR_PER_TON: f64 = 12_000.0;
/// A host with this many GPUs or more is high-end for the rule of thumb.
pub const HIGH_END_MIN_GPUS: u32 = 4;
/// A host drawing this many watts or more is high-end for the rule of thumb.
pub const HIGH_END_MIN_WATTS: f64 = 1_500.0;
/// High-end nodes one ton of cooling serves, by the rule of thumb.
pub const HIGH_END_NODES_PER_TON: f64 = 2.0;
/// From this share of the capacity, a warning.
pub const WARN_PERCENT: f64 = 90.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoolingReport {
    /// Sum of every host's worst-case load.
    pub heat_watts: f64,
    pub heat_btu_per_hour: f64,
    pub heat_tons: f64,
    /// `None` when the inventory has no `[cooling]`.
    pub capacity_btu_per_hour: Option<f64>,
    pub capacity_tons: Option<f64>,
    /// `heat / capacity × 100` (one decimal), when the capacity is known.
    pub percent: Option<f64>,
    pub severity: Severity,
    /// Hosts the rule of thumb counts as high-end.
    pub high_end_hosts: Vec<String>,
    /// Tons the rule of thumb asks for: high-end hosts / 2.
    pub advisory_tons: f64,
}

/// Convert watts to BTU/h.
pub fn btu_per_hour(watts: f64) -> f64 {
    watts * BTU_PER_HOUR_PER_WATT
}

/// Convert BTU/h to tons of cooling.
pub fn tons(btu_per_hour: f64) -> f64 {
    btu_per_hour / BTU_PER_HOUR_PER_TON
}

/// Whether the rule of thumb counts this host as a high-end GPU node.
pub fn is_high_end(host: &HostLoad) -> bool {
    host.gpu_count >= HIGH_END_MIN_GPUS || host.load_watts >= HIGH_END_MIN_WATTS
}

/// The cooling check over the hosts' loads (from [`super::power::check`]).
pub fn check(inventory: &Inventory, hosts: &[HostLoad]) -> CoolingReport {
    let watts: f64 = hosts.iter().map(|h| h.load_watts).sum();
    let btu = btu_per_hour(watts);
    let capacity = inventory.cooling.as_ref().map(|c| c.capacity_btu_per_hour);
    let percent = capacity.map(|cap| btu / cap * 100.0);
    let severity = match percent {
        None => Severity::Warning,
        Some(p) if p > 100.0 => Severity::Error,
        Some(p) if p >= WARN_PERCENT => Severity::Warning,
        Some(_) => Severity::Ok,
    };
    let high_end_hosts: Vec<String> = hosts
        .iter()
        .filter(|h| is_high_end(h))
        .map(|h| h.host.clone())
        .collect();
    CoolingReport {
        heat_watts: round1(watts),
        heat_btu_per_hour: round1(btu),
        heat_tons: round2(tons(btu)),
        capacity_btu_per_hour: capacity.map(round1),
        capacity_tons: capacity.map(|c| round2(tons(c))),
        percent: percent.map(round1),
        severity,
        advisory_tons: high_end_hosts.len() as f64 / HIGH_END_NODES_PER_TON,
        high_end_hosts,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl CoolingReport {
    /// The capacity finding and the rule-of-thumb advisory.
    pub fn findings(&self) -> Vec<Diagnostic> {
        let heat = format!(
            "{:.0} W = {:.0} BTU/h = {:.2} tons",
            self.heat_watts, self.heat_btu_per_hour, self.heat_tons
        );
        let mut out = Vec::new();
        let capacity = match (self.capacity_btu_per_hour, self.capacity_tons, self.percent) {
            (Some(cap), Some(cap_tons), Some(p)) => {
                let figures = format!("heat {heat} against {cap:.0} BTU/h ({cap_tons:.2} tons) of cooling ({p:.1} %)");
                let d = |m: String| Diagnostic::new(self.severity, Code::CoolingCapacity, "cooling", m);
                match self.severity {
                    Severity::Error => d(format!("cooling is over capacity: {figures}"))
                        .hint("the closet will overheat under full load"),
                    Severity::Warning => d(format!("cooling is near capacity: {figures}")),
                    _ => d(format!("cooling: {figures}")),
                }
            }
            _ => Diagnostic::new(self.severity, Code::CoolingUndeclared, "cooling", format!("no `[cooling]` capacity in the inventory: heat {heat} is not checked against the room")),
        };
        out.push(capacity.from_check(CheckKind::Cooling));
        if !self.high_end_hosts.is_empty() {
            let n = self.high_end_hosts.len();
            let rule = format!(
                "rule of thumb: one ton per two high-end GPU nodes; {n} high-end ({}) -> {:.1} tons",
                self.high_end_hosts.join(", "),
                self.advisory_tons
            );
            let (severity, message) = match self.capacity_tons {
                Some(cap) if cap < self.advisory_tons => (
                    Severity::Warning,
                    format!("{rule}, more than the {cap:.2} tons declared"),
                ),
                Some(cap) => (Severity::Ok, format!("{rule}; {cap:.2} tons declared")),
                None => (Severity::Ok, rule),
            };
            out.push(
                Diagnostic::new(severity, Code::CoolingRuleOfThumb, "rule-of-thumb", message)
                    .from_check(CheckKind::Cooling),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{fixtures, power};

    #[test]
    fn two_a100_nodes_heat_in_btu_and_tons() {
        // 3,900 W × 3.412 = 13,306.8 BTU/h; / 12,000 = 1.11 tons (1.1089).
        // Against 12,000 BTU/h (1 ton): 13,306.8 / 12,000 = 110.9 % → error.
        let inv = fixtures::two_a100_hosts(240, 30, None);
        let r = check(&inv, &power::check(&inv, None).hosts);
        assert_eq!(
            (r.heat_watts, r.heat_btu_per_hour, r.heat_tons),
            (3900.0, 13306.8, 1.11)
        );
        assert_eq!(
            (r.capacity_btu_per_hour, r.capacity_tons, r.percent),
            (Some(12000.0), Some(1.0), Some(110.9))
        );
        assert_eq!(r.severity, Severity::Error);
        // Both hosts have 4 GPUs: high-end; 2 / 2 = 1 ton advised, 1 ton declared: ok.
        assert_eq!(r.high_end_hosts, vec!["gpu1", "gpu2"]);
        assert_eq!(r.advisory_tons, 1.0);
        let f = r.findings();
        assert!(
            f[0].message
                .starts_with("cooling is over capacity: heat 3900 W = 13307 BTU/h = 1.11 tons"),
            "{}",
            f[0].message
        );
        assert_eq!(f[1].severity, Severity::Ok);
    }

    #[test]
    fn enough_capacity_is_ok_and_no_cooling_section_is_a_warning() {
        let mut inv = fixtures::two_a100_hosts(240, 30, None);
        inv.cooling = Some(crate::inventory::Cooling {
            capacity_btu_per_hour: 24_000.0,
        });
        let hosts = power::check(&inv, None).hosts;
        // 13,306.8 / 24,000 = 55.4 %.
        let r = check(&inv, &hosts);
        assert_eq!((r.severity, r.percent), (Severity::Ok, Some(55.4)));
        inv.cooling = None;
        let r = check(&inv, &hosts);
        assert_eq!(r.severity, Severity::Warning);
        assert!(r.findings()[0]
            .message
            .starts_with("no `[cooling]` capacity"));
    }

    #[test]
    fn high_end_by_watts_and_the_advisory_warning() {
        // One host with 2 × H100 SXM: 2 × 700 + 350 = 1,750 W ≥ 1,500 W → high-end;
        // 1 / 2 = 0.5 tons advised; 5,000 BTU/h = 0.42 tons declared → warning.
        // Heat 1,750 × 3.412 = 5,971 BTU/h > 5,000 → over capacity too.
        let mut inv = fixtures::inventory(
            "[[host]]\nname = \"h\"\naddress = \"10.0.0.1\"\nroles = [\"compute\"]\ngpus = { model = \"h100-sxm\", count = 2 }\n",
        );
        inv.cooling = Some(crate::inventory::Cooling {
            capacity_btu_per_hour: 5_000.0,
        });
        let r = check(&inv, &power::check(&inv, None).hosts);
        assert_eq!(r.high_end_hosts, vec!["h"]);
        assert_eq!(r.advisory_tons, 0.5);
        assert_eq!(r.heat_btu_per_hour, 5971.0);
        let f = r.findings();
        assert_eq!(
            (f[0].severity, f[1].severity),
            (Severity::Error, Severity::Warning)
        );
        assert!(
            f[1].message.contains("more than the 0.42 tons declared"),
            "{}",
            f[1].message
        );
    }
}
