//! The tailnet policy rendered from `inventory.example.toml` (pure: no host and no API
//! is contacted), the notes it comes with, and the check of what the cluster needs.

use crate::kit::example;
use closetctl_core::concerns::tailscale::{check, parse, policy, render};

#[test]
fn policy_from_the_example_inventory() {
    let inventory = example();
    let (p, _) = policy(&inventory);
    insta::assert_snapshot!("example_policy", render(&inventory, &p));
}

#[test]
fn the_example_policy_notes_and_check() {
    let inventory = example();
    let (p, notes) = policy(&inventory);
    // head is the only login host, and tag:closet is on every host.
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("researchers also reach gpu1, gpu2 on SSH"),
        "{notes:?}"
    );
    assert_eq!(check(&p, &inventory), Vec::<String>::new());
    let text = render(&inventory, &p);
    assert!(text.starts_with("// Tailnet policy for the `closet` cluster"));
    assert_eq!(parse(&text).unwrap(), p, "the rendered text parses back");
}

#[test]
fn a_policy_without_the_cluster_grant_is_flagged() {
    let inventory = example();
    let (mut p, _) = policy(&inventory);
    p.grants.remove(0);
    let warnings = check(&p, &inventory);
    let all = warnings.join("\n");
    for what in [
        "SSH (tcp:22)",
        "slurmctld (tcp:6817)",
        "slurmd (tcp:6818)",
        "srun (tcp:32768-60999)",
        "NFS (tcp:2049)",
    ] {
        assert!(all.contains(what), "{what} missing in:\n{all}");
    }
}
