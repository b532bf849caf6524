//! The status script ([`closetctl_core::status::script`]) on a fake host, answered as
//! Slurm 22.05 and nvidia-smi print: `scontrol -d -o show node` from slurmctld's nodes
//! ([`super::slurm::nodes`]) with the CPUs, memory and GPUs the controller's
//! [`FakeJob`]s hold; `scontrol -d -o show job` from those jobs; `nvidia-smi
//! --query-gpu` and `--version` from the host's GPUs. Without a running slurmctld,
//! `scontrol` fails as the real one does.

use super::slurm::{nodes, NodeView};
use super::state::{FakeJob, FakeState};
use closetctl_core::status::{gpus::QUERY, MARK};
use closetctl_exec::transport::RemoteOutput;
use std::collections::BTreeMap;
use std::fmt::Write;

fn section(out: &mut String, name: &str, text: &str, code: i32) {
    let _ = writeln!(out, "{MARK} begin {name}");
    out.push_str(text);
    let _ = writeln!(out, "{MARK} end {name} {code}");
}

pub(crate) fn answer(
    s: &FakeState,
    hosts: &BTreeMap<String, NodeView>,
    script: &str,
) -> RemoteOutput {
    let mut out = String::new();
    if script.contains("scontrol -d -o show node") {
        let up = s.active("slurmctld.service");
        let fail = |what: &str| {
            format!(
                "slurm_load_{what} error: Unable to contact slurm controller (connect failure)\n"
            )
        };
        if up {
            section(&mut out, "nodes", &show_nodes(s, hosts), 0);
            section(&mut out, "jobs", &show_jobs(&s.slurm_jobs), 0);
        } else {
            section(&mut out, "nodes", &fail("node"), 1);
            section(&mut out, "jobs", &fail("jobs"), 1);
        }
    }
    if script.contains("nvidia-smi --query-gpu=") {
        if s.gpus.is_empty() {
            section(&mut out, "gpus", "nvidia-smi: not found\n", 127);
        } else {
            assert!(
                script.contains(QUERY),
                "the fake answers the status query only"
            );
            let mut csv = String::new();
            for g in &s.gpus {
                let _ = writeln!(
                    csv,
                    "{}, {}, {}, {}, {}, {:.2}, {:.2}, {}",
                    g.index,
                    g.name,
                    s.gpu_utilization.get(&g.index).copied().unwrap_or(0),
                    if s.gpu_utilization.get(&g.index).copied().unwrap_or(0) > 0 {
                        40_000
                    } else {
                        0
                    },
                    g.memory_mib.unwrap_or(0),
                    g.power_draw_watts.unwrap_or(0.0),
                    g.power_limit_watts.unwrap_or(0.0),
                    s.nvidia_driver
                );
            }
            section(&mut out, "gpus", &csv, 0);
            section(
                &mut out,
                "version",
                &format!(
                    "NVIDIA-SMI version  : {d}\nNVML version        : {m}\nDRIVER version      : {d}\nCUDA Version        : {c}\n",
                    d = s.nvidia_driver,
                    m = s.nvidia_driver.rsplit_once('.').map_or(s.nvidia_driver.as_str(), |x| x.0),
                    c = s.cuda_version
                ),
                0,
            );
        }
    }
    RemoteOutput {
        status: 0,
        stdout: out,
        stderr: String::new(),
    }
}

