//! The check report as text (one section per check: its table, then its findings,
//! then a result line) and as JSON (docs/check-json.md). Findings are rendered by
//! [`crate::diagnostic::line`], like every diagnostic.

use super::table::{paint, Table};
use crate::check::{self, power::HostLoad, CheckKind, Report, Severity};
use crate::diagnostic::{self, Form};
use crate::plan::render::Style;
use std::fmt::Write;

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
            .filter(|f| f.check == Some(kind) && f.severity != Severity::Ok)
        {
            let _ = writeln!(out, "{}", diagnostic::line(f, Form::Check, style));
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
    if let Some(u) = &report.users {
        let body = if u.expiring.is_empty() {
            format!(
                "no account expires in the next {} days\n",
                check::users::WINDOW_DAYS
            )
        } else {
            String::new()
        };
        section(&mut out, CheckKind::Users, String::new(), body);
    }
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let verdict = match report.severity {
        Severity::Error => style.red("FAILED"),
        Severity::Warning => style.yellow("ok with warnings"),
        Severity::Ok | Severity::Info => style.green("ok"),
    };
    let _ = writeln!(
        out,
        "\nresult: {verdict} ({}, {})",
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    out
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
                Severity::Ok | Severity::Info => "ok",
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
    let mut out = t.render(style);
    if let Some(names) = &n.node_names {
        let _ = writeln!(
            out,
            "\nnode names on {} (getent ahostsv4, as SkyPilot on Slurm resolves them)",
            names.login_host
        );
        let mut t = Table::new(&[
            ("NODE", false),
            ("ADDRESS", false),
            ("RESOLVES TO", false),
            ("STATUS", false),
        ]);
        for node in &names.nodes {
            t.row(
                vec![
                    node.node.clone(),
                    node.address.clone(),
                    node.resolved.clone().unwrap_or_else(|| "-".into()),
                    node.status.as_str().to_string(),
                ],
                node.severity,
            );
        }
        out.push_str(&t.render(style));
    }
    out
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

    #[test]
    fn live_limits_are_counted_when_equal() {
        assert_eq!(limits_text(&[400.0, 400.0]), "2 x 400");
        assert_eq!(limits_text(&[400.0, 300.0]), "400+300");
        assert_eq!(limits_text(&[]), "-");
    }
}
