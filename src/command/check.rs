//! `closetctl check [power|cooling|network|clock|uids|all]`: preflight checks of the
//! closet itself (breakers, cooling, links, clocks, account IDs) before and after apply.
//!
//! Power and cooling need only the inventory; network, clock and uids (and `--live`)
//! gather facts with one probe per host. `--offline` runs only what needs no host.
//! Exit 0 when nothing is an error (warnings allowed), 1 otherwise. The logic lives in
//! [`crate::check`]; this file parses flags, gathers facts when needed and prints.

use super::{CliError, InventoryArgs};
use crate::check::{self, power::HostLoad, CheckKind, Finding, Report, Severity};
use crate::engine;
use crate::facts::probe::ProbeRequest;
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use crate::plan::render::Style;
use crate::transport::Connector;
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Which check to run.
    #[arg(value_enum, default_value_t = Which::All)]
    pub which: Which,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Contact the hosts for power and cooling: the GPUs' enforced power limits
    /// (nvidia-smi power.limit) replace the table figures; the current draw is shown.
    #[arg(long)]
    pub live: bool,
    /// Print the report as JSON (schema in docs/check-json.md).
    #[arg(long)]
    pub json: bool,
    /// Never contact a host: run only power and cooling (with `all`).
    #[arg(long, conflicts_with = "live")]
    pub offline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// Worst-case load per circuit against 80 % of the breaker.
    Power,
    /// Heat of all hosts against the `[cooling]` capacity.
    Cooling,
    /// Link speed of each host's cluster interface (contacts the hosts).
    Network,
    /// Clock skew between the hosts against MUNGE's TTL (contacts the hosts).
    Clock,
    /// Inventory users and groups on every host (contacts the hosts).
    Uids,
    /// All of them.
    All,
}

impl Which {
    /// The checks to run, in order.
    pub fn checks(self, offline: bool) -> Vec<CheckKind> {
        let all = CheckKind::ALL.to_vec();
        match self {
            Which::Power => vec![CheckKind::Power],
            Which::Cooling => vec![CheckKind::Cooling],
            Which::Network => vec![CheckKind::Network],
            Which::Clock => vec![CheckKind::Clock],
            Which::Uids => vec![CheckKind::Uids],
            Which::All if offline => all.into_iter().filter(|k| !k.needs_facts()).collect(),
            Which::All => all,
        }
    }
}

pub async fn run(args: CheckArgs) -> Result<i32, CliError> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let checks = args.which.checks(args.offline);
    if args.offline {
        if let Some(k) = checks.iter().find(|k| k.needs_facts()) {
            return Err(CliError::Refused(format!(
                "`check {}` needs facts from the hosts; it cannot run with --offline",
                k.as_str()
            )));
        }
    }
    let needs_facts = args.live || checks.iter().any(|k| k.needs_facts());
    let report = if needs_facts {
        match super::ssh_connector(&inventory) {
            Ok(connector) => check_with(connector, &inventory, &checks, args.live).await,
            Err(e) => {
                // Still run the offline checks: every host counts as unreachable.
                let facts = ClusterFacts {
                    hosts: BTreeMap::new(),
                    unreachable: inventory
                        .hosts
                        .iter()
                        .map(|h| (h.name.clone(), e.to_string()))
                        .collect(),
                };
                check::run(&inventory, &checks, Some(&facts), args.live)
            }
        }
    } else {
        check::run(&inventory, &checks, None, false)
    };
    if args.json {
        println!("{}", json(&report));
    } else {
        print!(
            "{}",
            text(
                &report,
                Style {
                    color: super::use_color()
                }
            )
        );
    }
    Ok(exit_code(&report))
}

/// Gather facts from every host (one probe each, all at once) and run the checks.
pub async fn check_with<C: Connector + 'static>(
    connector: Arc<C>,
    inventory: &Inventory,
    checks: &[CheckKind],
    live: bool,
) -> Report {
    let facts = gather(connector, inventory).await;
    check::run(inventory, checks, Some(&facts), live)
}

