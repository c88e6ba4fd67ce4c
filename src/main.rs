//! `telerad`: the teleradiology DICOM router and reading worklist.
//!
//! The binary wires the crates together and owns start-up, shutdown and
//! signals; the work itself lives in the crates.

mod accounts;
mod cli;
mod http_api;
mod https;
mod push;
mod rota;
mod serve;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Everything telerad creates (images, the SQLite database, keys, the
    // first password) holds health data or secrets: readable by its own
    // system user only, whatever the umask it was started with.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person watching; a log file or journal
        // would keep them as `\x1b[2m` noise.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", causes_once(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, like `{:#}`, but each cause only
/// if the text so far does not already say it: many errors put their
/// source's message in their own ("cannot connect to HOST: Connection
/// refused") and the OS error would otherwise be printed twice.
fn causes_once(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the SCU's connection error: the source is both in the
    /// message and in the chain.
    #[derive(Debug)]
    struct Connect {
        source: std::io::Error,
    }

    impl std::fmt::Display for Connect {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot connect to 127.0.0.1:1: {}", self.source)
        }
    }

    impl std::error::Error for Connect {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::new(Connect { source: io }).context("C-ECHO to X@127.0.0.1:1");
        assert_eq!(
            causes_once(&error),
            "C-ECHO to X@127.0.0.1:1: cannot connect to 127.0.0.1:1: refused"
        );
        assert_eq!(
            format!("{error:#}"),
            "C-ECHO to X@127.0.0.1:1: cannot connect to 127.0.0.1:1: refused: refused"
        );
    }
}
