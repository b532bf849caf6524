//! The NFS module: `/home` and datasets exported by one host and mounted by all others.
//!
//! The server's `/etc/exports` restricts every export to the cluster network (or to the
//! hosts' own addresses when no network is given). Clients get a block of `/etc/fstab`
//! that closetctl owns, between two marker lines; every other line of the file is kept
//! exactly as it was, in its place. Mounts use `x-systemd.automount`, so a client boots
//! even when the server is late, and a mount that is busy is never forced off: option
//! changes are labelled `remount` and take effect at the next mount.

pub mod section;

use crate::diagnostic::{Code, Diagnostic};
use crate::block;
use crate::facts::HostFacts;
use crate::inventory::{Export, Host, Inventory};
use crate::ops::Actor;
use crate::resource::{Directory, Disruption, File, Resource};

/// The `nfs` concern: the exports, the clients' automounts, homes on the share.
pub struct Nfs;

impl super::Concern for Nfs {
    fn name(&self) -> &'static str {
        "nfs"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[("40-nfs.toml", include_str!("40-nfs.toml"))]
    }
    fn templates(&self) -> &'static [super::Shipped] {
        &[("exports.j2", include_str!("exports.j2"))]
    }
    fn modules(&self) -> &'static [&'static str] {
        &["nfs"]
    }
    fn conditions(&self) -> &'static [&'static str] {
        &["nfs"]
    }
    fn condition(&self, _name: &str, inventory: &Inventory) -> bool {
        inventory.nfs.is_some()
    }
    fn resources(&self, _module: &str, i: &super::HostInputs) -> Vec<Resource> {
        resources(i.inventory, i.host, i.facts)
    }
    fn probe(&self, inventory: &Inventory, host: &Host) -> crate::facts::probe::ProbeRequest {
        let mut req = crate::facts::probe::ProbeRequest::default();
        if is_client(inventory, host) && inventory.home_on_nfs() {
            req.commands
                .insert(HOME_ENTRIES.into(), HOME_ENTRIES_COMMAND.into());
        }
        req
    }
    fn template_values<'a>(
        &self,
        inventory: &'a Inventory,
        _facts: &'a crate::facts::ClusterFacts,
    ) -> Vec<super::TemplateValue<'a>> {
        vec![
            (
                "nfs",
                Box::new(|| minijinja::Value::from_serialize(&inventory.nfs)),
            ),
            ("nfs_exports", Box::new(|| exports_file(inventory).into())),
            (
                "nfs_automounts",
                Box::new(|| {
                    crate::shell::join(
                        inventory
                            .nfs
                            .iter()
                            .flat_map(|n| &n.exports)
                            .map(|e| automount_unit(&e.path)),
                    )
                    .into()
                }),
            ),
        ]
    }
    fn host_warnings(&self, inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        warnings(inventory, host, facts)
    }
    fn conflicts(&self, inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
        conflicts(inventory, host, facts)
    }
}

pub const FSTAB: &str = "/etc/fstab";
pub const BEGIN: &str = "# BEGIN closetctl: NFS mounts. Managed by closetctl from the inventory; do not edit inside this block.";
pub use crate::block::END;

/// Mount options for every client mount.
pub const MOUNT_OPTIONS: &str = "vers=4.2,hard,noatime,_netdev,x-systemd.automount";

/// Whether `host` mounts the shares (every host but the server).
pub fn is_client(inventory: &Inventory, host: &Host) -> bool {
    inventory
        .nfs
        .as_ref()
        .is_some_and(|n| n.server != host.name)
}

/// The export options: `rw|ro,sync,no_subtree_check,root_squash`, or the inventory's
/// own, with `ro` put first when the export is `read_only` and they do not say `ro`
/// (validation refuses `rw` together with `read_only`): `read_only` is never dropped.
pub fn export_options(e: &Export) -> String {
    match &e.options {
        None => format!(
            "{},sync,no_subtree_check,root_squash",
            if e.read_only { "ro" } else { "rw" }
        ),
        Some(o) if e.read_only && !e.has_option("ro") => format!("ro,{o}"),
        Some(o) => o.clone(),
    }
}

/// `/etc/exports` for the server.
pub fn exports_file(inventory: &Inventory) -> String {
    let Some(nfs) = &inventory.nfs else {
        return String::new();
    };
    let clients: Vec<String> = match &nfs.network {
        Some(net) => vec![net.clone()],
        None => inventory
            .hosts
            .iter()
            .filter(|h| h.name != nfs.server)
            .map(|h| h.address.clone())
            .collect(),
    };
    let mut out = String::from(
        "# Managed by closetctl from the inventory; local edits are replaced on the next apply.\n",
    );
    for e in &nfs.exports {
        let opts = export_options(e);
        let targets: Vec<String> = clients.iter().map(|c| format!("{c}({opts})")).collect();
        out.push_str(&format!("{} {}\n", e.path, targets.join(" ")));
    }
    out
}

