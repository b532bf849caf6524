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

pub fn template_context(inventory: &Inventory, host: &Host, facts: &ClusterFacts) -> Value {
    context! {
        cluster => Value::from_serialize(&inventory.cluster),
        host => Value::from_serialize(host),
        hosts => Value::from_serialize(&inventory.hosts),
        users => Value::from_serialize(&inventory.users),
        groups => Value::from_serialize(inventory.managed_groups()),
        nfs => Value::from_serialize(&inventory.nfs),
        slurm => Value::from_serialize(&inventory.slurm),
        facts => Value::from_serialize(&facts.hosts),
        slurm_conf => Value::from_serialize(crate::modules::slurm::context(inventory, facts)),
        nfs_exports => crate::modules::nfs::exports_file(inventory),
        nfs_automounts => crate::shell::join(
            inventory.nfs.iter().flat_map(|n| &n.exports).map(|e| crate::modules::nfs::automount_unit(&e.path)),
        ),
    }
}
