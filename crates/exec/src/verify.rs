//! Verification after apply, with the cluster's own tools: a MUNGE credential made on
//! every host decodes on the controller and the controller's decodes on every host;
//! every compute node reaches `idle` (or its state and `sinfo -R` reason are reported)
//! and registered the GRES its slurm.conf line says.
//!
//! Two round trips for MUNGE (make credentials everywhere, then decode them crosswise)
//! and one for Slurm (a wait loop bounded by the clock runs on the controller). Only
//! the hosts the caller passes are checked and waited for.

use crate::concerns::slurm::SlurmContext;
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::engine::Connections;
use crate::inventory::{Inventory, Role};
use crate::shell::quote;
use crate::transport::{Transport, TransportError};
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;
use tokio::task::JoinSet;

/// A verification result on `host` about `subject`: ok, or an error.
fn finding(
    ok: bool,
    code: Code,
    host: &str,
    subject: &str,
    message: impl Into<String>,
) -> Diagnostic {
    let severity = if ok { Severity::Ok } else { Severity::Error };
    Diagnostic::new(severity, code, subject, message).on(host)
}

/// Why a verification script gave no answer on a host; findings carry its text.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// The script failed; the last lines of what it printed.
    #[error("{output_tail}")]
    Failed {
        host: String,
        status: i32,
        output_tail: String,
    },
    #[error("{source}")]
    Transport {
        host: String,
        #[source]
        source: TransportError,
    },
}

