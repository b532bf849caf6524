//! `check uids`: does every inventory user and group have the same ID on every host?
//! Files on NFS carry numeric IDs, so a UID that differs per machine hands one person's
//! files to another (and Slurm runs jobs as the wrong user).
//!
//! For each host that answered, each managed group (declared groups and users' private
//! groups) and each user is:
//! - `ok`: the name exists with the inventory's ID;
//! - `missing`: neither the name nor its ID exists (a warning: `apply` creates it);
//! - `conflict` (an error): the name exists with another ID, or the ID is held by
//!   another name. closetctl never renumbers an account, so a person fixes these.
//!
//! The rule is [`crate::concerns::users::ids`], which `plan` applies too;
//! here every account gets a row. An unreachable host is an error.

use super::{CheckKind, Severity};
use crate::concerns::users::ids::{id_state, IdState};
use crate::diagnostic::{Code, Diagnostic};
use crate::facts::{ClusterFacts, HostFacts};
use crate::inventory::Inventory;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    User,
    Group,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Group => "group",
        }
    }

    fn id_name(self) -> &'static str {
        match self {
            AccountKind::User => "uid",
            AccountKind::Group => "gid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Ok,
    Missing,
    Conflict,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Ok => "ok",
            AccountStatus::Missing => "missing",
            AccountStatus::Conflict => "conflict",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            AccountStatus::Ok => Severity::Ok,
            AccountStatus::Missing => Severity::Warning,
            AccountStatus::Conflict => Severity::Error,
        }
    }
}

/// One account on one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountCheck {
    pub host: String,
    pub kind: AccountKind,
    pub name: String,
    /// The inventory's ID.
    pub id: u32,
    pub status: AccountStatus,
    pub severity: Severity,
    /// The ID the name has on the host, when it differs from the inventory's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_id: Option<u32>,
    /// The other name that holds the inventory's ID on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

