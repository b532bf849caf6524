//! The `--json` plan of `inventory.example.toml` against the fake's fresh Debian hosts
//! (no GPUs, so both GPU hosts conflict), pinned byte for byte: a change to the
//! documented schema (docs/plan-json.md) shows up here as a snapshot diff.
//!
//! The secrets are fixed bytes written before loading, and the Tailscale key points at
//! a path that never exists, so the document does not depend on the machine.

use crate::kit::{plan_with, Loaded};
use closetctl_core::inventory::Inventory;
use closetctl_core::plan::render;
use closetctl_core::playbook::Playbooks;
use closetctl_testkit::fake::FakeCluster;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

const ABSENT_KEY: &str = "/nonexistent/closetctl-example/tailscale.key";

#[tokio::test]
async fn the_example_plan_json_against_fresh_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.example.toml"),
    )
    .unwrap();
    let text = example.replace("~/.config/closetctl/tailscale.key", ABSENT_KEY);
    assert_ne!(text, example, "the example names its Tailscale key file");
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, text).unwrap();
    let inventory = Inventory::load(&path).unwrap();
    let playbooks = Playbooks::load(Some(dir.path())).unwrap();
    let secrets = &inventory.cluster.secrets_dir;
    std::fs::create_dir_all(secrets).unwrap();
    std::fs::set_permissions(secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
    for name in closetctl_core::desired::secrets_needed(&inventory, &playbooks) {
        let file = secrets.join(&name);
        std::fs::write(&file, format!("fixed test secret {name}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let loaded = Loaded::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let fake = Arc::new(FakeCluster::debian(&["head", "gpu1", "gpu2"]));
    let (plan, _, _) = plan_with(fake, &loaded, &[], None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let json = render::json(&plan).replace(&dir.path().display().to_string(), "$DIR");
    insta::assert_snapshot!("example_plan_json", json);
}