/// The managed fstab block's lines.
pub fn fstab_block(inventory: &Inventory) -> Vec<String> {
    let Some(nfs) = &inventory.nfs else {
        return Vec::new();
    };
    let address = inventory
        .host(&nfs.server)
        .map_or(nfs.server.as_str(), |h| h.address.as_str());
    // `server:/path`: an IPv6 address needs brackets, or its colons run into the path.
    let server = match address.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{address}]"),
        Err(_) => address.to_string(),
    };
    let mut lines = vec![BEGIN.to_string()];
    for e in &nfs.exports {
        let ro = if e.is_read_only() { ",ro" } else { "" };
        lines.push(format!(
            "{server}:{path} {path} nfs {MOUNT_OPTIONS}{ro} 0 0",
            path = e.path
        ));
    }
    lines.push(END.to_string());
    lines
}

/// systemd's unit name for a mount point, exactly as `systemd-escape --path --suffix
/// automount` makes it (`/data/sets` -> `data-sets.automount`): the path simplified
/// (`//`, `.` and trailing `/` dropped), `/` alone is `-`; then `/` becomes `-`, and
/// every byte other than ASCII letters, digits, `:`, `_` and `.` (and a leading `.`) is
/// written `\xNN` in lower-case hex, a UTF-8 character byte by byte.
pub fn automount_unit(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        return "-.automount".to_string();
    }
    let mut escaped = String::new();
    for (i, &byte) in parts.join("/").as_bytes().iter().enumerate() {
        match byte {
            b'/' => escaped.push('-'),
            b'.' if i == 0 => escaped.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b":_.".contains(&b) => escaped.push(b as char),
            b => escaped.push_str(&format!("\\x{b:02x}")),
        }
    }
    format!("{escaped}.automount")
}

/// Server: export directories (other than `/home`, which exists). Client: mount
/// points and the fstab block computed from the host's current fstab.
pub fn resources(inventory: &Inventory, host: &Host, facts: Option<&HostFacts>) -> Vec<Resource> {
    let Some(nfs) = &inventory.nfs else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mode = |m: &Option<String>, default: u32| {
        m.as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(default)
    };
    for e in &nfs.exports {
        let (owner, group) = (
            e.owner.clone().unwrap_or_else(|| "root".into()),
            e.group.clone().unwrap_or_else(|| "root".into()),
        );
        if host.name == nfs.server {
            out.push(Resource::Directory(Directory {
                path: e.path.clone(),
                owner,
                group,
                mode: mode(&e.mode, 0o755),
                actor: Actor::Root,
            }));
        } else if e.path != "/home" {
            // The mount point; what is mounted on it has the server's owner and mode.
            out.push(Resource::Directory(Directory {
                path: e.path.clone(),
                owner: "root".into(),
                group: "root".into(),
                mode: 0o755,
                actor: Actor::Root,
            }));
        }
    }
    if is_client(inventory, host) {
        // Edited byte for byte from what the host has; an fstab the probe could not
        // read whole is not edited at all (see `conflicts`).
        let Some(current) = block::current(facts, FSTAB) else {
            return out;
        };
        out.push(Resource::File(File {
            path: FSTAB.into(),
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            content: block::replace(&current, &fstab_block(inventory)),
            secret: None,
            disruption: Some(Disruption::Fixed("remount")),
            actor: Actor::Root,
        }));
    }
    out
}

/// A client whose `/etc/fstab` closetctl cannot edit safely: larger than the probe
/// reads back whole, or not a regular file. Rewriting it from a guess would drop the
/// root and swap lines, so apply refuses the host until an admin looks.
pub fn conflicts(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    if inventory.nfs.is_none() || !is_client(inventory, host) {
        return Vec::new();
    }
    let codes = block::Codes {
        not_file: Code::FstabNotFile,
        too_large: Code::FstabTooLarge,
        unclosed: Code::FstabBlockUnclosed,
    };
    block::conflicts(FSTAB, facts, &codes, "add the NFS lines by hand")
}

/// The probe command that lists what a client's `/home` holds before it is mounted over.
pub const HOME_ENTRIES: &str = "home-entries";

/// A warning when a client's local `/home` has content that the NFS mount would hide.
pub fn warnings(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    if !is_client(inventory, host) || !inventory.home_on_nfs() {
        return Vec::new();
    }
    let Some(out) = facts.commands.get(HOME_ENTRIES) else {
        return Vec::new();
    };
    let mut lines = out.stdout.lines();
    let mounted = lines.next() == Some("mounted");
    let entries: Vec<&str> = lines
        .filter(|l| !l.is_empty() && *l != "lost+found")
        .collect();
    if mounted || entries.is_empty() {
        return Vec::new();
    }
    vec![Diagnostic::warning(
        Code::HomeNotEmpty,
        "/home",
        format!("local /home is not empty ({})", entries.join(", ")),
    )
    .hint("the NFS mount will hide it: move it to the server first if it matters")]
}

/// Whether `/home` is an NFS mount now, then the names in it (the local ones if not).
pub const HOME_ENTRIES_COMMAND: &str =
    "if grep -qs ' /home nfs' /proc/mounts; then echo mounted; else echo local; ls -A /home | head -n 20; fi";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automount_units_escape_like_systemd() {
        // More, and a comparison with the real systemd-escape, in tests/closet/nfs_values.rs.
        assert_eq!(automount_unit("/home"), "home.automount");
        assert_eq!(automount_unit("/data/sets"), "data-sets.automount");
        assert_eq!(automount_unit("/lab-data"), "lab\\x2ddata.automount");
    }
}
