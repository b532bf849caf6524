//! Preflight in plan and apply: an over-budget circuit is shown at the top of the plan,
//! apply refuses before contacting any host unless `--force`, and `plan` exits 1 by
//! the same rule.

use crate::kit::{self, closetctl, cluster, plan, text, Closet};
use closetctl::command::plan::exit_code;
use closetctl_core::check::offline_findings;
use closetctl_core::diagnostic::{Code, Diagnostic, Severity};
use closetctl_core::plan::{refusing, HostStatus};

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

#[tokio::test]
async fn plan_exits_1_when_apply_would_refuse_the_closet() {
    // A user, so that the fresh hosts have work: the users step creates her.
    let over = format!("{OVER}\n[[user]]\nname = \"alice\"\nuid = 1001\n");
    let closet = Closet::new(&over);
    let loaded = closet.load();
    let fake = cluster(&["gpu1", "gpu2"]);
    let plan = kit::plan(&fake, &loaded).await;
    // Every host answered and is ready, and there is work: without the preflight rule
    // this plan would exit 0 (2 with --detailed-exitcode).
    assert!(plan.hosts.iter().all(|h| h.status == HostStatus::Ready));
    assert!(plan.has_changes() && !plan.has_blockers());
    assert!(plan.apply_refuses());
    assert_eq!(exit_code(&plan, false), 1);
    assert_eq!(exit_code(&plan, true), 1);
    // What plan refuses on is exactly what apply refuses on before contacting a host.
    let findings = offline_findings(&loaded.inventory);
    let apply_refuses: Vec<&Diagnostic> = refusing(&findings);
    assert_eq!(plan.refusing(), apply_refuses);
    assert_eq!(
        apply_refuses
            .iter()
            .map(|d| (d.code, d.severity, d.subject.as_str()))
            .collect::<Vec<_>>(),
        [(Code::CircuitLoad, Severity::Error, "wall")]
    );

    // On a circuit that holds the load, the same closet plans with the usual codes.
    closet.set(&over.replace("amps = 20", "amps = 60"));
    let plan = kit::plan(&fake, &closet.load()).await;
    assert!(!plan.apply_refuses(), "{:?}", plan.warnings);
    assert_eq!(exit_code(&plan, false), 0);
    assert_eq!(exit_code(&plan, true), 2);
}
