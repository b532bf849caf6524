//! File resource: content (rendered from a template or read from a secret), owner,
//! group and mode. Text changes are shown as a unified diff; secrets only as
//! fingerprints, "matches" or "differs", never their content.

use super::{attribute_details, mode_text, Action, Change, ResourceKind, SecretState};
use crate::facts::{FileKind, HostFacts};
use crate::ops::{Actor, Op};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct File {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: u32,
    pub content: Vec<u8>,
    /// The secret's name when the content is secret.
    pub secret: Option<String>,
    /// How a content change disturbs running work.
    pub disruption: Option<Disruption>,
    /// Root, or the owner for a file inside her own home.
    pub actor: Actor,
}

/// Decides how one change of a file's content disturbs running work (`none`,
/// `reconfigure`, `restart`) from the old content (when known) and the new.
pub type Classifier = fn(Option<&str>, &[u8]) -> &'static str;

/// How a change to a file disturbs running work; the handlers that watch it may fire
/// only for some labels (`scontrol reconfigure` for `reconfigure`, a restart for `restart`).
#[derive(Clone, Copy)]
pub enum Disruption {
    /// The same label for every change (`none`, `reconfigure`, `remount`, `restart`).
    Fixed(&'static str),
    /// Decided per change by the concern that owns the file's label.
    Classified(Classifier),
}

impl Disruption {
    /// The label of a change from `old` to `new`.
    pub fn label(&self, old: Option<&str>, new: &[u8]) -> &'static str {
        match self {
            Disruption::Fixed(label) => label,
            Disruption::Classified(classify) => classify(old, new),
        }
    }
}

/// The disruption labels every file or handler may carry, least disruptive first.
pub const DISRUPTIONS: &[&str] = &["none", "reconfigure", "remount", "restart"];

/// How disruptive a label is, to pick the worst of several changes.
pub fn disruption_rank(label: &str) -> u8 {
    match label {
        "restart" => 2,
        "reconfigure" => 1,
        _ => 0,
    }
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "File({}, {} bytes{})",
            self.path,
            self.content.len(),
            if self.secret.is_some() {
                ", secret"
            } else {
                ""
            }
        )
    }
}

/// `sha256:` and the first 16 hex digits: enough to compare, nothing to recover.
pub fn fingerprint(bytes: &[u8]) -> String {
    let hex = format!("{:x}", Sha256::digest(bytes));
    format!("sha256:{}", &hex[..16])
}

fn short(hex: &str) -> String {
    format!("sha256:{}", &hex[..hex.len().min(16)])
}

impl File {
    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        let desired_hash = format!("{:x}", Sha256::digest(&self.content));
        let current = facts.files.get(&self.path);
        let (action, content_differs, mut details) = match current {
            None => (
                Action::Create,
                true,
                vec![format!(
                    "{}:{} {}",
                    self.owner,
                    self.group,
                    mode_text(self.mode)
                )],
            ),
            Some(cur) if cur.kind != FileKind::File => (
                Action::Update,
                true,
                vec![format!("replaces a {:?}", cur.kind).to_lowercase()],
            ),
            // An owner cannot chown a file someone else left in her directory, but she
            // can replace it: rewrite it, as her.
            Some(cur) => (
                Action::Update,
                cur.sha256.as_deref() != Some(&desired_hash)
                    || (self.actor == Actor::Owner && cur.owner != self.owner),
                attribute_details(&self.owner, &self.group, self.mode, cur),
            ),
        };
        if !content_differs && details.is_empty() {
            return None;
        }
        let mut c = Change::new(ResourceKind::File, &self.path, action);
        if let Some(name) = &self.secret {
            let current_hash = current.and_then(|f| f.sha256.as_deref()).map(short);
            c.secret = Some(SecretState {
                name: name.clone(),
                desired: fingerprint(&self.content),
                matches: !content_differs,
                current: current_hash,
            });
        } else if content_differs {
            // What the host has, as text: exact, or (not UTF-8) decoded for display only.
            let old = match current {
                // Nothing, or a link or directory that the file replaces: all is new.
                None => Some(String::new()),
                Some(f) if f.kind != FileKind::File => Some(String::new()),
                Some(f) => f.content.clone().or_else(|| {
                    f.bytes
                        .as_deref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                }),
            };
            match old {
                Some(old) => {
                    let new = String::from_utf8_lossy(&self.content);
                    c.diff = Some(unified(&old, &new, &self.path));
                    let exact =
                        current.is_none_or(|f| f.content.is_some() || f.kind != FileKind::File);
                    if !exact || std::str::from_utf8(&self.content).is_err() {
                        details.push(
                            "not UTF-8: the diff shows undecodable bytes as \u{fffd}; every byte outside the change is written back as it was"
                                .to_string(),
                        );
                    }
                }
                None => details.push(format!(
                    "content {} (not shown: binary or large)",
                    fingerprint(&self.content)
                )),
            }
        }
        if content_differs {
            let old = current.and_then(|f| f.content.as_deref());
            c.disruption = self
                .disruption
                .map(|d| d.label(old, &self.content).to_string());
            c.ops.push(Op::WriteFile {
                path: self.path.clone(),
                owner: self.owner.clone(),
                group: self.group.clone(),
                mode: self.mode,
                content: self.content.clone(),
                actor: self.actor,
            });
        } else {
            c.ops.push(Op::SetAttributes {
                path: self.path.clone(),
                owner: self.owner.clone(),
                group: self.group.clone(),
                mode: self.mode,
                actor: self.actor,
            });
        }
        c.details = details;
        Some(c)
    }
}

