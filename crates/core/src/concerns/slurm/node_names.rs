//! The compute nodes' names on the login host. Slurm reaches each node at its
//! `NodeAddr` (the inventory's address), but tools that submit from the login host
//! resolve the names `sinfo` lists there: SkyPilot on Slurm runs `getent ahostsv4 NODE`
//! on the login host for every node. When a node's inventory address is an IP address,
//! the login host's `/etc/hosts` gets a block of `ADDRESS NAME` lines that closetctl
//! owns ([`crate::block`]); nodes addressed by a DNS name are DNS's business, and
//! `closetctl check network` shows what the login host resolves every name to.

use crate::block;
use crate::diagnostic::{Code, Diagnostic};
use crate::facts::HostFacts;
use crate::inventory::{Host, Inventory, Role};
use crate::ops::Actor;
use crate::resource::{File, Resource};
use std::net::IpAddr;

pub const HOSTS: &str = "/etc/hosts";
pub const BEGIN: &str = "# BEGIN closetctl: Slurm node names (SkyPilot resolves them on the login host). Managed by closetctl from the inventory; do not edit inside this block.";

/// The managed block's lines for `host`: `None` unless it is the login host of a
/// cluster with Slurm; no node lines when every node is addressed by name.
pub fn block_lines(inventory: &Inventory, host: &Host) -> Option<Vec<String>> {
    inventory.slurm.as_ref()?;
    if inventory.login_host()?.name != host.name {
        return None;
    }
    let mut lines = vec![BEGIN.to_string()];
    for node in inventory.hosts.iter().filter(|h| h.has_role(Role::Compute)) {
        if node.address != node.name && node.address.parse::<IpAddr>().is_ok() {
            lines.push(format!("{} {}", node.address, node.name));
        }
    }
    lines.push(block::END.to_string());
    Some(lines)
}

/// Whether the block is written at all: when it names a node, or to empty a block an
/// earlier inventory wrote.
fn wanted(lines: &[String], current: &[u8]) -> bool {
    lines.len() > 2 || block::has_block(current)
}

/// `/etc/hosts` with the block, on the login host.
pub fn resources(inventory: &Inventory, host: &Host, facts: Option<&HostFacts>) -> Vec<Resource> {
    let Some(lines) = block_lines(inventory, host) else {
        return Vec::new();
    };
    // Edited byte for byte from what the host has; a file the probe could not read
    // whole is not edited at all (see `conflicts`).
    let Some(current) = block::current(facts, HOSTS) else {
        return Vec::new();
    };
    if !wanted(&lines, &current) && facts.is_some() {
        return Vec::new();
    }
    vec![Resource::File(File {
        path: HOSTS.into(),
        owner: "root".into(),
        group: "root".into(),
        mode: 0o644,
        content: block::replace(&current, &lines),
        secret: None,
        disruption: None,
        actor: Actor::Root,
    })]
}

