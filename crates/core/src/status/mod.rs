//! `closetctl status`, the pure part: the scripts (one round trip to the controller for
//! slurmctld's view, one per compute node for live GPU figures), their answers parsed
//! ([`slurm`], [`gpus`]) and put together into a [`Status`] (nodes with GPUs by type
//! allocated/free, jobs, live draw per circuit against its budget, warnings), rendered
//! as a table or JSON ([`render`]). Everything here only reads: no lock, no root.

pub mod gpus;
pub mod render;
pub mod slurm;

use crate::check::power;
use crate::inventory::{Inventory, Role};
use serde::Serialize;
use std::collections::BTreeMap;

pub use gpus::{LiveGpu, NodeGpus};
pub use slurm::{GpuPool, Job, SlurmNode};

/// The version of the JSON document (docs/status-json.md).
pub const SCHEMA_VERSION: u32 = 1;

/// The first line of every status script.
pub const HEADER: &str = "# closetctl status (read only)\n";

/// Marks the sections of a status script's output.
pub const MARK: &str = "@@closetctl-status";

/// The script for one host: slurmctld's nodes and jobs when it is the controller, its
/// GPUs when it is a compute node (both for a controller that computes). Plain user
/// commands: `scontrol show` and `nvidia-smi` need no privilege.
pub fn script(controller: bool, gpus: bool) -> String {
    let mut s = String::from(HEADER);
    s.push_str("LC_ALL=C; export LC_ALL\n");
    s.push_str(&format!(
        "sec() {{ echo \"{MARK} begin $1\"; }}\nend() {{ echo \"{MARK} end $1 $2\"; }}\n"
    ));
    if controller {
        s.push_str("sec nodes; scontrol -d -o show node 2>&1; end nodes $?\n");
        s.push_str("sec jobs; scontrol -d -o show job 2>&1; end jobs $?\n");
    }
    if gpus {
        s.push_str(&format!(
            "if command -v nvidia-smi >/dev/null 2>&1; then\n  sec gpus; nvidia-smi --query-gpu={} --format=csv,noheader,nounits 2>&1; end gpus $?\n  sec version; nvidia-smi --version 2>&1; end version $?\nelse\n  sec gpus; echo 'nvidia-smi: not found'; end gpus 127\nfi\n",
            gpus::QUERY
        ));
    }
    s
}

/// One section of a script's answer: what the command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub text: String,
    pub exit_code: i32,
}

/// The sections of a status script's output by name; a section whose end is missing
/// (the script was cut off) is left out.
pub fn sections(stdout: &str) -> BTreeMap<String, Section> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(MARK) {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                ["begin", name] => current = Some((name.to_string(), String::new())),
                ["end", name, code] => {
                    if let Some((n, text)) = current.take().filter(|(n, _)| n == name) {
                        out.insert(
                            n,
                            Section {
                                text,
                                exit_code: code.parse().unwrap_or(-1),
                            },
                        );
                    }
                }
                _ => {}
            }
            continue;
        }
        if let Some((_, text)) = &mut current {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// What one host answered: its stdout, or why there is none.
pub type Answer = Result<String, String>;

/// The cluster at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub schema_version: u32,
    pub cluster: String,
    pub controller: String,
    /// When the figures were taken (UTC, RFC 3339).
    pub taken_at: String,
    /// Whether slurmctld answered both questions (nodes and jobs); without it there
    /// are no allocations or jobs to show.
    pub slurmctld_answered: bool,
    pub summary: Summary,
    pub nodes: Vec<NodeStatus>,
    pub jobs: Vec<Job>,
    pub circuits: Vec<CircuitDraw>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub nodes: usize,
    pub gpus_total: u32,
    pub gpus_allocated: u32,
    pub gpus_free: u32,
    pub jobs_running: usize,
    pub jobs_pending: usize,
}

