//! MUNGE: one key on every host, so Slurm's daemons and commands trust each other.
//!
//! Data only: the key is a generated secret (see [`crate::secrets`]) written by the
//! playbook with mode 0400 for `munge`, and munged restarts when it changes. After an
//! apply, [`verify`] checks that a credential made on each host decodes on the
//! controller and the controller's on each host, with `unmunge`.

pub mod verify;

/// The `munge` concern: its playbook.
pub struct Munge;

impl super::Concern for Munge {
    fn name(&self) -> &'static str {
        "munge"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[("20-munge.toml", include_str!("20-munge.toml"))]
    }
    /// MUNGE is checked where Slurm uses it: with a `[slurm]` section.
    fn verifications(
        &self,
        scope: &crate::verification::Scope,
    ) -> Vec<Box<dyn crate::verification::Verification>> {
        let Some(slurm) = &scope.inventory.slurm else {
            return Vec::new();
        };
        vec![Box::new(verify::Crosswise {
            controller: slurm.controller.clone(),
            hosts: scope.hosts.clone(),
        })]
    }
}
