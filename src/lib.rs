//! closetctl: one inventory file turns a few GPU machines in a closet into one cluster.
//!
//! The layers, from the outside in:
//! - [`command`]: one file per subcommand; parses flags, loads, reports, exits.
//! - [`engine`]: gathers facts (one probe per host, all at once) and carries out plans;
//!   emits events, never prints.
//! - [`plan`] over [`desired`], [`resource`] and [`modules`]: the pure core, inventory +
//!   playbooks + secrets + facts in, plan out, no I/O.
//! - [`transport`]: SSH for real hosts, a fake for tests.

pub mod check;
pub mod command;
pub mod context;
pub mod desired;
pub mod engine;
pub mod facts;
pub mod gpu;
pub mod interrupt;
pub mod inventory;
pub mod journal;
pub mod lock;
pub mod modules;
pub mod ops;
pub mod plan;
pub mod playbook;
pub mod report;
pub mod resource;
pub mod secrets;
pub mod shell;
pub mod transport;
pub mod verify;