/// The facts the checks read (accounts, GPUs, time, link) come with every probe; no
/// packages, units or files are asked for and no lock is taken.
pub async fn gather<C: Connector + 'static>(
    connector: Arc<C>,
    inventory: &Inventory,
) -> ClusterFacts {
    let requests = inventory
        .hosts
        .iter()
        .map(|h| (h.name.clone(), ProbeRequest::everything()))
        .collect();
    let (_, facts) = engine::gather(connector, &inventory.hosts, requests, None).await;
    facts
}

/// 1 when any finding is an error, else 0.
pub fn exit_code(report: &Report) -> i32 {
    i32::from(report.severity == Severity::Error)
}

/// The report as pretty JSON (docs/check-json.md).
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("the check report serializes")
}

/// The report as text: one section per check with its table, then its warnings and
/// errors, then a result line. Readable without colour (verdicts are words).
pub fn text(report: &Report, style: Style) -> String {
    let mut out = String::new();
    let section = |out: &mut String, kind: CheckKind, title: String, body: String| {
        if !out.is_empty() {
            out.push('\n');
        }
        let heading = format!("== {} {title}", kind.as_str());
        let _ = writeln!(out, "{}", style.bold(heading.trim_end()));
        out.push_str(&body);
        for f in report
            .findings
            .iter()
            .filter(|f| f.check == kind && f.severity != Severity::Ok)
        {
            let _ = writeln!(out, "{}", finding_line(f, style));
        }
    };
    if let Some(p) = &report.power {
        let title = if p.live {
            "(live: enforced GPU power limits where reported)".to_string()
        } else {
            "(table figures; --live reads the GPUs' enforced limits)".to_string()
        };
        section(&mut out, CheckKind::Power, title, power_text(p, style));
    }
    if let Some(c) = &report.cooling {
        section(
            &mut out,
            CheckKind::Cooling,
            String::new(),
            cooling_text(c, style),
        );
    }
    if let Some(n) = &report.network {
        section(
            &mut out,
            CheckKind::Network,
            String::new(),
            network_text(n, style),
        );
    }
    if let Some(c) = &report.clock {
        section(
            &mut out,
            CheckKind::Clock,
            String::new(),
            clock_text(c, style),
        );
    }
    if let Some(u) = &report.uids {
        section(
            &mut out,
            CheckKind::Uids,
            String::new(),
            uids_text(u, style),
        );
    }
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let verdict = match report.severity {
        Severity::Error => style.red("FAILED"),
        Severity::Warning => style.yellow("ok with warnings"),
        Severity::Ok => style.green("ok"),
    };
    let _ = writeln!(
        out,
        "\nresult: {verdict} ({}, {})",
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    out
}

fn finding_line(f: &Finding, style: Style) -> String {
    match f.severity {
        Severity::Error => format!("{} {}", style.red("error:"), f.message),
        Severity::Warning => format!("{} {}", style.yellow("warning:"), f.message),
        Severity::Ok => format!("ok: {}", f.message),
    }
}

fn paint(style: Style, severity: Severity, s: &str) -> String {
    match severity {
        Severity::Ok => style.green(s),
        Severity::Warning => style.yellow(s),
        Severity::Error => style.red(s),
    }
}

/// A plain text table: columns padded to their widest cell, numbers right-aligned, the
/// last column (the verdict) coloured by the row's severity after padding.
struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<(Vec<String>, Severity)>,
}

impl Table {
    fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            header: columns.iter().map(|c| c.0).collect(),
            right: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>, severity: Severity) {
        self.rows.push((cells, severity));
    }

    fn render(&self, style: Style) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let pad = |i: usize, s: &str| {
            let fill = " ".repeat(widths[i].saturating_sub(s.chars().count()));
            if self.right[i] {
                format!("{fill}{s}")
            } else if i + 1 == n {
                s.to_string()
            } else {
                format!("{s}{fill}")
            }
        };
        let mut out = String::new();
        let header: Vec<String> = self
            .header
            .iter()
            .enumerate()
            .map(|(i, h)| pad(i, h))
            .collect();
        let _ = writeln!(out, "{}", header.join("  ").trim_end());
        for (cells, severity) in &self.rows {
            let line: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == n {
                        paint(style, *severity, &pad(i, c))
                    } else {
                        pad(i, c)
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
        out
    }
}

