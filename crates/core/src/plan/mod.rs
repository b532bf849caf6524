//! The plan: per host, per step, what must change, computed from the desired state and
//! the facts with no I/O.
//!
//! `plan(inputs, facts, hosts)` is the pure core. A host that did not answer, or whose
//! accounts conflict with the inventory, is marked so; apply only runs hosts whose
//! status is `ready`. Warnings, conflicts and notes are [`Diagnostic`]s;
//! [`Plan::apply_refuses`] is the rule `plan`'s exit code and `apply` share. The JSON form of [`Plan`] is the documented `--json` schema
//! (see `docs/plan-json.md`); operations and secret content are never serialized.

pub mod render;

use crate::concerns;
use crate::desired::{self, HandlerAction, Inputs};
use crate::diagnostic::{Code, Diagnostic};
use crate::facts::ClusterFacts;
use crate::journal::Owed;
use crate::ops::Op;
use crate::resource::{Change, MissingSecret, ResourceKind};
use serde::Serialize;

/// Version of the `--json` schema.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub schema_version: u32,
    pub cluster: String,
    pub hosts: Vec<HostPlan>,
    /// Cluster-wide findings shown above the hosts: preflight checks that are not ok
    /// (an error among them makes apply refuse), hosts left out of slurm.conf, flows
    /// the tailnet policy blocks.
    pub warnings: Vec<Diagnostic>,
    /// One line per person the plan takes access from (`access-removed`: `alice`,
    /// "access removed on 3 hosts, 2 associations, 1 tailnet group"); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostStatus {
    /// Facts gathered; apply may run the steps.
    Ready,
    /// No facts: the host did not answer or the probe failed.
    Unreachable,
    /// Live accounts contradict the inventory; apply refuses this host.
    Conflict,
    /// Another apply holds this host's lock.
    Locked,
    /// The desired state could not be computed (a template or secret problem).
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    pub host: String,
    pub status: HostStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Live state that contradicts the inventory (errors): apply refuses the host.
    pub conflicts: Vec<Diagnostic>,
    /// What closetctl sees and leaves alone (info).
    pub unmanaged: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// For a stale lock: the exact command that breaks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlock: Option<String>,
    pub steps: Vec<StepPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepPlan {
    pub name: String,
    pub changes: Vec<Change>,
    pub handlers: Vec<HandlerRun>,
    /// Handlers (of this step or a later one) this step's changes fire: recorded on the
    /// host before the step changes anything (see [`crate::journal`]).
    #[serde(skip)]
    pub owes: Vec<Owed>,
    /// Checks of the files this step writes, run before its handlers.
    #[serde(skip)]
    pub checks: Vec<Op>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandlerRun {
    pub name: String,
    /// `restart munge.service`, `reload ...`, `run scontrol reconfigure`.
    pub action: String,
    /// The changed resources that fire it.
    pub because: Vec<String>,
    /// An interrupted apply left it owed on the host (it runs even with no change).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub owed: bool,
    #[serde(skip)]
    pub op: Op,
}

impl StepPlan {
    /// Every op of the step in order, packages merged into one install, handlers last.
    pub fn ops(&self) -> Vec<Op> {
        let packages: Vec<String> = self
            .changes
            .iter()
            .flat_map(|c| &c.ops)
            .filter_map(|op| match op {
                Op::InstallPackages(p) => Some(p.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut ops = Vec::new();
        if !packages.is_empty() {
            ops.push(Op::InstallPackages(packages));
        }
        ops.extend(
            self.changes
                .iter()
                .flat_map(|c| &c.ops)
                .filter(|op| !matches!(op, Op::InstallPackages(_)))
                .cloned(),
        );
        ops.extend(self.checks.iter().cloned());
        ops.extend(self.handlers.iter().map(|h| h.op.clone()));
        ops
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.handlers.is_empty()
    }

    /// The missing secrets this step needs (each once): apply refuses the step.
    pub fn missing_secrets(&self) -> Vec<&MissingSecret> {
        let mut out: Vec<&MissingSecret> = Vec::new();
        for m in self
            .changes
            .iter()
            .filter_map(|c| c.missing_secret.as_ref())
        {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }
}

/// A step apply will not run on a host because a secret it needs is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedStep {
    pub host: String,
    pub step: String,
    pub missing: Vec<MissingSecret>,
}

impl RefusedStep {
    /// `not run: secret `tailscale.key` is missing: put it in ... (mode 0600)`
    pub fn reason(&self) -> String {
        let what: Vec<String> = self.missing.iter().map(|m| m.to_string()).collect();
        format!("not run: {}", what.join("; "))
    }
}

impl HostPlan {
    pub fn change_count(&self) -> usize {
        self.steps.iter().map(|s| s.changes.len()).sum()
    }

    /// Handlers an interrupted apply left owed that this plan runs.
    pub fn owed_count(&self) -> usize {
        self.steps
            .iter()
            .flat_map(|s| &s.handlers)
            .filter(|h| h.owed)
            .count()
    }

    /// Whether apply has anything to do here: changes, or handlers still owed.
    pub fn has_work(&self) -> bool {
        self.change_count() > 0 || self.owed_count() > 0
    }
}

impl Plan {
    /// Whether apply would do anything: a change, or a handler still owed.
    pub fn has_changes(&self) -> bool {
        self.hosts.iter().any(HostPlan::has_work)
    }

    /// Whether anything stands in the way of a clean apply.
    pub fn has_blockers(&self) -> bool {
        self.hosts.iter().any(|h| h.status != HostStatus::Ready)
    }

    /// The cluster-wide diagnostics that make apply refuse to start (preflight errors;
    /// `apply --force` overrides them). The same rule as `apply` runs on
    /// [`crate::check::offline_findings`] before it contacts a host.
    pub fn refusing(&self) -> Vec<&Diagnostic> {
        refusing(&self.warnings)
    }

    /// Whether apply would refuse anything here: the whole apply (a preflight error) or
    /// a host (a conflict, a lock, no facts, no desired state). `plan` exits 1 then.
    pub fn apply_refuses(&self) -> bool {
        !self.refusing().is_empty() || self.has_blockers()
    }

    /// The steps apply refuses (they need a missing secret), on hosts it would change.
    pub fn refused_steps(&self) -> Vec<RefusedStep> {
        self.hosts
            .iter()
            .filter(|h| h.status == HostStatus::Ready)
            .flat_map(|h| {
                h.steps.iter().filter_map(|s| {
                    let missing = s.missing_secrets();
                    (!missing.is_empty()).then(|| RefusedStep {
                        host: h.host.clone(),
                        step: s.name.clone(),
                        missing: missing.into_iter().cloned().collect(),
                    })
                })
            })
            .collect()
    }

    /// What apply runs: the plan without the steps that need a missing secret.
    pub fn runnable(&self) -> Plan {
        let mut p = self.clone();
        for h in &mut p.hosts {
            h.steps.retain(|s| s.missing_secrets().is_empty());
        }
        p
    }
}

/// Of `diagnostics`, those that make apply refuse what they are about
/// ([`Diagnostic::refuses_apply`]): the one rule `plan` and `apply` share.
pub fn refusing(diagnostics: &[Diagnostic]) -> Vec<&Diagnostic> {
    diagnostics.iter().filter(|d| d.refuses_apply()).collect()
}

/// Plan every host in `hosts` (all inventory hosts when empty).
pub fn plan(inputs: &Inputs, facts: &ClusterFacts, hosts: &[String]) -> Plan {
    let inventory = inputs.inventory;
    let selected = inventory
        .hosts
        .iter()
        .filter(|h| hosts.is_empty() || hosts.contains(&h.name));
    let desired = desired::Desired::new(inputs, facts);
    let host_plans = selected
        .map(|host| {
            let mut hp = HostPlan {
                host: host.name.clone(),
                status: HostStatus::Ready,
                error: None,
                conflicts: Vec::new(),
                unmanaged: Vec::new(),
                warnings: Vec::new(),
                unlock: None,
                steps: Vec::new(),
            };
            let Some(host_facts) = facts.host(&host.name) else {
                hp.status = HostStatus::Unreachable;
                hp.error = Some(
                    facts
                        .unreachable
                        .get(&host.name)
                        .cloned()
                        .unwrap_or_else(|| "no facts".into()),
                );
                return hp;
            };
            let here = |ds: Vec<Diagnostic>| -> Vec<Diagnostic> {
                ds.into_iter().map(|d| d.on(&host.name)).collect()
            };
            hp.conflicts = here(concerns::conflicts(inventory, host, host_facts));
            hp.unmanaged = here(concerns::unmanaged(inventory, host_facts));
            hp.warnings = here(concerns::host_warnings(inventory, host, host_facts));
            match desired.host_steps(host) {
                Ok(steps) => {
                    let mut changed_so_far: Vec<Watched> = Vec::new();
                    for s in &steps {
                        let sp = plan_step(s, host_facts, &mut changed_so_far);
                        if !sp.is_empty() {
                            hp.steps.push(sp);
                        }
                    }
                    record_owed(&mut hp.steps);
                    hp.warnings.extend(here(forgotten_owed(&steps, host_facts)));
                }
                Err(e) => {
                    hp.status = HostStatus::Error;
                    hp.error = Some(e.to_string());
                }
            }
            if let Some(held) = &host_facts.lock_held {
                hp.status = HostStatus::Locked;
                match (held.stale_reason(), &held.verdict) {
                    (Some(why), _) => {
                        let cmd = crate::lock::unlock_command(&inventory.path, &[&host.name]);
                        hp.error = Some(format!(
                            "stale lock of an apply that is gone: {}: {why}; clear it with `{cmd}`",
                            held.describe()
                        ));
                        hp.unlock = Some(cmd);
                    }
                    (None, Some(crate::lock::Verdict::Live(how))) => {
                        hp.error = Some(format!(
                            "another apply holds the lock: {} ({how})",
                            held.describe()
                        ));
                    }
                    (None, _) => {
                        hp.error =
                            Some(format!("another apply holds the lock: {}", held.describe()));
                    }
                }
            } else if !refusing(&hp.conflicts).is_empty() && hp.status == HostStatus::Ready {
                hp.status = HostStatus::Conflict;
            }
            hp
        })
        .collect();
    let mut warnings: Vec<Diagnostic> = crate::check::offline_findings(inventory)
        .into_iter()
        .filter(|f| f.severity != crate::check::Severity::Ok)
        .collect();
    warnings.extend(concerns::warnings(inventory, facts));
    let mut plan = Plan {
        schema_version: SCHEMA_VERSION,
        cluster: inventory.cluster.name.clone(),
        hosts: host_plans,
        warnings,
        summary: Vec::new(),
    };
    plan.summary = concerns::plan_summary(inventory, &plan);
    plan
}

/// Plan one step; handlers see changes of this step and earlier ones on the host.
/// What a handler needs to know of a change made earlier on the host (not its diff).
struct Watched {
    kind: ResourceKind,
    name: String,
    disruption: Option<String>,
}

fn plan_step(
    step: &desired::DesiredStep,
    facts: &crate::facts::HostFacts,
    changed_so_far: &mut Vec<Watched>,
) -> StepPlan {
    let changes: Vec<Change> = step
        .resources
        .iter()
        .filter_map(|r| r.diff(facts))
        .collect();
    changed_so_far.extend(changes.iter().map(|c| Watched {
        kind: c.kind,
        name: c.name.clone(),
        disruption: c.disruption.clone(),
    }));
    let handlers = step
        .handlers
        .iter()
        .filter_map(|h| {
            let owed = facts
                .owed
                .iter()
                .find(|o| o.step == step.name && o.handler == h.name);
            let mut because: Vec<&Watched> = changed_so_far
                .iter()
                .filter(|c| h.watch.contains(&c.name))
                .collect();
            if let Some(wanted) = &h.disruption {
                let worst = because
                    .iter()
                    .map(|c| c.disruption.as_deref().unwrap_or("none"))
                    .max_by_key(|l| crate::resource::disruption_rank(l))
                    .unwrap_or("none");
                if worst != wanted {
                    because.clear();
                }
            }
            if because.is_empty() && owed.is_none() {
                return None;
            }
            let mut restore: Vec<String> = because
                .iter()
                .filter(|c| c.kind == ResourceKind::File)
                .map(|c| c.name.clone())
                .collect();
            for p in owed.iter().flat_map(|o| &o.restore) {
                if !restore.contains(p) {
                    restore.push(p.clone());
                }
            }
            let (action, op) = match &h.action {
                HandlerAction::Restart(u) => (
                    format!("restart {u}"),
                    Op::Restart {
                        unit: u.clone(),
                        restore,
                    },
                ),
                HandlerAction::Reload(u) => (format!("reload {u}"), Op::Reload(u.clone())),
                HandlerAction::Command(c) if restore.is_empty() => {
                    (format!("run `{c}`"), Op::Command(c.clone()))
                }
                HandlerAction::Command(c) => (
                    format!("run `{c}`"),
                    Op::Activate {
                        command: c.clone(),
                        restore,
                    },
                ),
            };
            Some(HandlerRun {
                name: h.name.clone(),
                action,
                because: because
                    .iter()
                    .map(|c| format!("{} {}", c.kind.as_str(), c.name))
                    .collect(),
                owed: owed.is_some(),
                op,
            })
        })
        .collect();
    let checks = changes
        .iter()
        .filter(|c| c.kind == ResourceKind::File)
        .filter_map(|c| {
            let command = step.validate.get(&c.name)?;
            Some(Op::Check {
                command: command.replace("%s", &crate::shell::quote(&c.name)),
                path: c.name.clone(),
            })
        })
        .collect();
    StepPlan {
        name: step.name.clone(),
        changes,
        handlers,
        owes: Vec::new(),
        checks,
    }
}

/// Each step owes the handlers (its own or a later step's) that its changes fire.
fn record_owed(steps: &mut [StepPlan]) {
    for i in 0..steps.len() {
        let changed: Vec<String> = steps[i].changes.iter().map(|c| c.resource()).collect();
        if changed.is_empty() {
            continue;
        }
        let mut owes = Vec::new();
        for later in &steps[i..] {
            for h in &later.handlers {
                if !h.because.iter().any(|b| changed.contains(b)) {
                    continue;
                }
                let restore = match &h.op {
                    Op::Restart { restore, .. } | Op::Activate { restore, .. } => restore.clone(),
                    _ => Vec::new(),
                };
                owes.push(Owed {
                    step: later.name.clone(),
                    handler: h.name.clone(),
                    action: h.action.clone(),
                    because: h.because.clone(),
                    restore,
                    run: String::new(),
                    recorded_by: steps[i].name.clone(),
                });
            }
        }
        steps[i].owes = owes;
    }
}

/// Owed records that no step of this host has a handler for any more (the playbooks
/// changed), and journal lines that are not records.
fn forgotten_owed(
    steps: &[desired::DesiredStep],
    facts: &crate::facts::HostFacts,
) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = facts
        .owed
        .iter()
        .filter(|o| {
            !steps
                .iter()
                .any(|s| s.name == o.step && s.handlers.iter().any(|h| h.name == o.handler))
        })
        .map(|o| {
            Diagnostic::warning(
                Code::OwedHandlerForgotten,
                format!("{}/{}", o.step, o.handler),
                format!(
                    "an interrupted apply left handler `{}` of step `{}` owed ({}), but no playbook step for this host has it any more",
                    o.handler, o.step, o.action
                ),
            )
            .hint(format!(
                "run it by hand if still needed, then remove {}/{}",
                crate::journal::OWED_DIR,
                o.id()
            ))
        })
        .collect();
    out.extend(facts.owed_unreadable.iter().map(|l| {
        Diagnostic::warning(
            Code::OwedRecordUnreadable,
            crate::journal::OWED_DIR,
            format!("an unreadable record in {}: {l}", crate::journal::OWED_DIR),
        )
    }));
    out
}
