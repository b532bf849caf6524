//! slurmctld's view, parsed: `scontrol -d -o show node` (one line per node: state and
//! reason, `Gres=`, `GresUsed=` or `AllocTRES=` for allocated GPUs by type, CPUs and
//! memory) and `scontrol -d -o show job` (one line per job: user, account, state, run
//! time and limit, allocated or requested `gres/gpu`), as Slurm 22.05 prints them.
//!
//! Both are `Key=Value` words on one line; a value with spaces (`Reason=Not responding
//! [slurm@...]`, `OS=Linux 6.1.0 #1 SMP ...`) continues over the following words that
//! are not themselves `Key=...`.

use serde::Serialize;
use std::collections::BTreeMap;

/// GPUs of one type on a node: how many, how many allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuPool {
    /// The GRES type (`a100-80gb`); `None` for untyped `gpu:N`.
    #[serde(rename = "type")]
    pub gpu_type: Option<String>,
    pub total: u32,
    pub allocated: u32,
}

/// One node as slurmctld reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlurmNode {
    pub name: String,
    /// Slurm's state in lower case, flags included: `idle`, `mixed`, `allocated`,
    /// `down+not_responding`, `idle+drain`, ...
    pub state: String,
    /// The short state: idle, mix, alloc, drain, drng (draining), down, ...
    pub short_state: String,
    pub reason: Option<String>,
    pub cpus_allocated: u32,
    pub cpus_total: u32,
    pub memory_allocated_mib: u64,
    pub memory_total_mib: u64,
    pub gpus: Vec<GpuPool>,
    pub partitions: Vec<String>,
}

/// One running or pending job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub user: String,
    pub account: String,
    /// `RUNNING`, `PENDING`, ...
    pub state: String,
    pub partition: String,
    /// The nodes it runs on (Slurm's host list), empty while pending.
    pub nodes: String,
    /// Why it waits (`Resources`, `Priority`, ...); `None` when running.
    pub reason: Option<String>,
    pub cpus: u32,
    /// GPUs allocated (running) or requested (pending).
    pub gpus: u32,
    /// The GPU type asked for (`a100-80gb`), when one was.
    pub gpu_type: Option<String>,
    pub elapsed_seconds: u64,
    /// `None` when the job has no time limit.
    pub time_limit_seconds: Option<u64>,
    /// Limit minus elapsed; `None` without a limit.
    pub time_left_seconds: Option<u64>,
}

/// The `Key=Value` words of one `scontrol -o` line, in order.
pub fn key_values(line: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for word in line.split_whitespace() {
        match word.split_once('=') {
            Some((k, v)) if is_key(k) => out.push((k.to_string(), v.to_string())),
            _ => {
                if let Some((_, v)) = out.last_mut() {
                    v.push(' ');
                    v.push_str(word);
                }
            }
        }
    }
    out
}

/// A Slurm field name: `NodeName`, `CPUs/Task`, `AllocNode:Sid`, `ReqB:S:C:T`.
fn is_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '/' | '.'))
}

fn map(line: &str) -> BTreeMap<String, String> {
    key_values(line).into_iter().collect()
}

/// A value Slurm prints for "nothing".
fn present(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str)
        .filter(|v| !v.is_empty() && !matches!(*v, "(null)" | "N/A" | "None" | "n/a"))
}

/// Why a Slurm answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `{command}` output: {problem} (line: `{line}`)")]
pub struct ParseError {
    pub command: &'static str,
    pub problem: String,
    pub line: String,
}

