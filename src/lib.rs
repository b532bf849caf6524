//! closetctl: one inventory file turns a few GPU machines in a closet into one cluster.
//!
//! The crates, from the outside in:
//! - this one, the command line: [`command`] has one file per subcommand (flags,
//!   loading, output, exit codes) and [`report`] draws apply's progress;
//! - `closetctl-exec`: the transport (SSH), the engine that gathers facts and carries
//!   out plans (it emits events and never prints), interruption and verification;
//! - `closetctl-core`: the pure core, inventory + playbooks + secrets + facts in, plan
//!   out, with no I/O the compiler would let through;
//! - `closetctl-testkit`: the fake closet the tests run against.

// The other crates' modules under their own names, so `crate::plan` reads the same here.
pub(crate) use closetctl_core::{
    check, concerns, desired, diagnostic, facts, inventory, lock, plan, playbook, resource,
    secrets, status,
};
pub(crate) use closetctl_exec::{engine, interrupt, transport};

pub mod command;
pub mod report;
