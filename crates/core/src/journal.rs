//! The journal of owed handlers on each host: `/var/lib/closetctl/owed/`, one file per
//! handler.
//!
//! Before a step changes anything, its script records every handler its changes will
//! fire, in this step or a later one (`slurm.conf` written in `slurm-node-config` owes
//! `restart slurmd` of `slurm-compute`). A handler's record is removed right after the
//! handler ran. So when an apply stops between a change and its handler (Ctrl-C, a
//! killed closetctl, a lost link), the record stays; the next probe reads it, the plan
//! shows `handler owed by an interrupted apply: ...`, and apply runs the handler even
//! though no file differs any more.
//!
//! A record is written to a temporary name and renamed, and never overwrites one that
//! is already there, so a record is whole or absent. A record that is absent because
//! the script died while writing it is harmless: the step had not changed anything yet.

use crate::shell::quote;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the records live on each host.
pub const OWED_DIR: &str = "/var/lib/closetctl/owed";

/// One handler a host is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owed {
    /// The step the handler belongs to.
    pub step: String,
    /// The handler's name in that step.
    pub handler: String,
    /// What it does, for people: `restart munge.service`.
    pub action: String,
    /// The changes that fired it: `file /etc/munge/munge.key`.
    pub because: Vec<String>,
    /// Files to restore if a restart does not come back.
    #[serde(default)]
    pub restore: Vec<String>,
    /// The run (lock run id) that recorded it, and the step that was about to change.
    pub run: String,
    pub recorded_by: String,
}

impl Owed {
    /// The record's file name: the same handler always gets the same name.
    pub fn id(&self) -> String {
        id(&self.step, &self.handler)
    }

    /// The one-line record.
    pub fn line(&self) -> String {
        serde_json::to_string(self).expect("a record serializes")
    }
}

/// The record name of handler `handler` of step `step`.
pub fn id(step: &str, handler: &str) -> String {
    let digest = Sha256::digest(format!("{step}\0{handler}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Shell functions of a step script: `cc_owe ID LINE` records a handler (unless it is
/// already recorded), `cc_paid ID` removes the record after the handler ran.
pub const PRELUDE: &str = r#"cc_owe() {
  D=/var/lib/closetctl/owed
  [ -e "$D/$1" ] && return 0
  { [ -d "$D" ] || mkdir -p "$D"; } && printf '%s\n' "$2" > "$D/.$1.tmp" && mv -f "$D/.$1.tmp" "$D/$1"
}
cc_paid() { rm -f "/var/lib/closetctl/owed/$1"; }
"#;

/// The probe's section: every record, one per line (shell builtins only).
pub const SECTION: &str = r#"printf '@@closetctl owed\n'
for f in /var/lib/closetctl/owed/*; do
  [ -f "$f" ] || continue
  while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done < "$f"
done
"#;

/// The lines recording `owed` (before the step's first op).
pub fn owe_lines(owed: &[Owed]) -> String {
    owed.iter()
        .map(|o| format!("cc_owe {} {}\n", o.id(), quote(&o.line())))
        .collect()
}

/// The line clearing a record (after its handler's op).
pub fn paid_line(id: &str) -> String {
    format!("cc_paid {id}\n")
}

/// Read the probe's section: the records, and the lines that are not one.
pub fn parse_section(body: &str) -> (Vec<Owed>, Vec<String>) {
    let mut owed = Vec::new();
    let mut unreadable = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Owed>(line) {
            Ok(o) if !owed.contains(&o) => owed.push(o),
            Ok(_) => {}
            Err(_) => unreadable.push(line.to_string()),
        }
    }
    (owed, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(handler: &str) -> Owed {
        Owed {
            step: "munge".into(),
            handler: handler.into(),
            action: "restart munge.service".into(),
            because: vec!["file /etc/munge/munge.key".into()],
            restore: vec!["/etc/munge/munge.key".into()],
            run: "3f9a0c1d22aa0011".into(),
            recorded_by: "munge".into(),
        }
    }

    #[test]
    fn records_are_written_once_read_back_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_str().unwrap();
        let at = |s: &str| s.replace("/var/lib/closetctl", base);
        let a = owed("restart munged");
        let b = Owed {
            action: "it's \"quoted\" $(x)".into(),
            ..owed("second")
        };
        let script = at(&format!("{PRELUDE}{}", owe_lines(&[a.clone(), b.clone()])));
        let sh = |s: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(s)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        sh(&script);
        let read = sh(&at(SECTION));
        let body = read.strip_prefix("@@closetctl owed\n").unwrap();
        let (mut got, bad) = parse_section(body);
        got.sort_by(|x, y| x.handler.cmp(&y.handler));
        assert_eq!(got, vec![a.clone(), b.clone()]);
        assert!(bad.is_empty());
        // Recording again keeps the first record.
        let changed = Owed {
            run: "another".into(),
            ..a.clone()
        };
        sh(&at(&format!("{PRELUDE}{}", owe_lines(&[changed]))));
        let (got, _) = parse_section(sh(&at(SECTION)).strip_prefix("@@closetctl owed\n").unwrap());
        assert!(got.contains(&a));
        sh(&at(&format!("{PRELUDE}{}", paid_line(&a.id()))));
        let (got, _) = parse_section(sh(&at(SECTION)).strip_prefix("@@closetctl owed\n").unwrap());
        assert_eq!(got, vec![b]);
        // No leftover temporary files.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("owed"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn ids_name_the_handler_not_the_run() {
        assert_eq!(owed("x").id(), id("munge", "x"));
        assert_ne!(id("munge", "x"), id("munge", "y"));
        assert_ne!(id("a", "bc"), id("ab", "c"));
        assert_eq!(id("munge", "x").len(), 16);
    }

    #[test]
    fn unreadable_lines_are_reported_not_fatal() {
        let (o, bad) = parse_section("{\"step\": \"x\"\nnot json\n\n");
        assert!(o.is_empty());
        assert_eq!(bad.len(), 2);
    }
}
