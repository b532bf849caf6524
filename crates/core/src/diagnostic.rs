//! Diagnostics: the one typed finding every part of closetctl reports: plan warnings
//! (cluster-wide and per host), conflicts that make apply refuse a host, unmanaged
//! notes, preflight check findings and the verification after apply.
//!
//! A [`Diagnostic`] has a [`Severity`], a stable kebab-case [`Code`] (documented in
//! docs/plan-json.md; scripts match on it, never on the message), the host it was
//! found on, the subject it is about (a user, a path, a circuit, a node), a sentence,
//! and an optional hint on what to do. [`line`] renders one as text for every command,
//! so the text forms live here and nowhere else; the JSON form is its `Serialize`.
//! [`Diagnostic::refuses_apply`] is the one rule for what stops apply.

use crate::check::CheckKind;
use crate::plan::render::Style;
use serde::Serialize;

/// How bad a diagnostic is. Ordered: `Ok < Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A check passed (preflight and verification report what they found fine too).
    Ok,
    /// Something closetctl sees and leaves alone (an unmanaged account).
    Info,
    /// Worth fixing; nothing is refused for it, and `closetctl check` still exits 0.
    Warning,
    /// Apply refuses what it is about (the whole apply for a preflight error unless
    /// `--force`, the host for a conflict); `check` exits 1; a verification failed.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a diagnostic is about, stable across releases (the message may be reworded).
