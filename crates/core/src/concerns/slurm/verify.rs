//! Slurm after apply: every compute node this apply converged reaches `idle` (or its
//! state and `sinfo -R` reason are reported) and registered the GRES its slurm.conf
//! line says. One round on the controller: a wait loop bounded by the clock.

use crate::diagnostic::{Code, Diagnostic};
use crate::verification::{finding, Answers, Round, Verification};
use std::collections::BTreeMap;

/// Every node's name, state and GRES, one line each.
pub const NODE_STATES: &str = "sinfo -h -N -o '%N|%T|%G'";

/// The reason of every node that has one, one line per node: without `-N`, sinfo
/// prints nodes that share a reason as one host list (`node[1-2]|Not responding`).
pub const NODE_REASONS: &str = "sinfo -h -N -R -o '%N|%E'";

/// The controller's wait loop: up to `seconds` by the clock (not by iterations: each
/// `sinfo` may take seconds on a busy host) until every node in `nodes` is idle, mixed,
/// allocated or completing. Node names are validated names, safe in the pattern. A node
/// in several partitions has a line for each (`-N`): nodes are counted once each.
fn sinfo_script(seconds: u32, nodes: &[&str]) -> String {
    format!(
        r#"end=$(( $(date +%s) + {seconds} ))
while :; do
  out=$({NODE_STATES} 2>&1) || out=
  good=$(printf '%s\n' "$out" | grep -E '^({alt})\|(idle|mixed|allocated|completing)\|' | cut -d'|' -f1 | sort -u | wc -l)
  [ "$good" -ge {count} ] && break
  [ "$(date +%s)" -ge "$end" ] && break
  sleep 2
done
printf '%s\n' "$out"
echo @@reasons
{NODE_REASONS} 2>/dev/null
"#,
        alt = nodes.join("|"),
        count = nodes.len()
    )
}

/// Wait on `controller` for `expected` nodes, then check each one's state and GRES.
pub struct NodeWait {
    pub controller: String,
    /// Compute nodes to wait for, in inventory order (never empty).
    pub expected: Vec<String>,
    /// The GRES each node's slurm.conf line gives (`gpu:a100:4`), if any.
    pub gres: BTreeMap<String, String>,
    pub seconds: u32,
}

impl Verification for NodeWait {
    fn round(&self, earlier: &[Answers]) -> Option<Round> {
        let nodes: Vec<&str> = self.expected.iter().map(String::as_str).collect();
        earlier
            .is_empty()
            .then(|| [(self.controller.clone(), sinfo_script(self.seconds, &nodes))].into())
    }

    fn findings(&self, answers: &[Answers]) -> Vec<Diagnostic> {
        let ctl = &self.controller;
        let out = match answers.first().and_then(|a| a.get(ctl)) {
            Some(Ok(o)) => o.clone(),
            Some(Err(e)) => {
                return vec![finding(
                    false,
                    Code::SlurmController,
                    ctl,
                    ctl,
                    format!("sinfo on {ctl} failed: {e}"),
                )]
            }
            None => {
                return vec![finding(
                    false,
                    Code::SlurmController,
                    ctl,
                    ctl,
                    format!("controller `{ctl}` is not connected"),
                )]
            }
        };
        let (states, reasons) = out.split_once("@@reasons").unwrap_or((&out, ""));
        let reason_of = |n: &str| {
            reasons.lines().find_map(|l| {
                l.split_once('|')
                    .filter(|(nodes, _)| nodes.split(',').any(|x| x == n))
                    .map(|(_, r)| r.to_string())
            })
        };
        let mut findings = Vec::new();
        for node in &self.expected {
            let node = node.as_str();
            let line = states.lines().find(|l| l.split('|').next() == Some(node));
            let Some(line) = line else {
                findings.push(finding(
                    false,
                    Code::SlurmNode,
                    node,
                    node,
                    "not known to slurmctld (sinfo does not list it)",
                ));
                continue;
            };
            let parts: Vec<&str> = line.split('|').collect();
            let state = parts.get(1).copied().unwrap_or("");
            let gres = parts.get(2).copied().unwrap_or("");
            let want = self.gres.get(node).cloned().unwrap_or_default();
            let state_ok = ["idle", "mixed", "allocated", "completing"].contains(&state);
            let gres_ok = want.is_empty() && (gres == "(null)" || gres.is_empty())
                || (!want.is_empty() && gres.starts_with(&want));
            let mut detail = format!("{state}, gres {gres}");
            if !state_ok {
                if let Some(r) = reason_of(node) {
                    detail.push_str(&format!(", reason: {r}"));
                }
            }
            if !gres_ok {
                detail.push_str(&format!(
                    " (configured {})",
                    if want.is_empty() { "none" } else { &want }
                ));
            }
            findings.push(finding(
                state_ok && gres_ok,
                Code::SlurmNode,
                node,
                node,
                detail,
            ));
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait loop with a stand-in `sinfo` on PATH that reports `states`: what it
    /// printed and how many times it asked `sinfo` for the node states.
    fn run_wait(seconds: u32, nodes: &[&str], states: &str) -> (String, usize) {
        let dir = tempfile::tempdir().unwrap();
        let sinfo = dir.path().join("sinfo");
        let calls = dir.path().join("calls");
        std::fs::write(
            &sinfo,
            format!(
                "#!/bin/sh\ncase \" $* \" in *\" -R \"*) exit 0;; esac\necho >> '{}'\nprintf '{states}'\n",
                calls.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sinfo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(sinfo_script(seconds, nodes))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.path().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .output()
            .unwrap();
        let asked = std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count();
        (String::from_utf8_lossy(&out.stdout).into_owned(), asked)
    }

    #[test]
    fn the_wait_ends_when_the_converged_nodes_are_idle_ignoring_others() {
        // node2 was skipped by apply and is down: not waited for, so one question.
        let (out, asked) = run_wait(
            60,
            &["node1"],
            "node1|idle|gpu:a100:4\\nnode2|down*|gpu:rtx4090:2\\n",
        );
        assert_eq!(asked, 1);
        assert!(
            out.starts_with("node1|idle|gpu:a100:4\nnode2|down*"),
            "{out}"
        );
    }

    #[test]
    fn a_node_in_two_partitions_counts_once_while_the_wait_goes_on() {
        // `sinfo -N` prints node1 once per partition; node2 stays down, so the loop
        // must not end after the first question on node1's two lines.
        let (_, asked) = run_wait(
            3,
            &["node1", "node2"],
            "node1|idle|x\\nnode1|idle|x\\nnode2|down|y\\n",
        );
        assert!((2..=3).contains(&asked), "asked {asked} times");
    }

    #[test]
    fn the_wait_is_bounded_by_the_clock() {
        // node2 never turns idle: the loop asks again (every 2 s) until its 3 s are up,
        // then ends anyway (the clock has whole seconds, so after 2 to 4 s: 2 or 3 asks),
        // and reports the last answer.
        let (out, asked) = run_wait(3, &["node1", "node2"], "node1|idle|x\\nnode2|down|y\\n");
        assert!((2..=3).contains(&asked), "asked {asked} times");
        assert!(out.contains("node2|down|y"));
    }
}
