//! Plan output: the human text (readable without colour) and the JSON document.
//! Diagnostics are rendered by [`crate::diagnostic::line`], like everywhere else.

use super::{HostStatus, Plan};
use crate::diagnostic::{self, Form};
use crate::resource::Action;
use std::fmt::Write;

/// Colours for a terminal; [`Style::plain`] for pipes, tests and `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn plain() -> Style {
        Style { color: false }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// The plan as text, per host, per step, per resource.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for w in &plan.warnings {
        let _ = writeln!(out, "{}", diagnostic::line(w, Form::Plan, style));
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
    }
    for host in &plan.hosts {
        let _ = writeln!(out, "{}", style.bold(&format!("host {}", host.host)));
        match host.status {
            HostStatus::Unreachable => {
                let _ = writeln!(
                    out,
                    "  {} unreachable: {}",
                    style.red("!"),
                    host.error.as_deref().unwrap_or("")
                );
            }
            HostStatus::Error | HostStatus::Locked => {
                let _ = writeln!(
                    out,
                    "  {} {}",
                    style.red("!"),
                    host.error.as_deref().unwrap_or("")
                );
            }
            _ => {}
        }
        for c in &host.conflicts {
            let _ = writeln!(out, "  {}", diagnostic::line(c, Form::Plan, style));
        }
        if host.status == HostStatus::Conflict {
            let _ = writeln!(
                out,
                "  {} apply will not change this host until the conflicts are resolved",
                style.red("!")
            );
        }
        for w in host.warnings.iter().chain(&host.unmanaged) {
            let _ = writeln!(out, "  {}", diagnostic::line(w, Form::Plan, style));
        }
        for step in &host.steps {
            let _ = writeln!(out, "  step {}", step.name);
            for c in &step.changes {
                let symbol = c.action.symbol().to_string();
                let symbol = match c.action {
                    Action::Create => style.green(&symbol),
                    Action::Update => style.yellow(&symbol),
                    Action::Remove => style.red(&symbol),
                };
                let mut line = format!("    {symbol} {}", c.resource());
                if !c.details.is_empty() {
                    let _ = write!(line, ": {}", c.details.join(", "));
                }
                if let Some(s) = &c.secret {
                    let state = if s.matches { "matches" } else { "differs" };
                    let current = s.current.as_deref().unwrap_or("absent");
                    let _ = write!(
                        line,
                        " [secret {}: {} {state}; host has {current}]",
                        s.name, s.desired
                    );
                }
                if let Some(d) = &c.disruption {
                    let _ = write!(line, " (disruption: {d})");
                }
                let _ = writeln!(out, "{line}");
                if let Some(diff) = &c.diff {
                    for l in diff.lines() {
                        let l = if l.starts_with('+') && !l.starts_with("+++") {
                            style.green(l)
                        } else if l.starts_with('-') && !l.starts_with("---") {
                            style.red(l)
                        } else {
                            l.to_string()
                        };
                        let _ = writeln!(out, "        {l}");
                    }
                }
            }
            for h in &step.handlers {
                let star = style.yellow("*");
                let _ = match (h.because.is_empty(), h.owed) {
                    (true, _) => writeln!(
                        out,
                        "    {star} handler owed by an interrupted apply: {} (handler {})",
                        h.action, h.name
                    ),
                    (false, owed) => writeln!(
                        out,
                        "    {star} handler {}: {} (because {}{})",
                        h.name,
                        h.action,
                        h.because.join(", "),
                        if owed {
                            "; also owed by an interrupted apply"
                        } else {
                            ""
                        }
                    ),
                };
            }
            let missing = step.missing_secrets();
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|m| format!("`{}`", m.name)).collect();
                let _ = writeln!(
                    out,
                    "    {} apply will not run this step until {} {} in place",
                    style.red("!"),
                    names.join(", "),
                    if names.len() == 1 { "is" } else { "are" }
                );
            }
        }
        if host.status == HostStatus::Ready && host.steps.is_empty() {
            let _ = writeln!(out, "  no changes");
        }
    }
    out.push('\n');
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

