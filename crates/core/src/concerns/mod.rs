//! Concerns: the parts of a cluster closetctl makes consistent (users, MUNGE, Slurm,
//! accounting, NFS, Tailscale, the login banner), one folder each, and the registry
//! that generic code asks instead of naming them.
//!
//! A concern's folder holds its playbooks (`NN-name.toml`), templates (`*.j2`) and the
//! Rust that computes what data cannot: the resources of the playbook `module`s it
//! names, extra probe requests, conflicts that make apply refuse a host, warnings,
//! values templates can use, and the disruption labels it classifies. It implements
//! [`Concern`]; a new concern is its folder plus one line in [`REGISTRY`].

use crate::diagnostic::Diagnostic;
use crate::facts::probe::ProbeRequest;
use crate::facts::{ClusterFacts, HostFacts};
use crate::inventory::sections::{Section, SectionCheck};
use crate::inventory::{Host, Inventory};
use crate::playbook::Playbooks;
use crate::resource::{Classifier, Disruption, Resource, DISRUPTIONS};
use crate::secrets::{SecretError, Secrets};
use crate::verification::{Scope, Verification};

/// Declares each concern's module (its folder) and lists it in [`REGISTRY`].
macro_rules! registry {
    ($($folder:ident => $concern:ident),* $(,)?) => {
        $(pub mod $folder;)*

        /// Every concern, in the order its playbooks run (their findings are listed in
        /// this order).
        pub static REGISTRY: &[&dyn Concern] = &[$(&$folder::$concern),*];
    };
}

// One line per concern: its folder and the type that implements [`Concern`].
registry! {
    users => Users,
    munge => Munge,
    accounting => FairShare,
    slurm => Slurm,
    nfs => Nfs,
    tailscale => Tailnet,
    motd => Motd,
}

/// A template value by name, computed on demand.
pub type TemplateValue<'a> = (&'static str, Box<dyn Fn() -> minijinja::Value + 'a>);

/// A named text shipped inside the binary: `(file name, contents)`.
pub type Shipped = (&'static str, &'static str);

/// What one host's resources are computed from.
pub struct HostInputs<'a> {
    pub inventory: &'a Inventory,
    pub host: &'a Host,
    /// `None` while only the probe request is being built.
    pub facts: Option<&'a HostFacts>,
    /// `None` while only the probe request is being built.
    pub secrets: Option<&'a Secrets>,
}

/// What a concern adds. Every method but [`Concern::name`] has a default that adds
/// nothing, so a concern implements only what it has.
pub trait Concern: Sync {
    /// The concern's name (its folder).
    fn name(&self) -> &'static str;

    /// Its playbooks, run in file-name order with every other concern's.
    fn playbooks(&self) -> &'static [Shipped] {
        &[]
    }

    /// Its templates, by the name a playbook's `template` key gives.
    fn templates(&self) -> &'static [Shipped] {
        &[]
    }

    /// The inventory table it reads itself (`motd` for `[motd]`), if any.
    fn section(&self) -> Option<&'static str> {
        None
    }

    /// Read and check its table (present in the inventory): problems go to `check`
    /// with their place; the value returned is what [`Inventory::sections`] gives back.
    fn read_section(&self, _check: &mut SectionCheck) -> Option<Section> {
        None
    }

    /// Secrets it reads from outside the secrets directory (a file or variable the
    /// inventory names), added to `secrets` when the steps that need them run. A
    /// secret that is not there is not an error here: the plan says where to put it.
    fn load_secrets(
        &self,
        _inventory: &Inventory,
        _playbooks: &Playbooks,
        _secrets: &mut Secrets,
    ) -> Result<(), SecretError> {
        Ok(())
    }

    /// The `module` names a playbook step may give to have this concern compute its
    /// resources.
    fn modules(&self) -> &'static [&'static str] {
        &[]
    }

    /// The `when` conditions it decides (`slurm`: the inventory has a `[slurm]` section).
    fn conditions(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether its condition `name` holds for `inventory`.
    fn condition(&self, _name: &str, _inventory: &Inventory) -> bool {
        false
    }

    /// The resources of its `module` on one host.
    fn resources(&self, _module: &str, _inputs: &HostInputs) -> Vec<Resource> {
        Vec::new()
    }

    /// Facts it needs on `host` beyond what its resources ask for.
    fn probe(&self, _inventory: &Inventory, _host: &Host) -> ProbeRequest {
        ProbeRequest::default()
    }

    /// Values templates see by name (derived from the inventory and every host's facts),
    /// each computed once per plan and only when some template reads it.
    fn template_values<'a>(
        &self,
        _inventory: &'a Inventory,
        _facts: &'a ClusterFacts,
    ) -> Vec<TemplateValue<'a>> {
        Vec::new()
    }

    /// Cluster-wide findings shown above the plan.
    fn warnings(&self, _inventory: &Inventory, _facts: &ClusterFacts) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Lines that sum up what the finished plan does (shown after it and in its JSON).
    fn plan_summary(&self, _inventory: &Inventory, _plan: &crate::plan::Plan) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Findings about one host shown with its plan (they do not block apply).
    fn host_warnings(
        &self,
        _inventory: &Inventory,
        _host: &Host,
        _facts: &HostFacts,
    ) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Problems on a live host that make apply refuse to touch it.
    fn conflicts(
        &self,
        _inventory: &Inventory,
        _host: &Host,
        _facts: &HostFacts,
    ) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Things on a host it sees but leaves alone (reported, never changed).
    fn unmanaged(&self, _inventory: &Inventory, _facts: &HostFacts) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Checks with the cluster's own tools after an apply, over `scope`.
    fn verifications(&self, _scope: &Scope) -> Vec<Box<dyn Verification>> {
        Vec::new()
    }

    /// Disruption labels it decides per change (a playbook file's `disruption` may name
    /// one), each with the function that classifies a change.
    fn classifiers(&self) -> &'static [(&'static str, Classifier)] {
        &[]
    }
}

