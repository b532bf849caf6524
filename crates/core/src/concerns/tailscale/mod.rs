//! The Tailscale module: every host's enrollment from `[tailscale]` and its own
//! `tailscale = { ... }`, and the tailnet policy file rendered from the same inventory.
//!
//! Enrollment: the client (installed from Tailscale's apt repository unless the binary
//! is already there) and one `tailscale up` resource per host, see
//! [`crate::concerns::tailscale::enrollment`].
//!
//! Policy, with defaults that fit a closet: `groups` from `[tailscale.groups]`; every
//! cluster tag owned by the admin group (or `autogroup:admin`); cluster hosts reach
//! each other on every port; the admin group reaches everything and may Tailscale-SSH
//! into the cluster as root or as themselves; researchers reach the `login` hosts on
//! tcp:22 and may Tailscale-SSH there as themselves (`autogroup:nonroot`); routes of
//! `subnet-router` hosts are auto-approved. [`check`] is a pure look at a policy for
//! what the cluster itself needs between its hosts (SSH, Slurm, srun, NFS).
//! Everything here is pure.

pub mod section;

pub mod enrollment;

use crate::diagnostic::{Code, Diagnostic};
use crate::concerns::tailscale::enrollment::{AuthKey, SECRET_NAME};
use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory, Role};
use crate::playbook::Playbooks;
use crate::resource::MissingSecret;
use crate::resource::{Resource, Tailscale, TailscaleNode};
use crate::secrets::Secrets;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The playbook module name.
/// The `tailscale` concern: enrollment of every host and the tailnet policy.
pub struct Tailnet;

