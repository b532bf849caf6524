//! `check power`: will the breakers hold? Worst-case load per `[[power.circuit]]`
//! against the circuit's usable continuous capacity.
//!
//! **Usable capacity** (NEC 210.19(A)/210.20(A): a continuous load, three hours or
//! more, may use at most 80 % of the breaker rating; a training run is continuous):
//! - single phase (`phase` absent or 1): `volts × amps × 0.8`,
//!   e.g. 120 V / 20 A → 1,920 W, 240 V / 30 A → 5,760 W;
//! - three phase (`phase = 3`, `volts` line to line): `volts × amps × √3 × 0.8`,
//!   e.g. 208 V / 30 A → 8,646.4 W.
//!
//! **Worst-case load of a host** (the rule, in order):
//! 1. `psu_watts` without `base_watts`: the PSU rating is the host's whole worst-case
//!    draw (GPU figures are not added; a supply cannot deliver more than its rating).
//! 2. Otherwise GPUs + base, where GPUs are `count ×` the model's maximum board power
//!    from [`crate::gpu::MODELS`] and base (CPUs, board, fans, drives) is `base_watts`
//!    when given, else [`DEFAULT_GPU_HOST_BASE_WATTS`] (350 W) for a host with GPUs and
//!    [`DEFAULT_HOST_BASE_WATTS`] (250 W) for one without. When `psu_watts` is given
//!    too and GPUs + base exceed it, that is a warning (the supply is undersized), and
//!    the larger GPUs + base figure is still the one budgeted.
//! 3. With live facts (`--live`), each GPU's enforced power limit (`nvidia-smi`'s
//!    `power.limit`, lowered with `nvidia-smi -pl`) replaces the table figure for that
//!    GPU; a GPU that reports no limit keeps the table figure. The current GPU draw is
//!    shown beside it, for information only: the budget is the worst case.
//!
//! **Verdict** per circuit: `ok` below 90 % of usable capacity, `warn` from 90 %, `over`
//! above 100 % (an error: the breaker will trip under full load). A host with no
//! `circuit` is a warning: its load is not budgeted anywhere.

use super::{round1, CheckKind, Severity};
use crate::diagnostic::{Code, Diagnostic};
use crate::facts::{ClusterFacts, HostFacts};
use crate::gpu;
use crate::inventory::{Circuit, Host, Inventory};
use serde::Serialize;

/// NEC continuous-load factor: at most 80 % of the breaker rating.
pub const CONTINUOUS_LOAD_FACTOR: f64 = 0.8;
/// Base draw (CPUs, board, fans, drives) of a host with GPUs, unless `base_watts` says.
pub const DEFAULT_GPU_HOST_BASE_WATTS: u32 = 350;
/// Base draw of a host without GPUs, unless `base_watts` says.
pub const DEFAULT_HOST_BASE_WATTS: u32 = 250;
/// From this share of the usable capacity a circuit is a warning.
pub const WARN_PERCENT: f64 = 90.0;

/// Usable continuous watts of a circuit (see the module docs for the formula).
pub fn usable_watts(circuit: &Circuit) -> f64 {
    let va = f64::from(circuit.volts) * f64::from(circuit.amps);
    let phase_factor = if circuit.phase == Some(3) {
        3f64.sqrt()
    } else {
        1.0
    };
    va * phase_factor * CONTINUOUS_LOAD_FACTOR
}

/// Where a host's figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadBasis {
    /// GPU table figures plus base.
    Table,
    /// Live GPU power limits (at least one GPU reported one) plus base.
    Live,
    /// The host's PSU rating (`psu_watts` without `base_watts`).
    Psu,
}

impl LoadBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBasis::Table => "table",
            LoadBasis::Live => "live",
            LoadBasis::Psu => "psu",
        }
    }
}

/// One host's worst-case load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostLoad {
    pub host: String,
    pub circuit: Option<String>,
    /// Inventory GPU model key (`None` without GPUs).
    pub gpu_model: Option<String>,
    /// GPUs counted: the inventory's count, or the GPUs the host reported when live.
    pub gpu_count: u32,
    /// Watts of all GPUs together (table or live limits).
    pub gpu_watts: f64,
    /// Watts of everything else (0 when the PSU rating is the whole figure).
    pub base_watts: f64,
    /// The host's worst-case draw: what is budgeted on its circuit.
    pub load_watts: f64,
    pub basis: LoadBasis,
    /// Enforced per-GPU power limits the host reported (live only).
    pub live_limits_watts: Vec<f64>,
    /// Current GPU draw the host reported (live only, when any GPU reports it).
    pub draw_watts: Option<f64>,
    /// Problems with this host's figure, each a warning.
    pub notes: Vec<String>,
}