fn watts(w: f64) -> String {
    format!("{w:.0}")
}

fn power_text(p: &check::power::PowerReport, style: Style) -> String {
    let mut columns = vec![
        ("CIRCUIT", false),
        ("HOSTS", false),
        ("LOAD W", true),
        ("LIMIT W", true),
        ("HEADROOM W", true),
        ("PERCENT", true),
    ];
    if p.live {
        columns.push(("GPU DRAW W", true));
    }
    columns.push(("VERDICT", false));
    let mut t = Table::new(&columns);
    for c in &p.circuits {
        let mut cells = vec![
            c.circuit.clone(),
            if c.hosts.is_empty() {
                "-".to_string()
            } else {
                c.hosts.join(", ")
            },
            watts(c.load_watts),
            watts(c.limit_watts),
            watts(c.headroom_watts),
            format!("{:.1} %", c.percent),
        ];
        if p.live {
            cells.push(c.draw_watts.map_or("-".to_string(), watts));
        }
        cells.push(c.verdict.label().to_string());
        t.row(cells, c.verdict.severity());
    }
    let mut out = if p.circuits.is_empty() {
        "no [[power.circuit]] in the inventory\n".to_string()
    } else {
        t.render(style)
    };
    let mut columns = vec![
        ("HOST", false),
        ("CIRCUIT", false),
        ("GPUS", false),
        ("GPU W", true),
        ("BASE W", true),
        ("LOAD W", true),
    ];
    if p.live {
        columns.push(("LIVE LIMITS W", false));
        columns.push(("GPU DRAW W", true));
    }
    columns.push(("BASIS", false));
    let mut t = Table::new(&columns);
    for h in &p.hosts {
        t.row(host_cells(h, p.live), Severity::Ok);
    }
    out.push('\n');
    out.push_str(&t.render(Style::plain()));
    out
}

fn host_cells(h: &HostLoad, live: bool) -> Vec<String> {
    let gpus = match (&h.gpu_model, h.gpu_count) {
        (_, 0) => "-".to_string(),
        (Some(m), n) => format!("{n} x {m}"),
        (None, n) => format!("{n} x ?"),
    };
    let mut cells = vec![
        h.host.clone(),
        h.circuit.clone().unwrap_or_else(|| "-".to_string()),
        gpus,
        watts(h.gpu_watts),
        watts(h.base_watts),
        watts(h.load_watts),
    ];
    if live {
        cells.push(limits_text(&h.live_limits_watts));
        cells.push(h.draw_watts.map_or("-".to_string(), watts));
    }
    cells.push(h.basis.as_str().to_string());
    cells
}

/// `4 x 400` when all limits are equal, else `400+300`; `-` when none.
fn limits_text(limits: &[f64]) -> String {
    match limits {
        [] => "-".to_string(),
        [first, rest @ ..] if rest.iter().all(|l| l == first) => {
            format!("{} x {}", limits.len(), watts(*first))
        }
        _ => limits
            .iter()
            .map(|l| watts(*l))
            .collect::<Vec<_>>()
            .join("+"),
    }
}

fn cooling_text(c: &check::cooling::CoolingReport, style: Style) -> String {
    let mut out = format!(
        "heat      {} W = {:.0} BTU/h = {:.2} tons\n",
        watts(c.heat_watts),
        c.heat_btu_per_hour,
        c.heat_tons
    );
    match (c.capacity_btu_per_hour, c.capacity_tons, c.percent) {
        (Some(b), Some(t), Some(p)) => {
            let verdict = match c.severity {
                Severity::Error => "OVER",
                Severity::Warning => "warn",
                Severity::Ok => "ok",
            };
            let _ = writeln!(
                out,
                "capacity  {b:.0} BTU/h = {t:.2} tons, {p:.1} % used  {}",
                paint(style, c.severity, verdict)
            );
        }
        _ => out.push_str("capacity  unknown (no [cooling] in the inventory)\n"),
    }
    let _ = writeln!(
        out,
        "advisory  one ton per two high-end GPU nodes (4+ GPUs or 1500+ W): {} high-end{} -> {:.1} tons",
        c.high_end_hosts.len(),
        if c.high_end_hosts.is_empty() { String::new() } else { format!(" ({})", c.high_end_hosts.join(", ")) },
        c.advisory_tons
    );
    out
}