/// Every code is listed in docs/plan-json.md (a test checks that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    // -- preflight: power and cooling (inventory alone), network, clock, uids (facts)
    /// A circuit's worst-case load against 80 % of its breaker (ok, warning from 90 %,
    /// error over 100 %).
    CircuitLoad,
    /// A host on no `[[power.circuit]]`: its load is not budgeted.
    NoCircuit,
    /// A problem with a host's power figure (a GPU model without a table entry, ...).
    PowerFigure,
    /// The heat of all hosts against `[cooling]` (ok, warning from 90 %, error over).
    CoolingCapacity,
    /// No `[cooling]` capacity: the heat is not checked.
    CoolingUndeclared,
    /// The rule of thumb: one ton of cooling per two high-end GPU nodes.
    CoolingRuleOfThumb,
    /// A host's cluster link speed (warning under 10 Gb/s).
    LinkSpeed,
    /// A compute node's name as the login host resolves it (SkyPilot on Slurm needs it).
    NodeName,
    /// A host gave no facts (preflight needs them).
    HostUnreachable,
    /// A host's clock against the cluster's (error at MUNGE's credential TTL).
    ClockOffset,
    /// The largest clock skew between two hosts.
    ClockSkew,
    /// This machine's clock is off the hosts' (they are judged against each other).
    LocalClock,
    /// Every managed account on a host has the inventory's ID.
    AccountsOk,
    /// Managed accounts a host lacks (apply creates them).
    AccountsMissing,
    // -- conflicts: apply refuses the host
    /// A user exists on the host with another UID.
    UidConflict,
    /// A group exists on the host with another GID.
    GidConflict,
    /// The inventory's UID is held on the host by another user.
    UidTaken,
    /// The inventory's GID is held on the host by another group.
    GidTaken,
    /// `/etc/fstab` is not a regular file.
    FstabNotFile,
    /// `/etc/fstab` is larger than the probe reads back whole.
    FstabTooLarge,
    /// `/etc/fstab` has closetctl's BEGIN line without its END line.
    FstabBlockUnclosed,
    /// The login host's `/etc/hosts` is not a regular file.
    HostsNotFile,
    /// The login host's `/etc/hosts` is larger than the probe reads back whole.
    HostsTooLarge,
    /// The login host's `/etc/hosts` has closetctl's BEGIN line without its END line.
    HostsBlockUnclosed,
    /// The inventory declares GPUs the host does not report at all.
    GpuMissing,
    /// The host reports other GPUs (count or model) than the inventory declares.
    GpuMismatch,
    /// The host reports GPUs the inventory does not declare.
    GpuUndeclared,
    /// An association to be removed still has active jobs.
    AssociationBusy,
    // -- host warnings and notes
    /// A user's `~/.ssh` cannot be used safely: her keys are left out on this host.
    SshDirUnusable,
    /// A client's local `/home` has content the NFS mount would hide.
    HomeNotEmpty,
    /// `advertise_routes` on a host without the `subnet-router` role.
    RoutesIgnored,
    /// A handler an interrupted apply left owed that no playbook step has any more.
    OwedHandlerForgotten,
    /// A record in the owed-handlers journal that cannot be read.
    OwedRecordUnreadable,
    /// A person's account the inventory lacks (left as is).
    UnmanagedUser,
    /// A user whose access ended still has processes on the host (no `--end-sessions`).
    SessionsLeft,
    /// What the plan takes away from a user whose access ended (the summary line).
    AccessRemoved,
    // -- cluster warnings
    /// A compute host did not answer: its Slurm node line is kept as it is.
    NodeLineKept,
    /// A compute host did not answer and has no node line: it is left out of slurm.conf.
    NodeLeftOut,
    /// The rendered tailnet policy blocks a flow the cluster needs.
    TailnetBlocked,
    // -- verification after apply
    /// MUNGE could not be asked on a host (`munge -n` made no credential, or the
    /// decoding script did not run).
    MungeHost,
    /// A credential made on one host decoded (or not) on another.
    MungeDecode,
    /// A compute node's Slurm state and GRES.
    SlurmNode,
    /// `sinfo` could not be asked on the controller.
    SlurmController,
    // -- check users
    /// A user's account expires within 30 days (or has expired but is not disabled).
    AccountExpiring,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: [Code; 44] = [
        Code::CircuitLoad,
        Code::NoCircuit,
        Code::PowerFigure,
        Code::CoolingCapacity,
        Code::CoolingUndeclared,
        Code::CoolingRuleOfThumb,
        Code::LinkSpeed,
        Code::NodeName,
        Code::HostUnreachable,
        Code::ClockOffset,
        Code::ClockSkew,
        Code::LocalClock,
        Code::AccountsOk,
        Code::AccountsMissing,
        Code::UidConflict,
        Code::GidConflict,
        Code::UidTaken,
        Code::GidTaken,
        Code::FstabNotFile,
        Code::FstabTooLarge,
        Code::FstabBlockUnclosed,
        Code::HostsNotFile,
        Code::HostsTooLarge,
        Code::HostsBlockUnclosed,
        Code::GpuMissing,
        Code::GpuMismatch,
        Code::GpuUndeclared,
        Code::AssociationBusy,
        Code::SshDirUnusable,
        Code::HomeNotEmpty,
        Code::RoutesIgnored,
        Code::OwedHandlerForgotten,
        Code::OwedRecordUnreadable,
        Code::UnmanagedUser,
        Code::SessionsLeft,
        Code::AccessRemoved,
        Code::NodeLineKept,
        Code::NodeLeftOut,
        Code::TailnetBlocked,
        Code::MungeHost,
        Code::MungeDecode,
        Code::SlurmNode,
        Code::SlurmController,
        Code::AccountExpiring,
    ];

    /// The code as it appears in JSON: `uid-conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::CircuitLoad => "circuit-load",
            Code::NoCircuit => "no-circuit",
            Code::PowerFigure => "power-figure",
            Code::CoolingCapacity => "cooling-capacity",
            Code::CoolingUndeclared => "cooling-undeclared",
            Code::CoolingRuleOfThumb => "cooling-rule-of-thumb",
            Code::LinkSpeed => "link-speed",
            Code::NodeName => "node-name",
            Code::HostUnreachable => "host-unreachable",
            Code::ClockOffset => "clock-offset",
            Code::ClockSkew => "clock-skew",
            Code::LocalClock => "local-clock",
            Code::AccountsOk => "accounts-ok",
            Code::AccountsMissing => "accounts-missing",
            Code::UidConflict => "uid-conflict",
            Code::GidConflict => "gid-conflict",
            Code::UidTaken => "uid-taken",
            Code::GidTaken => "gid-taken",
            Code::FstabNotFile => "fstab-not-file",
            Code::FstabTooLarge => "fstab-too-large",
            Code::FstabBlockUnclosed => "fstab-block-unclosed",
            Code::HostsNotFile => "hosts-not-file",
            Code::HostsTooLarge => "hosts-too-large",
            Code::HostsBlockUnclosed => "hosts-block-unclosed",
            Code::GpuMissing => "gpu-missing",
            Code::GpuMismatch => "gpu-mismatch",
            Code::GpuUndeclared => "gpu-undeclared",
            Code::AssociationBusy => "association-busy",
            Code::SshDirUnusable => "ssh-dir-unusable",
            Code::HomeNotEmpty => "home-not-empty",
            Code::RoutesIgnored => "routes-ignored",
            Code::OwedHandlerForgotten => "owed-handler-forgotten",
            Code::OwedRecordUnreadable => "owed-record-unreadable",
            Code::UnmanagedUser => "unmanaged-user",
            Code::SessionsLeft => "sessions-left",
            Code::AccessRemoved => "access-removed",
            Code::NodeLineKept => "node-line-kept",
            Code::NodeLeftOut => "node-left-out",
            Code::TailnetBlocked => "tailnet-blocked",
            Code::MungeHost => "munge-host",
            Code::MungeDecode => "munge-decode",
            Code::SlurmNode => "slurm-node",
            Code::SlurmController => "slurm-controller",
            Code::AccountExpiring => "account-expiring",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding. Built with [`Diagnostic::error`] (or `warning`, `info`, `ok`), then