/// Verdict on one circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Over,
}

impl Verdict {
    /// As printed in the table (`OVER` in capitals, to be seen without colour).
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Over => "OVER",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Verdict::Ok => Severity::Ok,
            Verdict::Warn => Severity::Warning,
            Verdict::Over => Severity::Error,
        }
    }

    /// The verdict for `percent` of usable capacity.
    pub fn for_percent(percent: f64) -> Verdict {
        if percent > 100.0 {
            Verdict::Over
        } else if percent >= WARN_PERCENT {
            Verdict::Warn
        } else {
            Verdict::Ok
        }
    }
}

/// One circuit's budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitLoad {
    pub circuit: String,
    pub volts: u32,
    pub amps: u32,
    /// 1 or 3.
    pub phase: u8,
    /// Hosts on the circuit, in inventory order.
    pub hosts: Vec<String>,
    pub load_watts: f64,
    /// Usable continuous watts (80 % rule).
    pub limit_watts: f64,
    /// `limit - load`; negative when over.
    pub headroom_watts: f64,
    /// `load / limit × 100`, one decimal.
    pub percent: f64,
    pub verdict: Verdict,
    /// Current GPU draw of the circuit's hosts (live only).
    pub draw_watts: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerReport {
    /// Whether live GPU power limits were used.
    pub live: bool,
    pub circuits: Vec<CircuitLoad>,
    /// Every host, in inventory order (also those without a circuit).
    pub hosts: Vec<HostLoad>,
}

/// The power check. With `live`, figures use the facts of the hosts that answered;
/// an unreachable host keeps its table figure (noted as a warning).
pub fn check(inventory: &Inventory, live: Option<&ClusterFacts>) -> PowerReport {
    let hosts: Vec<HostLoad> = inventory
        .hosts
        .iter()
        .map(|h| {
            let facts = live.and_then(|f| f.host(&h.name));
            let mut load = host_load(h, facts);
            if let Some(f) = live {
                if facts.is_none() {
                    let why = f
                        .unreachable
                        .get(&h.name)
                        .map(String::as_str)
                        .unwrap_or("no facts");
                    load.notes
                        .push(format!("no live figures ({why}): table figures used"));
                }
            }
            load
        })
        .collect();
    let circuits = inventory
        .circuits
        .iter()
        .map(|c| {
            let on: Vec<&HostLoad> = hosts
                .iter()
                .filter(|h| h.circuit.as_deref() == Some(c.name.as_str()))
                .collect();
            let load: f64 = on.iter().map(|h| h.load_watts).sum();
            let limit = usable_watts(c);
            let percent = load / limit * 100.0;
            let draws: Vec<f64> = on.iter().filter_map(|h| h.draw_watts).collect();
            CircuitLoad {
                circuit: c.name.clone(),
                volts: c.volts,
                amps: c.amps,
                phase: c.phase.unwrap_or(1),
                hosts: on.iter().map(|h| h.host.clone()).collect(),
                load_watts: round1(load),
                limit_watts: round1(limit),
                headroom_watts: round1(limit - load),
                percent: round1(percent),
                verdict: Verdict::for_percent(percent),
                draw_watts: (!draws.is_empty()).then(|| round1(draws.iter().sum())),
            }
        })
        .collect();
    PowerReport {
        live: live.is_some(),
        circuits,
        hosts,
    }
}

