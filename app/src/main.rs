//! `retainwise-app`: parses the command line and hands it to [`retainwise_app::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = retainwise_app::cli::Cli::parse();
    match retainwise_app::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
