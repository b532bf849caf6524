//! Preflight checks for the physical closet: power per circuit, cooling, network link
//! speed, clock skew and UID/GID consistency.
//!
//! Everything here is pure: the inventory (and, for the checks that need them, facts a
//! probe gathered) in, a report out. Each check has its own module and report type;
//! every report also turns into [`Diagnostic`]s (with `check` set), the one-line,
//! severity-tagged results that `closetctl check`, `plan` and `apply` show. Power and cooling need nothing but the
//! inventory ([`offline_findings`]); network, clock and uids need facts.

pub mod clock;
pub mod cooling;
pub mod network;
pub mod power;
pub mod uids;
pub mod users;

use crate::diagnostic::Diagnostic;
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use serde::Serialize;

pub use crate::diagnostic::{worst, Severity};

/// The checks, in the order `check all` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Power,
    Cooling,
    Network,
    Clock,
    Uids,
    /// Accounts expiring soon (run by name only: `check users`).
    Users,
}

impl CheckKind {
    pub const ALL: [CheckKind; 5] = [
        CheckKind::Power,
        CheckKind::Cooling,
        CheckKind::Network,
        CheckKind::Clock,
        CheckKind::Uids,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Power => "power",
            CheckKind::Cooling => "cooling",
            CheckKind::Network => "network",
            CheckKind::Clock => "clock",
            CheckKind::Uids => "uids",
            CheckKind::Users => "users",
        }
    }

    /// Whether the check needs facts from the hosts (an SSH round).
    pub fn needs_facts(self) -> bool {
        matches!(
            self,
            CheckKind::Network | CheckKind::Clock | CheckKind::Uids
        )
    }
}

/// Power and cooling findings from the inventory alone (table figures, no host
/// contacted): one per circuit, one per host without a circuit, one for cooling
/// capacity and one for the rule-of-thumb advisory. For `plan` (show the errors) and
/// `apply` (refuse while any is an error, unless forced).
pub fn offline_findings(inventory: &Inventory) -> Vec<Diagnostic> {
    let power = power::check(inventory, None);
    let cooling = cooling::check(inventory, &power.hosts);
    let mut out = power.findings();
    out.extend(cooling.findings());
    out
}

/// Every selected check's report. Checks that were not run are `None`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The schema version of the JSON form (docs/check-json.md).
    pub schema_version: u32,
    /// The worst severity of all findings.
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<power::PowerReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooling: Option<cooling::CoolingReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<network::NetworkReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<clock::ClockReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uids: Option<uids::UidsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<users::UsersReport>,
    /// Every finding of every selected check, in check order.
    pub findings: Vec<Diagnostic>,
}

/// JSON schema version of [`Report`].
pub const REPORT_VERSION: u32 = 2;

/// Run the selected checks. `facts` must be given when a selected check needs facts
/// (see [`CheckKind::needs_facts`]); with `live`, the power and cooling figures use
/// the enforced GPU power limits found in `facts`.
pub fn run(
    inventory: &Inventory,
    checks: &[CheckKind],
    facts: Option<&ClusterFacts>,
    live: bool,
) -> Report {
    let wants = |k: CheckKind| checks.contains(&k);
    let live_facts = if live { facts } else { None };
    let power_report = (wants(CheckKind::Power) || wants(CheckKind::Cooling))
        .then(|| power::check(inventory, live_facts));
    let cooling = wants(CheckKind::Cooling).then(|| {
        let hosts = power_report
            .as_ref()
            .map(|p| p.hosts.as_slice())
            .unwrap_or_default();
        cooling::check(inventory, hosts)
    });
    let power = power_report.filter(|_| wants(CheckKind::Power));
    let empty = ClusterFacts::default();
    let facts = facts.unwrap_or(&empty);
    let network = wants(CheckKind::Network).then(|| network::check(inventory, facts));
    let clock = wants(CheckKind::Clock).then(|| clock::check(inventory, facts));
    let uids = wants(CheckKind::Uids).then(|| uids::check(inventory, facts));
    let users = wants(CheckKind::Users).then(|| users::check(inventory));
    let mut findings = Vec::new();
    if let Some(r) = &power {
        findings.extend(r.findings());
    }
    if let Some(r) = &cooling {
        findings.extend(r.findings());
    }
    if let Some(r) = &network {
        findings.extend(r.findings());
    }
    if let Some(r) = &clock {
        findings.extend(r.findings());
    }
    if let Some(r) = &uids {
        findings.extend(r.findings());
    }
    if let Some(r) = &users {
        findings.extend(r.findings());
    }
    Report {
        schema_version: REPORT_VERSION,
        severity: worst(&findings),
        power,
        cooling,
        network,
        clock,
        uids,
        users,
        findings,
    }
}