impl AccountCheck {
    /// The conflict in words (empty unless a conflict).
    pub fn detail(&self) -> String {
        let (kind, id_name) = (self.kind.as_str(), self.kind.id_name());
        match (&self.host_id, &self.held_by) {
            (Some(other), _) => format!(
                "{kind} `{}` has {id_name} {other} on `{}`; the inventory says {}",
                self.name, self.host, self.id
            ),
            (None, Some(holder)) => format!(
                "{id_name} {} for {kind} `{}` is held on `{}` by {kind} `{holder}`",
                self.id, self.name, self.host
            ),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnreachableHost {
    pub host: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UidsReport {
    /// Per host that answered (inventory order), groups first, then users.
    pub accounts: Vec<AccountCheck>,
    pub unreachable: Vec<UnreachableHost>,
}

/// The uids check over the gathered facts.
pub fn check(inventory: &Inventory, facts: &ClusterFacts) -> UidsReport {
    let mut accounts = Vec::new();
    let mut unreachable = Vec::new();
    for h in &inventory.hosts {
        let Some(f) = facts.host(&h.name) else {
            unreachable.push(UnreachableHost {
                host: h.name.clone(),
                error: super::network::unreachable_reason(facts, &h.name),
            });
            continue;
        };
        accounts.extend(host_accounts(inventory, &h.name, f));
    }
    UidsReport {
        accounts,
        unreachable,
    }
}

/// Every managed group and user on one host.
pub fn host_accounts(inventory: &Inventory, host: &str, facts: &HostFacts) -> Vec<AccountCheck> {
    let groups: BTreeMap<&str, u32> = facts
        .groups
        .iter()
        .map(|(n, g)| (n.as_str(), g.gid))
        .collect();
    let users: BTreeMap<&str, u32> = facts
        .users
        .iter()
        .map(|(n, u)| (n.as_str(), u.uid))
        .collect();
    let mut out = Vec::new();
    for g in inventory.managed_groups() {
        out.push(account(host, AccountKind::Group, &g.name, g.gid, &groups));
    }
    for u in &inventory.users {
        out.push(account(host, AccountKind::User, &u.name, u.uid, &users));
    }
    out
}

fn account(
    host: &str,
    kind: AccountKind,
    name: &str,
    id: u32,
    live: &BTreeMap<&str, u32>,
) -> AccountCheck {
    let (status, host_id, held_by) = match id_state(name, id, live.iter().map(|(n, i)| (*n, *i))) {
        IdState::Same => (AccountStatus::Ok, None, None),
        IdState::OtherId(have) => (AccountStatus::Conflict, Some(have), None),
        IdState::HeldBy(holder) => (AccountStatus::Conflict, None, Some(holder)),
        IdState::Missing => (AccountStatus::Missing, None, None),
    };
    AccountCheck {
        host: host.to_string(),
        kind,
        name: name.to_string(),
        id,
        status,
        severity: status.severity(),
        host_id,
        held_by,
    }
}

impl UidsReport {
    /// One finding per conflict, one per host with missing accounts, one per host all
    /// ok, one per unreachable host.
    pub fn findings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let mut hosts: Vec<&str> = self.accounts.iter().map(|a| a.host.as_str()).collect();
        hosts.dedup();
        for host in hosts {
            let on: Vec<&AccountCheck> = self.accounts.iter().filter(|a| a.host == host).collect();
            for a in on.iter().filter(|a| a.status == AccountStatus::Conflict) {
                let code = match (a.kind, a.host_id.is_some()) {
                    (AccountKind::User, true) => Code::UidConflict,
                    (AccountKind::User, false) => Code::UidTaken,
                    (AccountKind::Group, true) => Code::GidConflict,
                    (AccountKind::Group, false) => Code::GidTaken,
                };
                out.push(
                    Diagnostic::error(code, &a.name, a.detail())
                        .from_check(CheckKind::Uids)
                        .on(host),
                );
            }
            let missing: Vec<String> = on
                .iter()
                .filter(|a| a.status == AccountStatus::Missing)
                .map(|a| format!("{} `{}`", a.kind.as_str(), a.name))
                .collect();
            if !missing.is_empty() {
                out.push(
                    Diagnostic::warning(
                        Code::AccountsMissing,
                        host,
                        format!(
                            "host `{host}` lacks {} (apply creates them): {}",
                            missing.len(),
                            missing.join(", ")
                        ),
                    )
                    .from_check(CheckKind::Uids)
                    .on(host),
                );
            }
            if on.iter().all(|a| a.status == AccountStatus::Ok) {
                out.push(
                    Diagnostic::ok(
                        Code::AccountsOk,
                        host,
                        format!(
                            "host `{host}`: all {} accounts have the inventory's IDs",
                            on.len()
                        ),
                    )
                    .from_check(CheckKind::Uids)
                    .on(host),
                );
            }
        }
        for u in &self.unreachable {
            out.push(
                Diagnostic::error(
                    Code::HostUnreachable,
                    &u.host,
                    format!("host `{}` is unreachable: {}", u.host, u.error),
                )
                .from_check(CheckKind::Uids)
                .on(&u.host),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures;
    use crate::facts::{GroupEntry, PasswdEntry};

    fn inventory() -> Inventory {
        fixtures::inventory(
            r#"
[[host]]
name = "node1"
address = "10.0.0.11"
roles = ["compute"]

[[host]]
name = "node2"
address = "10.0.0.12"
roles = ["compute"]

[[group]]
name = "vision-lab"
gid = 2001

[[user]]
name = "alice"
uid = 1001
groups = ["vision-lab"]
"#,
        )
    }

    fn host(users: &[(&str, u32)], groups: &[(&str, u32)]) -> HostFacts {
        let passwd = |uid| PasswdEntry {
            uid,
            gid: uid,
            gecos: String::new(),
            home: "/home/x".into(),
            shell: "/bin/bash".into(),
        };
        HostFacts {
            users: users
                .iter()
                .map(|(n, id)| (n.to_string(), passwd(*id)))
                .collect(),
            groups: groups
                .iter()
                .map(|(n, id)| {
                    (
                        n.to_string(),
                        GroupEntry {
                            gid: *id,
                            members: vec![],
                        },
                    )
                })
                .collect(),
            ..HostFacts::default()
        }
    }

    #[test]
    fn ok_missing_and_conflict() {
        // Managed: group vision-lab 2001, alice's private group alice 1001, user alice 1001.
        // node1 has all three right: ok. node2 has alice with uid 1999 (useradd -u 1999
        // alice by hand) and her private group as 1999; vision-lab is missing.
        let inv = inventory();
        let mut facts = ClusterFacts::default();
        facts.hosts.insert(
            "node1".into(),
            host(
                &[("root", 0), ("alice", 1001)],
                &[("vision-lab", 2001), ("alice", 1001)],
            ),
        );
        facts.hosts.insert(
            "node2".into(),
            host(&[("root", 0), ("alice", 1999)], &[("alice", 1999)]),
        );
        let r = check(&inv, &facts);
        let status = |h: &str, n: &str, k: AccountKind| {
            r.accounts
                .iter()
                .find(|a| a.host == h && a.name == n && a.kind == k)
                .map(|a| a.status)
                .unwrap()
        };
        assert_eq!(
            status("node1", "alice", AccountKind::User),
            AccountStatus::Ok
        );
        assert_eq!(
            status("node1", "vision-lab", AccountKind::Group),
            AccountStatus::Ok
        );
        assert_eq!(
            status("node2", "alice", AccountKind::User),
            AccountStatus::Conflict
        );
        assert_eq!(
            status("node2", "vision-lab", AccountKind::Group),
            AccountStatus::Missing
        );
        let f = r.findings();
        let texts: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "host `node1`: all 3 accounts have the inventory's IDs",
                "group `alice` has gid 1999 on `node2`; the inventory says 1001",
                "user `alice` has uid 1999 on `node2`; the inventory says 1001",
                "host `node2` lacks 1 (apply creates them): group `vision-lab`",
            ]
        );
        assert_eq!(f[1].severity, Severity::Error);
        assert_eq!(f[3].severity, Severity::Warning);
    }

    #[test]
    fn an_id_held_by_another_name_is_a_conflict() {
        let inv = inventory();
        let mut facts = ClusterFacts::default();
        facts.hosts.insert(
            "node1".into(),
            host(&[("carol", 1001)], &[("vision-lab", 2001), ("alice", 1001)]),
        );
        facts.unreachable.insert("node2".into(), "timed out".into());
        let r = check(&inv, &facts);
        let alice = r
            .accounts
            .iter()
            .find(|a| a.kind == AccountKind::User)
            .unwrap();
        assert_eq!(
            (alice.status, alice.held_by.as_deref()),
            (AccountStatus::Conflict, Some("carol"))
        );
        assert_eq!(
            alice.detail(),
            "uid 1001 for user `alice` is held on `node1` by user `carol`"
        );
        let f = r.findings();
        assert_eq!(
            f.last().unwrap().message,
            "host `node2` is unreachable: timed out"
        );
        assert_eq!(f.last().unwrap().severity, Severity::Error);
    }

    #[test]
    fn agrees_with_the_users_module_on_conflicts() {
        let inv = inventory();
        let cases = [
            host(&[("alice", 1001)], &[("vision-lab", 2001), ("alice", 1001)]),
            host(&[("alice", 1999)], &[]),
            host(&[("carol", 1001)], &[]),
            host(&[], &[("staff", 2001)]),
            host(&[], &[]),
        ];
        for f in cases {
            let mine = host_accounts(&inv, "n", &f)
                .iter()
                .filter(|a| a.status == AccountStatus::Conflict)
                .count();
            let theirs = crate::concerns::users::conflicts(&inv, &f).len();
            assert_eq!(mine, theirs, "{f:?}");
        }
    }
}
