//! The `cardsmith` binary: a thin shell over the library (see `cli`).

use clap::Parser;

fn main() {
    // Like other command-line tools, end quietly when the reader of our
    // output goes away (`cardsmith read … | head`) instead of panicking on
    // a failed print.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any
    // thread starts; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The PostgreSQL client logs every statement with its parameters at
    // debug level: card serials, national IDs, password verifiers. The
    // register's traffic is never logged below info, whatever RUST_LOG asks.
    for target in ["tokio_postgres=info", "postgres=info"] {
        if let Ok(d) = target.parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = match cardsmith::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Under --json a usage error is a JSON document too; help and
        // version (not errors) print as usual.
        Err(e) if e.use_stderr() && cardsmith::cli::json_error::wants_json(std::env::args_os()) => {
            let err = cardsmith::cli::json_error::usage(&e);
            let _ = e.print();
            println!("{}", cardsmith::cli::json_error::document(&err));
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    };
    let json = cli.json;
    match cardsmith::cli::run(cli) {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", cardsmith::cli::errors::error_text(&e));
            if json {
                println!("{}", cardsmith::cli::json_error::document(&e));
            }
            std::process::exit(cardsmith::cli::exit_code(&e));
        }
    }
}
