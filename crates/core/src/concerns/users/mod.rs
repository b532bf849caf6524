//! The users module: the inventory's groups and users, the same on every host.
//!
//! Groups come before users; each user gets their home (where `/home` is local: on
//! every host without NFS, on the NFS server with it) and `~/.ssh/authorized_keys`.
//! Before anything changes, [`conflicts`] compares the inventory with the live
//! accounts: a UID or GID held by another name, or an account with another ID, is a
//! conflict. closetctl never renumbers an account (files on NFS would be orphaned).
//!
//! A home belongs to its user, so what closetctl puts inside it (`~/.ssh` and its
//! keys) is written *as that user* ([`Actor::Owner`]); only the home directory itself,
//! in root's `/home`, is made by root. A `~/.ssh` that is a symbolic link is never
//! used: that user's keys are left out (and [`warnings`] names her) while everyone
//! else's are installed.

pub mod ids;

use ids::{id_state, IdState};

use crate::diagnostic::{Code, Diagnostic};
use crate::facts::{FileKind, HostFacts};
use crate::inventory::{Host, Inventory, User};
use crate::ops::Actor;
use crate::facts::probe::ProbeRequest;
use crate::resource::login::{self, Login, PROCESSES_COMMAND, PROCESSES_FACTS};
use crate::resource::{Directory, File, Resource, UserAccount};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The `users` concern: groups, accounts, homes and SSH keys.
pub struct Users;

impl super::Concern for Users {
    fn name(&self) -> &'static str {
        "users"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[("10-users.toml", include_str!("10-users.toml"))]
    }
    fn modules(&self) -> &'static [&'static str] {
        &["users"]
    }
    fn resources(&self, _module: &str, i: &super::HostInputs) -> Vec<Resource> {
        resources(i.inventory, i.host, i.facts)
    }
    fn host_warnings(&self, inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        let mut out = warnings(inventory, host, facts);
        out.extend(sessions_left(inventory, facts));
        out
    }
    fn probe(&self, inventory: &Inventory, _host: &Host) -> ProbeRequest {
        let mut req = ProbeRequest::default();
        req.commands
            .insert(HOME_OWNERS_FACTS.into(), home_owners_command(inventory));
        if inventory.ended_users().next().is_some() {
            req.commands
                .insert(PROCESSES_FACTS.into(), PROCESSES_COMMAND.into());
        }
        req
    }
    fn conflicts(&self, inventory: &Inventory, _host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        conflicts(inventory, facts)
    }
    fn unmanaged(&self, inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
        unmanaged(inventory, facts)
    }
    fn plan_summary(&self, inventory: &Inventory, plan: &crate::plan::Plan) -> Vec<Diagnostic> {
        access_summary(inventory, plan)
    }
}

/// `~/.ssh` of a user.
fn ssh_dir(user: &User) -> String {
    format!("{}/.ssh", user.home)
}

/// Why a user's `~/.ssh` cannot be used on this host, if it cannot: her home or
/// `~/.ssh` is a link, `~/.ssh` is not a directory or not hers, `authorized_keys` is
/// not a file. closetctl does not work around any of these as root; she (or an admin)
/// fixes it, and her keys are installed by the next apply.
fn unusable_ssh_dir(user: &User, facts: &HostFacts) -> Option<String> {
    let ssh = ssh_dir(user);
    let keys = format!("{ssh}/authorized_keys");
    let state = |p: &str| facts.files.get(p);
    for p in [&user.home, &ssh] {
        if state(p).is_some_and(|f| f.kind == FileKind::Symlink) {
            return Some(format!("`{p}` is a symbolic link"));
        }
    }
    match state(&ssh) {
        Some(f) if f.kind != FileKind::Directory => {
            return Some(format!("`{ssh}` is not a directory"))
        }
        Some(f) if f.owner != user.name => {
            return Some(format!("`{ssh}` belongs to `{}`, not to her", f.owner))
        }
        _ => {}
    }
    match state(&keys) {
        Some(f) if !matches!(f.kind, FileKind::File | FileKind::Symlink) => {
            Some(format!("`{keys}` is not a file"))
        }
        _ => None,
    }
}

