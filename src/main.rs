//! The `closetctl` binary: parse the command line, run the subcommand, map its outcome
//! to an exit code (0 ok / no changes, 1 error, 2 changes with `--detailed-exitcode`).

use clap::Parser;
use closetctl::command::{self, Cli};

fn main() {
    // Usage errors exit 1, not clap's 2: exit 2 means "the plan has changes".
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 1 } else { 0 });
    });
    command::init_logging(cli.verbose, cli.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let code = match runtime.block_on(command::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            1
        }
    };
    std::process::exit(code);
}
