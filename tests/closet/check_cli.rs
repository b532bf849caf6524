//! `closetctl check` from the command line, offline paths only: power and cooling need
//! nothing but the inventory, so no host is contacted (the example's addresses are not
//! ours). Network, clock and uids are covered by the unit tests over the fake transport
//! and by vm-test/scenarios/40-check.sh.

use crate::kit::{closetctl, example_path};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Run `closetctl ARGS` and return (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = closetctl().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn line_of<'a>(text: &'a str, first_word: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(first_word))
        .unwrap_or_else(|| panic!("no line for `{first_word}` in:\n{text}"))
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn power_on_the_example_prints_the_circuit_table() {
    let inv = example_path();
    let (code, stdout, stderr) = run(&["check", "power", "-i", inv.to_str().unwrap()]);
    // closet-a (120 V × 20 A × 0.8 = 1,920 W) carries head and gpu2:
    //   head: base_watts = 250 (no GPUs)                         =   250 W
    //   gpu2: 2 × 450 W (RTX 4090) + 350 W default GPU-host base  = 1,250 W
    //   load 1,500 W, headroom 420 W, 1,500 / 1,920 = 78.1 % < 90 % → ok.
    // closet-b (240 V × 30 A × 0.8 = 5,760 W) carries gpu1:
    //   4 × 400 W (A100 SXM4) + 350 W = 1,950 W, headroom 3,810 W, 33.9 % → ok.
    assert_eq!(code, 0, "stderr: {stderr}\nstdout: {stdout}");
    assert_eq!(
        words(line_of(&stdout, "closet-a")),
        ["closet-a", "head,", "gpu2", "1500", "1920", "420", "78.1", "%", "ok"]
    );
    assert_eq!(
        words(line_of(&stdout, "closet-b")),
        ["closet-b", "gpu1", "1950", "5760", "3810", "33.9", "%", "ok"]
    );
    assert!(
        stdout.contains("result: ok (0 errors, 0 warnings)"),
        "{stdout}"
    );
    insta::assert_snapshot!("power_example", stdout);
}

#[test]
fn cooling_on_the_example_path() {
    let inv = example_path();
    let (code, stdout, _) = run(&["check", "cooling", "-i", inv.to_str().unwrap()]);
    // Heat: 250 + 1,950 + 1,250 = 3,450 W × 3.412 = 11,771.4 BTU/h = 0.98 tons,
    // against 24,000 BTU/h (2 tons): 49.0 %. gpu1 (4 GPUs) is high-end: 0.5 tons advised.
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("heat      3450 W = 11771 BTU/h = 0.98 tons"),
        "{stdout}"
    );
    assert!(
        stdout.contains("capacity  24000 BTU/h = 2.00 tons, 49.0 % used  ok"),
        "{stdout}"
    );
    assert!(stdout.contains("1 high-end (gpu1) -> 0.5 tons"), "{stdout}");
    assert!(
        !stdout.contains("== power"),
        "only the cooling section: {stdout}"
    );
}

const OVER_BUDGET: &str = r#"
[cluster]
name = "garage"

[[host]]
name = "gpu1"
address = "127.0.0.11"
roles = ["controller", "compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }
circuit = "garage-outlet"

[[host]]
name = "gpu2"
address = "127.0.0.12"
roles = ["compute"]
gpus = { model = "a100-sxm4-80gb", count = 4 }
circuit = "garage-outlet"

[[host]]
name = "nas"
address = "127.0.0.13"
roles = ["nfs-server"]

[[power.circuit]]
name = "garage-outlet"
volts = 120
amps = 20
"#;

fn write_inventory(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("inventory.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_inventory_over_budget_exits_1_and_names_the_circuit() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write_inventory(dir.path(), OVER_BUDGET);
    let (code, stdout, _) = run(&["check", "power", "-i", inv.to_str().unwrap()]);
    // 2 × (4 × 400 + 350) = 3,900 W on 1,920 W: 1,980 W over, 203.1 %.
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        words(line_of(&stdout, "garage-outlet")),
        [
            "garage-outlet",
            "gpu1,",
            "gpu2",
            "3900",
            "1920",
            "-1980",
            "203.1",
            "%",
            "OVER"
        ]
    );
    assert!(
        stdout.contains("error: circuit `garage-outlet` (gpu1, gpu2) is over budget: 3900 W of 1920 W usable (203.1 %), 1980 W over"),
        "{stdout}"
    );
    // nas has no circuit: a warning with its 250 W default base.
    assert!(
        stdout.contains(
            "warning: host `nas` has no circuit: its 250 W are not budgeted on any breaker"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("result: FAILED (1 error, 1 warning)"),
        "{stdout}"
    );
}

#[test]
fn no_cooling_section_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write_inventory(dir.path(), OVER_BUDGET);
    let (code, stdout, _) = run(&["check", "cooling", "-i", inv.to_str().unwrap()]);
    // 3,900 + 250 = 4,150 W × 3.412 = 14,159.8 BTU/h = 1.18 tons; capacity unknown.
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("heat      4150 W = 14160 BTU/h = 1.18 tons"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: no `[cooling]` capacity in the inventory"),
        "{stdout}"
    );
}

#[test]
fn cooling_over_capacity_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{OVER_BUDGET}\n[cooling]\ncapacity_tons = 1\n");
    let inv = write_inventory(dir.path(), &text);
    let (code, stdout, _) = run(&["check", "cooling", "-i", inv.to_str().unwrap()]);
    // 14,159.8 BTU/h against 12,000 BTU/h: 118.0 %.
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("capacity  12000 BTU/h = 1.00 tons, 118.0 % used  OVER"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: cooling is over capacity"),
        "{stdout}"
    );
}

