//! Test kit: a fake closet of in-memory Debian hosts that interpret closetctl's own
//! scripts, for tests and benchmarks. A dev-dependency only; it never ships.

pub(crate) use closetctl_core::{facts, inventory};

pub mod fake;