/// `scontrol -d -o show node` output: one node per line.
pub fn parse_nodes(text: &str) -> Result<Vec<SlurmNode>, ParseError> {
    let mut nodes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("No nodes in the system") {
            continue;
        }
        let f = map(line);
        let err = |problem: &str| ParseError {
            command: "scontrol show node",
            problem: problem.to_string(),
            line: line.chars().take(120).collect(),
        };
        let name = f.get("NodeName").ok_or_else(|| err("no NodeName"))?.clone();
        let state_raw = f.get("State").ok_or_else(|| err("no State"))?;
        let num = |k: &str| f.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let mut gpus = parse_gres(present(f.get("Gres")).unwrap_or(""));
        match present(f.get("GresUsed")) {
            Some(used) => {
                for u in parse_gres(used) {
                    if let Some(p) = gpus.iter_mut().find(|p| p.gpu_type == u.gpu_type) {
                        p.allocated = u.total;
                    }
                }
            }
            None => {
                let alloc = tres(present(f.get("AllocTRES")).unwrap_or(""));
                for p in &mut gpus {
                    let key = match &p.gpu_type {
                        Some(t) => format!("gres/gpu:{t}"),
                        None => "gres/gpu".to_string(),
                    };
                    p.allocated = alloc.get(&key).copied().unwrap_or(0) as u32;
                }
                // One type, only the untyped count tracked: it is that type's.
                if let ([p], Some(n)) = (gpus.as_mut_slice(), alloc.get("gres/gpu")) {
                    if p.allocated == 0 {
                        p.allocated = *n as u32;
                    }
                }
            }
        }
        let state = state_raw.to_ascii_lowercase();
        nodes.push(SlurmNode {
            short_state: short_state(&state),
            state,
            reason: present(f.get("Reason")).map(String::from),
            cpus_allocated: num("CPUAlloc") as u32,
            cpus_total: num("CPUTot") as u32,
            memory_allocated_mib: num("AllocMem"),
            memory_total_mib: num("RealMemory"),
            gpus,
            partitions: present(f.get("Partitions"))
                .map(|p| p.split(',').map(String::from).collect())
                .unwrap_or_default(),
            name,
        });
    }
    Ok(nodes)
}

/// sinfo's short form of a node state: `MIXED+DRAIN` -> `drng`, `IDLE+DRAIN` ->
/// `drain`, `DOWN+NOT_RESPONDING` -> `down*`, `ALLOCATED` -> `alloc`.
pub fn short_state(state: &str) -> String {
    let mut parts = state.split('+');
    let base = parts.next().unwrap_or("");
    let flags: Vec<&str> = parts.collect();
    let has = |f: &str| flags.contains(&f);
    let busy = matches!(base, "mixed" | "allocated" | "completing");
    let word = if has("drain") {
        if busy {
            "drng"
        } else {
            "drain"
        }
    } else {
        match base {
            "allocated" => "alloc",
            "mixed" => "mix",
            "completing" => "comp",
            "reserved" => "resv",
            other => other,
        }
    };
    let mut s = word.to_string();
    if has("not_responding") {
        s.push('*');
    }
    s
}

/// `gpu:a100:4(S:0-1),gpu:v100:2(IDX:0,2)` or `gpu:2` -> GPU pools (count in
/// `total`); other GRES are left out. Commas inside parentheses do not split.
pub fn parse_gres(text: &str) -> Vec<GpuPool> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    let mut pools: Vec<GpuPool> = Vec::new();
    for item in items {
        let item = item.split('(').next().unwrap_or("").trim();
        let parts: Vec<&str> = item.split(':').collect();
        let (gpu_type, count) = match parts.as_slice() {
            ["gpu", n] => (None, n),
            ["gpu", t, n] => (Some(t.to_string()), n),
            _ => continue,
        };
        let Ok(count) = count.parse::<u32>() else {
            continue;
        };
        match pools.iter_mut().find(|p| p.gpu_type == gpu_type) {
            Some(p) => p.total += count,
            None => pools.push(GpuPool {
                gpu_type,
                total: count,
                allocated: 0,
            }),
        }
    }
    pools
}