/// `facts` is `None` while the probe request is built: every path is asked for.
pub fn resources(inventory: &Inventory, host: &Host, facts: Option<&HostFacts>) -> Vec<Resource> {
    let groups = inventory.managed_groups();
    // One set shared by every user's resource (cloning it per user per host was a third
    // of a 500-host plan).
    let managed: Arc<BTreeSet<String>> = Arc::new(groups.iter().map(|g| g.name.clone()).collect());
    let local_home = inventory.home_is_local(host);
    let mut out: Vec<Resource> = groups
        .iter()
        .map(|g| Resource::Group {
            name: g.name.clone(),
            gid: g.gid,
        })
        .collect();
    for u in &inventory.users {
        out.push(Resource::User(UserAccount {
            name: u.name.clone(),
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            shell: u.shell.clone(),
            home: u.home.clone(),
            comment: u.comment.clone().unwrap_or_default(),
            create_home: local_home,
            managed_groups: managed.clone(),
        }));
        let ended = u.access_ended(inventory.run.today);
        if ended {
            out.push(Resource::Login(Login::Lock {
                user: u.name.clone(),
                why: u.ended_because(),
            }));
            if inventory.run.end_sessions {
                out.push(Resource::Login(Login::Sessions {
                    user: u.name.clone(),
                    uid: u.uid,
                }));
            }
        } else {
            out.push(Resource::Login(Login::Expiry {
                user: u.name.clone(),
                expires: u.expires,
            }));
        }
        if !local_home {
            continue;
        }
        out.push(Resource::Directory(Directory {
            path: u.home.clone(),
            owner: u.name.clone(),
            group: u.primary_group.clone(),
            mode: 0o700,
            actor: Actor::Root,
        }));
        if ended {
            if u.archive_home {
                out.push(Resource::Login(Login::Archive {
                    user: u.name.clone(),
                    group: u.primary_group.clone(),
                    home: u.home.clone(),
                    archive: format!("{}/{}.tar.gz", crate::ops::ARCHIVE_DIR, u.name),
                }));
            }
            // Whatever keys she has, the inventory's or her own, leave with her.
            out.push(Resource::Login(Login::Keys {
                user: u.name.clone(),
                group: u.primary_group.clone(),
                path: format!("{}/authorized_keys", ssh_dir(u)),
            }));
            continue;
        }
        if u.ssh_keys.is_empty() || facts.is_some_and(|f| unusable_ssh_dir(u, f).is_some()) {
            continue;
        }
        let ssh_dir = ssh_dir(u);
        out.push(Resource::Directory(Directory {
            path: ssh_dir.clone(),
            owner: u.name.clone(),
            group: u.primary_group.clone(),
            mode: 0o700,
            actor: Actor::Owner,
        }));
        let mut content =
            String::from("# Managed by closetctl from the inventory; local edits are replaced.\n");
        for k in &u.ssh_keys {
            content.push_str(k);
            content.push('\n');
        }
        out.push(Resource::File(File {
            path: format!("{ssh_dir}/authorized_keys"),
            owner: u.name.clone(),
            group: u.primary_group.clone(),
            mode: 0o600,
            content: content.into_bytes(),
            secret: None,
            disruption: None,
            actor: Actor::Owner,
        }));
    }
    out
}

/// Users whose keys are left out on this host because their `~/.ssh` cannot be used
/// (see `unusable_ssh_dir`).
pub fn warnings(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    if !inventory.home_is_local(host) {
        return Vec::new();
    }
    inventory
        .users
        .iter()
        .filter(|u| !u.ssh_keys.is_empty())
        .filter_map(|u| {
            let why = unusable_ssh_dir(u, facts)?;
            Some(
                Diagnostic::warning(Code::SshDirUnusable, &u.name, format!("user `{}`: {why}", u.name))
                    .hint("closetctl does not work around it as root, so her SSH keys are not installed here until `~/.ssh` is her own directory"),
            )
        })
        .collect()
}

/// People whose access ended but who still run processes here, when apply was not
/// asked to end them (`--end-sessions`).
pub fn sessions_left(inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
    if inventory.run.end_sessions {
        return Vec::new();
    }
    let Some(procs) = login::processes(facts) else {
        return Vec::new();
    };
    inventory
        .ended_users()
        .filter_map(|u| {
            let pids = procs.get(&u.uid)?;
            Some(
                Diagnostic::warning(
                    Code::SessionsLeft,
                    &u.name,
                    format!(
                        "user `{}` ({}) still has {} process{} here",
                        u.name,
                        u.ended_because(),
                        pids.len(),
                        if pids.len() == 1 { "" } else { "es" }
                    ),
                )
                .hint("her account is locked, but what runs keeps running; `closetctl apply --end-sessions` ends it"),
            )
        })
        .collect()
}

