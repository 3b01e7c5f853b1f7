//! Log initialisation, the same for every binary of the project: human-
//! readable lines on standard error (standard output is kept for the one
//! machine-readable line a binary prints when it is ready), filtered by
//! `RUST_LOG` with `info` as the default. Colours only on a terminal: a
//! log collector (Kubernetes, a test reading the log) gets plain text.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