/// One line: counts of creates and updates, and hosts that cannot be applied.
pub fn summary(plan: &Plan) -> String {
    let changes = plan
        .hosts
        .iter()
        .flat_map(|h| &h.steps)
        .flat_map(|s| &s.changes);
    let (mut create, mut update, mut remove) = (0, 0, 0);
    for c in changes {
        match c.action {
            Action::Create => create += 1,
            Action::Update => update += 1,
            Action::Remove => remove += 1,
        }
    }
    let changed_hosts = plan.hosts.iter().filter(|h| h.change_count() > 0).count();
    // Hosts without facts or desired state have no steps: "no changes" would be a lie.
    let unplanned = plan
        .hosts
        .iter()
        .filter(|h| matches!(h.status, HostStatus::Unreachable | HostStatus::Error))
        .count();
    let total = plan.hosts.len();
    let mut s = if unplanned > 0 && unplanned == total {
        if total == 1 {
            "Plan: the only host could not be planned.".to_string()
        } else {
            format!("Plan: none of the {total} hosts could be planned.")
        }
    } else if create + update + remove == 0 && unplanned > 0 {
        format!(
            "Plan: no changes on the {} planned; {unplanned} of {total} hosts could not be planned.",
            match total - unplanned {
                1 => "1 host".to_string(),
                n => format!("{n} hosts"),
            }
        )
    } else if create + update + remove == 0 {
        "Plan: no changes.".to_string()
    } else if remove == 0 {
        format!("Plan: {create} to create, {update} to change on {changed_hosts} of {total} hosts.")
    } else {
        format!("Plan: {create} to create, {update} to change, {remove} to remove on {changed_hosts} of {total} hosts.")
    };
    let owed: Vec<String> = plan
        .hosts
        .iter()
        .filter(|h| h.owed_count() > 0)
        .map(|h| format!("{} on {}", h.owed_count(), h.host))
        .collect();
    if !owed.is_empty() {
        let _ = write!(
            s,
            " Handlers owed by an interrupted apply: {}.",
            owed.join(", ")
        );
    }
    for (status, what) in [
        (HostStatus::Unreachable, "unreachable"),
        (HostStatus::Conflict, "with conflicts"),
        (HostStatus::Locked, "locked by another apply"),
        (HostStatus::Error, "with errors"),
    ] {
        let names: Vec<&str> = plan
            .hosts
            .iter()
            .filter(|h| h.status == status)
            .map(|h| h.host.as_str())
            .collect();
        if !names.is_empty() {
            let _ = write!(
                s,
                " {} {what}: {}.",
                if names.len() == 1 { "Host" } else { "Hosts" },
                names.join(", ")
            );
        }
    }
    let refused = plan.refused_steps();
    if !refused.is_empty() {
        let mut names: Vec<&str> = refused
            .iter()
            .flat_map(|r| r.missing.iter().map(|m| m.name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let _ = write!(
            s,
            " Apply will not run {} {} until {} {} in place.",
            refused.len(),
            if refused.len() == 1 { "step" } else { "steps" },
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" }
        );
    }
    if let Some(cmd) = unlock_all(plan) {
        let _ = write!(
            s,
            "\nStale locks of applies that are gone: clear them with `{cmd}` (it shows each holder and asks first)."
        );
    }
    s
}

/// One `closetctl unlock` command for every host with a stale lock.
pub fn unlock_all(plan: &Plan) -> Option<String> {
    let stale: Vec<&str> = plan
        .hosts
        .iter()
        .filter(|h| h.unlock.is_some())
        .map(|h| h.host.as_str())
        .collect();
    if stale.is_empty() {
        return None;
    }
    let first = plan.hosts.iter().find_map(|h| h.unlock.as_deref())?;
    // The per-host command with every stale host's `--host`.
    let base = first.split(" --host ").next().unwrap_or(first);
    let mut cmd = base.to_string();
    for h in stale {
        cmd.push_str(" --host ");
        cmd.push_str(h);
    }
    Some(cmd)
}

pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("a plan always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{HostPlan, StepPlan};
    use crate::resource::{Change, ResourceKind};

    fn host(name: &str, status: HostStatus) -> HostPlan {
        HostPlan {
            host: name.into(),
            status,
            error: (status != HostStatus::Ready).then(|| "connection refused".into()),
            conflicts: Vec::new(),
            unmanaged: Vec::new(),
            warnings: Vec::new(),
            unlock: None,
            steps: Vec::new(),
        }
    }

    fn plan(hosts: Vec<HostPlan>) -> Plan {
        Plan {
            schema_version: 1,
            cluster: "c".into(),
            hosts,
            warnings: Vec::new(),
            summary: Vec::new(),
        }
    }

    #[test]
    fn no_host_answered_is_not_no_changes() {
        use HostStatus::*;
        let none = plan(vec![host("a", Unreachable), host("b", Unreachable)]);
        assert_eq!(
            summary(&none),
            "Plan: none of the 2 hosts could be planned. Hosts unreachable: a, b."
        );
        let one = plan(vec![host("a", Error)]);
        assert_eq!(
            summary(&one),
            "Plan: the only host could not be planned. Host with errors: a."
        );
        let some = plan(vec![
            host("a", Ready),
            host("b", Unreachable),
            host("c", Ready),
        ]);
        assert_eq!(
            summary(&some),
            "Plan: no changes on the 2 hosts planned; 1 of 3 hosts could not be planned. Host unreachable: b."
        );
        assert_eq!(summary(&plan(vec![host("a", Ready)])), "Plan: no changes.");
        assert!(
            none.has_blockers() && some.has_blockers(),
            "plan exits 1 then"
        );
    }

    #[test]
    fn a_removal_is_shown_with_a_minus_and_counted() {
        let mut h = host("head", HostStatus::Ready);
        let mut remove = Change::new(
            ResourceKind::Association,
            "vision-lab/carol",
            Action::Remove,
        );
        remove
            .details
            .push("the inventory has no account for carol any more".into());
        let create = Change::new(ResourceKind::Association, "vision-lab/dave", Action::Create);
        h.steps.push(StepPlan {
            name: "associations".into(),
            changes: vec![create, remove],
            handlers: Vec::new(),
            owes: Vec::new(),
            checks: Vec::new(),
        });
        let p = plan(vec![h]);
        let out = text(&p, Style::plain());
        assert!(
            out.contains(
                "\n    - association vision-lab/carol: the inventory has no account for carol any more\n"
            ),
            "{out}"
        );
        assert!(!out.contains("~ association"), "{out}");
        assert!(
            out.ends_with("Plan: 1 to create, 0 to change, 1 to remove on 1 of 1 hosts.\n"),
            "{out}"
        );
        let json = json(&p);
        assert!(json.contains("\"action\": \"remove\""), "{json}");
    }
}
