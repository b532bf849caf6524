//! MUNGE across the cluster after apply: a credential made on every host decodes on the
//! controller, and the controller's decodes on every host. Two rounds: `munge -n`
//! everywhere, then `unmunge` crosswise.

use crate::diagnostic::{Code, Diagnostic};
use crate::shell::quote;
use crate::verification::{finding, Answers, Round, Verification};
use std::collections::BTreeMap;

/// The script that makes a credential on each host.
pub const MAKE: &str = "munge -n";

/// Shell: `cc_unmunge MAKER CREDENTIAL` decodes and prints `@@ok MAKER`, or `@@fail
/// MAKER` and unmunge's first error line (kept in a variable: no file, as root, in a
/// directory users can write).
pub const DECODE: &str = r#"cc_unmunge() { if err=$(printf '%s\n' "$2" | unmunge 2>&1 >/dev/null); then echo "@@ok $1"; else echo "@@fail $1 $(printf '%s\n' "$err" | head -n1)"; fi; }
"#;

/// Every node's name, state and GRES, one line each.
pub const NODE_STATES: &str = "sinfo -h -N -o '%N|%T|%G'";

/// The reason of every node that has one, one line per node: without `-N`, sinfo
/// prints nodes that share a reason as one host list (`node[1-2]|Not responding`).
pub const NODE_REASONS: &str = "sinfo -h -N -R -o '%N|%E'";

/// Cross-host MUNGE between `controller` and `hosts` (the controller among them).
pub struct Crosswise {
    pub controller: String,
    pub hosts: Vec<String>,
}

impl Crosswise {
    /// The credentials round 1 made, by host.
    fn credentials(made: &Answers) -> BTreeMap<String, String> {
        made.iter()
            .filter_map(|(h, r)| {
                let c = r.as_ref().ok()?.trim();
                c.starts_with("MUNGE:").then(|| (h.clone(), c.to_string()))
            })
            .collect()
    }
}

impl Verification for Crosswise {
    fn round(&self, earlier: &[Answers]) -> Option<Round> {
        match earlier {
            [] => Some(
                self.hosts
                    .iter()
                    .map(|h| (h.clone(), MAKE.to_string()))
                    .collect(),
            ),
            [made] => {
                let good = Self::credentials(made);
                let controller_cred = good.get(&self.controller)?;
                let mut scripts = Round::new();
                let mut on_controller = String::from(DECODE);
                for (host, cred) in good.iter().filter(|(h, _)| **h != self.controller) {
                    on_controller.push_str(&format!("cc_unmunge {} {}\n", quote(host), quote(cred)));
                    scripts.insert(
                        host.clone(),
                        format!(
                            "{DECODE}cc_unmunge {} {}\n",
                            quote(&self.controller),
                            quote(controller_cred)
                        ),
                    );
                }
                scripts.insert(self.controller.clone(), on_controller);
                Some(scripts)
            }
            _ => None,
        }
    }

    fn findings(&self, answers: &[Answers]) -> Vec<Diagnostic> {
        let mut findings = Vec::new();
        let Some(made) = answers.first() else {
            return findings;
        };
        for (host, r) in made {
            match r {
                Ok(c) if c.trim().starts_with("MUNGE:") => {}
                Ok(c) => findings.push(finding(
                    false,
                    Code::MungeHost,
                    host,
                    host,
                    format!("`munge -n` printed no credential: {}", c.trim()),
                )),
                Err(e) => findings.push(finding(
                    false,
                    Code::MungeHost,
                    host,
                    host,
                    format!("`munge -n` failed: {e}"),
                )),
            }
        }
        if !made.contains_key(&self.controller) {
            // Not asked: this apply skipped the controller (a conflict, unreachable), and
            // its summary says why; there is nothing to decode against.
            return findings;
        }
        if !Self::credentials(made).contains_key(&self.controller) {
            findings.push(finding(
                false,
                Code::MungeHost,
                &self.controller,
                &self.controller,
                "the controller made no credential",
            ));
            return findings;
        }
        for (decoder, r) in answers.get(1).into_iter().flatten() {
            match r {
                Err(e) => findings.push(finding(false, Code::MungeHost, decoder, decoder, e.clone())),
                Ok(out) => {
                    for line in out.lines() {
                        let (ok, rest) =
                            match (line.strip_prefix("@@ok "), line.strip_prefix("@@fail ")) {
                                (Some(r), _) => (true, r),
                                (_, Some(r)) => (false, r),
                                _ => continue,
                            };
                        let (maker, why) = rest.split_once(' ').unwrap_or((rest, ""));
                        findings.push(finding(
                            ok,
                            Code::MungeDecode,
                            decoder,
                            &format!("{maker} -> {decoder}"),
                            if ok {
                                "decoded".into()
                            } else {
                                format!("unmunge failed: {why}")
                            },
                        ));
                    }
                }
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controller_the_apply_skipped_is_not_reported_as_making_no_credential() {
        let check = Crosswise {
            controller: "head".into(),
            hosts: vec!["head".into(), "node1".into()],
        };
        let only_node1: Answers = [("node1".to_string(), Ok("MUNGE:abc:".to_string()))].into();
        assert!(check.round(std::slice::from_ref(&only_node1)).is_none());
        assert!(check.findings(&[only_node1]).is_empty());
        // Asked and silent is still a failure.
        let silent: Answers = [
            ("head".to_string(), Ok(String::new())),
            ("node1".to_string(), Ok("MUNGE:abc:".to_string())),
        ]
        .into();
        let found = check.findings(&[silent]);
        assert!(
            found.iter().any(|d| d.message == "the controller made no credential"),
            "{found:?}"
        );
    }

    /// The decode function with a stand-in `unmunge` on PATH that accepts `good` and
    /// refuses anything else as MUNGE does (its error on stderr, exit 14).
    #[test]
    fn decode_reports_unmunges_first_error_line_and_writes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let unmunge = dir.path().join("unmunge");
        std::fs::write(
            &unmunge,
            "#!/bin/sh\nread -r c\n[ \"$c\" = good ] && { echo 'STATUS: Success (0)'; exit 0; }\necho 'unmunge: Error: Invalid credential' >&2\necho 'second line' >&2\nexit 14\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&unmunge, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{DECODE}cc_unmunge node1 good\ncc_unmunge node2 bad\n"
            ))
            .current_dir(dir.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.path().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "@@ok node1\n@@fail node2 unmunge: Error: Invalid credential\n"
        );
        // Root keeps unmunge's error in a variable, never in a file users could plant.
        assert!(
            !DECODE.contains("/tmp") && !DECODE.contains("2>/"),
            "{DECODE}"
        );
    }
}
