//! Verification after apply, with the cluster's own tools: a MUNGE credential made on
//! every host decodes on the controller and the controller's decodes on every host;
//! every compute node reaches `idle` (or its state and `sinfo -R` reason are reported)
//! and registered the GRES its slurm.conf line says.
//!
//! Two round trips for MUNGE (make credentials everywhere, then decode them crosswise)
//! and one for Slurm (a bounded wait loop runs on the controller).

use crate::engine::Connections;
use crate::inventory::{Inventory, Role};
use crate::modules::slurm::SlurmContext;
use crate::shell::quote;
use crate::transport::Transport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinSet;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `munge node1 -> head`, `slurm node1`.
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// Run `script` on each named host at once; results by host.
async fn on_each<T: Transport>(
    connections: &Connections<T>,
    scripts: BTreeMap<String, String>,
) -> BTreeMap<String, Result<String, String>> {
    let mut set = JoinSet::new();
    for (host, script) in scripts {
        let Some(conn) = connections.hosts.get(&host).map(Arc::clone) else {
            continue;
        };
        set.spawn(async move {
            let r = match conn.run(script).await {
                Ok(o) if o.success() => Ok(o.stdout),
                Ok(o) => Err(crate::engine::last_lines(
                    &format!("{}\n{}", o.stdout, o.stderr),
                    5,
                )),
                Err(e) => Err(e.to_string()),
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

const DECODE: &str = r#"cc_unmunge() { if printf '%s\n' "$2" | unmunge >/dev/null 2>/tmp/closetctl-unmunge.err; then echo "@@ok $1"; else echo "@@fail $1 $(head -n1 /tmp/closetctl-unmunge.err)"; fi; }
"#;

/// Cross-host MUNGE: every host's credential on the controller, the controller's everywhere.
pub async fn munge<T: Transport>(
    inventory: &Inventory,
    connections: &Connections<T>,
) -> Vec<Finding> {
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
            .map(|h| (h.clone(), "munge -n".to_string()))
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
            Ok(c) => findings.push(Finding {
                check: format!("munge on {host}"),
                ok: false,
                detail: format!("`munge -n` printed no credential: {}", c.trim()),
            }),
            Err(e) => findings.push(Finding {
                check: format!("munge on {host}"),
                ok: false,
                detail: format!("`munge -n` failed: {e}"),
            }),
        }
    }
    let Some(controller_cred) = good.get(&controller).cloned() else {
        findings.push(Finding {
            check: format!("munge on {controller}"),
            ok: false,
            detail: "the controller made no credential".into(),
        });
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
            Err(e) => findings.push(Finding {
                check: format!("munge on {decoder}"),
                ok: false,
                detail: e,
            }),
            Ok(out) => {
                for line in out.lines() {
                    let (ok, rest) =
                        match (line.strip_prefix("@@ok "), line.strip_prefix("@@fail ")) {
                            (Some(r), _) => (true, r),
                            (_, Some(r)) => (false, r),
                            _ => continue,
                        };
                    let (maker, why) = rest.split_once(' ').unwrap_or((rest, ""));
                    findings.push(Finding {
                        check: format!("munge {maker} -> {decoder}"),
                        ok,
                        detail: if ok {
                            "decoded".into()
                        } else {
                            format!("unmunge failed: {why}")
                        },
                    });
                }
            }
        }
    }
    findings
}

/// The controller's wait loop: up to `seconds` until every node is idle, mixed or allocated.
fn sinfo_script(seconds: u32) -> String {
    format!(
        r#"i=0
while :; do
  out=$(sinfo -h -N -o '%N|%T|%G' 2>&1) || out=
  bad=$(printf '%s\n' "$out" | grep -Evc '^[^|]+\|(idle|mixed|allocated|completing)\|')
  [ -n "$out" ] && [ "$bad" -eq 0 ] && break
  [ "$i" -ge {seconds} ] && break
  sleep 2; i=$((i+2))
done
printf '%s\n' "$out"
echo @@reasons
sinfo -h -R -o '%N|%E' 2>/dev/null
"#
    )
}

/// Every compute node idle (or reported with its reason) and its GRES as configured.
pub async fn slurm<T: Transport>(
    ctx: &SlurmContext,
    inventory: &Inventory,
    connections: &Connections<T>,
    wait_seconds: u32,
) -> Vec<Finding> {
    let expected: Vec<&str> = inventory
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::Compute))
        .map(|h| h.name.as_str())
        .collect();
    let results = on_each(
        connections,
        [(ctx.controller.clone(), sinfo_script(wait_seconds))].into(),
    )
    .await;
    let out = match results.get(&ctx.controller) {
        Some(Ok(o)) => o.clone(),
        Some(Err(e)) => {
            return vec![Finding {
                check: "slurm".into(),
                ok: false,
                detail: format!("sinfo on {} failed: {e}", ctx.controller),
            }]
        }
        None => {
            return vec![Finding {
                check: "slurm".into(),
                ok: false,
                detail: format!("controller `{}` is not connected", ctx.controller),
            }]
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
            findings.push(Finding {
                check: format!("slurm {node}"),
                ok: false,
                detail: "not known to slurmctld (sinfo does not list it)".into(),
            });
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
        findings.push(Finding {
            check: format!("slurm {node}"),
            ok: state_ok && gres_ok,
            detail,
        });
    }
    findings
}
