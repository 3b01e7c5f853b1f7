//! `l5d-demo http|grpc --name NAME [--listen IP:PORT] [--delay-ms N]
//! [--log-requests]`: a demo backend for the quickstart, the end-to-end
//! tests and the benchmarks. Both answer `/fault` and `/requests` on their
//! port (see the library's `http` module); `--log-requests` starts the
//! request log on.
//!
//! After binding it prints one line to stdout, `l5d-demo listening
//! name=NAME addr=IP:PORT`, so that scripts and tests can start it on port
//! 0. SIGTERM or Ctrl-C stop it: open connections get a few seconds to
//! finish, then it exits 0. A listen address that cannot be bound exits
//! with status 64 and names the flag; other bad arguments are clap's usage
//! errors.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use l5d_demo::Name;
use l5d_demo::grpc::GreeterBackend;
use l5d_demo::http::HttpBackend;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The exit status for an unusable listen address (`EX_USAGE`).
const EXIT_USAGE: u8 = 64;

/// How long open connections may take to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Demo backends for the l5d quickstart, tests and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    backend: Backend,
}

#[derive(Debug, Subcommand)]
enum Backend {
    /// HTTP/1.1 and HTTP/2 (prior knowledge) on one port: `200 NAME`, with
    /// the request's `l5d-*` headers, `Via`, host and path echoed as `x-echo-*`.
    Http {
        #[command(flatten)]
        common: Common,
        /// Answer exactly N bytes (starting with the name) instead of `NAME\n`.
        #[arg(long, env = "L5D_DEMO_BODY_BYTES", value_name = "N")]
        body_bytes: Option<usize>,
        /// Echo nothing: every answer carries the same headers whatever the
        /// request, so a benchmark's backend does the same work behind a
        /// proxy (which adds `l5d-*` headers) as direct.
        #[arg(long, env = "L5D_DEMO_NO_ECHO")]
        no_echo: bool,
    },
    /// gRPC: `l5d.demo.Greeter` (SayHello, Chat) and `grpc.health.v1.Health`.
    Grpc {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// The backend's name, in every answer.
    #[arg(long, env = "L5D_DEMO_NAME")]
    name: Name,
    /// The address to listen on (port 0: any free port).
    #[arg(
        long,
        env = "L5D_DEMO_LISTEN",
        default_value = "127.0.0.1:0",
        value_name = "IP:PORT"
    )]
    listen: SocketAddr,
    /// Milliseconds to wait before each answer (HTTP: `/delay?ms=N` changes
    /// it at run time).
    #[arg(long, env = "L5D_DEMO_DELAY_MS", default_value_t = 0, value_name = "N")]
    delay_ms: u64,
    /// Keep the last 10,000 requests for `GET /requests` (off by default:
    /// the benchmarks' requests must not take a lock; `/requests?on`
    /// switches it on at run time).
    #[arg(long, env = "L5D_DEMO_LOG_REQUESTS")]
    log_requests: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    l5d_runtime::log::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("l5d-demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.backend))
}

async fn run(backend: Backend) -> ExitCode {
    let common = match &backend {
        Backend::Http { common, .. } | Backend::Grpc { common } => common,
    };
    let listener = match TcpListener::bind(common.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("l5d-demo: --listen {}: cannot listen: {e}", common.listen);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("l5d-demo: --listen {}: {e}", common.listen);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let name = common.name.clone();
    let delay = Duration::from_millis(common.delay_ms);
    let log_requests = common.log_requests;
    tracing::info!(%name, %addr, "l5d-demo is listening");
    // The one machine-readable line, flushed before any request is served.
    let mut stdout = std::io::stdout().lock();
    let printed = writeln!(stdout, "l5d-demo listening name={name} addr={addr}")
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = printed {
        eprintln!("l5d-demo: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    let (stop, stopped) = watch::channel(());
    let serving = async move {
        let stopped = wait_changed(stopped);
        match backend {
            Backend::Http {
                body_bytes,
                no_echo,
                ..
            } => {
                let backend = HttpBackend::new(&name, delay, body_bytes)
                    .with_echo(!no_echo)
                    .with_request_log(log_requests);
                backend.serve(listener, stopped).await;
                Ok(())
            }
            Backend::Grpc { .. } => {
                let backend = GreeterBackend::new(&name, delay).with_request_log(log_requests);
                backend.serve(listener, stopped).await
            }
        }
    };
    tokio::pin!(serving);
    let result = tokio::select! {
        result = &mut serving => result,
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            let _ = stop.send(());
            match tokio::time::timeout(DRAIN, &mut serving).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::info!(?DRAIN, "connections still open after the drain period");
                    Ok(())
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("l5d-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes when the stop signal is sent (or its sender is gone).
async fn wait_changed(mut rx: watch::Receiver<()>) {
    let _ = rx.changed().await;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
