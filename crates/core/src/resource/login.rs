//! Login resources: whether a person can still get in. For someone whose access ended
//! (`disabled`, or her `expires` day came) the account is kept — her files on `/home`
//! keep showing her name and her UID is never reused — but it is locked and expired,
//! her `authorized_keys` moved into closetctl's root-only backup and, when asked, her
//! processes ended. For everyone else her `expires` day is set on the account, so
//! access ends on that day even if nobody runs closetctl.
//!
//! Each is its own plan line. Facts come from one probe command that prints, per
//! `/etc/shadow` entry, the name, the first character of the password field (never
//! the hash) and the expiry day; and, while someone's access is ending, one `ps`.

use super::{Action, Change, ResourceKind};
use crate::facts::probe::ProbeRequest;
use crate::facts::{FileKind, HostFacts};
use crate::inventory::Expiry;
use crate::ops::Op;
use crate::shell::quote;
use std::collections::BTreeMap;

/// Probe command: `name:C:expire` per `/etc/shadow` entry, `C` the password field's
/// first character only (`!` when locked), `expire` in days since 1970-01-01 or empty.
pub const SHADOW_FACTS: &str = "accounts-shadow";
pub const SHADOW_COMMAND: &str =
    "awk -F: '{ print $1 \":\" substr($2, 1, 1) \":\" $8 }' /etc/shadow";
/// Probe command: `uid pid` per process.
pub const PROCESSES_FACTS: &str = "processes";
pub const PROCESSES_COMMAND: &str = "ps -e -o uid= -o pid=";

/// The expiry day `usermod -e 1` sets: 1970-01-02, long past.
pub const EXPIRED_DAY: i64 = 1;

/// What the shadow file says about one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowEntry {
    /// The password field starts with `!` or `*`: no password login.
    pub locked: bool,
    /// Expiry day (days since 1970-01-01), `None` for never.
    pub expires: Option<i64>,
}

/// The shadow entries by name; `None` when the probe command did not answer.
pub fn shadow(facts: &HostFacts) -> Option<BTreeMap<String, ShadowEntry>> {
    let out = facts
        .commands
        .get(SHADOW_FACTS)
        .filter(|c| c.exit_code == 0)?;
    Some(
        out.stdout
            .lines()
            .filter_map(|l| {
                let mut p = l.trim().splitn(3, ':');
                let name = p.next().filter(|n| !n.is_empty())?;
                let first = p.next()?;
                let expires = p.next()?.trim().parse().ok();
                Some((
                    name.to_string(),
                    ShadowEntry {
                        locked: first.starts_with(['!', '*']),
                        expires,
                    },
                ))
            })
            .collect(),
    )
}

/// Process ids per uid; `None` when `ps` did not answer.
pub fn processes(facts: &HostFacts) -> Option<BTreeMap<u32, Vec<u32>>> {
    let out = facts
        .commands
        .get(PROCESSES_FACTS)
        .filter(|c| c.exit_code == 0)?;
    let mut by_uid: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for l in out.stdout.lines() {
        let mut w = l.split_whitespace();
        if let (Some(Ok(uid)), Some(Ok(pid))) = (w.next().map(str::parse), w.next().map(str::parse))
        {
            by_uid.entry(uid).or_default().push(pid);
        }
    }
    Some(by_uid)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Her access ended: password locked and account expired (`usermod -L -e 1`).
    Lock { user: String, why: String },
    /// Her account expires on this day, or never: `chage -E`. An account closetctl
    /// locked before (expired on [`EXPIRED_DAY`]) is unlocked again: re-enabled.
    Expiry {
        user: String,
        expires: Option<Expiry>,
    },
    /// Her `authorized_keys` moved into closetctl's root-only backup, read and removed
    /// as her (never by root inside her home).
    Keys {
        user: String,
        group: String,
        path: String,
    },
    /// Her processes and sessions ended (`apply --end-sessions`).
    Sessions { user: String, uid: u32 },
    /// Her home tarred into the root-only archive (`archive_home`), read as her, before
    /// her keys leave it; done once: an archive already there is kept.
    Archive {
        user: String,
        group: String,
        home: String,
        archive: String,
    },
}