#[test]
fn json_parses_and_has_the_documented_fields() {
    let inv = example_path();
    let (code, stdout, _) = run(&[
        "check",
        "all",
        "--offline",
        "--json",
        "-i",
        inv.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["severity"], "ok");
    assert!(v.get("network").is_none() && v.get("clock").is_none() && v.get("uids").is_none());
    let a = &v["power"]["circuits"][0];
    assert_eq!(a["circuit"], "closet-a");
    assert_eq!(a["hosts"], serde_json::json!(["head", "gpu2"]));
    assert_eq!(
        (a["volts"].as_u64(), a["amps"].as_u64(), a["phase"].as_u64()),
        (Some(120), Some(20), Some(1))
    );
    assert_eq!(a["load_watts"].as_f64(), Some(1500.0));
    assert_eq!(a["limit_watts"].as_f64(), Some(1920.0));
    assert_eq!(a["headroom_watts"].as_f64(), Some(420.0));
    assert_eq!(a["percent"].as_f64(), Some(78.1));
    assert_eq!(a["verdict"], "ok");
    assert!(a["draw_watts"].is_null());
    assert_eq!(v["power"]["live"], false);
    let gpu2 = &v["power"]["hosts"][2];
    assert_eq!(gpu2["host"], "gpu2");
    assert_eq!(gpu2["gpu_model"], "rtx-4090");
    assert_eq!(
        (gpu2["gpu_count"].as_u64(), gpu2["gpu_watts"].as_f64()),
        (Some(2), Some(900.0))
    );
    assert_eq!(
        (gpu2["base_watts"].as_f64(), gpu2["load_watts"].as_f64()),
        (Some(350.0), Some(1250.0))
    );
    assert_eq!(gpu2["basis"], "table");
    let c = &v["cooling"];
    assert_eq!(c["heat_watts"].as_f64(), Some(3450.0));
    assert_eq!(c["heat_btu_per_hour"].as_f64(), Some(11771.4));
    assert_eq!(c["capacity_btu_per_hour"].as_f64(), Some(24000.0));
    assert_eq!(c["severity"], "ok");
    assert_eq!(c["high_end_hosts"], serde_json::json!(["gpu1"]));
    let findings = v["findings"].as_array().unwrap();
    assert!(findings
        .iter()
        .all(|f| ["check", "severity", "subject", "message"]
            .iter()
            .all(|k| f[k].is_string())));
    assert_eq!(findings[0]["check"], "power");
    assert_eq!(findings[0]["code"], "circuit-load");
    assert_eq!(findings[0]["subject"], "closet-a");
}

#[test]
fn json_of_an_over_budget_circuit() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write_inventory(dir.path(), OVER_BUDGET);
    let (code, stdout, _) = run(&["check", "power", "--json", "-i", inv.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["severity"], "error");
    assert_eq!(v["power"]["circuits"][0]["verdict"], "over");
    assert_eq!(
        v["power"]["circuits"][0]["headroom_watts"].as_f64(),
        Some(-1980.0)
    );
    let errors: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["subject"], "garage-outlet");
}

#[test]
fn offline_refuses_the_checks_that_need_hosts() {
    let inv = example_path();
    for which in ["network", "clock", "uids"] {
        let (code, stdout, stderr) =
            run(&["check", which, "--offline", "-i", inv.to_str().unwrap()]);
        assert_eq!(code, 1, "{which}");
        assert!(stdout.is_empty(), "{which}: {stdout}");
        assert!(
            stderr.contains(&format!("`check {which}` needs facts from the hosts")),
            "{stderr}"
        );
    }
}

#[test]
fn an_invalid_inventory_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let inv = write_inventory(
        dir.path(),
        &OVER_BUDGET.replace("volts = 120", "volts = 12"),
    );
    let (code, stdout, stderr) = run(&["check", "power", "-i", inv.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("volts `12` is not a mains voltage"),
        "{stderr}"
    );
}
