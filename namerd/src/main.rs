//! `namerd [CONFIG]`: CONFIG is a YAML or JSON file, or `-` for standard
//! input; without one, namerd runs on built-in defaults (SQLite in
//! `namerd.db`, the dtab API on 127.0.0.1:4180, admin on 127.0.0.1:9991).
//! A configuration that cannot be used exits with status 64 and names the
//! field.

use std::io::Read as _;
use std::process::ExitCode;

use clap::Parser;
use namerd::Namerd;
use namerd::config::NamerdConfig;

/// The exit status for a configuration error (`EX_USAGE`).
const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The namerd control plane: versioned dtabs over Linkerd 1.x's namerd API"
)]
struct Args {
    /// Configuration file (YAML or JSON), or `-` for standard input.
    #[arg(env = "NAMERD_CONFIG")]
    config: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let config = match load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("namerd: invalid configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("namerd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("namerd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&str>) -> anyhow::Result<NamerdConfig> {
    let text = match path {
        None => return Ok(NamerdConfig::default()),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
        Some(path) => std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?,
    };
    Ok(NamerdConfig::parse(&text)?)
}

async fn run(config: NamerdConfig) -> anyhow::Result<()> {
    // Listen for signals before saying we are ready, so a SIGTERM sent as
    // soon as the readiness line appears still shuts down gracefully.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let namerd = Namerd::start(config).await?;
    let show =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "-".to_string(), |a| a.to_string());
    let (http, mesh) = (show(namerd.http_addr()), show(namerd.mesh_addr()));
    tracing::info!(admin = %namerd.admin_addr(), %http, %mesh, "namerd is listening");
    // One machine-readable line on stdout, for scripts and tests that start
    // namerd on port 0.
    println!(
        "namerd listening admin={} http={http} mesh={mesh}",
        namerd.admin_addr()
    );
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    namerd.shutdown().await;
    Ok(())
}
