//! A [`Status`] as the terminal table (nodes, jobs, live GPUs, power, warnings) and as
//! JSON (docs/status-json.md).

use super::slurm::show_duration;
use super::{GpuCount, Status};

/// Columns padded to their widest cell, two spaces apart; no trailing spaces.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if c + 1 < r.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn gpu_cell(g: &[GpuCount], f: impl Fn(&GpuCount) -> String) -> String {
    if g.is_empty() {
        return "-".into();
    }
    g.iter().map(f).collect::<Vec<_>>().join(" ")
}

fn type_name(t: &Option<String>) -> &str {
    t.as_deref().unwrap_or("gpu")
}

fn watts(w: f64) -> String {
    format!("{w:.0} W")
}

/// The status as the terminal shows it.
pub fn text(s: &Status) -> String {
    let mut out = format!(
        "cluster {} (controller {}) at {}: {} GPUs, {} allocated, {} free; {} running, {} pending\n\n",
        s.cluster,
        if s.controller.is_empty() { "-" } else { &s.controller },
        s.taken_at,
        s.summary.gpus_total,
        s.summary.gpus_allocated,
        s.summary.gpus_free,
        s.summary.jobs_running,
        s.summary.jobs_pending,
    );

    let mut rows = vec![vec![
        "NODE".to_string(),
        "STATE".into(),
        "GPUS ALLOC/TOTAL".into(),
        "FREE".into(),
        "CPUS".into(),
        "MEMORY MIB".into(),
        "REASON".into(),
    ]];
    for n in &s.nodes {
        rows.push(vec![
            n.name.clone(),
            n.short_state.clone(),
            gpu_cell(&n.gpus, |g| {
                format!("{}:{}/{}", type_name(&g.gpu_type), g.allocated, g.total)
            }),
            gpu_cell(&n.gpus, |g| g.free.to_string()),
            format!("{}/{}", n.cpus.allocated, n.cpus.total),
            format!("{}/{}", n.memory_mib.allocated, n.memory_mib.total),
            n.reason.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&table(&rows));

    out.push('\n');
    if s.jobs.is_empty() {
        out.push_str("no running or pending jobs\n");
    } else {
        let mut rows = vec![vec![
            "JOB".to_string(),
            "USER".into(),
            "ACCOUNT".into(),
            "STATE".into(),
            "GPUS".into(),
            "NODES/REASON".into(),
            "ELAPSED".into(),
            "LEFT".into(),
            "NAME".into(),
        ]];
        for j in &s.jobs {
            rows.push(vec![
                j.id.clone(),
                j.user.clone(),
                j.account.clone(),
                j.state.clone(),
                match (j.gpus, &j.gpu_type) {
                    (0, _) => "-".into(),
                    (n, Some(t)) => format!("{t}:{n}"),
                    (n, None) => n.to_string(),
                },
                match &j.reason {
                    Some(r) => format!("({r})"),
                    None => j.nodes.clone(),
                },
                show_duration(j.elapsed_seconds),
                j.time_left_seconds
                    .map_or("unlimited".into(), show_duration),
                j.name.clone(),
            ]);
        }
        out.push_str(&table(&rows));
    }

    let live: Vec<_> = s
        .nodes
        .iter()
        .filter_map(|n| n.live.as_ref().map(|l| (n, l)))
        .filter(|(_, l)| !l.gpus.is_empty())
        .collect();
    if !live.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "GPU".to_string(),
            "MODEL".into(),
            "UTIL".into(),
            "MEMORY MIB".into(),
            "POWER".into(),
            "DRIVER".into(),
            "CUDA".into(),
        ]];
        for (n, l) in &live {
            for g in &l.gpus {
                rows.push(vec![
                    format!("{}/{}", n.name, g.index),
                    g.name.trim_start_matches("NVIDIA ").to_string(),
                    g.utilization_percent
                        .map_or("n/a".into(), |u| format!("{u:.0} %")),
                    match (g.memory_used_mib, g.memory_total_mib) {
                        (Some(u), Some(t)) => format!("{u}/{t}"),
                        _ => "n/a".into(),
                    },
                    match (g.power_draw_watts, g.power_limit_watts) {
                        (Some(d), Some(l)) => format!("{d:.0}/{l:.0} W"),
                        (Some(d), None) => watts(d),
                        _ => "n/a".into(),
                    },
                    l.driver.clone().unwrap_or_else(|| "?".into()),
                    l.cuda.clone().unwrap_or_else(|| "?".into()),
                ]);
            }
        }
        out.push_str(&table(&rows));
    }

    if !s.circuits.is_empty() {
        out.push('\n');
        for c in &s.circuits {
            out.push_str(&format!(
                "circuit {}: {} of {} usable ({:.0} %): GPUs {} live + base {} ({})",
                c.circuit,
                watts(c.draw_watts),
                watts(c.limit_watts),
                c.percent,
                watts(c.gpu_draw_watts),
                watts(c.base_watts),
                c.hosts.join(", ")
            ));
            if !c.unknown_hosts.is_empty() {
                out.push_str(&format!(
                    "; no live draw from {}",
                    c.unknown_hosts.join(", ")
                ));
            }
            out.push('\n');
        }
    }

    if !s.warnings.is_empty() {
        out.push('\n');
        for w in &s.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
    }
    out
}

/// The status as pretty JSON (docs/status-json.md).
pub fn json(s: &Status) -> String {
    serde_json::to_string_pretty(s).expect("a status serializes")
}

/// The status as one line of JSON (`--watch --json`: one document per refresh).
pub fn json_line(s: &Status) -> String {
    serde_json::to_string(s).expect("a status serializes")
}