/// Accounts on the host that contradict the inventory (see [`ids`] for the rule).
pub fn conflicts(inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let groups = facts.groups.iter().map(|(n, e)| (n.as_str(), e.gid));
    for g in inventory.managed_groups() {
        match id_state(&g.name, g.gid, groups.clone()) {
            IdState::OtherId(have) => out.push(Diagnostic::error(
                Code::GidConflict,
                &g.name,
                format!(
                    "group `{}` has gid {have} here; the inventory says {}",
                    g.name, g.gid
                ),
            )),
            IdState::HeldBy(holder) => out.push(Diagnostic::error(
                Code::GidTaken,
                &g.name,
                format!(
                    "gid {} for group `{}` is already held here by group `{holder}`",
                    g.gid, g.name
                ),
            )),
            IdState::Same | IdState::Missing => {}
        }
    }
    let users = facts.users.iter().map(|(n, e)| (n.as_str(), e.uid));
    for u in &inventory.users {
        match id_state(&u.name, u.uid, users.clone()) {
            IdState::OtherId(have) => out.push(Diagnostic::error(
                Code::UidConflict,
                &u.name,
                format!(
                    "user `{}` has uid {have} here; the inventory says {} (closetctl will not renumber it: files owned by {have} would be orphaned)",
                    u.name, u.uid
                ),
            )),
            IdState::HeldBy(holder) => out.push(Diagnostic::error(
                Code::UidTaken,
                &u.name,
                format!(
                    "uid {} for user `{}` is already held here by user `{holder}`",
                    u.uid, u.name
                ),
            )),
            IdState::Same | IdState::Missing => {}
        }
    }
    out
}

/// The probe command that lists who owns what at the top of `/home`, by uid.
pub const HOME_OWNERS_FACTS: &str = "home-owners";

/// Whether `uid` is in the people range closetctl manages.
fn people_uid(inventory: &Inventory, uid: u32) -> bool {
    uid >= inventory.cluster.id_min && uid < 60000
}

/// `stat -c '%u %n' /home/*` (links not followed: `stat` reports the link itself),
/// run only when `/etc/passwd` has a people-range account the inventory does not list,
/// so a host without one starts no process for it. The loop is builtins only.
fn home_owners_command(inventory: &Inventory) -> String {
    let known: Vec<&str> = inventory.users.iter().map(|u| u.name.as_str()).collect();
    format!(
        "known={}; while IFS=: read -r n _ u _; do case \" $known \" in *\" $n \"*) continue ;; esac; \
         case $u in ''|*[!0-9]*) continue ;; esac; \
         if [ \"$u\" -ge {} ] && [ \"$u\" -lt 60000 ]; then stat -c '%u %n' -- /home/* 2>/dev/null; break; fi; \
         done </etc/passwd",
        crate::shell::quote(&known.join(" ")),
        inventory.cluster.id_min
    )
}

/// The paths at the top of `/home` that `uid` owns, from the probe's `home-owners`.
fn owned_in_home(facts: &HostFacts, uid: u32) -> Vec<&str> {
    facts
        .commands
        .get(HOME_OWNERS_FACTS)
        .map(|c| {
            c.stdout
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(u, _)| u.parse() == Ok(uid))
                .map(|(_, path)| path)
                .collect()
        })
        .unwrap_or_default()
}

/// People accounts on the host (UID in the managed range) that the inventory lacks,
/// with what they own at the top of `/home`: reported, never deleted.
pub fn unmanaged(inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
    facts
        .users
        .iter()
        .filter(|(name, e)| people_uid(inventory, e.uid) && inventory.user(name).is_none())
        .map(|(name, e)| {
            let owned = owned_in_home(facts, e.uid);
            let owns = if owned.is_empty() {
                "owns nothing at the top of /home".to_string()
            } else {
                format!("owns {}", owned.join(", "))
            };
            Diagnostic::info(
                Code::UnmanagedUser,
                name,
                format!("user `{name}` (uid {}) is not in the inventory; {owns}", e.uid),
            )
            .hint(format!(
                "left as is: add her to the inventory (`closetctl adduser {name} --uid {}`), then `closetctl deluser {name}` if she has left",
                e.uid
            ))
        })
        .collect()
}

