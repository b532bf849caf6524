//! The template context: what a `templates/*.j2` file can see.
//!
//! `cluster`, `host` (this host from the inventory), `hosts` (all of them), `users`,
//! `groups`, `nfs`, `slurm` (the inventory's sections) and `facts` (each host's facts
//! by name). Modules add derived values here (Slurm node lines, exports) so templates
//! stay simple.

use crate::facts::ClusterFacts;
use crate::inventory::{Host, Inventory};
use crate::playbook::Playbooks;
use minijinja::{context, Environment, UndefinedBehavior, Value};

/// A template environment over the playbooks' templates; undefined values are errors.
pub fn environment(playbooks: &Playbooks) -> Environment<'_> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    for (name, text) in &playbooks.templates {
        // Templates were parsed when the playbooks were validated; a broken one fails at render.
        let _ = env.add_template(name.as_str(), text.as_str());
    }
    env
}

/// The part of the context every host shares; built once per plan (it holds every
/// host's facts, so building it per host would make planning quadratic).
pub fn shared_context(inventory: &Inventory, facts: &ClusterFacts) -> Value {
    context! {
        cluster => Value::from_serialize(&inventory.cluster),
        hosts => Value::from_serialize(&inventory.hosts),
        users => Value::from_serialize(&inventory.users),
        groups => Value::from_serialize(inventory.managed_groups()),
        nfs => Value::from_serialize(&inventory.nfs),
        slurm => Value::from_serialize(&inventory.slurm),
        facts => Value::from_serialize(&facts.hosts),
        slurm_conf => Value::from_serialize(crate::concerns::slurm::context(inventory, facts)),
        nfs_exports => crate::concerns::nfs::exports_file(inventory),
        nfs_automounts => crate::shell::join(
            inventory.nfs.iter().flat_map(|n| &n.exports).map(|e| crate::concerns::nfs::automount_unit(&e.path)),
        ),
    }
}

/// The context for one host: the shared part plus `host`.
pub fn host_context(shared: &Value, host: &Host) -> Value {
    context! { host => Value::from_serialize(host), ..shared.clone() }
}