fn network_text(n: &check::network::NetworkReport, style: Style) -> String {
    let mut t = Table::new(&[
        ("HOST", false),
        ("INTERFACE", false),
        ("ADDRESS", false),
        ("SPEED", true),
        ("STATUS", false),
    ]);
    for h in &n.hosts {
        t.row(
            vec![
                h.host.clone(),
                h.interface.clone().unwrap_or_else(|| "-".into()),
                h.address.clone().unwrap_or_else(|| "-".into()),
                h.speed_mbps
                    .map_or("unknown".to_string(), |s| format!("{s} Mb/s")),
                h.status.as_str().to_string(),
            ],
            h.severity,
        );
    }
    t.render(style)
}

fn clock_text(c: &check::clock::ClockReport, style: Style) -> String {
    let mut t = Table::new(&[
        ("HOST", false),
        ("VS THIS MACHINE", true),
        ("VS CLUSTER", true),
        ("NTP", false),
        ("STATUS", false),
    ]);
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:+.1} s"));
    for h in &c.hosts {
        let status = if h.error.is_some() {
            "unreachable"
        } else {
            h.severity.as_str()
        };
        t.row(
            vec![
                h.host.clone(),
                secs(h.offset_seconds),
                secs(h.deviation_seconds),
                h.ntp_synchronized.to_string(),
                status.to_string(),
            ],
            h.severity,
        );
    }
    let mut out = t.render(style);
    if let Some(p) = &c.max_pairwise {
        let _ = writeln!(
            out,
            "max pairwise skew {:.1} s ({} ahead of {}), MUNGE TTL {:.0} s  {}",
            p.seconds,
            p.ahead,
            p.behind,
            check::clock::MUNGE_TTL_SECONDS,
            paint(style, p.severity, p.severity.as_str())
        );
    }
    out
}

fn uids_text(u: &check::uids::UidsReport, style: Style) -> String {
    let mut t = Table::new(&[
        ("HOST", false),
        ("KIND", false),
        ("NAME", false),
        ("ID", true),
        ("ON HOST", false),
        ("STATUS", false),
    ]);
    for a in &u.accounts {
        let on_host = match (&a.host_id, &a.held_by) {
            (Some(id), _) => format!("{} has {id}", a.name),
            (None, Some(holder)) => format!("held by {holder}"),
            (None, None) => "-".to_string(),
        };
        t.row(
            vec![
                a.host.clone(),
                a.kind.as_str().into(),
                a.name.clone(),
                a.id.to_string(),
                on_host,
                a.status.as_str().into(),
            ],
            a.severity,
        );
    }
    for h in &u.unreachable {
        t.row(
            vec![
                h.host.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "unreachable".into(),
            ],
            Severity::Error,
        );
    }
    t.render(style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Gpu, PasswdEntry};
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
        let errors: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors
            .iter()
            .any(|f| f.check == CheckKind::Clock && f.subject == "cluster"));
        assert!(errors.iter().any(|f| f.check == CheckKind::Uids
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

    #[test]
    fn offline_all_runs_only_power_and_cooling() {
        assert_eq!(
            Which::All.checks(true),
            vec![CheckKind::Power, CheckKind::Cooling]
        );
        assert_eq!(Which::All.checks(false).len(), 5);
        assert_eq!(limits_text(&[400.0, 400.0]), "2 x 400");
        assert_eq!(limits_text(&[400.0, 300.0]), "400+300");
    }
}
