//! The desired state of each host: the playbook steps that apply to it, expanded into
//! resources and handlers, with file content rendered from templates and secrets.
//!
//! Pure: it reads the inventory, the playbooks, the secrets and the facts it is given.
//! The same expansion without rendering tells the probe what to look at, so the probe
//! and the plan can never disagree about which paths, packages and units matter.

use crate::concerns;
use crate::context;
use crate::facts::probe::ProbeRequest;
use crate::facts::ClusterFacts;
use crate::inventory::{Host, Inventory};
use crate::ops::Actor;
use crate::playbook::{Playbooks, Step};
use crate::resource::{Directory, File, Resource, Service};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DesiredError {
    #[error("host `{host}`: template `{template}` failed: {message}")]
    Template {
        host: String,
        template: String,
        message: String,
    },
    #[error("secret `{name}` is needed but was not loaded")]
    MissingSecret { name: String },
}

/// What a handler does when something it watches changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerAction {
    Restart(String),
    Reload(String),
    Command(String),
}

#[derive(Debug, Clone)]
pub struct Handler {
    pub name: String,
    pub watch: Vec<String>,
    /// Fire only when the most disruptive watched change has this label.
    pub disruption: Option<String>,
    pub action: HandlerAction,
}

/// One step of one host.
#[derive(Debug, Clone)]
pub struct DesiredStep {
    pub name: String,
    pub resources: Vec<Resource>,
    pub handlers: Vec<Handler>,
    /// Path -> the command that checks it before anything activates it (`%s` = path).
    pub validate: BTreeMap<String, String>,
}

pub use crate::secrets::Secrets;

/// Everything the pure core reads.
pub struct Inputs<'a> {
    pub inventory: &'a Inventory,
    pub playbooks: &'a Playbooks,
    pub secrets: &'a Secrets,
}

/// The steps that apply to `host`, fully rendered against `facts`. To plan many
/// hosts, build one [`Desired`] and ask it per host.
pub fn host_steps(
    inputs: &Inputs,
    host: &Host,
    facts: &ClusterFacts,
) -> Result<Vec<DesiredStep>, DesiredError> {
    Desired::new(inputs, facts).host_steps(host)
}

/// The template environment and the shared context, built once for every host.
///
/// What does not depend on the host is rendered once: a template (or handler
/// command) that does not read `host` gives the same text for every host of a plan
/// (`slurm.conf`, `gres.conf`, `/etc/exports` list the whole cluster), so its first
/// rendering is kept and reused.
pub struct Desired<'a> {
    inputs: &'a Inputs<'a>,
    facts: &'a ClusterFacts,
    env: minijinja::Environment<'a>,
    shared: minijinja::Value,
    /// Renderings of templates, by name, kept for every host.
    templates: Cache<'a>,
    /// Renderings of handler commands, by their text, kept for every host.
    commands: Cache<'a>,
}

/// Renderings that are the same for every host of a plan.
#[derive(Default)]
struct Cache<'a> {
    /// The sources (template names, command texts) that do not depend on the host.
    host_free: HashSet<&'a str>,
    /// Source -> its text, or the error message, once rendered.
    rendered: Mutex<HashMap<String, Result<String, String>>>,
}