impl super::Concern for Tailnet {
    fn name(&self) -> &'static str {
        "tailscale"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[("50-tailscale.toml", include_str!("50-tailscale.toml"))]
    }
    fn modules(&self) -> &'static [&'static str] {
        &[MODULE]
    }
    fn conditions(&self) -> &'static [&'static str] {
        &["tailscale"]
    }
    fn condition(&self, _name: &str, inventory: &Inventory) -> bool {
        inventory.tailscale.is_some()
    }
    fn resources(&self, _module: &str, i: &super::HostInputs) -> Vec<Resource> {
        resources(i.inventory, i.host, i.secrets)
    }
    fn host_warnings(&self, inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        warnings(inventory, host, facts)
    }
    fn warnings(&self, inventory: &Inventory, _facts: &crate::facts::ClusterFacts) -> Vec<Diagnostic> {
        cluster_warnings(inventory)
    }
    /// The auth key, from its own file or variable, only when the step runs. A key that
    /// is not there is no error: the plan shows where to put it and apply refuses only
    /// the steps that need it (see [`node`]).
    fn load_secrets(
        &self,
        inventory: &Inventory,
        playbooks: &Playbooks,
        secrets: &mut Secrets,
    ) -> Result<(), crate::secrets::SecretError> {
        let Some(ts) = inventory
            .tailscale
            .as_ref()
            .filter(|_| step_applies(inventory, playbooks))
        else {
            return Ok(());
        };
        match crate::secrets::load_external(
            SECRET_NAME,
            ts.auth_key_file.as_deref(),
            ts.auth_key_env.as_deref(),
        ) {
            Ok(key) => {
                secrets.insert(SECRET_NAME.to_string(), key);
                Ok(())
            }
            Err(e) if crate::secrets::is_absent(&e) => {
                tracing::info!(secret = %SECRET_NAME, "not there; steps that need it will be refused: {e}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

pub const MODULE: &str = "tailscale";

/// The tags `host` advertises: its own, or `[tailscale] tags`.
pub fn host_tags(inventory: &Inventory, host: &Host) -> Vec<String> {
    match (&host.tailscale.tags, &inventory.tailscale) {
        (Some(tags), _) => tags.clone(),
        (None, Some(ts)) => ts.tags.clone(),
        (None, None) => Vec::new(),
    }
}

/// The node's Tailscale hostname: its own, or the inventory name.
pub fn host_name(host: &Host) -> String {
    host.tailscale
        .hostname
        .clone()
        .unwrap_or_else(|| host.name.clone())
}

/// Routes a host advertises: only `subnet-router` hosts advertise theirs.
pub fn host_routes(host: &Host) -> Vec<String> {
    if host.has_role(Role::SubnetRouter) {
        host.tailscale.advertise_routes.clone()
    } else {
        Vec::new()
    }
}

/// The desired enrollment of `host`. With `secrets` (a plan), the auth key is loaded or,
/// when it is not among them, missing with where to put it; without (a probe), not loaded.
pub fn node(
    inventory: &Inventory,
    host: &Host,
    secrets: Option<&Secrets>,
) -> Option<TailscaleNode> {
    let ts = inventory.tailscale.as_ref()?;
    Some(TailscaleNode {
        hostname: host_name(host),
        tags: host_tags(inventory, host),
        ssh: ts.ssh,
        accept_routes: ts.accept_routes,
        advertise_routes: host_routes(host),
        auth_key: match secrets.map(|s| s.get(SECRET_NAME)) {
            None => AuthKey::NotLoaded,
            Some(Some(key)) => AuthKey::Loaded(key.clone()),
            Some(None) => AuthKey::Missing(MissingSecret {
                name: SECRET_NAME.to_string(),
                fix: crate::secrets::external_fix(
                    ts.auth_key_file.as_deref(),
                    ts.auth_key_env.as_deref(),
                ),
            }),
        },
    })
}

/// The client, then the enrollment.
pub fn resources(inventory: &Inventory, host: &Host, secrets: Option<&Secrets>) -> Vec<Resource> {
    match node(inventory, host, secrets) {
        Some(n) => vec![
            Resource::Tailscale(Tailscale::Install),
            Resource::Tailscale(Tailscale::Node(n)),
        ],
        None => Vec::new(),
    }
}

/// Whether a step with this module runs on any host: then the auth key must be loaded.
pub fn step_applies(inventory: &Inventory, playbooks: &Playbooks) -> bool {
    playbooks
        .steps
        .iter()
        .filter(|s| s.module.as_deref() == Some(MODULE))
        .any(|s| inventory.hosts.iter().any(|h| s.applies_to(inventory, h)))
}

/// Findings about one host shown with its plan.
pub fn warnings(inventory: &Inventory, host: &Host, _facts: &HostFacts) -> Vec<Diagnostic> {
    if inventory.tailscale.is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if !host.tailscale.advertise_routes.is_empty() && !host.has_role(Role::SubnetRouter) {
        out.push(Diagnostic::warning(
            Code::RoutesIgnored,
            "advertise_routes",
            "tailscale advertise_routes are ignored: the host does not have the `subnet-router` role",
        ));
    }
    out
}

// ---- policy ---------------------------------------------------------------------------

/// A tailnet policy file (the subset closetctl writes; HuJSON is a superset of JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Vec<String>>,
    #[serde(
        rename = "tagOwners",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tag_owners: BTreeMap<String, Vec<String>>,
    #[serde(
        rename = "autoApprovers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_approvers: Option<AutoApprovers>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<SshRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoApprovers {
    #[serde(default)]
    pub routes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub src: Vec<String>,
    pub dst: Vec<String>,
    #[serde(default)]
    pub ip: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshRule {
    pub action: String,
    pub src: Vec<String>,
    pub dst: Vec<String>,
    pub users: Vec<String>,
}

fn group_ref(name: &str) -> String {
    format!("group:{name}")
}

/// Every tag any host advertises, sorted.
pub fn cluster_tags(inventory: &Inventory) -> Vec<String> {
    let set: BTreeSet<String> = inventory
        .hosts
        .iter()
        .flat_map(|h| host_tags(inventory, h))
        .collect();
    set.into_iter().collect()
}

/// The tags that address the `login` hosts: the ones no other host has, or else all of
/// theirs (with a note that researchers then reach more hosts).
fn login_tags(inventory: &Inventory, notes: &mut Vec<String>) -> Vec<String> {
    let (login, other): (Vec<&Host>, Vec<&Host>) = inventory
        .hosts
        .iter()
        .partition(|h| h.has_role(Role::Login));
    if login.is_empty() {
        notes.push("no host has the `login` role: researchers get no access to the cluster".into());
        return Vec::new();
    }
    let theirs: BTreeSet<String> = login.iter().flat_map(|h| host_tags(inventory, h)).collect();
    let others: BTreeSet<String> = other.iter().flat_map(|h| host_tags(inventory, h)).collect();
    let only: Vec<String> = theirs.difference(&others).cloned().collect();
    // Every login host must carry one of the selecting tags.
    if !only.is_empty()
        && login
            .iter()
            .all(|h| host_tags(inventory, h).iter().any(|t| only.contains(t)))
    {
        return only;
    }
    let all: Vec<String> = theirs.into_iter().collect();
    if !all.is_empty() {
        let names: Vec<&str> = other
            .iter()
            .filter(|h| host_tags(inventory, h).iter().any(|t| all.contains(t)))
            .map(|h| h.name.as_str())
            .collect();
        notes.push(format!(
            "the login hosts have no tag of their own, so researchers also reach {} on SSH; give login hosts an extra tag, e.g. `tailscale = {{ tags = [\"tag:closet\", \"tag:login\"] }}`",
            names.join(", ")
        ));
    }
    all
}

/// The policy for `inventory`, with notes about choices the inventory forced.
pub fn policy(inventory: &Inventory) -> (Policy, Vec<String>) {
    let mut notes = Vec::new();
    let Some(ts) = &inventory.tailscale else {
        return (
            Policy::default(),
            vec!["the inventory has no [tailscale] section".into()],
        );
    };
    let mut p = Policy {
        groups: ts
            .groups
            .iter()
            .map(|(g, members)| (group_ref(g), members.clone()))
            .collect(),
        ..Policy::default()
    };
    // Someone whose access ended is in no group, whatever `[tailscale.groups]` says.
    for u in inventory.ended_users() {
        let Some(email) = &u.email else { continue };
        for (g, members) in p.groups.iter_mut() {
            if members.contains(email) {
                members.retain(|m| m != email);
                notes.push(format!(
                    "{email} (user `{}`, {}) left out of {g}",
                    u.name,
                    u.ended_because()
                ));
            }
        }
    }
    let tags = cluster_tags(inventory);
    for h in inventory
        .hosts
        .iter()
        .filter(|h| host_tags(inventory, h).is_empty())
    {
        notes.push(format!("host {} has no tags: the policy cannot address it (it belongs to whoever made the auth key)", h.name));
    }
    let owners = match &ts.admin_group {
        Some(g) => vec![group_ref(g)],
        None => vec!["autogroup:admin".to_string()],
    };
    p.tag_owners = tags.iter().map(|t| (t.clone(), owners.clone())).collect();
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &inventory.hosts {
        for r in host_routes(h) {
            let approvers = routes.entry(r).or_default();
            approvers.extend(host_tags(inventory, h));
            approvers.sort();
            approvers.dedup();
        }
    }
    if !routes.is_empty() {
        p.auto_approvers = Some(AutoApprovers { routes });
    }
    if !tags.is_empty() {
        p.grants.push(Grant {
            src: tags.clone(),
            dst: tags.clone(),
            ip: vec!["*".into()],
        });
    }
    if let Some(admin) = &ts.admin_group {
        p.grants.push(Grant {
            src: vec![group_ref(admin)],
            dst: vec!["*".into()],
            ip: vec!["*".into()],
        });
    } else {
        notes
            .push("no admin_group: nobody is granted access to the cluster from outside it".into());
    }
    let login = match &ts.researcher_group {
        Some(_) => login_tags(inventory, &mut notes),
        None => Vec::new(),
    };
    if let (Some(res), false) = (&ts.researcher_group, login.is_empty()) {
        p.grants.push(Grant {
            src: vec![group_ref(res)],
            dst: login.clone(),
            ip: vec!["tcp:22".into()],
        });
    }
    if ts.ssh {
        if let (Some(admin), false) = (&ts.admin_group, tags.is_empty()) {
            p.ssh.push(SshRule {
                action: "accept".into(),
                src: vec![group_ref(admin)],
                dst: tags.clone(),
                users: vec!["autogroup:nonroot".into(), "root".into()],
            });
        }
        if let (Some(res), false) = (&ts.researcher_group, login.is_empty()) {
            p.ssh.push(SshRule {
                action: "accept".into(),
                src: vec![group_ref(res)],
                dst: login,
                users: vec!["autogroup:nonroot".into()],
            });
        }
    }
    (p, notes)
}

/// The policy file's text: a leading comment, then plain JSON (valid HuJSON).
pub fn render(inventory: &Inventory, policy: &Policy) -> String {
    let file = inventory
        .path
        .file_name()
        .map_or("inventory.toml".into(), |f| {
            f.to_string_lossy().into_owned()
        });
    let json = serde_json::to_string_pretty(policy).expect("a policy always serializes");
    format!(
        "// Tailnet policy for the `{}` cluster, rendered by closetctl from {file}.\n// Change the inventory, not this text: `closetctl tailscale policy --push` replaces the whole policy.\n{json}\n",
        inventory.cluster.name
    )
}

/// Parse a policy file's text (JSON after `//` comment lines; the subset closetctl writes).
pub fn parse(text: &str) -> Result<Policy, serde_json::Error> {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&body)
}

// ---- policy check -----------------------------------------------------------------------

/// One flow the cluster needs: from hosts to hosts on a TCP port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub what: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub ports: (u16, u16),
}

/// The linux ephemeral port range srun listens in when `SrunPortRange` is not set.
pub const EPHEMERAL_PORTS: (u16, u16) = (32768, 60999);

fn port_range(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => text.trim().parse().ok().map(|p| (p, p)),
    }
}

/// What the cluster needs between its hosts, from the inventory.
pub fn needs(inventory: &Inventory) -> Vec<Need> {
    let all: Vec<String> = inventory.hosts.iter().map(|h| h.name.clone()).collect();
    let mut out = vec![Need {
        what: "SSH".into(),
        from: all.clone(),
        to: all.clone(),
        ports: (22, 22),
    }];
    if let Some(slurm) = &inventory.slurm {
        let compute: Vec<String> = inventory
            .hosts
            .iter()
            .filter(|h| h.has_role(Role::Compute))
            .map(|h| h.name.clone())
            .collect();
        out.push(Need {
            what: "slurmctld".into(),
            from: all.clone(),
            to: vec![slurm.controller.clone()],
            ports: (6817, 6817),
        });
        out.push(Need {
            what: "slurmd".into(),
            from: all.clone(),
            to: compute.clone(),
            ports: (6818, 6818),
        });
        let srun = slurm
            .options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("SrunPortRange"))
            .and_then(|(_, v)| port_range(v))
            .unwrap_or(EPHEMERAL_PORTS);
        out.push(Need {
            what: "srun".into(),
            from: compute,
            to: all.clone(),
            ports: srun,
        });
    }
    if let Some(nfs) = &inventory.nfs {
        let clients: Vec<String> = all.iter().filter(|h| **h != nfs.server).cloned().collect();
        out.push(Need {
            what: "NFS".into(),
            from: clients,
            to: vec![nfs.server.clone()],
            ports: (2049, 2049),
        });
    }
    out
}

