//! `closetctl completions SHELL` and `closetctl manpage`: shell completions (bash, zsh,
//! fish) and the man page, generated from the same clap definitions that parse the
//! command line, so they cannot drift from it.

use super::{Cli, CliError};
use clap::{Args, CommandFactory, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Write closetctl.1 and one page per subcommand (closetctl-plan.1, ...) into DIR
    /// instead of printing closetctl.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "closetctl", &mut out)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "closetctl", &mut out)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "closetctl", &mut out)
        }
    }
    out
}

/// closetctl(1) in roff.
pub fn manpage() -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    out
}

fn write_stdout(bytes: &[u8]) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|source| CliError::Io {
            what: "cannot write to stdout".into(),
            source,
        })?;
    Ok(0)
}

pub async fn run_completions(args: CompletionsArgs) -> Result<i32, CliError> {
    write_stdout(&completions(args.shell))
}

pub async fn run_manpage(args: ManpageArgs) -> Result<i32, CliError> {
    let Some(dir) = args.out else {
        return write_stdout(&manpage());
    };
    let io = |source| CliError::Io {
        what: format!("cannot write the man pages into `{}`", dir.display()),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    clap_mangen::generate_to(Cli::command(), &dir).map_err(io)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_is_in_every_completion_and_the_man_page() {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        assert!(names.contains(&"completions".to_string()), "{names:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(completions(shell)).unwrap();
            for n in &names {
                assert!(text.contains(n.as_str()), "{shell:?} lacks {n}");
            }
            assert!(text.contains("detailed-exitcode"), "{shell:?}");
        }
        let man = String::from_utf8(manpage()).unwrap();
        assert!(man.starts_with(".ie \\n(.g .ds Aq"), "{}", &man[..80]);
        assert!(man.contains(".TH closetctl 1"), "{man}");
        for n in &names {
            assert!(
                man.contains(&format!("closetctl\\-{n}")),
                "man page lacks {n}"
            );
        }
    }
}
