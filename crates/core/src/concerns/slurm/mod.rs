//! The Slurm module: what `slurm.conf`, `gres.conf` and `cgroup.conf` are made of.
//!
//! Node lines come from the live hardware (the probe's CPU topology and memory, GPUs
//! from nvidia-smi), so slurmd never registers with less than configured. The inventory's
//! `gpus` is a check: when it disagrees with what a host reports, that host is in
//! conflict and apply refuses it. A compute host that did not answer keeps the node
//! line the controller's current `slurm.conf` has for it; with no such line it is left
//! out (with a warning) rather than guessed. [`classify`] labels a change to
//! `slurm.conf` as `reconfigure` or `restart`, so apply does the least disruptive thing.

pub mod node_names;
pub mod section;
pub mod verify;

use crate::diagnostic::{Code, Diagnostic};
use crate::facts::{ClusterFacts, Gpu, HostFacts};
use crate::gpu;
use crate::inventory::{Host, Inventory, Role};
use serde::Serialize;
use std::collections::BTreeMap;

/// The `slurm` concern: slurm.conf with the nodes' real hardware, GRES and cgroups.
pub struct Slurm;

impl super::Concern for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[("30-slurm.toml", include_str!("30-slurm.toml"))]
    }
    fn templates(&self) -> &'static [super::Shipped] {
        &[
            ("slurm.conf.j2", include_str!("slurm.conf.j2")),
            ("gres.conf.j2", include_str!("gres.conf.j2")),
            ("cgroup.conf.j2", include_str!("cgroup.conf.j2")),
        ]
    }
    fn conditions(&self) -> &'static [&'static str] {
        &["slurm"]
    }
    fn modules(&self) -> &'static [&'static str] {
        &["node-names"]
    }
    fn resources(&self, _module: &str, i: &super::HostInputs) -> Vec<crate::resource::Resource> {
        node_names::resources(i.inventory, i.host, i.facts)
    }
    fn condition(&self, _name: &str, inventory: &Inventory) -> bool {
        inventory.slurm.is_some()
    }
    fn probe(&self, inventory: &Inventory, host: &Host) -> crate::facts::probe::ProbeRequest {
        crate::facts::probe::ProbeRequest {
            // Node lines and the GPU check need the hardware of compute hosts only.
            hardware: inventory.slurm.is_some() && host.has_role(Role::Compute),
            ..Default::default()
        }
    }
    fn template_values<'a>(
        &self,
        inventory: &'a Inventory,
        facts: &'a ClusterFacts,
    ) -> Vec<super::TemplateValue<'a>> {
        vec![
            (
                "slurm",
                Box::new(|| minijinja::Value::from_serialize(&inventory.slurm)),
            ),
            (
                "slurm_conf",
                Box::new(|| minijinja::Value::from_serialize(context(inventory, facts))),
            ),
        ]
    }
    fn warnings(&self, inventory: &Inventory, facts: &ClusterFacts) -> Vec<Diagnostic> {
        context(inventory, facts)
            .map(|c| c.warnings)
            .unwrap_or_default()
    }
    fn conflicts(&self, inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        if inventory.slurm.is_some() {
            let mut out = gpu_conflicts(host, facts);
            out.extend(node_names::conflicts(inventory, host, facts));
            out
        } else {
            Vec::new()
        }
    }
    /// Every compute node in scope idle with its GRES (when the controller is in scope).
    fn verifications(
        &self,
        scope: &crate::verification::Scope,
    ) -> Vec<Box<dyn crate::verification::Verification>> {
        let Some(ctx) = context(scope.inventory, scope.facts).filter(|c| scope.includes(&c.controller))
        else {
            return Vec::new();
        };
        let expected: Vec<String> = scope
            .inventory
            .hosts
            .iter()
            .filter(|h| h.has_role(Role::Compute) && scope.includes(&h.name))
            .map(|h| h.name.clone())
            .collect();
        if expected.is_empty() {
            return Vec::new();
        }
        vec![Box::new(verify::NodeWait {
            controller: ctx.controller.clone(),
            expected,
            gres: ctx.nodes.iter().map(|n| (n.name.clone(), n.gres.clone())).collect(),
            seconds: scope.wait_seconds,
        })]
    }
    fn classifiers(&self) -> &'static [(&'static str, crate::resource::Classifier)] {
        &[("slurm.conf", |old, new| {
            classify(old, &String::from_utf8_lossy(new))
        })]
    }
}

pub const SLURM_CONF: &str = "/etc/slurm/slurm.conf";

/// One `NodeName=` line and its gres.conf lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    /// The whole `NodeName=...` line.
    pub line: String,
    /// `gres.conf` lines for this node.
    pub gres_lines: Vec<String>,
    /// `gpu:a100-80gb:4` (comma-joined when mixed), empty without GPUs.
    pub gres: String,
    pub cpus: u32,
    pub real_memory: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLine {
    pub line: String,
}