fn matches(selector: &str, tags: &[String]) -> bool {
    selector == "*"
        || (selector == "autogroup:tagged" && !tags.is_empty())
        || tags.iter().any(|t| t == selector)
}

/// The TCP port ranges a grant's `ip` entries allow.
fn tcp_ranges(ip: &[String]) -> Vec<(u16, u16)> {
    ip.iter()
        .filter_map(|e| {
            let ports = match e.split_once(':') {
                Some(("tcp", p)) => p,
                Some((_, _)) => return None,
                None => e.as_str(),
            };
            if ports == "*" {
                Some((0, u16::MAX))
            } else {
                port_range(ports)
            }
        })
        .collect()
}

fn covered(mut allowed: Vec<(u16, u16)>, (lo, hi): (u16, u16)) -> bool {
    allowed.sort();
    let mut next = lo as u32;
    for (a, b) in allowed {
        if a as u32 > next {
            break;
        }
        next = next.max(b as u32 + 1);
        if next > hi as u32 {
            return true;
        }
    }
    false
}

/// Warnings for every flow the cluster needs that `policy` blocks between its hosts.
pub fn check(policy: &Policy, inventory: &Inventory) -> Vec<String> {
    let tags: BTreeMap<&str, Vec<String>> = inventory
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), host_tags(inventory, h)))
        .collect();
    let none = Vec::new();
    let mut out = Vec::new();
    for need in needs(inventory) {
        let mut blocked = Vec::new();
        for from in &need.from {
            for to in need.to.iter().filter(|t| *t != from) {
                let (ft, tt) = (
                    tags.get(from.as_str()).unwrap_or(&none),
                    tags.get(to.as_str()).unwrap_or(&none),
                );
                let allowed: Vec<(u16, u16)> = policy
                    .grants
                    .iter()
                    .filter(|g| {
                        g.src.iter().any(|s| matches(s, ft)) && g.dst.iter().any(|d| matches(d, tt))
                    })
                    .flat_map(|g| tcp_ranges(&g.ip))
                    .collect();
                if !covered(allowed, need.ports) {
                    blocked.push(format!("{from} -> {to}"));
                }
            }
        }
        if !blocked.is_empty() {
            let ports = if need.ports.0 == need.ports.1 {
                need.ports.0.to_string()
            } else {
                format!("{}-{}", need.ports.0, need.ports.1)
            };
            out.push(format!(
                "the tailnet policy blocks {} (tcp:{ports}) over Tailscale: {}",
                need.what,
                blocked.join(", ")
            ));
        }
    }
    out
}