/// GPUs of one type on a node, with the free count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuCount {
    #[serde(rename = "type")]
    pub gpu_type: Option<String>,
    pub total: u32,
    pub allocated: u32,
    pub free: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Used {
    pub allocated: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    pub name: String,
    /// Slurm's state (`mixed`, `idle+drain`, ...); `unknown` when slurmctld did not answer.
    pub state: String,
    /// As sinfo shows it: idle, mix, alloc, drain, drng, down*, ...
    pub short_state: String,
    pub reason: Option<String>,
    pub cpus: Used,
    pub memory_mib: Used,
    pub gpus: Vec<GpuCount>,
    /// Live figures from the node's nvidia-smi; `None` when it did not answer.
    pub live: Option<NodeGpus>,
    /// Why there are no live figures.
    pub live_error: Option<String>,
}

/// A circuit's draw right now: the live GPU draw of its hosts plus their base figure
/// (an estimate, as `check power` counts it), against 80 % of the breaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitDraw {
    pub circuit: String,
    pub hosts: Vec<String>,
    pub gpu_draw_watts: f64,
    pub base_watts: f64,
    pub draw_watts: f64,
    pub limit_watts: f64,
    pub percent: f64,
    /// Hosts with GPUs whose live draw is unknown (not counted in `gpu_draw_watts`).
    pub unknown_hosts: Vec<String>,
}

/// Which hosts a status asks: the controller, and each compute host for its GPUs.
pub fn targets(inventory: &Inventory) -> Vec<(String, bool, bool)> {
    let controller = inventory.slurm.as_ref().map(|s| s.controller.as_str());
    inventory
        .hosts
        .iter()
        .filter_map(|h| {
            let c = Some(h.name.as_str()) == controller;
            let g = h.has_role(Role::Compute);
            (c || g).then(|| (h.name.clone(), c, g))
        })
        .collect()
}

fn failed(section: Option<&Section>, what: &str) -> Option<String> {
    match section {
        None => Some(format!("no `{what}` answer (the script was cut off)")),
        Some(s) if s.exit_code != 0 => Some(format!(
            "`{what}` failed (exit {}): {}",
            s.exit_code,
            s.text.trim().lines().last().unwrap_or("")
        )),
        Some(_) => None,
    }
}