impl<'a> Desired<'a> {
    pub fn new(inputs: &'a Inputs<'a>, facts: &'a ClusterFacts) -> Desired<'a> {
        let env = context::environment(inputs.playbooks);
        let commands = inputs
            .playbooks
            .steps
            .iter()
            .flat_map(|s| &s.handlers)
            .filter_map(|h| h.command.as_deref());
        let reads = context::Reads::of(&env, commands.clone());
        let mut templates = Cache::default();
        for (name, text) in &inputs.playbooks.templates {
            if env
                .get_template(name)
                .is_ok_and(|t| reads_no_host(&t, text))
            {
                templates.host_free.insert(name.as_str());
            }
        }
        let mut commands_cache = Cache::default();
        for c in commands {
            if env.template_from_str(c).is_ok_and(|t| reads_no_host(&t, c)) {
                commands_cache.host_free.insert(c);
            }
        }
        Desired {
            inputs,
            facts,
            shared: context::shared_context(inputs.inventory, facts, &reads),
            env,
            templates,
            commands: commands_cache,
        }
    }

    pub fn host_steps(&self, host: &Host) -> Result<Vec<DesiredStep>, DesiredError> {
        let ctx = context::host_context(&self.shared, host);
        let renderer = Renderer {
            desired: self,
            ctx: &ctx,
            secrets: self.inputs.secrets,
            host,
        };
        steps_for(self.inputs.inventory, self.inputs.playbooks, host)
            .map(|step| {
                expand(
                    self.inputs.inventory,
                    step,
                    host,
                    Some(&renderer),
                    self.facts.host(&host.name),
                )
            })
            .collect()
    }
}

/// Whether a template's text is the same for every host: it does not read `host` and
/// pulls in no other template (whose reads it would share).
fn reads_no_host(template: &minijinja::Template, source: &str) -> bool {
    !template.undeclared_variables(false).contains("host") && !pulls_in_templates(source)
}

/// Whether a template source has an `include`, `import`, `from` or `extends` tag.
fn pulls_in_templates(source: &str) -> bool {
    source.split("{%").skip(1).any(|tag| {
        let word = tag
            .trim_start_matches(['-', '+'])
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("");
        matches!(word, "include" | "import" | "from" | "extends")
    })
}

/// What the probe must gather on `host` for a plan.
pub fn probe_request(inventory: &Inventory, playbooks: &Playbooks, host: &Host) -> ProbeRequest {
    let mut req = ProbeRequest::default();
    for step in steps_for(inventory, playbooks, host) {
        let expanded = expand(inventory, step, host, None, None)
            .expect("expansion without rendering cannot fail");
        for r in &expanded.resources {
            r.probe(&mut req);
        }
    }
    req.merge(concerns::probe_extras(inventory, host));
    req
}

/// The commands a second probe of `host` must run once its first answer is known:
/// those only the resources derived from the facts ask for (an association to remove
/// asks for the controller's active jobs) and that the first probe did not run. Almost
/// always empty: a plan then costs one round trip.
pub fn followup_commands(
    inventory: &Inventory,
    playbooks: &Playbooks,
    host: &Host,
    facts: &crate::facts::HostFacts,
) -> BTreeMap<String, String> {
    let mut req = ProbeRequest::default();
    for step in steps_for(inventory, playbooks, host) {
        let expanded = expand(inventory, step, host, None, Some(facts))
            .expect("expansion without rendering cannot fail");
        for r in &expanded.resources {
            r.probe(&mut req);
        }
    }
    req.commands
        .into_iter()
        .filter(|(name, _)| !facts.commands.contains_key(name))
        .collect()
}

/// Secret names the steps for these hosts need.
pub fn secrets_needed(inventory: &Inventory, playbooks: &Playbooks) -> Vec<String> {
    let mut names: Vec<String> = inventory
        .hosts
        .iter()
        .flat_map(|h| steps_for(inventory, playbooks, h))
        .flat_map(|s| s.files.iter().filter_map(|f| f.secret.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn steps_for<'p>(
    inventory: &'p Inventory,
    playbooks: &'p Playbooks,
    host: &'p Host,
) -> impl Iterator<Item = &'p Step> + 'p {
    playbooks
        .steps
        .iter()
        .filter(move |s| s.applies_to(inventory, host))
}

struct Renderer<'a> {
    desired: &'a Desired<'a>,
    ctx: &'a minijinja::Value,
    secrets: &'a Secrets,
    host: &'a Host,
}

fn mode(text: &str) -> u32 {
    u32::from_str_radix(text, 8).unwrap_or(0o644)
}

fn expand(
    inventory: &Inventory,
    step: &Step,
    host: &Host,
    renderer: Option<&Renderer>,
    facts: Option<&crate::facts::HostFacts>,
) -> Result<DesiredStep, DesiredError> {
    let mut resources = Vec::new();
    if let Some(module) = &step.module {
        resources.extend(concerns::resources(
            module,
            &concerns::HostInputs {
                inventory,
                host,
                facts,
                secrets: renderer.map(|r| r.secrets),
            },
        ));
    }
    resources.extend(step.packages.iter().map(|p| Resource::Package(p.clone())));
    resources.extend(step.directories.iter().map(|d| {
        Resource::Directory(Directory {
            path: d.path.clone(),
            owner: d.owner.clone(),
            group: d.group.clone(),
            mode: mode(&d.mode),
            actor: Actor::Root,
        })
    }));
    for f in &step.files {
        let content = match (renderer, &f.template, &f.secret) {
            (None, _, _) => Vec::new(),
            (Some(r), Some(t), None) => r
                .cached(&r.desired.templates, t, t, || render_template(r, t, r.ctx))?
                .into_bytes(),
            // A template holding a secret (slurmdbd.conf's password): rendered with it as
            // `secret`, and the file is secret content (fingerprints only in plans).
            (Some(r), Some(t), Some(s)) => {
                let value = r
                    .secrets
                    .get(s)
                    .ok_or_else(|| DesiredError::MissingSecret { name: s.clone() })?;
                let ctx = minijinja::context! { secret => String::from_utf8_lossy(value), ..r.ctx.clone() };
                r.error(t, render_template(r, t, &ctx))?.into_bytes()
            }
            (Some(r), None, Some(s)) => r
                .secrets
                .get(s)
                .cloned()
                .ok_or_else(|| DesiredError::MissingSecret { name: s.clone() })?,
            (Some(_), None, None) => Vec::new(),
        };
        resources.push(Resource::File(File {
            path: f.path.clone(),
            owner: f.owner.clone(),
            group: f.group.clone(),
            mode: mode(&f.mode),
            content,
            secret: f.secret.clone(),
            // Validated with the playbook: every label is known.
            disruption: f.disruption.as_deref().and_then(concerns::disruption),
            actor: Actor::Root,
        }));
    }
    resources.extend(
        step.services
            .iter()
            .map(|s| Resource::Service(Service::new(&s.name, s.enabled, s.running))),
    );
    resources.sort_by_key(Resource::order);
    let mut handlers = Vec::new();
    for h in &step.handlers {
        let action = match (&h.restart, &h.reload, &h.command) {
            (Some(u), _, _) => HandlerAction::Restart(Service::new(u, true, true).unit),
            (_, Some(u), _) => HandlerAction::Reload(Service::new(u, true, true).unit),
            // Commands are templates too (e.g. the automount units of the NFS shares).
            (_, _, Some(c)) => HandlerAction::Command(match renderer {
                Some(r) => r.cached(
                    &r.desired.commands,
                    c,
                    &format!("handler `{}`", h.name),
                    || {
                        r.desired
                            .env
                            .render_str(c, r.ctx)
                            .map_err(|e| format!("{e:#}"))
                    },
                )?,
                None => c.clone(),
            }),
            _ => unreachable!("validated: one action per handler"),
        };
        handlers.push(Handler {
            name: h.name.clone(),
            watch: h.watch.clone(),
            disruption: h.disruption.clone(),
            action,
        });
    }
    Ok(DesiredStep {
        name: step.name.clone(),
        resources,
        handlers,
        validate: step
            .files
            .iter()
            .filter_map(|f| Some((f.path.clone(), f.validate.clone()?)))
            .collect(),
    })
}

impl Renderer<'_> {
    /// `render()`'s text, rendered once per plan when `source` is host-free.
    /// `what` names the source in an error.
    fn cached(
        &self,
        cache: &Cache,
        source: &str,
        what: &str,
        render: impl FnOnce() -> Result<String, String>,
    ) -> Result<String, DesiredError> {
        if !cache.host_free.contains(source) {
            return self.error(what, render());
        }
        let mut rendered = cache.rendered.lock().unwrap_or_else(|e| e.into_inner());
        let result = match rendered.get(source) {
            Some(r) => r.clone(),
            None => {
                let r = render();
                rendered.insert(source.to_string(), r.clone());
                r
            }
        };
        self.error(what, result)
    }

    /// A rendering's error message as this host's [`DesiredError::Template`].
    fn error(&self, what: &str, result: Result<String, String>) -> Result<String, DesiredError> {
        result.map_err(|message| DesiredError::Template {
            host: self.host.name.clone(),
            template: what.to_string(),
            message,
        })
    }
}

fn render_template(r: &Renderer, template: &str, ctx: &minijinja::Value) -> Result<String, String> {
    r.desired
        .env
        .get_template(template)
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("{e:#}"))
}