impl Login {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Login::Lock { .. } => ResourceKind::Login,
            Login::Expiry { .. } => ResourceKind::Expiry,
            Login::Keys { .. } => ResourceKind::AuthorizedKeys,
            Login::Sessions { .. } => ResourceKind::Sessions,
            Login::Archive { .. } => ResourceKind::HomeArchive,
        }
    }

    pub fn probe(&self, req: &mut ProbeRequest) {
        req.commands
            .insert(SHADOW_FACTS.into(), SHADOW_COMMAND.into());
        match self {
            Login::Keys { user, group, path } => {
                req.owned_files
                    .entry((user.clone(), group.clone()))
                    .or_default()
                    .insert(path.clone());
            }
            Login::Sessions { .. } => {
                req.commands
                    .insert(PROCESSES_FACTS.into(), PROCESSES_COMMAND.into());
            }
            Login::Archive { archive, .. } => {
                req.files.insert(archive.clone());
            }
            _ => {}
        }
    }

    pub fn diff(&self, facts: &HostFacts) -> Option<Change> {
        let shadow = shadow(facts);
        let entry = |user: &str| shadow.as_ref().and_then(|s| s.get(user).copied());
        // An account that does not exist yet is created earlier in the same step.
        let absent = |user: &str| !facts.users.contains_key(user);
        match self {
            Login::Lock { user, why } => {
                let done = entry(user).is_some_and(|e| e.locked && e.expires == Some(EXPIRED_DAY));
                if done || (shadow.is_none() && !absent(user)) {
                    return None;
                }
                let mut c = Change::new(ResourceKind::Login, user, Action::Remove);
                c.details.push(format!(
                    "lock and expire the account ({why}); it stays, with her uid and files"
                ));
                c.ops
                    .push(Op::Command(format!("usermod -L -e 1 {}", quote(user))));
                Some(c)
            }
            Login::Expiry { user, expires } => {
                let want = expires.map(|e| e.day);
                let current = match entry(user) {
                    Some(e) => e.expires,
                    None if absent(user) => None,
                    None => return None,
                };
                if current == want {
                    return None;
                }
                let show =
                    |d: Option<i64>| d.map_or("never".to_string(), crate::inventory::date_of);
                let mut c = Change::new(ResourceKind::Expiry, user, Action::Update);
                c.details.push(format!(
                    "account expires {} -> {}",
                    show(current),
                    show(want)
                ));
                let value = expires.map_or("-1".to_string(), |e| quote(&e.date()));
                c.ops
                    .push(Op::Command(format!("chage -E {value} {}", quote(user))));
                if current == Some(EXPIRED_DAY) {
                    c.details
                        .push("re-enabled: unlock the account closetctl locked".into());
                    c.ops.push(Op::Command(format!(
                        "usermod -U {} 2>/dev/null || :",
                        quote(user)
                    )));
                }
                Some(c)
            }
            Login::Keys { path, .. } => {
                let f = facts.files.get(path)?;
                if !matches!(f.kind, FileKind::File | FileKind::Symlink) {
                    return None;
                }
                let mut c = Change::new(ResourceKind::AuthorizedKeys, path, Action::Remove);
                c.details.push(format!(
                    "moved into {}{path} (root-only); re-enabling installs her keys from the inventory",
                    crate::ops::BACKUP_DIR
                ));
                let Login::Keys { user, group, .. } = self else {
                    unreachable!()
                };
                c.ops.push(Op::Stash {
                    path: path.clone(),
                    owner: user.clone(),
                    group: group.clone(),
                });
                Some(c)
            }
            Login::Archive {
                user,
                group,
                home,
                archive,
            } => {
                if facts.files.contains_key(archive) {
                    return None;
                }
                let mut c = Change::new(ResourceKind::HomeArchive, home, Action::Create);
                c.details.push(format!(
                    "tar it into {archive} (root-only), read as {user}; her files stay where they are"
                ));
                c.ops.push(Op::ArchiveHome {
                    home: home.clone(),
                    archive: archive.clone(),
                    owner: user.clone(),
                    group: group.clone(),
                });
                Some(c)
            }
            Login::Sessions { user, uid } => {
                let pids = processes(facts)?.remove(uid)?;
                let mut c = Change::new(ResourceKind::Sessions, user, Action::Remove);
                c.details.push(format!(
                    "end her {} process{} and sessions",
                    pids.len(),
                    if pids.len() == 1 { "" } else { "es" }
                ));
                c.ops.push(Op::Command(end_sessions(user)));
                Some(c)
            }
        }
    }
}