/// Put the answers together. `answers` holds each target host's [`Answer`]; `taken_at`
/// is the UTC time they were asked at.
pub fn assemble(
    inventory: &Inventory,
    answers: &BTreeMap<String, Answer>,
    taken_at: &str,
) -> Status {
    let mut warnings = Vec::new();
    let controller = inventory
        .slurm
        .as_ref()
        .map(|s| s.controller.clone())
        .unwrap_or_default();
    let sections_of: BTreeMap<&str, BTreeMap<String, Section>> = answers
        .iter()
        .filter_map(|(h, a)| a.as_ref().ok().map(|o| (h.as_str(), sections(o))))
        .collect();

    // slurmctld's view.
    let mut slurm_nodes: Option<Vec<SlurmNode>> = None;
    let mut jobs = Vec::new();
    let mut jobs_read = false;
    if controller.is_empty() {
        warnings.push("the inventory has no [slurm] controller: no allocations or jobs".into());
    } else {
        match answers.get(&controller) {
            None => {}
            Some(Err(e)) => warnings.push(format!(
                "controller {controller} did not answer: {e}; no allocations or jobs"
            )),
            Some(Ok(_)) => {
                let secs = &sections_of[controller.as_str()];
                let nodes = secs.get("nodes");
                match failed(nodes, "scontrol show node") {
                    Some(why) => warnings.push(format!("controller {controller}: {why}")),
                    None => match slurm::parse_nodes(&nodes.expect("checked").text) {
                        Ok(n) => slurm_nodes = Some(n),
                        Err(e) => warnings.push(format!("controller {controller}: {e}")),
                    },
                }
                let js = secs.get("jobs");
                match failed(js, "scontrol show job") {
                    Some(why) => warnings.push(format!("controller {controller}: {why}")),
                    None => match slurm::parse_jobs(&js.expect("checked").text) {
                        Ok(j) => {
                            jobs = j;
                            jobs_read = true;
                        }
                        Err(e) => warnings.push(format!("controller {controller}: {e}")),
                    },
                }
            }
        }
    }

    let slurmctld_answered = slurm_nodes.is_some() && jobs_read;
    // Nodes: slurmctld's, else the inventory's compute hosts.
    let compute: Vec<&str> = inventory
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::Compute))
        .map(|h| h.name.as_str())
        .collect();
    let base: Vec<SlurmNode> = slurm_nodes.unwrap_or_else(|| {
        compute
            .iter()
            .map(|n| SlurmNode {
                name: n.to_string(),
                state: "unknown".into(),
                short_state: "unknown".into(),
                reason: None,
                cpus_allocated: 0,
                cpus_total: 0,
                memory_allocated_mib: 0,
                memory_total_mib: 0,
                gpus: Vec::new(),
                partitions: Vec::new(),
            })
            .collect()
    });
    let mut nodes = Vec::new();
    for n in base {
        let (live, live_error) = live_of(&n.name, answers, &sections_of);
        if matches!(
            n.short_state.trim_end_matches('*'),
            "down" | "drain" | "drng" | "fail"
        ) || n.state.contains("not_responding")
        {
            warnings.push(format!(
                "node {} is {}{}",
                n.name,
                n.short_state,
                n.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
        let has_gpus =
            !n.gpus.is_empty() || inventory.host(&n.name).is_some_and(|h| h.gpus.is_some());
        if let Some(e) = &live_error {
            if compute.contains(&n.name.as_str()) && has_gpus {
                warnings.push(format!("node {}: no live GPU figures ({e})", n.name));
            }
        }
        nodes.push(NodeStatus {
            gpus: n
                .gpus
                .iter()
                .map(|p| GpuCount {
                    gpu_type: p.gpu_type.clone(),
                    total: p.total,
                    allocated: p.allocated,
                    free: p.total.saturating_sub(p.allocated),
                })
                .collect(),
            name: n.name,
            state: n.state,
            short_state: n.short_state,
            reason: n.reason,
            cpus: Used {
                allocated: n.cpus_allocated.into(),
                total: n.cpus_total.into(),
            },
            memory_mib: Used {
                allocated: n.memory_allocated_mib,
                total: n.memory_total_mib,
            },
            live,
            live_error,
        });
    }

    // Drivers and CUDA versions that differ between nodes.
    for (what, get) in [
        (
            "NVIDIA driver",
            (|g: &NodeGpus| g.driver.clone()) as fn(&NodeGpus) -> Option<String>,
        ),
        ("CUDA", |g: &NodeGpus| g.cuda.clone()),
    ] {
        let seen: Vec<(String, String)> = nodes
            .iter()
            .filter_map(|n| {
                let v = get(n.live.as_ref().filter(|l| !l.gpus.is_empty())?)?;
                Some((n.name.clone(), v))
            })
            .collect();
        if seen.iter().any(|(_, v)| *v != seen[0].1) {
            let list: Vec<String> = seen.iter().map(|(n, v)| format!("{n} {v}")).collect();
            warnings.push(format!(
                "{what} versions differ between nodes: {} (a job may behave differently per node)",
                list.join(", ")
            ));
        }
    }

    let circuits = circuits(inventory, &nodes);
    for c in &circuits {
        if c.percent >= power::WARN_PERCENT {
            warnings.push(format!(
                "circuit {} draws {:.0} W of {:.0} W usable ({:.0} %)",
                c.circuit, c.draw_watts, c.limit_watts, c.percent
            ));
        }
    }

    let gpus_total = nodes.iter().flat_map(|n| &n.gpus).map(|g| g.total).sum();
    let gpus_allocated = nodes
        .iter()
        .flat_map(|n| &n.gpus)
        .map(|g| g.allocated)
        .sum();
    Status {
        schema_version: SCHEMA_VERSION,
        cluster: inventory.cluster.name.clone(),
        controller,
        taken_at: taken_at.to_string(),
        slurmctld_answered,
        summary: Summary {
            nodes: nodes.len(),
            gpus_total,
            gpus_allocated,
            gpus_free: nodes.iter().flat_map(|n| &n.gpus).map(|g| g.free).sum(),
            jobs_running: jobs.iter().filter(|j| j.state != "PENDING").count(),
            jobs_pending: jobs.iter().filter(|j| j.state == "PENDING").count(),
        },
        nodes,
        jobs,
        circuits,
        warnings,
    }
}

fn live_of(
    name: &str,
    answers: &BTreeMap<String, Answer>,
    sections_of: &BTreeMap<&str, BTreeMap<String, Section>>,
) -> (Option<NodeGpus>, Option<String>) {
    match answers.get(name) {
        None => (None, Some("not asked".into())),
        Some(Err(e)) => (None, Some(e.clone())),
        Some(Ok(_)) => {
            let secs = &sections_of[name];
            let q = secs.get("gpus");
            if let Some(why) = failed(q, "nvidia-smi --query-gpu") {
                return (None, Some(why));
            }
            let version = secs.get("version").map(|s| s.text.as_str()).unwrap_or("");
            (Some(gpus::parse(&q.expect("checked").text, version)), None)
        }
    }
}

/// One decimal, as the JSON documents show watts and percentages.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn circuits(inventory: &Inventory, nodes: &[NodeStatus]) -> Vec<CircuitDraw> {
    inventory
        .circuits
        .iter()
        .map(|c| {
            let hosts: Vec<&crate::inventory::Host> = inventory
                .hosts
                .iter()
                .filter(|h| h.circuit.as_deref() == Some(c.name.as_str()))
                .collect();
            let mut gpu = 0.0;
            let mut base = 0.0;
            let mut unknown = Vec::new();
            for h in &hosts {
                base += power::host_load(h, None).base_watts;
                let live = nodes
                    .iter()
                    .find(|n| n.name == h.name)
                    .and_then(|n| n.live.as_ref());
                match live.and_then(NodeGpus::draw_watts) {
                    Some(w) => gpu += w,
                    None if h.gpus.is_some() => unknown.push(h.name.clone()),
                    None => {}
                }
            }
            let limit = power::usable_watts(c);
            let draw = gpu + base;
            CircuitDraw {
                circuit: c.name.clone(),
                hosts: hosts.iter().map(|h| h.name.clone()).collect(),
                gpu_draw_watts: round1(gpu),
                base_watts: round1(base),
                draw_watts: round1(draw),
                limit_watts: round1(limit),
                percent: if limit > 0.0 {
                    round1(draw / limit * 100.0)
                } else {
                    0.0
                },
                unknown_hosts: unknown,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_with_their_exit_codes_and_a_cut_off_one_left_out() {
        let out = format!("{MARK} begin nodes\nNodeName=a\n{MARK} end nodes 0\n{MARK} begin jobs\nslurm_load_jobs error\n{MARK} end jobs 1\n{MARK} begin gpus\n0, x\n");
        let s = sections(&out);
        assert_eq!(
            s["nodes"],
            Section {
                text: "NodeName=a\n".into(),
                exit_code: 0
            }
        );
        assert_eq!(s["jobs"].exit_code, 1);
        assert!(!s.contains_key("gpus"));
    }

    /// The script runs in a POSIX sh: with no scontrol or nvidia-smi on PATH, every
    /// section says so with exit 127 and nothing else is printed.
    #[test]
    fn the_script_runs_in_sh() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "PATH=/nonexistent; . /dev/stdin <<'EOS'\n{}EOS",
                script(true, true)
            ))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let s = sections(&text);
        assert_eq!(s["nodes"].exit_code, 127, "{text}");
        assert_eq!(s["jobs"].exit_code, 127);
        assert_eq!(
            s["gpus"],
            Section {
                text: "nvidia-smi: not found\n".into(),
                exit_code: 127
            }
        );
        assert!(!script(false, true).contains("scontrol"));
        assert!(!script(true, false).contains("nvidia-smi"));
    }
}