/// The most any one verification script may take (the Slurm wait loop included).
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Run `script` on each named host at once; results by host.
async fn on_each<T: Transport>(
    connections: &Connections<T>,
    scripts: BTreeMap<String, String>,
) -> BTreeMap<String, Result<String, VerifyError>> {
    let mut set = JoinSet::new();
    for (host, script) in scripts {
        let Some(conn) = connections.hosts.get(&host).map(Arc::clone) else {
            continue;
        };
        set.spawn(async move {
            let r = match conn.run_for(script, RUN_LIMIT).await {
                Ok(o) if o.success() => Ok(o.stdout),
                Ok(o) => Err(VerifyError::Failed {
                    host: host.clone(),
                    status: o.status,
                    output_tail: crate::engine::last_lines(
                        &format!("{}\n{}", o.stdout, o.stderr),
                        5,
                    ),
                }),
                Err(source) => Err(VerifyError::Transport {
                    host: host.clone(),
                    source,
                }),
            };
            (host, r)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(Ok((host, r))) = set.join_next().await {
        out.insert(host, r);
    }
    out
}

/// The script that makes a credential on each host.
pub const MAKE: &str = "munge -n";

/// Shell: `cc_unmunge MAKER CREDENTIAL` decodes and prints `@@ok MAKER`, or `@@fail
/// MAKER` and unmunge's first error line (kept in a variable: no file, as root, in a
/// directory users can write).
pub const DECODE: &str = r#"cc_unmunge() { if err=$(printf '%s\n' "$2" | unmunge 2>&1 >/dev/null); then echo "@@ok $1"; else echo "@@fail $1 $(printf '%s\n' "$err" | head -n1)"; fi; }
"#;

/// Every node's name, state and GRES, one line each.
pub const NODE_STATES: &str = "sinfo -h -N -o '%N|%T|%G'";

/// The reason of every node that has one, one line per node: without `-N`, sinfo
/// prints nodes that share a reason as one host list (`node[1-2]|Not responding`).
pub const NODE_REASONS: &str = "sinfo -h -N -R -o '%N|%E'";

/// Cross-host MUNGE: every host's credential on the controller, the controller's everywhere.
pub async fn munge<T: Transport>(
    inventory: &Inventory,
    connections: &Connections<T>,
) -> Vec<Diagnostic> {
    let Some(slurm) = &inventory.slurm else {
        return Vec::new();
    };
    let controller = slurm.controller.clone();
    let hosts: Vec<String> = inventory
        .hosts
        .iter()
        .map(|h| h.name.clone())
        .filter(|h| connections.hosts.contains_key(h))
        .collect();
    let creds = on_each(
        connections,
        hosts
            .iter()
            .map(|h| (h.clone(), MAKE.to_string()))
            .collect(),
    )
    .await;
    let mut findings = Vec::new();
    let mut good: BTreeMap<String, String> = BTreeMap::new();
    for (host, r) in creds {
        match r {
            Ok(c) if c.trim().starts_with("MUNGE:") => {
                good.insert(host, c.trim().to_string());
            }
            Ok(c) => findings.push(finding(
                false,
                Code::MungeHost,
                &host,
                &host,
                format!("`munge -n` printed no credential: {}", c.trim()),
            )),
            Err(e) => findings.push(finding(
                false,
                Code::MungeHost,
                &host,
                &host,
                format!("`munge -n` failed: {e}"),
            )),
        }
    }
    let Some(controller_cred) = good.get(&controller).cloned() else {
        findings.push(finding(
            false,
            Code::MungeHost,
            &controller,
            &controller,
            "the controller made no credential",
        ));
        return findings;
    };
    let mut scripts = BTreeMap::new();
    let mut on_controller = String::from(DECODE);
    for (host, cred) in good.iter().filter(|(h, _)| **h != controller) {
        on_controller.push_str(&format!("cc_unmunge {} {}\n", quote(host), quote(cred)));
        scripts.insert(
            host.clone(),
            format!(
                "{DECODE}cc_unmunge {} {}\n",
                quote(&controller),
                quote(&controller_cred)
            ),
        );
    }
    scripts.insert(controller.clone(), on_controller);
    for (decoder, r) in on_each(connections, scripts).await {
        match r {
            Err(e) => findings.push(finding(
                false,
                Code::MungeHost,
                &decoder,
                &decoder,
                e.to_string(),
            )),
            Ok(out) => {
                for line in out.lines() {
                    let (ok, rest) =
                        match (line.strip_prefix("@@ok "), line.strip_prefix("@@fail ")) {
                            (Some(r), _) => (true, r),
                            (_, Some(r)) => (false, r),
                            _ => continue,
                        };
                    let (maker, why) = rest.split_once(' ').unwrap_or((rest, ""));
                    findings.push(finding(
                        ok,
                        Code::MungeDecode,
                        &decoder,
                        &format!("{maker} -> {decoder}"),
                        if ok {
                            "decoded".into()
                        } else {
                            format!("unmunge failed: {why}")
                        },
                    ));
                }
            }
        }
    }
    findings
}

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

/// Every compute node idle (or reported with its reason) and its GRES as configured.
pub async fn slurm<T: Transport>(
    ctx: &SlurmContext,
    inventory: &Inventory,
    connections: &Connections<T>,
    wait_seconds: u32,
) -> Vec<Diagnostic> {
    // Only the nodes in `connections`: the caller leaves out the hosts that did not
    // converge, so verification never waits for a node that was skipped or failed.
    let expected: Vec<&str> = inventory
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::Compute) && connections.hosts.contains_key(&h.name))
        .map(|h| h.name.as_str())
        .collect();
    if expected.is_empty() {
        return Vec::new();
    }
    let results = on_each(
        connections,
        [(
            ctx.controller.clone(),
            sinfo_script(wait_seconds, &expected),
        )]
        .into(),
    )
    .await;
    let out = match results.get(&ctx.controller) {
        Some(Ok(o)) => o.clone(),
        Some(Err(e)) => {
            return vec![finding(
                false,
                Code::SlurmController,
                &ctx.controller,
                &ctx.controller,
                format!("sinfo on {} failed: {e}", ctx.controller),
            )]
        }
        None => {
            return vec![finding(
                false,
                Code::SlurmController,
                &ctx.controller,
                &ctx.controller,
                format!("controller `{}` is not connected", ctx.controller),
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
    for node in expected {
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
        let want = ctx
            .nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.gres.clone())
            .unwrap_or_default();
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

    /// The decode function with a stand-in `unmunge` on PATH that accepts `good` and
    /// refuses anything else as MUNGE does (its error on stderr, exit 14).
    #[test]
    fn decode_reports_unmunges_first_error_line_and_writes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let unmunge = dir.path().join("unmunge");
        std::fs::write(
            &unmunge,
            "#!/bin/sh\nread -r c\n[ \"$c\" = good ] && { echo 'STATUS: Success (0)'; exit 0; }\necho 'unmunge: Error: Invalid credential' >&2\necho 'second line' >&2\nexit 14\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&unmunge, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{DECODE}cc_unmunge node1 good\ncc_unmunge node2 bad\n"
            ))
            .current_dir(dir.path())
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
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "@@ok node1\n@@fail node2 unmunge: Error: Invalid credential\n"
        );
        // Root keeps unmunge's error in a variable, never in a file users could plant.
        assert!(
            !DECODE.contains("/tmp") && !DECODE.contains("2>/"),
            "{DECODE}"
        );
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
