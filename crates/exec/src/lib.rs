//! closetctl's execution: everything that reaches a host, over the pure core.
//!
//! - [`transport`]: the narrow trait every host is reached through, and SSH.
//! - [`engine`]: gathers facts (one probe per host, all at once) and carries out plans,
//!   one batched script per host per step; emits events, never prints.
//! - [`interrupt`]: the first Ctrl-C stops starting steps, the second ends them.
//! - [`verify`]: after an apply, the real tools (`unmunge`, `sinfo`) say it worked.
//! - [`local`]: the machine closetctl runs on (the holder written into each lock).

// The core's modules under their own names, so `crate::plan` reads the same here.
pub(crate) use closetctl_core::{
    concerns, facts, inventory, journal, lock, ops, plan, resource, shell,
};

pub mod engine;
pub mod interrupt;
pub mod local;
pub mod orchestrate;
pub mod transport;
pub mod verify;
