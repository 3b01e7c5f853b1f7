//! The `namerctl` binary: parse the command line, run it, map the outcome
//! to an exit code (0 ok, 1 error, 2 usage, 3 version conflict, 4 not
//! authenticated, 5 not allowed, 6 canary aborted by its gate; `dtab diff`:
//! 0 equal, 1 different, 2 trouble).

use std::process::ExitCode;

use clap::Parser;
use namerctl::cli::Action;
use namerctl::cli::Cli;
use namerctl::error::{EXIT_DIFF_TROUBLE, EXIT_ERROR};
use namerctl::{Environment, run};

fn main() -> ExitCode {
    let invocation = match Cli::parse().invocation() {
        Ok(invocation) => invocation,
        Err(usage) => usage.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let diffing = matches!(invocation.action, Action::Diff { .. });
    let env = Environment::from_process();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let result = runtime.block_on(run(invocation, &env, &mut stdout, &mut stderr));
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            // Runtime errors are reported once, without the usage text the Go
            // tool printed after them.
            eprintln!("Error: {e}");
            let code = e.exit_code();
            // `dtab diff` keeps 1 for "different", as diff(1).
            if diffing && code == EXIT_ERROR {
                return ExitCode::from(EXIT_DIFF_TROUBLE);
            }
            ExitCode::from(code)
        }
    }
}
