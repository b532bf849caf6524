//! The template context: what a `templates/*.j2` file can see.
//!
//! `cluster`, `host` (this host from the inventory), `hosts` (all of them), `users`,
//! `groups` and `facts` (each host's facts by name), plus each concern's own values
//! (`slurm` and `nfs` sections, Slurm node lines, NFS exports: see
//! [`crate::concerns::Concern::template_values`]) so templates stay simple.
//!
//! A value is built only when some template (or handler command) reads it ([`Reads`]):
//! `facts` holds every host's facts, and turning them into template values costs more
//! than planning a host, so a plan whose templates never read it never pays for it.

use crate::facts::ClusterFacts;
use crate::inventory::{Host, Inventory};
use crate::playbook::Playbooks;
use minijinja::{context, Environment, UndefinedBehavior, Value};
use std::collections::BTreeSet;

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

/// The top-level names that templates read (minijinja's undeclared variables of every
/// template in the environment and of every extra source, e.g. handler commands).
#[derive(Debug, Clone, Default)]
pub struct Reads {
    names: BTreeSet<String>,
    /// Everything is wanted (a template prints the whole context with `debug()`).
    all: bool,
}

impl Reads {
    /// Every value, read or not.
    pub fn all() -> Reads {
        Reads {
            names: BTreeSet::new(),
            all: true,
        }
    }

    /// What the templates of `env` and the template sources in `extra` read.
    pub fn of<'s>(env: &Environment<'_>, extra: impl IntoIterator<Item = &'s str>) -> Reads {
        let mut names = BTreeSet::new();
        for (_, template) in env.templates() {
            names.extend(template.undeclared_variables(false));
        }
        for source in extra {
            // A source that does not parse fails when rendered, whatever the context.
            if let Ok(template) = env.template_from_str(source) {
                names.extend(template.undeclared_variables(false));
            }
        }
        let all = names.contains("debug");
        Reads { names, all }
    }

    pub fn wants(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }
}

/// The part of the context every host shares; built once per plan (it holds every
/// host's facts, so building it per host would make planning quadratic), and only
/// with the values some template reads.
pub fn shared_context(inventory: &Inventory, facts: &ClusterFacts, reads: &Reads) -> Value {
    let mut ctx: Vec<(&'static str, Value)> = Vec::new();
    let mut put = |name: &'static str, value: &dyn Fn() -> Value| {
        if reads.wants(name) {
            ctx.push((name, value()));
        }
    };
    put("cluster", &|| Value::from_serialize(&inventory.cluster));
    put("hosts", &|| Value::from_serialize(&inventory.hosts));
    put("users", &|| Value::from_serialize(&inventory.users));
    put("groups", &|| {
        Value::from_serialize(inventory.managed_groups())
    });
    put("facts", &|| Value::from_serialize(&facts.hosts));
    for (name, value) in crate::concerns::template_values(inventory, facts) {
        put(name, &*value);
    }
    ctx.into_iter().collect()
}

/// The context for one host: the shared part plus `host`.
pub fn host_context(shared: &Value, host: &Host) -> Value {
    context! { host => Value::from_serialize(host), ..shared.clone() }
}