/// One host's worst-case load (see the module docs for the rule); `facts` for live
/// GPU power limits.
pub fn host_load(host: &Host, facts: Option<&HostFacts>) -> HostLoad {
    let model = host.gpus.as_ref().and_then(|g| gpu::model_by_key(&g.model));
    let table_per_gpu = model.map_or(0.0, |m| f64::from(m.max_watts));
    let declared = host.gpus.as_ref().map_or(0, |g| g.count);
    let mut notes = Vec::new();
    if let (Some(g), None) = (&host.gpus, model) {
        notes.push(format!(
            "GPU model `{}` is not in the power table: counted as 0 W",
            g.model
        ));
    }

    let live_gpus = facts.map(|f| f.gpus.as_slice()).unwrap_or_default();
    let (gpu_count, gpu_watts, live_limits, draw) = if live_gpus.is_empty() {
        if facts.is_some() && declared > 0 {
            notes.push(format!(
                "reported no GPUs (the inventory says {declared}): table figures used"
            ));
        }
        (
            declared,
            table_per_gpu * f64::from(declared),
            Vec::new(),
            None,
        )
    } else {
        let count = live_gpus.len() as u32;
        if count != declared {
            notes.push(format!("reported {count} GPUs, the inventory says {declared}: the reported GPUs are counted"));
        }
        let per_gpu = |name: &str| {
            gpu::model_by_smi_name(name).map_or(table_per_gpu, |m| f64::from(m.max_watts))
        };
        let watts: f64 = live_gpus
            .iter()
            .map(|g| g.power_limit_watts.unwrap_or_else(|| per_gpu(&g.name)))
            .sum();
        let limits: Vec<f64> = live_gpus
            .iter()
            .filter_map(|g| g.power_limit_watts)
            .collect();
        let draws: Vec<f64> = live_gpus
            .iter()
            .filter_map(|g| g.power_draw_watts)
            .collect();
        (
            count,
            watts,
            limits,
            (!draws.is_empty()).then(|| round1(draws.iter().sum())),
        )
    };

    let default_base = if gpu_count > 0 {
        DEFAULT_GPU_HOST_BASE_WATTS
    } else {
        DEFAULT_HOST_BASE_WATTS
    };
    let (base_watts, load_watts, basis) = match (host.base_watts, host.psu_watts) {
        (None, Some(psu)) => (0.0, f64::from(psu), LoadBasis::Psu),
        (base, psu) => {
            let base = f64::from(base.unwrap_or(default_base));
            let load = base + gpu_watts;
            if let Some(psu) = psu.filter(|p| f64::from(*p) < load) {
                notes.push(format!(
                    "base + GPUs {load:.0} W exceed its {psu} W PSU rating"
                ));
            }
            let basis = if live_limits.is_empty() {
                LoadBasis::Table
            } else {
                LoadBasis::Live
            };
            (base, load, basis)
        }
    };
    HostLoad {
        host: host.name.clone(),
        circuit: host.circuit.clone(),
        gpu_model: host.gpus.as_ref().map(|g| g.model.clone()),
        gpu_count,
        gpu_watts: round1(gpu_watts),
        base_watts: round1(base_watts),
        load_watts: round1(load_watts),
        basis,
        live_limits_watts: live_limits,
        draw_watts: draw,
        notes,
    }
}

