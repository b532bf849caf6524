//! The template context: what a `templates/*.j2` file can see.
//!
//! `cluster`, `host` (this host from the inventory), `hosts` (all of them), `users`,
//! `groups` and `facts` (each host's facts by name), plus each concern's own values
//! (`slurm` and `nfs` sections, Slurm node lines, NFS exports: see
//! [`crate::concerns::Concern::template_values`]) so templates stay simple.

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
        facts => Value::from_serialize(&facts.hosts),
        ..Value::from_iter(crate::concerns::template_values(inventory, facts))
    }
}

/// The context for one host: the shared part plus `host`.
pub fn host_context(shared: &Value, host: &Host) -> Value {
    context! { host => Value::from_serialize(host), ..shared.clone() }
}
