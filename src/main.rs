//! The `closetctl` binary: parse the command line, run the subcommand, map its outcome
//! to an exit code (0 ok / no changes, 1 error, 2 changes with `--detailed-exitcode`).

use clap::Parser;
use closetctl::command::{self, Cli};

fn main() {
    let cli = Cli::parse();
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