/// A login host whose `/etc/hosts` closetctl cannot edit safely.
pub fn conflicts(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    let Some(lines) = block_lines(inventory, host) else {
        return Vec::new();
    };
    match block::current(Some(facts), HOSTS) {
        Some(current) if !wanted(&lines, &current) => return Vec::new(),
        // Unreadable, but nothing to write into it (no node has an IP address).
        None if lines.len() <= 2 => return Vec::new(),
        _ => {}
    }
    let codes = block::Codes {
        not_file: Code::HostsNotFile,
        too_large: Code::HostsTooLarge,
        unclosed: Code::HostsBlockUnclosed,
    };
    block::conflicts(HOSTS, facts, &codes, "add the node names by hand")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures;
    use crate::facts::{FileKind, FileState};

    /// head (controller and login), two nodes by address and one by DNS name.
    fn closet(slurm: bool) -> Inventory {
        let slurm = if slurm { "[slurm]\ncontroller = \"head\"\n" } else { "" };
        fixtures::inventory(&format!(
            r#"{slurm}
[[host]]
name = "head"
address = "10.0.0.10"
roles = ["controller", "login"]

[[host]]
name = "gpu1"
address = "10.0.0.11"
roles = ["compute"]

[[host]]
name = "gpu2"
address = "fd00::12"
roles = ["compute"]

[[host]]
name = "gpu3"
address = "gpu3.lab.example"
roles = ["compute"]
"#
        ))
    }

    fn with_hosts(bytes: Option<&[u8]>, kind: FileKind, size: u64) -> HostFacts {
        let mut f = HostFacts::default();
        f.files.insert(
            HOSTS.into(),
            FileState {
                kind,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                size,
                sha256: None,
                content: None,
                bytes: bytes.map(<[u8]>::to_vec),
            },
        );
        f
    }

    fn written(resources: &[Resource]) -> String {
        match resources {
            [Resource::File(f)] => {
                assert_eq!((f.path.as_str(), f.mode), (HOSTS, 0o644));
                assert_eq!((f.owner.as_str(), f.group.as_str()), ("root", "root"));
                String::from_utf8(f.content.clone()).unwrap()
            }
            other => panic!("expected /etc/hosts alone, got {} resources", other.len()),
        }
    }

    #[test]
    fn the_login_host_gets_the_nodes_with_ip_addresses_after_its_own_lines() {
        let inv = closet(true);
        let head = inv.host("head").unwrap();
        let current = b"127.0.0.1\tlocalhost\n10.0.0.10 head\n";
        let facts = with_hosts(Some(current), FileKind::File, current.len() as u64);
        let text = written(&resources(&inv, head, Some(&facts)));
        assert_eq!(
            text,
            format!("127.0.0.1\tlocalhost\n10.0.0.10 head\n{BEGIN}\n10.0.0.11 gpu1\nfd00::12 gpu2\n# END closetctl\n"),
            "gpu3 has a DNS name: no line"
        );
        // Applied once, the same again: nothing to change.
        let again = with_hosts(Some(text.as_bytes()), FileKind::File, text.len() as u64);
        assert_eq!(written(&resources(&inv, head, Some(&again))), text);
        assert!(conflicts(&inv, head, &again).is_empty());
    }

    #[test]
    fn only_the_login_host_and_only_with_slurm() {
        let inv = closet(true);
        let facts = with_hosts(Some(b""), FileKind::File, 0);
        assert!(resources(&inv, inv.host("gpu1").unwrap(), Some(&facts)).is_empty());
        let without = closet(false);
        assert!(resources(&without, without.host("head").unwrap(), Some(&facts)).is_empty());
    }

    #[test]
    fn no_node_by_address_writes_nothing_but_empties_an_old_block() {
        let inv = fixtures::inventory(
            "[slurm]\ncontroller = \"head\"\n\n[[host]]\nname = \"head\"\naddress = \"head.lab\"\nroles = [\"controller\"]\n\n[[host]]\nname = \"gpu1\"\naddress = \"gpu1.lab\"\nroles = [\"compute\"]\n",
        );
        let head = inv.host("head").unwrap();
        let plain = with_hosts(Some(b"127.0.0.1 localhost\n"), FileKind::File, 20);
        assert!(resources(&inv, head, Some(&plain)).is_empty());
        // While the probe request is built (no facts), the file is asked for.
        assert_eq!(resources(&inv, head, None).len(), 1);
        let old = format!("127.0.0.1 localhost\n{BEGIN}\n10.0.0.11 gpu1\n# END closetctl\n");
        let facts = with_hosts(Some(old.as_bytes()), FileKind::File, old.len() as u64);
        assert_eq!(
            written(&resources(&inv, head, Some(&facts))),
            format!("127.0.0.1 localhost\n{BEGIN}\n# END closetctl\n")
        );
    }

    #[test]
    fn a_file_closetctl_cannot_edit_safely_is_a_conflict_and_is_left_alone() {
        let inv = closet(true);
        let head = inv.host("head").unwrap();
        let cases = [
            (with_hosts(None, FileKind::Symlink, 10), Code::HostsNotFile, "not a regular file"),
            (with_hosts(None, FileKind::File, 900_000), Code::HostsTooLarge, "add the node names by hand"),
            (
                with_hosts(Some(b"a\n# BEGIN closetctl: x\n10.0.0.11 gpu1\n"), FileKind::File, 40),
                Code::HostsBlockUnclosed,
                "no `# END closetctl` after it",
            ),
        ];
        for (facts, code, words) in cases {
            let found = conflicts(&inv, head, &facts);
            assert_eq!(found.len(), 1, "{code:?}");
            assert_eq!(found[0].code, code);
            assert!(found[0].message.contains(words), "{}", found[0].message);
            if code != Code::HostsBlockUnclosed {
                assert!(resources(&inv, head, Some(&facts)).is_empty(), "{code:?}");
            }
        }
    }
}
