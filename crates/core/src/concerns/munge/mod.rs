//! MUNGE: one key on every host, so Slurm's daemons and commands trust each other.
//!
//! Data only: the key is a generated secret (see [`crate::secrets`]) written by the
//! playbook with mode 0400 for `munge`, and munged restarts when it changes. After an
//! apply, closetctl-exec's `verify` checks that a credential made on each host decodes
//! on every other one with `unmunge`.

/// The `munge` concern: its playbook.
pub struct Munge;

impl super::Concern for Munge {
    fn name(&self) -> &'static str {
        "munge"
    }
    fn playbooks(&self) -> &'static [super::Shipped] {
        &[("20-munge.toml", include_str!("20-munge.toml"))]
    }
}