/// `0-1`, `0,2-3` for Slurm's `IDX:`.
fn idx(list: &[u32]) -> String {
    if list.is_empty() {
        return "N/A".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let mut j = i;
        while j + 1 < list.len() && list[j + 1] == list[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            list[i].to_string()
        } else {
            format!("{}-{}", list[i], list[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

fn show_nodes(s: &FakeState, hosts: &BTreeMap<String, NodeView>) -> String {
    let mut out = String::new();
    for n in nodes(s, hosts) {
        let running: Vec<&FakeJob> = s
            .slurm_jobs
            .iter()
            .filter(|j| j.state == "RUNNING" && j.node == n.name)
            .collect();
        let cpus: u32 = running.iter().map(|j| j.cpus).sum();
        let mem: u64 = running.iter().map(|j| j.memory_mib).sum();
        let mut used = Vec::new();
        let mut alloc_tres = Vec::new();
        let mut cfg_tres = Vec::new();
        let mut next = 0u32;
        let mut all = 0u32;
        for g in n.gres.split(',').filter(|g| g.starts_with("gpu:")) {
            let parts: Vec<&str> = g.split(':').collect();
            let (t, total) = (parts[1], parts[2].parse::<u32>().unwrap_or(0));
            let taken: u32 = running
                .iter()
                .filter_map(|j| j.gres.as_ref())
                .filter(|(jt, _)| jt.as_deref().is_none_or(|x| x == t))
                .map(|(_, k)| *k)
                .sum();
            let ids: Vec<u32> = (next..next + taken).collect();
            next += total;
            all += taken;
            used.push(format!("gpu:{t}:{taken}(IDX:{})", idx(&ids)));
            cfg_tres.push(format!("gres/gpu:{t}={total}"));
            if taken > 0 {
                alloc_tres.push(format!("gres/gpu:{t}={taken}"));
            }
        }
        let gpus_total: u32 = n
            .gres
            .split(',')
            .filter_map(|g| g.rsplit(':').next()?.parse::<u32>().ok())
            .sum();
        let state = match n.state.as_str() {
            "down*" => "DOWN+NOT_RESPONDING".to_string(),
            "drained" | "drain" => "IDLE+DRAIN".to_string(),
            "idle" if cpus >= n.cpus && cpus > 0 => "ALLOCATED".to_string(),
            "idle" if cpus > 0 => "MIXED".to_string(),
            other => other.to_ascii_uppercase(),
        };
        let mut cfg = format!("cpu={},mem={}M,billing={}", n.cpus, n.real_memory, n.cpus);
        if gpus_total > 0 {
            cfg.push_str(&format!(",gres/gpu={gpus_total},{}", cfg_tres.join(",")));
        }
        let mut alloc = if cpus > 0 {
            format!("cpu={cpus},mem={mem}M")
        } else {
            String::new()
        };
        if all > 0 {
            alloc.push_str(&format!(",gres/gpu={all},{}", alloc_tres.join(",")));
        }
        let _ = write!(
            out,
            "NodeName={name} Arch=x86_64 CoresPerSocket=8 CPUAlloc={cpus} CPUEfctv={c} CPUTot={c} CPULoad=0.01 AvailableFeatures=(null) ActiveFeatures=(null) Gres={gres} GresDrain=N/A GresUsed={used} NodeAddr={name} NodeHostName={name} Version=22.05.8 OS=Linux 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)  RealMemory={m} AllocMem={mem} FreeMem={m} Sockets=1 Boards=1 State={state} ThreadsPerCore=2 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu BootTime=2026-11-30T10:00:00 SlurmdStartTime=2026-11-30T10:05:00 LastBusyTime=2026-11-30T10:06:00 CfgTRES={cfg} AllocTRES={alloc} CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
            name = n.name,
            c = n.cpus,
            gres = n.gres,
            used = if used.is_empty() { "(null)".into() } else { used.join(",") },
            m = n.real_memory,
        );
        if !n.reason.is_empty() {
            let _ = write!(out, " Reason={} [slurm@2026-11-30T10:07:00]", n.reason);
        }
        out.push('\n');
    }
    out
}

fn hms(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn show_jobs(jobs: &[FakeJob]) -> String {
    if jobs.is_empty() {
        return "No jobs in the system\n".into();
    }
    let mut out = String::new();
    for j in jobs {
        let running = j.state == "RUNNING";
        let mut tres = format!(
            "cpu={},mem={}M,node=1,billing={}",
            j.cpus, j.memory_mib, j.cpus
        );
        let mut per_node = "(null)".to_string();
        if let Some((t, n)) = &j.gres {
            tres.push_str(&format!(",gres/gpu={n}"));
            if let Some(t) = t {
                tres.push_str(&format!(",gres/gpu:{t}={n}"));
                per_node = format!("gres:gpu:{t}:{n}");
            } else {
                per_node = format!("gres:gpu:{n}");
            }
        }
        let _ = writeln!(
            out,
            "JobId={id} JobName={name} UserId={user}({uid}) GroupId={user}({uid}) MCS_label=N/A Priority=4294901757 Nice=0 Account={acct} QOS=normal JobState={state} Reason={reason} Dependency=(null) Requeue=1 Restarts=0 BatchFlag=0 Reboot=0 ExitCode=0:0 DerivedExitCode=0:0 RunTime={rt} TimeLimit={tl} TimeMin=N/A SubmitTime=2026-11-30T11:00:00 EligibleTime=2026-11-30T11:00:00 AccrueTime=2026-11-30T11:00:00 StartTime={start} EndTime=Unknown Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-30T11:00:00 Scheduler=Main Partition={part} AllocNode:Sid=head:4242 ReqNodeList=(null) ExcNodeList=(null) NodeList={nodes} BatchHost={nodes} NumNodes=1 NumCPUs={cpus} NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES={tres} Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryCPU={mem}M MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=/usr/bin/sleep 600 WorkDir=/home/{user} Power= TresPerNode={per_node}",
            id = j.id,
            name = j.name,
            user = j.user,
            uid = j.uid,
            acct = j.account,
            state = j.state,
            reason = if running { "None" } else { j.reason.as_str() },
            rt = hms(j.run_seconds),
            tl = j.limit_seconds.map_or("UNLIMITED".into(), hms),
            start = if running { "2026-11-30T11:00:00" } else { "Unknown" },
            part = j.partition,
            nodes = if running { j.node.as_str() } else { "(null)" },
            cpus = j.cpus,
            mem = j.memory_mib,
        );
    }
    out
}