impl PowerReport {
    /// One finding per circuit (severity from its verdict), one warning per host
    /// without a circuit, one warning per host note.
    pub fn findings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for c in &self.circuits {
            let hosts = if c.hosts.is_empty() {
                "no hosts".to_string()
            } else {
                c.hosts.join(", ")
            };
            let figures = format!(
                "{:.0} W of {:.0} W usable ({:.1} %)",
                c.load_watts, c.limit_watts, c.percent
            );
            let (message, hint) = match c.verdict {
                Verdict::Ok => (format!("circuit `{}` ({hosts}): {figures}, {:.0} W headroom", c.circuit, c.headroom_watts), None),
                Verdict::Warn => (format!(
                    "circuit `{}` ({hosts}) is near its limit: {figures}, only {:.0} W headroom",
                    c.circuit, c.headroom_watts
                ), None),
                Verdict::Over => (format!(
                    "circuit `{}` ({hosts}) is over budget: {figures}, {:.0} W over",
                    c.circuit, -c.headroom_watts
                ), Some("the breaker will trip under full load (move a host to another circuit or lower GPU power limits with `nvidia-smi -pl`)")),
            };
            let mut d =
                Diagnostic::new(c.verdict.severity(), Code::CircuitLoad, &c.circuit, message)
                    .from_check(CheckKind::Power);
            d.hint = hint.map(String::from);
            out.push(d);
        }
        for h in &self.hosts {
            if h.circuit.is_none() {
                out.push(
                    Diagnostic::warning(
                        Code::NoCircuit,
                        &h.host,
                        format!(
                            "host `{}` has no circuit: its {:.0} W are not budgeted on any breaker",
                            h.host, h.load_watts
                        ),
                    )
                    .from_check(CheckKind::Power)
                    .on(&h.host),
                );
            }
            for n in &h.notes {
                out.push(
                    Diagnostic::warning(
                        Code::PowerFigure,
                        &h.host,
                        format!("host `{}`: {n}", h.host),
                    )
                    .from_check(CheckKind::Power)
                    .on(&h.host),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures;
    use crate::facts::Gpu;

    fn circuit(volts: u32, amps: u32, phase: Option<u8>) -> Circuit {
        Circuit {
            name: "c".into(),
            volts,
            amps,
            phase,
        }
    }

    #[test]
    fn usable_capacity_is_80_percent_of_the_breaker() {
        // 120 V × 15 A × 0.8 = 1,440 W; 120 × 20 × 0.8 = 1,920 W;
        // 208 × 30 × 0.8 = 4,992 W single phase; 240 × 30 × 0.8 = 5,760 W.
        assert_eq!(usable_watts(&circuit(120, 15, None)), 1440.0);
        assert_eq!(usable_watts(&circuit(120, 20, None)), 1920.0);
        assert_eq!(usable_watts(&circuit(208, 30, Some(1))), 4992.0);
        assert_eq!(usable_watts(&circuit(240, 30, None)), 5760.0);
    }

    #[test]
    fn three_phase_multiplies_by_root_three() {
        // 208 V × 30 A × √3 × 0.8 = 6,240 × 1.7320508 × 0.8 = 8,646.4 W.
        let w = usable_watts(&circuit(208, 30, Some(3)));
        assert!((w - 8646.4).abs() < 0.1, "{w}");
        let inv = fixtures::two_a100_hosts(208, 30, Some(3));
        let r = check(&inv, None);
        // 3,900 W / 8,646.4 W = 45.1 %.
        assert_eq!(
            (
                r.circuits[0].limit_watts,
                r.circuits[0].percent,
                r.circuits[0].verdict
            ),
            (8646.4, 45.1, Verdict::Ok)
        );
        assert_eq!(r.circuits[0].phase, 3);
    }

    #[test]
    fn two_a100_nodes_trip_a_120v_20a_circuit() {
        // Each host: 4 × 400 W (A100 SXM4) + 350 W default GPU-host base = 1,950 W.
        // Two hosts: 3,900 W on 120 V × 20 A × 0.8 = 1,920 W usable:
        // headroom 1,920 − 3,900 = −1,980 W, 3,900 / 1,920 = 203.1 % → OVER.
        let inv = fixtures::two_a100_hosts(120, 20, None);
        let r = check(&inv, None);
        assert_eq!(r.hosts[0].load_watts, 1950.0);
        assert_eq!(
            (r.hosts[0].gpu_watts, r.hosts[0].base_watts),
            (1600.0, 350.0)
        );
        let c = &r.circuits[0];
        assert_eq!(c.hosts, vec!["gpu1", "gpu2"]);
        assert_eq!(
            (c.load_watts, c.limit_watts, c.headroom_watts, c.percent),
            (3900.0, 1920.0, -1980.0, 203.1)
        );
        assert_eq!(c.verdict, Verdict::Over);
        let f = r.findings();
        assert_eq!(f[0].severity, Severity::Error);
        assert!(
            f[0].message.contains("circuit `rack`") && f[0].message.contains("1980 W over"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn the_same_nodes_fit_on_240v_30a() {
        // 3,900 W on 240 V × 30 A × 0.8 = 5,760 W: headroom 1,860 W, 67.7 % → ok.
        let r = check(&fixtures::two_a100_hosts(240, 30, None), None);
        let c = &r.circuits[0];
        assert_eq!(
            (c.load_watts, c.limit_watts, c.headroom_watts, c.percent),
            (3900.0, 5760.0, 1860.0, 67.7)
        );
        assert_eq!(c.verdict, Verdict::Ok);
        assert!(r.findings().iter().all(|f| f.severity == Severity::Ok));
    }

    #[test]
    fn ninety_percent_is_a_warning_and_exactly_full_is_not_over() {
        assert_eq!(Verdict::for_percent(89.9), Verdict::Ok);
        assert_eq!(Verdict::for_percent(90.0), Verdict::Warn);
        assert_eq!(Verdict::for_percent(100.0), Verdict::Warn);
        assert_eq!(Verdict::for_percent(100.1), Verdict::Over);
    }

    fn host_inventory(extra: &str) -> Inventory {
        fixtures::inventory(&format!(
            r#"
[[host]]
name = "n"
address = "10.0.0.1"
roles = ["compute"]
{extra}
"#
        ))
    }

    #[test]
    fn base_and_psu_rules() {
        // No GPUs, no figures: the 250 W default base.
        let h = &host_inventory("").hosts[0];
        assert_eq!(
            (host_load(h, None).load_watts, host_load(h, None).basis),
            (250.0, LoadBasis::Table)
        );
        // base_watts overrides the default: 2 × 450 W (RTX 4090) + 500 W = 1,400 W.
        let h = &host_inventory("gpus = { model = \"rtx-4090\", count = 2 }\nbase_watts = 500")
            .hosts[0];
        assert_eq!(host_load(h, None).load_watts, 1400.0);
        // psu_watts alone is the whole figure: 1,600 W, GPUs not added.
        let h = &host_inventory("gpus = { model = \"rtx-4090\", count = 2 }\npsu_watts = 1600")
            .hosts[0];
        let l = host_load(h, None);
        assert_eq!(
            (l.load_watts, l.base_watts, l.basis),
            (1600.0, 0.0, LoadBasis::Psu)
        );
        // Both: base + GPUs is budgeted, a PSU below it is a warning:
        // 4 × 450 W + 350 W = 2,150 W > 1,600 W.
        let h = &host_inventory(
            "gpus = { model = \"rtx-4090\", count = 4 }\nbase_watts = 350\npsu_watts = 1600",
        )
        .hosts[0];
        let l = host_load(h, None);
        assert_eq!(l.load_watts, 2150.0);
        assert_eq!(
            l.notes,
            vec!["base + GPUs 2150 W exceed its 1600 W PSU rating"]
        );
    }

    #[test]
    fn a_host_without_a_circuit_is_a_warning() {
        let inv = host_inventory("gpus = { model = \"l40s\", count = 2 }");
        let f = check(&inv, None).findings();
        // 2 × 350 W + 350 W = 1,050 W.
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(
            f[0].message,
            "host `n` has no circuit: its 1050 W are not budgeted on any breaker"
        );
    }

    fn gpu(index: u32, name: &str, limit: Option<f64>, draw: Option<f64>) -> Gpu {
        Gpu {
            index,
            name: name.into(),
            memory_mib: Some(81920),
            power_limit_watts: limit,
            power_draw_watts: draw,
        }
    }

    #[test]
    fn live_power_limits_replace_the_table_figures() {
        // gpu1's four A100s are capped at 300 W each (nvidia-smi -pl 300); one reports
        // no limit and keeps the table's 400 W: 3 × 300 + 400 + 350 base = 1,650 W.
        // gpu2 is unreachable: table figure 1,950 W. Circuit: 3,600 W of 5,760 W = 62.5 %.
        let inv = fixtures::two_a100_hosts(240, 30, None);
        let mut facts = ClusterFacts::default();
        let a100 = "NVIDIA A100-SXM4-80GB";
        facts.hosts.insert(
            "gpu1".into(),
            HostFacts {
                gpus: vec![
                    gpu(0, a100, Some(300.0), Some(61.5)),
                    gpu(1, a100, Some(300.0), Some(60.0)),
                    gpu(2, a100, Some(300.0), None),
                    gpu(3, a100, None, None),
                ],
                ..HostFacts::default()
            },
        );
        facts
            .unreachable
            .insert("gpu2".into(), "connection timed out".into());
        let r = check(&inv, Some(&facts));
        assert!(r.live);
        let g1 = &r.hosts[0];
        assert_eq!(
            (g1.gpu_watts, g1.load_watts, g1.basis),
            (1300.0, 1650.0, LoadBasis::Live)
        );
        assert_eq!(g1.live_limits_watts, vec![300.0, 300.0, 300.0]);
        assert_eq!(g1.draw_watts, Some(121.5));
        assert_eq!(
            (r.hosts[1].load_watts, r.hosts[1].basis),
            (1950.0, LoadBasis::Table)
        );
        assert_eq!(r.circuits[0].load_watts, 3600.0);
        assert_eq!(r.circuits[0].percent, 62.5);
        assert_eq!(r.circuits[0].draw_watts, Some(121.5));
        let f = r.findings();
        assert!(f.iter().any(|f| f.severity == Severity::Warning
            && f.message
                == "host `gpu2`: no live figures (connection timed out): table figures used"));
    }
}
