//! Checks with the cluster's own tools after an apply (a MUNGE credential decoded on
//! another host, `sinfo` showing every node idle with its GRES), as data: each check
//! is rounds of scripts, one per host, where a round may depend on what the earlier
//! rounds printed, and the findings come from all the answers. The concerns say what
//! to run and how to read it; closetctl-exec runs the rounds on the hosts.

use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::facts::ClusterFacts;
use crate::inventory::Inventory;
use std::collections::BTreeMap;

/// One round: a script per host.
pub type Round = BTreeMap<String, String>;

/// What each host of a round printed, or why it printed nothing usable.
pub type Answers = BTreeMap<String, Result<String, String>>;

/// A check as rounds of scripts.
pub trait Verification: Send + Sync {
    /// The next round, given the answers of the rounds so far; `None` when done.
    fn round(&self, earlier: &[Answers]) -> Option<Round>;
    /// The findings, from every round's answers.
    fn findings(&self, answers: &[Answers]) -> Vec<Diagnostic>;
}

/// What verification may look at: the hosts this apply converged (or found converged)
/// and can reach, in inventory order; a host that was skipped or failed is neither
/// checked nor waited for.
pub struct Scope<'a> {
    pub inventory: &'a Inventory,
    /// The facts of the plan after apply.
    pub facts: &'a ClusterFacts,
    pub hosts: Vec<String>,
    /// How long (wall clock) a check may wait for the cluster to settle.
    pub wait_seconds: u32,
}

impl Scope<'_> {
    pub fn includes(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }
}

/// A finding on `host` about `subject`: ok, or an error.
pub fn finding(
    ok: bool,
    code: Code,
    host: &str,
    subject: &str,
    message: impl Into<String>,
) -> Diagnostic {
    let severity = if ok { Severity::Ok } else { Severity::Error };
    Diagnostic::new(severity, code, subject, message).on(host)
}