/// Cluster-wide warnings for the plan: what the rendered policy would block.
pub fn cluster_warnings(inventory: &Inventory) -> Vec<Diagnostic> {
    if inventory.tailscale.is_none() {
        return Vec::new();
    }
    let (p, _) = policy(inventory);
    check(&p, inventory)
        .into_iter()
        .map(|m| Diagnostic::warning(Code::TailnetBlocked, "tailnet policy", m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(extra: &str) -> Inventory {
        let text = format!(
            r#"
[cluster]
name = "t"
[[host]]
name = "head"
address = "10.0.0.1"
roles = ["controller", "login", "nfs-server"]
tailscale = {{ tags = ["tag:closet", "tag:login"] }}
[[host]]
name = "gpu1"
address = "10.0.0.2"
roles = ["compute"]
[slurm]
controller = "head"
[nfs]
server = "head"
exports = [{{ path = "/home" }}]
[tailscale]
auth_key_env = "TS_KEY"
tags = ["tag:closet"]
ssh = true
admin_group = "faculty"
researcher_group = "students"
{extra}
[tailscale.groups]
faculty = ["pi@example.edu"]
students = ["a@example.edu"]
"#
        );
        Inventory::parse(std::path::Path::new("/tmp/inventory.toml"), &text).unwrap()
    }

    #[test]
    fn login_hosts_with_their_own_tag_are_addressed_by_it() {
        let inv = inventory("");
        let (p, notes) = policy(&inv);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            p.grants[2],
            Grant {
                src: vec!["group:students".into()],
                dst: vec!["tag:login".into()],
                ip: vec!["tcp:22".into()]
            }
        );
        assert_eq!(p.ssh[1].users, vec!["autogroup:nonroot"]);
        assert!(check(&p, &inv).is_empty(), "{:?}", check(&p, &inv));
        assert_eq!(parse(&render(&inv, &p)).unwrap(), p);
    }

    #[test]
    fn the_check_finds_blocked_cluster_flows() {
        let inv = inventory("");
        let (mut p, _) = policy(&inv);
        p.grants[0].ip = vec!["tcp:22".into(), "tcp:6817-6818".into()];
        let w = check(&p, &inv);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(
            w[0],
            "the tailnet policy blocks srun (tcp:32768-60999) over Tailscale: gpu1 -> head"
        );
        assert_eq!(
            w[1],
            "the tailnet policy blocks NFS (tcp:2049) over Tailscale: gpu1 -> head"
        );
        p.grants[0].ip.push("tcp:2049".into());
        p.grants[0].ip.push("32768-40000".into());
        p.grants[0].ip.push("tcp:40001-65535".into());
        assert!(check(&p, &inv).is_empty());
        p.grants.clear();
        assert_eq!(check(&p, &inv).len(), 5);
    }
}
