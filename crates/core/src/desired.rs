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
use std::collections::BTreeMap;
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
pub struct Desired<'a> {
    inputs: &'a Inputs<'a>,
    facts: &'a ClusterFacts,
    env: minijinja::Environment<'a>,
    shared: minijinja::Value,
}

impl<'a> Desired<'a> {
    pub fn new(inputs: &'a Inputs<'a>, facts: &'a ClusterFacts) -> Desired<'a> {
        Desired {
            inputs,
            facts,
            env: context::environment(inputs.playbooks),
            shared: context::shared_context(inputs.inventory, facts),
        }
    }

    pub fn host_steps(&self, host: &Host) -> Result<Vec<DesiredStep>, DesiredError> {
        let ctx = context::host_context(&self.shared, host);
        let renderer = Renderer {
            env: &self.env,
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
    env: &'a minijinja::Environment<'a>,
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
            (Some(r), Some(t), None) => render(r, t)?.into_bytes(),
            // A template holding a secret (slurmdbd.conf's password): rendered with it as
            // `secret`, and the file is secret content (fingerprints only in plans).
            (Some(r), Some(t), Some(s)) => {
                let value = r
                    .secrets
                    .get(s)
                    .ok_or_else(|| DesiredError::MissingSecret { name: s.clone() })?;
                let ctx = minijinja::context! { secret => String::from_utf8_lossy(value), ..r.ctx.clone() };
                render_with(r, t, &ctx)?.into_bytes()
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
                Some(r) => r
                    .env
                    .render_str(c, r.ctx)
                    .map_err(|e| DesiredError::Template {
                        host: host.name.clone(),
                        template: format!("handler `{}`", h.name),
                        message: format!("{e:#}"),
                    })?,
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

fn render(r: &Renderer, template: &str) -> Result<String, DesiredError> {
    render_with(r, template, r.ctx)
}

fn render_with(
    r: &Renderer,
    template: &str,
    ctx: &minijinja::Value,
) -> Result<String, DesiredError> {
    let err = |e: minijinja::Error| DesiredError::Template {
        host: r.host.name.clone(),
        template: template.to_string(),
        message: format!("{e:#}"),
    };
    r.env
        .get_template(template)
        .map_err(err)?
        .render(ctx)
        .map_err(err)
}
