//! slurmctld's view of the nodes and `sinfo` on the fake controller, as Slurm 22.05
//! prints it. The nodes are the `NodeName=` lines of the controller's slurm.conf; a node
//! is `idle` when its host answers, its slurmd runs and its munged has the controller's
//! key (otherwise slurmctld never hears it register: `down*`, reason `Not responding`),
//! `drained` with Slurm's reason when it has fewer GPUs than its `Gres=` says, or what an
//! admin set (`FakeState::slurm_held` on the controller).
//!
//! `sinfo -h [-N] [-R] -o FORMAT` with `%N %T %G %E`: without `-N`, nodes whose other
//! fields agree share one line as a host list (`node[1-2]`), as the real `sinfo` does;
//! `-R` lists only nodes with a reason. Without a running slurmctld, `sinfo` fails with
//! its error and exit 1.
//!
//! Verification's wait loop ([`closetctl_exec::verify`]) is answered at once with the
//! final state: nothing changes in the fake while it waits.

use super::munge::munged_key;
use super::state::FakeState;
use closetctl_core::concerns::slurm::SLURM_CONF;
use closetctl_exec::transport::RemoteOutput;
use std::collections::BTreeMap;

/// What slurmctld can know of one host (read from that host's state).
#[derive(Debug, Clone)]
pub(crate) struct NodeView {
    pub up: bool,
    /// The key its munged works with.
    pub munge_key: Option<Vec<u8>>,
    pub gpus: usize,
}

impl NodeView {
    pub(crate) fn of(s: &FakeState) -> NodeView {
        NodeView {
            up: s.reachable && s.active("slurmd.service"),
            munge_key: munged_key(s),
            gpus: s.gpus.len(),
        }
    }
}

/// One node as slurmctld sees it.
pub(crate) struct Node {
    pub name: String,
    pub state: String,
    pub gres: String,
    pub reason: String,
    /// The `NodeName=` line's `CPUs=` and `RealMemory=`.
    pub cpus: u32,
    pub real_memory: u64,
}

/// slurmctld's nodes on the controller `s`, given the other hosts by name.
pub(crate) fn nodes(s: &FakeState, hosts: &BTreeMap<String, NodeView>) -> Vec<Node> {
    let own_key = munged_key(s);
    let conf = s.text(SLURM_CONF);
    let mut out = Vec::new();
    for line in conf.lines().filter(|l| l.starts_with("NodeName=")) {
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap_or_default()
                .to_string()
        };
        let name = field("NodeName");
        if name == "DEFAULT" {
            continue;
        }
        let gres = field("Gres");
        let want: usize = gres
            .rsplit(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let (state, reason) = if let Some((st, why)) = s.slurm_held.get(&name) {
            (st.clone(), why.clone())
        } else {
            match hosts.get(&name) {
                Some(v) if v.up && v.munge_key.is_some() && v.munge_key == own_key => {
                    if !gres.is_empty() && v.gpus < want {
                        (
                            "drained".to_string(),
                            format!(
                                "gres/gpu count reported lower than configured ({} < {want})",
                                v.gpus
                            ),
                        )
                    } else {
                        ("idle".to_string(), String::new())
                    }
                }
                _ => ("down*".to_string(), "Not responding".to_string()),
            }
        };
        out.push(Node {
            cpus: field("CPUs").parse().unwrap_or(1),
            real_memory: field("RealMemory").parse().unwrap_or(1),
            name,
            gres: if gres.is_empty() {
                "(null)".into()
            } else {
                gres
            },
            state,
            reason,
        });
    }
    out
}

