//! closetctl's integration tests, in one test binary: one module per area, and the
//! shared fixtures in [`kit`] (the example inventory and its facts, temp inventories,
//! fake closets, plan and apply on them, the binary).
//!
//! To add an area: put `tests/closet/NAME.rs` here with a `//!` header, declare it
//! below, and take fixtures from `crate::kit` rather than writing them again. Its insta
//! snapshots live in `tests/closet/snapshots/closet__NAME__*.snap`.

mod kit;

mod accounting_fake;
mod adduser;
mod check_cli;
mod cli;
mod completions;
mod first_plan;
mod interrupt_fake;
mod interrupt_table;
mod inventory_errors;
mod nfs_files;
mod nfs_values;
mod observability;
mod offboarding;
mod perf_fake;
mod plan_fake;
mod plan_json_example;
mod preflight_gate;
mod skypilot_fake;
mod slurm_templates;
mod status;
mod tailscale_plan;
mod tailscale_policy;
mod tailscale_push;
mod verify_fake;
mod write_safety;
