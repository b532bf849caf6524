//! Preflight in plan and apply: an over-budget circuit is shown at the top of the plan,
//! and apply refuses before contacting any host unless `--force`.

use assert_cmd::Command;
use closetctl::command::{plan_with, Loaded};
use closetctl_core::plan::render::{text, Style};
use closetctl_testkit::fake::FakeCluster;
use std::sync::Arc;

const OVER: &str = r#"
[cluster]
name = "closet"

[[host]]
name = "gpu1"
address = "gpu1.closet.example"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }
circuit = "wall"

[[host]]
name = "gpu2"
address = "gpu2.closet.example"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }
circuit = "wall"

[[power.circuit]]
name = "wall"
volts = 120
amps = 20
"#;

fn inventory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), OVER).unwrap();
    dir
}

#[tokio::test]
async fn the_plan_shows_an_over_budget_circuit_first() {
    let dir = inventory();
    let loaded = Loaded::load(&dir.path().join("inventory.toml")).unwrap();
    let fake = Arc::new(FakeCluster::debian(&["gpu1", "gpu2"]));
    let (plan, _, _) = plan_with(fake, &loaded, &[], None, None).await.unwrap();
    let out = text(&plan, Style::plain());
    // 2 × (4 × 400 W + 350 W base) = 3,900 W against 80 % of 120 V × 20 A = 1,920 W.
    assert!(out.starts_with("warning: preflight power error: circuit `wall` (gpu1, gpu2) is over budget: 3900 W of 1920 W usable"), "{out}");
}

#[test]
fn apply_refuses_an_over_budget_closet_without_force() {
    let dir = inventory();
    let out = Command::cargo_bin("closetctl")
        .unwrap()
        .args(["apply", "--yes", "-i"])
        .arg(dir.path().join("inventory.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: the closet is over its power or cooling budget:\n  circuit `wall` (gpu1, gpu2) is over budget"), "{stderr}");
    assert!(stderr.contains("pass --force to apply anyway"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "nothing planned or applied"
    );
}
