//! strata: the command-line interface. Thin: parse arguments, call a library,
//! render the result. Each subcommand lives in its own module under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("strata: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