/// The derived values the Slurm templates use, under `slurm_conf` in the context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlurmContext {
    pub cluster_name: String,
    pub controller: String,
    pub controller_address: String,
    pub nodes: Vec<Node>,
    pub partitions: Vec<PartitionLine>,
    pub def_mem_per_cpu: u64,
    pub options: Vec<(String, String)>,
    /// Fair share: slurmdbd accounting and multifactor priority; `None` when off.
    pub accounting: Option<AccountingConf>,
    pub warnings: Vec<Diagnostic>,
}

/// The accounting lines of `slurm.conf` (from `[slurm.fair_share]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountingConf {
    /// Where slurmdbd runs: the controller's address.
    pub storage_host: String,
    pub weight_fairshare: u32,
    pub weight_age: u32,
    pub weight_job_size: u32,
    pub decay_half_life: String,
    /// `AccountingStorageTRES`: `gres/gpu` and each GPU type in the closet
    /// (`gres/gpu:a100-80gb`), so sacct/sreport show GPU hours; empty without GPUs.
    pub tres: String,
    /// `TRESBillingWeights` on every partition: fair share charges GPU time.
    pub billing_weights: String,
}

/// `gres/gpu,gres/gpu:a100-80gb,gres/gpu:rtx4090` for the types in the nodes' `Gres=`
/// (`gpu:a100-80gb:4,gpu:h100:2`), empty when no node has a GPU.
pub fn accounting_tres(nodes: &[Node]) -> String {
    let types: std::collections::BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| n.gres.split(',').filter(|g| !g.is_empty()))
        .filter_map(|g| {
            let mut parts = g.split(':');
            let name = parts.next()?;
            let rest: Vec<&str> = parts.collect();
            (name == "gpu" && rest.len() == 2).then(|| rest[0])
        })
        .collect();
    if !nodes.iter().any(|n| n.gres.starts_with("gpu:")) {
        return String::new();
    }
    let mut tres = vec!["gres/gpu".to_string()];
    tres.extend(types.iter().map(|t| format!("gres/gpu:{t}")));
    tres.join(",")
}

/// A billing weight as slurm.conf takes it: `1`, `0.5`, `10`.
fn weight(w: f64) -> String {
    format!("{w}")
}

/// `CPU=1,GRES/gpu=10`: what fair share charges per allocated CPU and GPU. Only the
/// untyped `GRES/gpu` is weighted, so a typed GPU is not charged twice.
pub fn billing_weights(fair_share: &crate::inventory::FairShare) -> String {
    format!(
        "CPU={},GRES/gpu={}",
        weight(fair_share.cpu_weight),
        weight(fair_share.gpu_weight)
    )
}

/// RealMemory a little below the live figure: 97 %, rounded down to 64 MiB, so a
/// node never registers with less than configured and small changes don't churn.
pub fn real_memory(live_mib: u64) -> u64 {
    (live_mib * 97 / 100) / 64 * 64
}

/// `gres.conf` lines for one node's GPUs, one per type, with explicit device files
/// (Debian 12's Slurm has no NVML autodetection).
pub fn gres_lines(node: &str, gpus: &[Gpu]) -> (Vec<String>, String) {
    let mut by_type: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for g in gpus {
        by_type
            .entry(gpu::gres_type_for_smi_name(&g.name))
            .or_default()
            .push(g.index);
    }
    let mut lines = Vec::new();
    let mut gres = Vec::new();
    for (t, mut idx) in by_type {
        idx.sort_unstable();
        gres.push(format!("gpu:{t}:{}", idx.len()));
        lines.push(format!(
            "NodeName={node} Name=gpu Type={t} File=/dev/nvidia{}",
            index_ranges(&idx)
        ));
    }
    (lines, gres.join(","))
}