/// Round a figure to one decimal for display and JSON (never `-0.0`).
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0 + 0.0
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Inventories for the checks' unit tests.
    use crate::inventory::Inventory;
    use std::path::Path;

    /// Parse inventory text (panics on validation problems, with them in the message).
    pub fn inventory(text: &str) -> Inventory {
        let head =
            "[cluster]\nname = \"closet\"\nsecrets_dir = \"/tmp/closetctl-check-test-secrets\"\n\n";
        Inventory::parse(Path::new("/tmp/check-test.toml"), &format!("{head}{text}"))
            .unwrap_or_else(|e| panic!("fixture inventory is invalid: {e}"))
    }

    /// Two 4 × A100 SXM4 hosts on one circuit of `volts` / `amps` (`phase` optional).
    pub fn two_a100_hosts(volts: u32, amps: u32, phase: Option<u8>) -> Inventory {
        let phase = phase.map(|p| format!("phase = {p}\n")).unwrap_or_default();
        inventory(&format!(
            r#"
[[host]]
name = "gpu1"
address = "10.0.0.11"
roles = ["compute"]
gpus = {{ model = "a100-sxm4-80gb", count = 4 }}
circuit = "rack"

[[host]]
name = "gpu2"
address = "10.0.0.12"
roles = ["compute"]
gpus = {{ model = "a100-sxm4-80gb", count = 4 }}
circuit = "rack"

[[power.circuit]]
name = "rack"
volts = {volts}
amps = {amps}
{phase}
[cooling]
capacity_btu_per_hour = 12000
"#
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_findings_name_the_circuit_over_budget() {
        // 2 hosts × (4 × 400 W + 350 W base) = 3,900 W on 120 V × 20 A × 0.8 = 1,920 W.
        let inv = fixtures::two_a100_hosts(120, 20, None);
        let findings = offline_findings(&inv);
        let over: Vec<_> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert_eq!(over.len(), 2, "{findings:#?}"); // the circuit and the cooling capacity
        assert_eq!(over[0].check, Some(CheckKind::Power));
        assert_eq!(over[0].subject, "rack");
        assert!(
            over[0].message.contains("circuit `rack`"),
            "{}",
            over[0].message
        );
        assert!(over[0].message.contains("3900 W"), "{}", over[0].message);
        assert_eq!(over[1].check, Some(CheckKind::Cooling));
        assert_eq!(worst(&findings), Severity::Error);
    }

    #[test]
    fn rounding_never_shows_negative_zero() {
        assert_eq!(format!("{:+.1}", round1(-0.01)), "+0.0");
        assert_eq!(round1(78.125), 78.1);
    }

    #[test]
    fn every_finding_names_its_check() {
        let inv = fixtures::two_a100_hosts(120, 20, None);
        let report = run(&inv, &CheckKind::ALL, None, false);
        assert!(!report.findings.is_empty());
        assert!(report.findings.iter().all(|f| f.check.is_some()));
        assert_eq!(
            report.findings[0].code,
            crate::diagnostic::Code::CircuitLoad
        );
    }

    #[test]
    fn run_reports_only_the_selected_checks() {
        let inv = fixtures::two_a100_hosts(240, 30, None);
        let report = run(&inv, &[CheckKind::Cooling], None, false);
        assert!(report.power.is_none() && report.network.is_none());
        assert!(report.cooling.is_some());
        assert!(report
            .findings
            .iter()
            .all(|f| f.check == Some(CheckKind::Cooling)));
    }
}