/// A unified diff with three lines of context.
pub fn unified(old: &str, new: &str, path: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(path, path)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FileState;

    fn facts_with(path: &str, content: &[u8], mode: u32) -> HostFacts {
        let mut f = HostFacts::default();
        f.files.insert(
            path.into(),
            FileState {
                kind: FileKind::File,
                mode,
                owner: "root".into(),
                group: "root".into(),
                size: content.len() as u64,
                sha256: Some(format!("{:x}", Sha256::digest(content))),
                content: std::str::from_utf8(content).ok().map(String::from),
                bytes: Some(content.to_vec()),
            },
        );
        f
    }

    fn file(path: &str, content: &[u8], secret: bool) -> File {
        File {
            path: path.into(),
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            content: content.to_vec(),
            secret: secret.then(|| "key".into()),
            disruption: None,
            actor: Actor::Root,
        }
    }

    #[test]
    fn same_content_and_attributes_is_no_change() {
        let facts = facts_with("/etc/x", b"a\n", 0o644);
        assert!(file("/etc/x", b"a\n", false).diff(&facts).is_none());
    }

    #[test]
    fn mode_only_change_sets_attributes_without_rewriting() {
        let facts = facts_with("/etc/x", b"a\n", 0o600);
        let c = file("/etc/x", b"a\n", false).diff(&facts).unwrap();
        assert_eq!(c.details, vec!["mode 0600 -> 0644"]);
        assert!(matches!(c.ops[0], Op::SetAttributes { .. }));
    }

    #[test]
    fn a_file_that_is_not_utf8_is_shown_decoded_and_said_so() {
        let facts = facts_with("/etc/fstab", b"# caf\xe9\n/ ext4\n", 0o644);
        let c = file(
            "/etc/fstab",
            b"# caf\xe9\n/ ext4\nh:/home /home nfs\n",
            false,
        )
        .diff(&facts)
        .unwrap();
        let diff = c.diff.unwrap();
        assert!(diff.contains("+h:/home /home nfs"), "{diff}");
        assert!(diff.contains(" # caf\u{fffd}"), "{diff}");
        assert!(c.details[0].starts_with("not UTF-8"), "{:?}", c.details);
    }

    #[test]
    fn secrets_show_fingerprints_never_content() {
        let facts = facts_with("/etc/k", b"OLD-SECRET", 0o644);
        let c = file("/etc/k", b"NEW-SECRET", true).diff(&facts).unwrap();
        let s = c.secret.clone().unwrap();
        assert!(!s.matches);
        assert_eq!(s.desired, fingerprint(b"NEW-SECRET"));
        assert_eq!(s.current.unwrap(), fingerprint(b"OLD-SECRET"));
        assert!(c.diff.is_none());
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("SECRET"), "{json}");
    }
}
