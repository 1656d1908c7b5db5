//! The `cardsmith` binary: a thin shell over the library (see `cli`).

use clap::Parser;

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = cardsmith::cli::Cli::parse();
    if let Err(e) = cardsmith::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(cardsmith::cli::exit_code(&e));
    }
}