/// [`Diagnostic::on`] a host, [`Diagnostic::hint`] and [`Diagnostic::from_check`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// The preflight check that found it (power, cooling, network, clock, uids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckKind>,
    /// The host it was found on; `None` for the cluster or this machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What it is about: a user, a group, a path, a circuit, a node, `cluster`, ...
    pub subject: String,
    /// One sentence that names the offending value.
    pub message: String,
    /// What to do about it; the text form appends it after `; `.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(
        severity: Severity,
        code: Code,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            check: None,
            host: None,
            subject: subject.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn error(code: Code, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Error, code, subject, message)
    }

    pub fn warning(code: Code, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Warning, code, subject, message)
    }

    pub fn info(code: Code, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Info, code, subject, message)
    }

    pub fn ok(code: Code, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Ok, code, subject, message)
    }

    /// Found on `host`.
    pub fn on(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// With advice on what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Found by the preflight check `check`.
    pub fn from_check(mut self, check: CheckKind) -> Self {
        self.check = Some(check);
        self
    }

    /// The message with its hint: `message; hint`.
    pub fn text(&self) -> String {
        match &self.hint {
            Some(h) => format!("{}; {h}", self.message),
            None => self.message.clone(),
        }
    }

    /// The one rule for what stops apply: an error refuses what it is about (the whole
    /// apply for a cluster-wide preflight error unless `--force`, the host for a host's
    /// conflict). `plan` exits 1 by the same rule (see [`crate::plan::Plan::apply_refuses`]).
    pub fn refuses_apply(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The worst severity among `diagnostics` (`Ok` when there are none).
pub fn worst(diagnostics: &[Diagnostic]) -> Severity {
    diagnostics
        .iter()
        .map(|d| d.severity)
        .max()
        .unwrap_or(Severity::Ok)
}

/// Where a diagnostic is shown; each has its own line form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// In the text plan: `warning: ...`, `! conflict: ...`, `? ...`, and
    /// `warning: preflight power error: ...` for a preflight finding.
    Plan,
    /// In `closetctl check`: `error: ...`, `warning: ...`, `ok: ...`.
    Check,
    /// In the verification after apply: `ok   munge node1 -> head: decoded`, `FAIL ...`.
    Verify,
}

/// One diagnostic as one line of text (no indent, no newline). Readable without colour.
pub fn line(d: &Diagnostic, form: Form, style: Style) -> String {
    let text = d.text();
    match form {
        Form::Plan => match (d.check, d.severity) {
            (Some(check), severity) => format!(
                "{} preflight {} {}: {text}",
                style.yellow("warning:"),
                check.as_str(),
                severity.as_str()
            ),
            (None, Severity::Error) => format!("{} conflict: {text}", style.red("!")),
            (None, Severity::Warning) => format!("{} {text}", style.yellow("warning:")),
            (None, Severity::Info) => format!("? {text}"),
            (None, Severity::Ok) => format!("ok: {text}"),
        },
        Form::Check => match d.severity {
            Severity::Error => format!("{} {text}", style.red("error:")),
            Severity::Warning => format!("{} {text}", style.yellow("warning:")),
            Severity::Info => format!("info: {text}"),
            Severity::Ok => format!("ok: {text}"),
        },
        Form::Verify => {
            let what = match d.code {
                Code::MungeHost => format!("munge on {}", d.subject),
                Code::MungeDecode => format!("munge {}", d.subject),
                Code::SlurmNode => format!("slurm {}", d.subject),
                Code::SlurmController => "slurm".to_string(),
                other => format!("{other} {}", d.subject),
            };
            let verdict = if d.severity == Severity::Error {
                "FAIL"
            } else {
                "ok  "
            };
            format!("{verdict} {what}: {text}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_kebab_case_names() {
        for code in Code::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
        let mut sorted = Code::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), Code::ALL.len(), "each code once");
    }

    #[test]
    fn every_code_is_documented() {
        let docs = include_str!("../../../docs/plan-json.md");
        for code in Code::ALL {
            assert!(
                docs.contains(&format!("| `{}` ", code.as_str())),
                "docs/plan-json.md has no row for `{code}`"
            );
        }
    }

    #[test]
    fn severities_order_ok_info_warning_error() {
        assert!(Severity::Ok < Severity::Info);
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Error);
        assert_eq!(worst(&[]), Severity::Ok);
    }

    #[test]
    fn the_json_form_leaves_out_what_is_not_there() {
        let d = Diagnostic::error(Code::UidConflict, "alice", "user `alice` has uid 1500 here")
            .on("node2")
            .hint("renumber it by hand");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"severity":"error","code":"uid-conflict","host":"node2","subject":"alice","message":"user `alice` has uid 1500 here","hint":"renumber it by hand"}"#
        );
        let p = Diagnostic::warning(Code::NoCircuit, "gpu1", "m").from_check(CheckKind::Power);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"severity":"warning","code":"no-circuit","check":"power","subject":"gpu1","message":"m"}"#
        );
    }

    #[test]
    fn each_form_renders_its_line() {
        let s = Style::plain();
        let conflict = Diagnostic::error(Code::GpuMissing, "gpus", "no GPUs").hint("fix `gpus`");
        assert_eq!(
            line(&conflict, Form::Plan, s),
            "! conflict: no GPUs; fix `gpus`"
        );
        assert_eq!(
            line(&conflict, Form::Check, s),
            "error: no GPUs; fix `gpus`"
        );
        let over =
            Diagnostic::error(Code::CircuitLoad, "wall", "over").from_check(CheckKind::Power);
        assert_eq!(
            line(&over, Form::Plan, s),
            "warning: preflight power error: over"
        );
        let note = Diagnostic::info(Code::UnmanagedUser, "carol", "left as is");
        assert_eq!(line(&note, Form::Plan, s), "? left as is");
        let w = Diagnostic::warning(Code::HomeNotEmpty, "/home", "not empty");
        assert_eq!(line(&w, Form::Plan, s), "warning: not empty");
        let decoded = Diagnostic::ok(Code::MungeDecode, "node1 -> head", "decoded").on("head");
        assert_eq!(
            line(&decoded, Form::Verify, s),
            "ok   munge node1 -> head: decoded"
        );
        let down = Diagnostic::error(Code::SlurmController, "head", "not connected");
        assert_eq!(line(&down, Form::Verify, s), "FAIL slurm: not connected");
        assert!(conflict.refuses_apply() && !w.refuses_apply());
    }
}
