//! Package resource: a Debian package that must be installed.
//!
//! Every package of a step is installed by one `apt-get install` at apply time (the
//! engine merges the ops), so a step costs one package transaction per host.

use super::{Action, Change, ResourceKind};
use crate::facts::HostFacts;
use crate::ops::Op;

pub fn diff(name: &str, facts: &HostFacts) -> Option<Change> {
    if facts.packages.get(name).is_some_and(|p| p.installed) {
        return None;
    }
    let mut c = Change::new(ResourceKind::Package, name, Action::Create);
    c.details.push("install".into());
    c.ops.push(Op::InstallPackages(vec![name.to_string()]));
    Some(c)
}
