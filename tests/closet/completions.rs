//! `closetctl completions` and `closetctl manpage`: the bash script really completes
//! subcommands and flags when bash loads it, every shell's script and the man page name
//! every subcommand, and `manpage --out` writes one page per subcommand.

use crate::kit;

fn closetctl(args: &[&str]) -> (Option<i32>, String, String) {
    let out = kit::closetctl().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// What bash offers after loading the completion script, for the words typed so far.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let words_arr: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prog = format!(
        r#"source '{}'
COMP_WORDS=({})
COMP_CWORD={}
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
_closetctl closetctl "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display(),
        words_arr.join(" "),
        words.len() - 1
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &prog])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    let (code, script, stderr) = closetctl(&["completions", "bash"]);
    assert_eq!(code, Some(0), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closetctl.bash");
    std::fs::write(&path, script).unwrap();
    assert_eq!(bash_complete(&path, &["closetctl", "pl"]), ["plan"]);
    assert_eq!(bash_complete(&path, &["closetctl", "man"]), ["manpage"]);
    assert_eq!(
        bash_complete(&path, &["closetctl", "plan", "--det"]),
        ["--detailed-exitcode"]
    );
    let shells = bash_complete(&path, &["closetctl", "completions", ""]);
    assert!(
        ["bash", "zsh", "fish"]
            .iter()
            .all(|s| shells.iter().any(|c| c == s))
            && !shells.iter().any(|c| c == "plan"),
        "{shells:?}"
    );
    assert_eq!(
        bash_complete(&path, &["closetctl", "completions", "z"]),
        ["zsh"]
    );
}

#[test]
fn zsh_and_fish_scripts_have_their_shells_form() {
    let (code, zsh, _) = closetctl(&["completions", "zsh"]);
    assert_eq!(code, Some(0));
    assert!(zsh.starts_with("#compdef closetctl"), "{}", &zsh[..40]);
    assert!(zsh.contains("--detailed-exitcode"));
    let (code, fish, _) = closetctl(&["completions", "fish"]);
    assert_eq!(code, Some(0));
    assert!(
        fish.contains("complete -c closetctl -n \"__fish_closetctl_needs_command\"")
            && fish.contains("-a \"plan\""),
        "{fish}"
    );
    let (code, out, err) = closetctl(&["completions", "tcsh"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert!(err.contains("possible values: bash, zsh, fish"), "{err}");
}

#[test]
fn the_man_page_on_stdout_and_one_page_per_subcommand_in_a_directory() {
    let (code, man, _) = closetctl(&["manpage"]);
    assert_eq!(code, Some(0));
    assert!(man.contains(".TH closetctl 1"), "{man}");
    assert!(man.contains("closetctl\\-plan(1)"), "{man}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let (code, stdout, stderr) = closetctl(&["manpage", "--out", out.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "closetctl.1",
        "closetctl-plan.1",
        "closetctl-apply.1",
        "closetctl-completions.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} not in {pages:?}");
    }
    let plan = std::fs::read_to_string(out.join("closetctl-plan.1")).unwrap();
    assert!(plan.contains("\\-\\-detailed\\-exitcode"), "{plan}");
}