/// `[0-3]`, `[0-1,3]`, or `0` for one device.
fn index_ranges(idx: &[u32]) -> String {
    if idx.len() == 1 {
        return idx[0].to_string();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let start = idx[i];
        let mut end = start;
        while i + 1 < idx.len() && idx[i + 1] == end + 1 {
            i += 1;
            end = idx[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    format!("[{}]", parts.join(","))
}

fn node_from_facts(host: &Host, f: &HostFacts) -> Node {
    let (gres_lines, gres) = gres_lines(&host.name, &f.gpus);
    let c = &f.cpu;
    let mem = real_memory(f.memory_mib);
    let mut line = format!(
        "NodeName={} NodeAddr={} CPUs={} Boards=1 SocketsPerBoard={} CoresPerSocket={} ThreadsPerCore={} RealMemory={mem}",
        host.name, host.address, c.cpus, c.sockets, c.cores_per_socket, c.threads_per_core
    );
    if !gres.is_empty() {
        line.push_str(&format!(" Gres={gres}"));
    }
    line.push_str(" State=UNKNOWN");
    Node {
        name: host.name.clone(),
        line,
        gres_lines,
        gres,
        cpus: c.cpus,
        real_memory: mem,
    }
}

/// The node's line in a current `slurm.conf`, kept for a host that did not answer.
fn node_from_current(host: &Host, facts: &ClusterFacts) -> Option<Node> {
    let prefix = format!("NodeName={} ", host.name);
    let (conf, gres_conf) = facts.hosts.values().find_map(|f| {
        let conf = f.files.get(SLURM_CONF)?.content.clone()?;
        let gres = f
            .files
            .get("/etc/slurm/gres.conf")
            .and_then(|g| g.content.clone())
            .unwrap_or_default();
        conf.contains(&prefix).then_some((conf, gres))
    })?;
    let line = conf.lines().find(|l| l.starts_with(&prefix))?.to_string();
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(String::from)
    };
    Some(Node {
        name: host.name.clone(),
        gres_lines: gres_conf
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(String::from)
            .collect(),
        gres: field("Gres=").unwrap_or_default(),
        cpus: field("CPUs=").and_then(|v| v.parse().ok()).unwrap_or(1),
        real_memory: field("RealMemory=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        line,
    })
}

pub fn context(inventory: &Inventory, facts: &ClusterFacts) -> Option<SlurmContext> {
    let slurm = inventory.slurm.as_ref()?;
    let controller = inventory.host(&slurm.controller)?;
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    for host in inventory.hosts.iter().filter(|h| h.has_role(Role::Compute)) {
        match facts.host(&host.name) {
            Some(f) => nodes.push(node_from_facts(host, f)),
            None => match node_from_current(host, facts) {
                Some(n) => {
                    warnings.push(Diagnostic::warning(Code::NodeLineKept, &host.name, format!("host `{}` did not answer: its Slurm node line is kept as the current slurm.conf has it", host.name)).on(&host.name));
                    nodes.push(n);
                }
                None => warnings.push(Diagnostic::warning(Code::NodeLeftOut, &host.name, format!("host `{}` did not answer and has no node line yet: it is left out of slurm.conf until it answers", host.name)).on(&host.name)),
            },
        }
    }
    let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut partitions = Vec::new();
    let declared = if slurm.partitions.is_empty() {
        vec![crate::inventory::Partition {
            name: "gpu".into(),
            nodes: None,
            default: true,
            max_time: None,
            options: BTreeMap::new(),
        }]
    } else {
        slurm.partitions.clone()
    };
    let any_default = declared.iter().any(|p| p.default);
    for (i, p) in declared.iter().enumerate() {
        let members: Vec<&str> = match &p.nodes {
            Some(list) => list
                .iter()
                .map(String::as_str)
                .filter(|n| known.contains(n))
                .collect(),
            None => known.clone(),
        };
        let nodes_field = if members.is_empty() {
            String::new()
        } else {
            members.join(",")
        };
        let mut line = format!("PartitionName={}", p.name);
        if !nodes_field.is_empty() {
            line.push_str(&format!(" Nodes={nodes_field}"));
        }
        let default = p.default || (!any_default && i == 0);
        line.push_str(if default {
            " Default=YES"
        } else {
            " Default=NO"
        });
        line.push_str(&format!(
            " MaxTime={}",
            p.max_time.as_deref().unwrap_or("INFINITE")
        ));
        for (k, v) in &p.options {
            line.push_str(&format!(" {k}={v}"));
        }
        if slurm.fair_share.enabled && !p.options.contains_key("TRESBillingWeights") {
            line.push_str(&format!(
                " TRESBillingWeights={}",
                billing_weights(&slurm.fair_share)
            ));
        }
        line.push_str(" State=UP");
        partitions.push(PartitionLine { line });
    }
    let def_mem_per_cpu = nodes
        .iter()
        .map(|n| n.real_memory / u64::from(n.cpus.max(1)))
        .min()
        .unwrap_or(1024)
        .max(1);
    let tres = accounting_tres(&nodes);
    Some(SlurmContext {
        cluster_name: slurm.cluster_name.clone(),
        controller: controller.name.clone(),
        controller_address: controller.address.clone(),
        nodes,
        partitions,
        def_mem_per_cpu,
        options: slurm
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        accounting: slurm.fair_share.enabled.then(|| AccountingConf {
            storage_host: controller.address.clone(),
            weight_fairshare: slurm.fair_share.weight_fairshare,
            weight_age: slurm.fair_share.weight_age,
            weight_job_size: slurm.fair_share.weight_job_size,
            decay_half_life: slurm.fair_share.decay_half_life.clone(),
            tres,
            billing_weights: billing_weights(&slurm.fair_share),
        }),
        warnings,
    })
}

/// A compute host whose live GPUs disagree with the inventory's `gpus`.
pub fn gpu_conflicts(host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    if !host.has_role(Role::Compute) {
        return Vec::new();
    }
    let live = facts.gpus.len() as u32;
    let live_names: Vec<&str> = facts.gpus.iter().map(|g| g.name.as_str()).collect();
    match &host.gpus {
        None if live > 0 => vec![Diagnostic::error(
            Code::GpuUndeclared,
            "gpus",
            format!(
                "host reports {live} GPU(s) ({}) but the inventory declares none",
                live_names.first().copied().unwrap_or("")
            ),
        )
        .hint(format!("add `gpus = {{ model = ..., count = {live} }}`"))],
        None => Vec::new(),
        Some(spec) => {
            let model = gpu::model_by_key(&spec.model);
            let matching = facts
                .gpus
                .iter()
                .filter(|g| model.is_some_and(|m| gpu::model_by_smi_name(&g.name).is_some_and(|x| x.gres_type == m.gres_type)))
                .count() as u32;
            if live == spec.count && matching == live {
                return Vec::new();
            }
            let reported = if live == 0 {
                "no GPUs (nvidia-smi found none)".to_string()
            } else {
                format!("{live} × {}", live_names.first().copied().unwrap_or("?"))
            };
            let code = if live == 0 {
                Code::GpuMissing
            } else {
                Code::GpuMismatch
            };
            vec![Diagnostic::error(
                code,
                "gpus",
                format!(
                    "the inventory declares {} × {} but the host reports {reported}",
                    spec.count, spec.model
                ),
            )
            .hint("a node configured with GPUs it lacks would drain, so fix `gpus` in the inventory")]
        }
    }
}

/// Keys whose change needs slurmctld and slurmd restarted, not just `scontrol reconfigure`.
const RESTART_KEYS: &[&str] = &[
    "NodeName",
    "GresTypes",
    "SelectType",
    "SelectTypeParameters",
    "SlurmctldHost",
    "ControlMachine",
    "AuthType",
    "CryptoType",
    "ProctrackType",
    "TaskPlugin",
    "SlurmctldPort",
    "SlurmdPort",
    "StateSaveLocation",
    "SlurmdSpoolDir",
    "ClusterName",
    "SlurmUser",
    "AccountingStorageType",
    // New TRES are registered in the database when slurmctld starts (Slurm's tres.html).
    "AccountingStorageTRES",
    "PriorityType",
    "JobAcctGatherType",
    "SwitchType",
    "MpiDefault",
    "PluginDir",
];

/// Label a change of `slurm.conf` from `old` to `new`: `restart` when a line whose key
/// is in the restart list changed (or the file is new), else `reconfigure`.
pub fn classify(old: Option<&str>, new: &str) -> &'static str {
    let Some(old) = old else { return "restart" };
    let key = |l: &str| l.split('=').next().unwrap_or("").trim().to_string();
    let lines = |s: &str| -> Vec<String> {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    let (a, b) = (lines(old), lines(new));
    let changed = a
        .iter()
        .filter(|l| !b.contains(l))
        .chain(b.iter().filter(|l| !a.contains(l)));
    let mut any = false;
    for l in changed {
        any = true;
        if RESTART_KEYS.contains(&key(l).as_str()) {
            return "restart";
        }
    }
    if any {
        "reconfigure"
    } else {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ranges() {
        assert_eq!(index_ranges(&[0, 1, 2, 3]), "[0-3]");
        assert_eq!(index_ranges(&[0]), "0");
        assert_eq!(index_ranges(&[0, 1, 3]), "[0-1,3]");
    }

    #[test]
    fn real_memory_stays_below_the_live_figure() {
        assert_eq!(real_memory(958), 896);
        assert_eq!(real_memory(515_000), 499_520);
        for m in [512, 958, 1000, 64_000, 2_000_000] {
            assert!(real_memory(m) <= m);
        }
    }

    #[test]
    fn partition_changes_reconfigure_and_node_changes_restart() {
        let old =
            "ClusterName=c\nNodeName=n1 CPUs=4\nPartitionName=gpu Nodes=n1 MaxTime=INFINITE\n";
        assert_eq!(
            classify(
                Some(old),
                &old.replace("MaxTime=INFINITE", "MaxTime=1-00:00:00")
            ),
            "reconfigure"
        );
        assert_eq!(
            classify(Some(old), &old.replace("CPUs=4", "CPUs=8")),
            "restart"
        );
        assert_eq!(
            classify(Some(old), &format!("{old}GresTypes=gpu\n")),
            "restart"
        );
        assert_eq!(classify(None, old), "restart");
        assert_eq!(classify(Some(old), &format!("# comment\n{old}")), "none");
    }
}