/// `name1,name2` as Slurm's host list: `node[1-2],head`.
fn hostlist(names: &[String]) -> String {
    let mut groups: Vec<(String, Vec<u64>, usize)> = Vec::new();
    let mut plain = Vec::new();
    for n in names {
        let digits = n.len() - n.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            plain.push(n.clone());
            continue;
        }
        let (prefix, num) = n.split_at(n.len() - digits);
        let num: u64 = num.parse().unwrap_or(0);
        match groups
            .iter_mut()
            .find(|(p, _, w)| p == prefix && *w == digits)
        {
            Some((_, nums, _)) => nums.push(num),
            None => groups.push((prefix.to_string(), vec![num], digits)),
        }
    }
    let mut parts = Vec::new();
    for (prefix, mut nums, width) in groups {
        nums.sort_unstable();
        if nums.len() == 1 {
            parts.push(format!("{prefix}{:0width$}", nums[0]));
            continue;
        }
        let mut ranges: Vec<String> = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            ranges.push(if i == j {
                format!("{:0width$}", nums[i])
            } else {
                format!("{:0width$}-{:0width$}", nums[i], nums[j])
            });
            i = j + 1;
        }
        parts.push(format!("{prefix}[{}]", ranges.join(",")));
    }
    parts.extend(plain);
    parts.join(",")
}

/// `sinfo ARGS`: `(exit code, stdout, stderr)`.
pub(crate) fn sinfo(
    s: &FakeState,
    hosts: &BTreeMap<String, NodeView>,
    args: &[String],
) -> (i32, String, String) {
    if !s.active("slurmctld.service") {
        return (
            1,
            String::new(),
            "slurm_load_partitions: Unable to contact slurm controller (connect failure)\n".into(),
        );
    }
    let flag = |f: &str| args.iter().any(|a| a == f);
    let format = args
        .iter()
        .position(|a| a == "-o")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "%N %T".into());
    let mut nodes = nodes(s, hosts);
    if flag("-R") {
        nodes.retain(|n| !n.reason.is_empty());
    }
    let line = |names: &str, n: &Node| {
        format
            .replace("%N", names)
            .replace("%T", &n.state)
            .replace("%G", &n.gres)
            .replace("%E", &n.reason)
    };
    let mut lines: Vec<(String, Vec<String>, usize)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let key = line("\u{0}", n);
        match lines.iter_mut().find(|(k, _, _)| !flag("-N") && *k == key) {
            Some((_, names, _)) => names.push(n.name.clone()),
            None => lines.push((key, vec![n.name.clone()], i)),
        }
    }
    let mut out = String::new();
    if !flag("-h") {
        out.push_str(&format.replace('%', "").to_uppercase());
        out.push('\n');
    }
    for (_, names, i) in &lines {
        out.push_str(&line(&hostlist(names), &nodes[*i]));
        out.push('\n');
    }
    (0, out, String::new())
}

/// The `sinfo ...` invocations of a script, as argument lists (up to a redirection).
fn invocations(script: &str) -> Vec<Vec<String>> {
    script
        .lines()
        .filter_map(|l| l.find("sinfo ").map(|i| &l[i..]))
        .map(|c| c.split(" 2>").next().unwrap_or(c))
        .filter_map(shlex::split)
        .collect()
}

/// Verification's wait loop on the controller: the node states (nothing, when `sinfo`
/// failed: `out=$(...) || out=`), `@@reasons`, then the reasons' `sinfo` (its stdout).
pub(crate) fn wait_script(
    s: &FakeState,
    hosts: &BTreeMap<String, NodeView>,
    script: &str,
) -> RemoteOutput {
    let calls = invocations(script);
    let (Some(states), Some(reasons)) = (calls.first(), calls.last()) else {
        return RemoteOutput {
            status: 127,
            stdout: String::new(),
            stderr: "fake host: no sinfo in the script".into(),
        };
    };
    let (rc, states_out, _) = sinfo(s, hosts, &states[1..]);
    let states_out = if rc == 0 { states_out } else { String::new() };
    let (_, reasons_out, _) = sinfo(s, hosts, &reasons[1..]);
    RemoteOutput {
        status: 0,
        stdout: format!(
            "{}\n@@reasons\n{reasons_out}",
            states_out.trim_end_matches('\n')
        ),
        stderr: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::hostlist;

    #[test]
    fn host_lists_are_compressed_as_slurm_prints_them() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(hostlist(&names(&["node1", "node2"])), "node[1-2]");
        assert_eq!(
            hostlist(&names(&["node1", "node2", "node4", "gpu7", "head"])),
            "node[1-2,4],gpu7,head"
        );
        assert_eq!(hostlist(&names(&["node1"])), "node1");
    }
}
