//! `namerd [CONFIG]`: CONFIG is a YAML or JSON file, or `-` for standard
//! input; without one, namerd runs on built-in defaults (SQLite in
//! `namerd.db`, the dtab API on 127.0.0.1:4180, admin on 127.0.0.1:9991).
//! A configuration that cannot be used exits with status 64 and names the
//! field; so does a certificate or key that cannot be served (expired,
//! unreadable, not matching), named by its field (`interfaces[0].tls.certPath`).

use std::process::ExitCode;

use clap::Parser;
use l5d_runtime::config::{ConfigError, EXIT_CONFIG, read_source};
use namerd::Namerd;
use namerd::config::NamerdConfig;

/// jemalloc, whose background threads return freed memory to the system
/// within seconds: after a client holding thousands of bindings leaves,
/// namerd's RSS comes back near its start (glibc's allocator kept it).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    l5d_runtime::log::init();

    let config = match load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("namerd: invalid configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Connection caps, not the descriptor table, should decide refusals.
    l5d_runtime::listen::raise_open_files_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("namerd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        // What only starting shows (a token file that cannot be read) is
        // still the configuration's fault.
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("namerd: invalid configuration: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("namerd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&str>) -> anyhow::Result<NamerdConfig> {
    match path {
        None => Ok(NamerdConfig::default()),
        Some(path) => Ok(NamerdConfig::parse(&read_source(path)?)?),
    }
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
