//! Preflight in plan and apply: an over-budget circuit is shown at the top of the plan,
//! and apply refuses before contacting any host unless `--force`.

use crate::kit::{closetctl, cluster, plan, text, Closet};

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

#[tokio::test]
async fn the_plan_shows_an_over_budget_circuit_first() {
    let loaded = Closet::new(OVER).load();
    let out = text(&plan(&cluster(&["gpu1", "gpu2"]), &loaded).await);
    // 2 × (4 × 400 W + 350 W base) = 3,900 W against 80 % of 120 V × 20 A = 1,920 W.
    assert!(out.starts_with("warning: preflight power error: circuit `wall` (gpu1, gpu2) is over budget: 3900 W of 1920 W usable"), "{out}");
}

#[test]
fn apply_refuses_an_over_budget_closet_without_force() {
    let closet = Closet::new(OVER);
    let out = closetctl()
        .args(["apply", "--yes", "-i"])
        .arg(closet.path())
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
