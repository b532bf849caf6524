//! Name resolution on the fake host: `check network`'s node-name command (a loop of
//! `getent ahostsv4 NAME` over quoted names, [`node_names_command`]) answered from the
//! host's [`FakeState::resolver`], `NAME ADDRESS` per name and ADDRESS empty when the
//! name does not resolve, as the real loop prints it.
//!
//! [`node_names_command`]: closetctl_core::check::network::node_names_command

use super::state::FakeState;
use closetctl_core::check::network::{NODE_NAMES_LOOP, NODE_NAMES_START};

/// The node-name command (matched by its fixed start and loop), else `None`.
pub(crate) fn answer(s: &FakeState, cmd: &str) -> Option<(i32, String)> {
    let names = cmd
        .strip_prefix(NODE_NAMES_START)?
        .strip_suffix(NODE_NAMES_LOOP)?;
    let rows: Vec<String> = shlex::split(names)?
        .iter()
        .map(|n| format!("{n} {}", s.resolver.get(n).map_or("", String::as_str)))
        .collect();
    Some((0, rows.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use closetctl_core::check::network::node_names_command;

    #[test]
    fn names_resolve_from_the_map_and_the_others_print_no_address() {
        let mut s = FakeState::debian("head");
        s.resolver.insert("node1".into(), "10.77.0.11".into());
        let cmd = node_names_command(["node1", "node2"]);
        assert_eq!(
            answer(&s, &cmd),
            Some((0, "node1 10.77.0.11\nnode2 ".to_string()))
        );
        assert_eq!(answer(&s, "getent ahostsv4 node1"), None);
    }
}
