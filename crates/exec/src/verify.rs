//! Verification after apply, with the cluster's own tools: runs the rounds of every
//! concern's checks (see [`closetctl_core::verification`]; MUNGE crosswise, the Slurm
//! nodes) on the hosts, each round on all its hosts at once. Only the hosts in the
//! scope are checked and waited for.

use crate::diagnostic::Diagnostic;
use crate::engine::Connections;
use crate::transport::{Transport, TransportError};
use closetctl_core::verification::{Answers, Scope, Verification};
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;
use tokio::task::JoinSet;

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

/// Run one check's rounds on the hosts of `connections`; its findings.
pub async fn run<T: Transport>(
    check: &dyn Verification,
    connections: &Connections<T>,
) -> Vec<Diagnostic> {
    let mut answers: Vec<Answers> = Vec::new();
    while let Some(round) = check.round(&answers) {
        let got = on_each(connections, round).await;
        answers.push(
            got.into_iter()
                .map(|(h, r)| (h, r.map_err(|e| e.to_string())))
                .collect(),
        );
    }
    check.findings(&answers)
}

/// Every concern's checks over `scope`, one after the other.
pub async fn all<T: Transport>(scope: &Scope<'_>, connections: &Connections<T>) -> Vec<Diagnostic> {
    let mut findings = Vec::new();
    for check in crate::concerns::verifications(scope) {
        findings.extend(run(check.as_ref(), connections).await);
    }
    findings
}