/// Ends every process and login session of `user`: `loginctl terminate-user` where
/// logind knows her, then `pkill -KILL -u` for the rest (exit 1: none left to end).
pub fn end_sessions(user: &str) -> String {
    let u = quote(user);
    format!("loginctl terminate-user {u} >/dev/null 2>&1; pkill -KILL -u {u}; [ $? -le 1 ]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{CommandOutput, PasswdEntry};

    fn facts(shadow: &str) -> HostFacts {
        let mut f = HostFacts::default();
        f.users.insert(
            "alice".into(),
            PasswdEntry {
                uid: 1001,
                gid: 1001,
                gecos: String::new(),
                home: "/home/alice".into(),
                shell: "/bin/bash".into(),
            },
        );
        f.commands.insert(
            SHADOW_FACTS.into(),
            CommandOutput {
                exit_code: 0,
                stdout: shadow.into(),
            },
        );
        f
    }

    #[test]
    fn a_locked_and_expired_account_is_no_change_and_an_open_one_is_locked() {
        let lock = Login::Lock {
            user: "alice".into(),
            why: "disabled".into(),
        };
        assert!(lock.diff(&facts("alice:!:1\n")).is_none());
        let c = lock.diff(&facts("alice:!:\n")).unwrap();
        assert_eq!(c.resource(), "login alice");
        assert_eq!(c.action, Action::Remove);
        assert_eq!(format!("{:?}", c.ops), "[run `usermod -L -e 1 'alice'`]");
    }

    #[test]
    fn expiry_is_set_cleared_and_a_locked_account_is_reenabled() {
        let on = |d: Option<&str>| Login::Expiry {
            user: "alice".into(),
            expires: d.map(|d| Expiry::parse(d).unwrap()),
        };
        assert!(on(None).diff(&facts("alice:!:\n")).is_none());
        assert!(on(Some("2030-06-30"))
            .diff(&facts("alice:!:22095\n"))
            .is_none());
        let c = on(Some("2030-06-30")).diff(&facts("alice:!:\n")).unwrap();
        assert_eq!(c.details, ["account expires never -> 2030-06-30"]);
        assert_eq!(
            format!("{:?}", c.ops),
            "[run `chage -E '2030-06-30' 'alice'`]"
        );
        let back = on(None).diff(&facts("alice:!:1\n")).unwrap();
        assert_eq!(back.details[0], "account expires 1970-01-02 -> never");
        assert_eq!(
            format!("{:?}", back.ops),
            "[run `chage -E -1 'alice'`, run `usermod -U 'alice' 2>/dev/null || :`]"
        );
    }

    #[test]
    fn the_probe_never_reads_the_password_hash() {
        // Only the first character of the password field leaves the host.
        assert!(SHADOW_COMMAND.contains("substr($2, 1, 1)"));
        assert!(!SHADOW_COMMAND.contains("$2 ") && !SHADOW_COMMAND.contains("$0"));
        let f = facts("alice:$:1\n");
        assert_eq!(
            shadow(&f).unwrap()["alice"],
            ShadowEntry {
                locked: false,
                expires: Some(1)
            }
        );
    }
}