/// Every playbook shipped with closetctl.
pub fn playbooks() -> impl Iterator<Item = &'static Shipped> {
    REGISTRY.iter().flat_map(|c| c.playbooks())
}

/// Every template shipped with closetctl.
pub fn templates() -> impl Iterator<Item = &'static Shipped> {
    REGISTRY.iter().flat_map(|c| c.templates())
}

/// Whether a step may name `module`.
pub fn is_module(module: &str) -> bool {
    REGISTRY.iter().any(|c| c.modules().contains(&module))
}

/// Whether `name` is a `when` condition some concern decides.
pub fn is_condition(name: &str) -> bool {
    REGISTRY.iter().any(|c| c.conditions().contains(&name))
}

/// Whether the `when` condition `name` holds (an unknown one never does).
pub fn condition(name: &str, inventory: &Inventory) -> bool {
    REGISTRY
        .iter()
        .find(|c| c.conditions().contains(&name))
        .is_some_and(|c| c.condition(name, inventory))
}

/// The disruption a playbook's label stands for: one of [`DISRUPTIONS`], or one a
/// concern classifies per change. `None` for an unknown label.
pub fn disruption(label: &str) -> Option<Disruption> {
    if let Some(fixed) = DISRUPTIONS.iter().find(|d| **d == label) {
        return Some(Disruption::Fixed(fixed));
    }
    REGISTRY
        .iter()
        .flat_map(|c| c.classifiers())
        .find(|(l, _)| *l == label)
        .map(|(_, classify)| Disruption::Classified(*classify))
}

/// Every concern's secrets from outside the secrets directory.
pub fn load_secrets(
    inventory: &Inventory,
    playbooks: &Playbooks,
    secrets: &mut Secrets,
) -> Result<(), SecretError> {
    REGISTRY
        .iter()
        .try_for_each(|c| c.load_secrets(inventory, playbooks, secrets))
}

/// Resources of the module `module` for one host.
pub fn resources(module: &str, inputs: &HostInputs) -> Vec<Resource> {
    REGISTRY
        .iter()
        .filter(|c| c.modules().contains(&module))
        .flat_map(|c| c.resources(module, inputs))
        .collect()
}

/// Extra facts the concerns need on `host`.
pub fn probe_extras(inventory: &Inventory, host: &Host) -> ProbeRequest {
    let mut req = ProbeRequest::default();
    for c in REGISTRY {
        req.merge(c.probe(inventory, host));
    }
    req
}

/// The concerns' template values, each computed when asked for.
pub fn template_values<'a>(
    inventory: &'a Inventory,
    facts: &'a ClusterFacts,
) -> Vec<TemplateValue<'a>> {
    REGISTRY
        .iter()
        .flat_map(|c| c.template_values(inventory, facts))
        .collect()
}

/// Findings about one host shown with its plan (they do not block apply).
pub fn host_warnings(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    REGISTRY
        .iter()
        .flat_map(|c| c.host_warnings(inventory, host, facts))
        .collect()
}

/// Problems on a live host that make apply refuse to touch it.
pub fn conflicts(inventory: &Inventory, host: &Host, facts: &HostFacts) -> Vec<Diagnostic> {
    REGISTRY
        .iter()
        .flat_map(|c| c.conflicts(inventory, host, facts))
        .collect()
}

/// Cluster-wide findings to show above the plan.
pub fn warnings(inventory: &Inventory, facts: &ClusterFacts) -> Vec<Diagnostic> {
    REGISTRY
        .iter()
        .flat_map(|c| c.warnings(inventory, facts))
        .collect()
}

/// What every concern sums up about a finished plan.
pub fn plan_summary(inventory: &Inventory, plan: &crate::plan::Plan) -> Vec<Diagnostic> {
    REGISTRY
        .iter()
        .flat_map(|c| c.plan_summary(inventory, plan))
        .collect()
}

/// Things closetctl sees but leaves alone (reported, never changed).
pub fn unmanaged(inventory: &Inventory, facts: &HostFacts) -> Vec<Diagnostic> {
    REGISTRY
        .iter()
        .flat_map(|c| c.unmanaged(inventory, facts))
        .collect()
}

/// Every concern's checks after an apply, in registry order.
pub fn verifications(scope: &Scope) -> Vec<Box<dyn Verification>> {
    REGISTRY
        .iter()
        .flat_map(|c| c.verifications(scope))
        .collect()
}
