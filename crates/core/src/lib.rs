//! closetctl's pure core: the inventory, playbooks, secrets and facts go in, a plan
//! comes out. Nothing here reaches a host, starts a process or opens a socket: the
//! crate has no tokio, SSH or HTTP dependency, and `clippy.toml` beside it forbids
//! `std::process` and `std::net` I/O (tests may run a local `sh` to check the text of
//! the scripts the core writes; the library itself may not).
//!
//! - [`inventory`]: the one file, parsed and validated before any host is contacted.
//! - [`playbook`] and [`modules`]: the steps each role needs, as data and as code.
//! - [`facts`]: what one probe per host reports, and the probe's script and parser.
//! - [`desired`] → [`plan`]: each host's desired state, diffed against its facts.
//! - [`resource`] and [`ops`]: the kinds of things closetctl manages and the shell
//!   operations that change them.
//! - [`check`]: preflight findings (UIDs, power, cooling, network, clocks).
//! - [`diagnostic`]: the one typed finding (severity, code, host, subject, message,
//!   hint) that warnings, conflicts, preflight and verification report, and its text.
//! - [`lock`] and [`journal`]: the per-host apply lock and the handlers a host is owed.
//! - [`status`]: the pool at a glance (`closetctl status`): its scripts, parsers, table and JSON.

#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]

pub mod block;
pub mod check;
pub mod concerns;
pub mod context;
pub mod desired;
pub mod diagnostic;
pub mod facts;
pub mod gpu;
pub mod inventory;
pub mod journal;
pub mod loaded;
pub mod lock;
pub mod ops;
pub mod plan;
pub mod playbook;
pub mod resource;
pub mod secrets;
pub mod shell;
pub mod status;
pub mod verification;