/// One line per user whose access the plan removes: `alice` "access removed on 3
/// hosts, 2 associations, 1 tailnet group".
pub fn access_summary(inventory: &Inventory, plan: &crate::plan::Plan) -> Vec<Diagnostic> {
    use crate::resource::{Action, ResourceKind};
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    inventory
        .ended_users()
        .filter_map(|u| {
            let keys = format!("{}/authorized_keys", ssh_dir(u));
            let changes = || plan.hosts.iter().flat_map(|h| h.steps.iter().flat_map(|s| &s.changes).map(move |c| (h, c)));
            let mut hosts: Vec<&str> = changes()
                .filter(|(_, c)| match c.kind {
                    ResourceKind::Login | ResourceKind::Sessions => c.name == u.name,
                    ResourceKind::AuthorizedKeys => c.name == keys,
                    _ => false,
                })
                .map(|(h, _)| h.host.as_str())
                .collect();
            hosts.dedup();
            let associations = changes()
                .filter(|(_, c)| {
                    c.kind == ResourceKind::Association
                        && c.action == Action::Remove
                        && c.name.rsplit_once('/').is_some_and(|(_, user)| user == u.name)
                })
                .count();
            let groups = match (&inventory.tailscale, &u.email) {
                (Some(ts), Some(email)) => ts.groups.values().filter(|m| m.contains(email)).count(),
                _ => 0,
            };
            if hosts.is_empty() && associations == 0 {
                return None;
            }
            Some(Diagnostic::info(
                Code::AccessRemoved,
                &u.name,
                format!(
                    "access removed on {}, {}, {}",
                    plural(hosts.len(), "host"),
                    plural(associations, "association"),
                    plural(groups, "tailnet group")
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{CommandOutput, PasswdEntry};
    use std::path::Path;

    const INVENTORY: &str = r#"
[cluster]
name = "closet"

[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "login"]

[[user]]
name = "alice"
uid = 1001
"#;

    fn inventory() -> Inventory {
        Inventory::parse(Path::new("inventory.toml"), INVENTORY).unwrap()
    }

    fn passwd(uid: u32, name: &str) -> PasswdEntry {
        PasswdEntry {
            uid,
            gid: uid,
            gecos: String::new(),
            home: format!("/home/{name}"),
            shell: "/bin/bash".into(),
        }
    }

    /// Runs the probe's `home-owners` command under real `sh`, with its `/etc/passwd`
    /// and `/home` pointed at a scratch directory.
    fn run_home_owners(passwd_text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("closetctl-home-owners-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home/alice")).unwrap();
        std::fs::create_dir_all(dir.join("home/carol")).unwrap();
        std::fs::write(dir.join("passwd"), passwd_text).unwrap();
        let cmd = home_owners_command(&inventory())
            .replace("/etc/passwd", &dir.join("passwd").display().to_string())
            .replace("/home/*", &format!("{}/home/*", dir.display()));
        let out = std::process::Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{cmd}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn home_owners_runs_only_when_a_stranger_has_an_account() {
        let known = "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\nalice:x:1001:1001::/home/alice:/bin/bash\nsvc:x:999:999::/var/svc:/usr/sbin/nologin\n";
        assert_eq!(run_home_owners(known), "", "only known people and system accounts");
        let out = run_home_owners(&format!("{known}carol:x:1005:1005::/home/carol:/bin/bash\n"));
        let paths: Vec<&str> = out
            .lines()
            .map(|l| l.split_once(' ').expect("uid path").1)
            .map(|p| p.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(paths, ["alice", "carol"], "{out}");
    }

    #[test]
    fn an_unmanaged_account_shows_what_it_owns_in_home_and_how_to_take_it_in() {
        let inv = inventory();
        let mut facts = HostFacts::default();
        facts.users.insert("alice".into(), passwd(1001, "alice"));
        facts.users.insert("mallory".into(), passwd(1500, "mallory"));
        facts.users.insert("nobody".into(), passwd(65534, "nobody"));
        facts.users.insert("svc".into(), passwd(999, "svc"));
        facts.commands.insert(
            HOME_OWNERS_FACTS.into(),
            CommandOutput {
                exit_code: 0,
                stdout: "1001 /home/alice\n1500 /home/mallory\n1500 /home/shared-data\n0 /home/lost+found".into(),
            },
        );
        let found = unmanaged(&inv, &facts);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].subject, "mallory");
        assert_eq!(
            found[0].message,
            "user `mallory` (uid 1500) is not in the inventory; owns /home/mallory, /home/shared-data"
        );
        assert!(
            found[0].hint.as_deref().unwrap().contains("closetctl adduser mallory --uid 1500"),
            "{:?}",
            found[0].hint
        );
        facts.commands.clear();
        assert!(unmanaged(&inv, &facts)[0]
            .message
            .ends_with("owns nothing at the top of /home"));
    }
}
