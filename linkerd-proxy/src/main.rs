//! `linkerd-proxy CONFIG`: CONFIG is a YAML or JSON file, or `-` for
//! standard input. A configuration that cannot be used exits with status
//! 64 and names the field.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use l5d_runtime::config::{EXIT_CONFIG, read_source};
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::metrics::Metrics;
use linkerd_proxy::proxy::{Proxy, StartError};

/// jemalloc, as namerd: cheaper than glibc's malloc for the blocks a
/// request uses (see Cargo.toml), and its background threads return the
/// pages of closed connections to the system.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The data plane: routes HTTP/1.1, HTTP/2 and gRPC by dtab through namerd"
)]
struct Args {
    /// Configuration file (YAML or JSON), or `-` for standard input.
    #[arg(env = "LINKERD_PROXY_CONFIG")]
    config: String,
    /// Worker threads serving traffic (default: one per core). On a small
    /// machine shared with the applications, fewer can be faster.
    #[arg(long, env = "LINKERD_PROXY_THREADS")]
    threads: Option<usize>,
    /// How long shutdown waits for requests in flight.
    #[arg(long, env = "LINKERD_PROXY_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    l5d_runtime::log::init();
    let config = match load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("linkerd-proxy: invalid configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = args.threads {
        if threads == 0 {
            eprintln!("linkerd-proxy: invalid configuration: --threads: must be at least 1");
            return ExitCode::from(EXIT_CONFIG);
        }
        builder.worker_threads(threads);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("linkerd-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, Duration::from_secs(args.shutdown_grace_secs)))
}

fn load(path: &str) -> anyhow::Result<ProxyConfig> {
    Ok(ProxyConfig::from_yaml(&read_source(path)?)?)
}

async fn run(config: ProxyConfig, grace: Duration) -> ExitCode {
    // Listen for signals before saying we are ready, so a SIGTERM sent as
    // soon as the readiness line appears still drains gracefully.
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("linkerd-proxy: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The connection caps, not the descriptor table, should decide when
    // connections are refused.
    l5d_runtime::listen::raise_open_files_limit();
    let metrics = Metrics::new();
    if let Err(e) = metrics.install_global() {
        tracing::warn!(error = %e, "listener and TLS metrics will not be served");
    }
    let proxy = match Proxy::start_with(config, metrics).await {
        Ok(p) => p,
        Err(e @ StartError::Config { .. }) => {
            eprintln!("linkerd-proxy: invalid configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            eprintln!("linkerd-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One machine-readable line on stdout, for scripts and tests that
    // start the proxy on port 0.
    let servers: Vec<String> = proxy
        .servers()
        .iter()
        .flat_map(|(label, addrs)| addrs.iter().map(move |a| format!("{label}={a}")))
        .collect();
    println!(
        "linkerd-proxy listening admin={} {}",
        proxy.admin_addr(),
        servers.join(" ")
    );
    tracing::info!(admin = %proxy.admin_addr(), "linkerd-proxy is serving");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    proxy.shutdown(grace).await;
    ExitCode::SUCCESS
}