/// `cpu=1,mem=464M,node=1,billing=21,gres/gpu=2,gres/gpu:a100=2` -> counts by name
/// (memory and other suffixed values are left out).
pub fn tres(text: &str) -> BTreeMap<String, u64> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| v.parse::<u64>().ok().map(|n| (k.to_string(), n)))
        .collect()
}

/// A Slurm duration: `MM:SS`, `HH:MM:SS`, `D-HH:MM:SS` (as `RunTime` and `TimeLimit`
/// print them); `None` for `UNLIMITED`, `INVALID`, `Partition_Limit` and the like.
pub fn duration(text: &str) -> Option<u64> {
    let (days, rest) = match text.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, text),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [m, s] => m * 60 + s,
        [h, m, s] => h * 3600 + m * 60 + s,
        [h] if days > 0 => h * 3600,
        _ => return None,
    };
    Some(days * 86_400 + secs)
}

/// Seconds as Slurm shows a duration: `41:07`, `3:02:01`, `2-01:00:00`.
pub fn show_duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `alice(1001)` -> `alice`.
fn name_of(id: &str) -> String {
    id.split('(').next().unwrap_or(id).to_string()
}

/// `scontrol -d -o show job` output: the running and pending jobs, in Slurm's order.
pub fn parse_jobs(text: &str) -> Result<Vec<Job>, ParseError> {
    let mut jobs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("No jobs in the system") {
            continue;
        }
        let f = map(line);
        let err = |problem: &str| ParseError {
            command: "scontrol show job",
            problem: problem.to_string(),
            line: line.chars().take(120).collect(),
        };
        let id = f.get("JobId").ok_or_else(|| err("no JobId"))?.clone();
        let state = f.get("JobState").ok_or_else(|| err("no JobState"))?.clone();
        if !matches!(
            state.as_str(),
            "RUNNING" | "PENDING" | "SUSPENDED" | "COMPLETING"
        ) {
            continue;
        }
        let running = state != "PENDING";
        // Allocated TRES while running (22.05 prints `TRES=`; later ones `AllocTRES=`),
        // requested while pending.
        let t = ["AllocTRES", "TRES", "ReqTRES"]
            .iter()
            .find_map(|k| present(f.get(*k)))
            .map(tres)
            .unwrap_or_default();
        let per_node = present(f.get("TresPerNode")).map(|v| {
            // `gres:gpu:a100:2` (22.05) or `gres/gpu:a100:2` (later).
            let v = v.replace("gres/", "gres:");
            parse_gres(&v.replace("gres:", ""))
        });
        let typed = t
            .iter()
            .find_map(|(k, _)| k.strip_prefix("gres/gpu:").map(String::from));
        let gpu_type = typed.or_else(|| {
            per_node
                .as_ref()
                .and_then(|p| p.iter().find_map(|p| p.gpu_type.clone()))
        });
        let num_nodes: u32 = f
            .get("NumNodes")
            .and_then(|n| n.split('-').next()?.parse().ok())
            .unwrap_or(1);
        let gpus = match t.get("gres/gpu") {
            Some(n) => *n as u32,
            None => per_node.map_or(0, |p| p.iter().map(|p| p.total).sum::<u32>() * num_nodes),
        };
        let elapsed = f.get("RunTime").and_then(|v| duration(v)).unwrap_or(0);
        let limit = f.get("TimeLimit").and_then(|v| duration(v));
        jobs.push(Job {
            name: f.get("JobName").cloned().unwrap_or_default(),
            user: f.get("UserId").map(|u| name_of(u)).unwrap_or_default(),
            account: present(f.get("Account")).unwrap_or("").to_string(),
            partition: f.get("Partition").cloned().unwrap_or_default(),
            nodes: if running {
                present(f.get("NodeList")).unwrap_or("").to_string()
            } else {
                String::new()
            },
            reason: if running {
                None
            } else {
                present(f.get("Reason")).map(String::from)
            },
            cpus: f.get("NumCPUs").and_then(|n| n.parse().ok()).unwrap_or(0),
            gpus,
            gpu_type,
            elapsed_seconds: elapsed,
            time_limit_seconds: limit,
            time_left_seconds: limit.map(|l| l.saturating_sub(elapsed)),
            id,
            state,
        });
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_spaces_continue_until_the_next_key() {
        let kv = key_values("NodeName=node1 OS=Linux 6.1.0-28-amd64 #1 SMP Debian 6.1.119-1 (2024-11-22)  RealMemory=1856 Reason=Not responding [slurm@2026-11-30T11:02:03] AllocNode:Sid=head:4242");
        assert_eq!(
            kv,
            [
                ("NodeName".into(), "node1".into()),
                (
                    "OS".into(),
                    "Linux 6.1.0-28-amd64 #1 SMP Debian 6.1.119-1 (2024-11-22)".into()
                ),
                ("RealMemory".into(), "1856".into()),
                (
                    "Reason".into(),
                    "Not responding [slurm@2026-11-30T11:02:03]".into()
                ),
                ("AllocNode:Sid".into(), "head:4242".into()),
            ]
        );
    }

    #[test]
    fn gres_lists_split_outside_parentheses() {
        assert_eq!(
            parse_gres("gpu:a100:4(S:0-1),gpu:v100:2(IDX:0,2),shard:8"),
            [
                GpuPool {
                    gpu_type: Some("a100".into()),
                    total: 4,
                    allocated: 0
                },
                GpuPool {
                    gpu_type: Some("v100".into()),
                    total: 2,
                    allocated: 0
                }
            ]
        );
        assert_eq!(parse_gres("gpu:2")[0].gpu_type, None);
        assert!(parse_gres("(null)").is_empty());
    }

    #[test]
    fn durations_as_slurm_prints_them() {
        assert_eq!(duration("00:41"), Some(41));
        assert_eq!(duration("1:02:03"), Some(3723));
        assert_eq!(duration("2-00:00:00"), Some(172_800));
        assert_eq!(duration("UNLIMITED"), None);
        assert_eq!(duration("Partition_Limit"), None);
        assert_eq!(show_duration(41), "0:41");
        assert_eq!(show_duration(3723), "1:02:03");
        assert_eq!(show_duration(172_800 + 61), "2-00:01:01");
    }

    /// Slurm 22.05 output captured on the VM closet (testdata/README.md): node1 with
    /// alice's `--gres=gpu:a100-80gb:2` job, node2 with bob's CPU job, one CPU each.
    #[test]
    fn scontrol_show_node_of_slurm_22_05() {
        let nodes = parse_nodes(include_str!("testdata/scontrol-show-node.txt")).unwrap();
        assert_eq!(nodes.len(), 2);
        let n1 = &nodes[0];
        assert_eq!(
            (n1.name.as_str(), n1.state.as_str(), n1.short_state.as_str()),
            ("node1", "allocated", "alloc")
        );
        assert_eq!(
            n1.gpus,
            [GpuPool {
                gpu_type: Some("a100-80gb".into()),
                total: 4,
                allocated: 2
            }]
        );
        assert_eq!((n1.cpus_allocated, n1.cpus_total), (1, 1));
        assert_eq!((n1.memory_allocated_mib, n1.memory_total_mib), (896, 896));
        assert_eq!(n1.reason, None);
        assert_eq!(n1.partitions, ["gpu"]);
        assert_eq!(nodes[1].gpus[0].allocated, 0);
        assert_eq!(nodes[1].gpus[0].gpu_type.as_deref(), Some("rtx4090"));
        // Without GresUsed (scontrol without -d), AllocTRES says the same.
        let plain: String = include_str!("testdata/scontrol-show-node.txt")
            .lines()
            .map(|l| {
                let words: Vec<&str> = l
                    .split_whitespace()
                    .filter(|w| !w.starts_with("GresUsed="))
                    .collect();
                words.join(" ") + "\n"
            })
            .collect();
        let n1 = &parse_nodes(&plain).unwrap()[0];
        assert_eq!(n1.gpus[0].allocated, 2);
    }

    #[test]
    fn allocated_gpus_from_alloc_tres_without_gres_used() {
        let line = "NodeName=n1 CPUAlloc=2 CPUTot=8 Gres=gpu:h100:8(S:0-1) RealMemory=1000 AllocMem=10 State=MIXED+DRAIN AllocTRES=cpu=2,mem=10M,gres/gpu=3,gres/gpu:h100=3 Reason=bad fan [root@2026-11-30T10:00:00]";
        let n = &parse_nodes(line).unwrap()[0];
        assert_eq!((n.gpus[0].total, n.gpus[0].allocated), (8, 3));
        assert_eq!(n.short_state, "drng");
        assert_eq!(
            n.reason.as_deref(),
            Some("bad fan [root@2026-11-30T10:00:00]")
        );
        // Only the untyped count tracked: it is the one type's.
        let line = "NodeName=n1 Gres=gpu:h100:8 State=ALLOCATED AllocTRES=cpu=2,gres/gpu=8";
        assert_eq!(parse_nodes(line).unwrap()[0].gpus[0].allocated, 8);
        assert!(parse_nodes("Arch=x86_64 State=IDLE").is_err());
    }

    #[test]
    fn scontrol_show_job_of_slurm_22_05() {
        let jobs = parse_jobs(include_str!("testdata/scontrol-show-job.txt")).unwrap();
        // root's finished job is left out.
        assert_eq!(jobs.len(), 2);
        let a = &jobs[0];
        assert_eq!(
            (
                a.id.as_str(),
                a.user.as_str(),
                a.account.as_str(),
                a.state.as_str(),
                a.nodes.as_str()
            ),
            ("2", "alice", "vision-lab", "RUNNING", "node1")
        );
        assert_eq!(
            (a.gpus, a.gpu_type.as_deref(), a.cpus),
            (2, Some("a100-80gb"), 1)
        );
        assert_eq!((a.elapsed_seconds, a.time_limit_seconds), (1, None));
        let b = &jobs[1];
        assert_eq!(
            (
                b.user.as_str(),
                b.account.as_str(),
                b.gpus,
                b.gpu_type.as_deref()
            ),
            ("bob", "nlp-lab", 0, None)
        );
        assert_eq!(
            (b.time_limit_seconds, b.time_left_seconds),
            (Some(3600), Some(3599))
        );
        assert!(parse_jobs("No jobs in the system\n").unwrap().is_empty());
    }

    #[test]
    fn pending_jobs_count_requested_gpus_and_say_why() {
        let line = "JobId=9 JobName=x UserId=carol(1003) Account=nlp JobState=PENDING Reason=Resources RunTime=00:00:00 TimeLimit=2-00:00:00 NodeList=(null) NumNodes=2 NumCPUs=2 TRES=cpu=2,mem=2G,node=2,billing=2 TresPerNode=gres:gpu:2";
        let j = &parse_jobs(line).unwrap()[0];
        assert_eq!(
            (j.gpus, j.reason.as_deref(), j.nodes.as_str()),
            (4, Some("Resources"), "")
        );
        assert_eq!(j.time_left_seconds, Some(172_800));
        let done = "JobId=8 UserId=carol(1003) JobState=COMPLETED";
        assert!(parse_jobs(done).unwrap().is_empty());
    }

    #[test]
    fn short_states_as_sinfo_shows_them() {
        assert_eq!(short_state("mixed"), "mix");
        assert_eq!(short_state("allocated"), "alloc");
        assert_eq!(short_state("idle+drain"), "drain");
        assert_eq!(short_state("mixed+drain"), "drng");
        assert_eq!(short_state("down+not_responding"), "down*");
        assert_eq!(short_state("idle"), "idle");
    }
}
