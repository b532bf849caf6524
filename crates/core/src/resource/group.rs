//! Group resource: a group with a fixed GID. A group that exists with another GID is a
//! conflict found by the users module before planning, never renumbered here.

use super::{Action, Change, ResourceKind};
use crate::facts::HostFacts;
use crate::ops::Op;

pub fn diff(name: &str, gid: u32, facts: &HostFacts) -> Option<Change> {
    if facts.groups.contains_key(name) {
        return None;
    }
    let mut c = Change::new(ResourceKind::Group, name, Action::Create);
    c.details.push(format!("gid {gid}"));
    c.ops.push(Op::GroupAdd {
        name: name.to_string(),
        gid,
    });
    Some(c)
}
