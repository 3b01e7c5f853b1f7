//! `k8s-api-server`: the Kubernetes API test server on its own, as Linkerd
//! 1.x would see `kubectl proxy`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The address to listen on.
    #[arg(long, env = "K8S_API_SERVER_LISTEN", default_value = "127.0.0.1:8001")]
    listen: SocketAddr,
    /// Emit opaque, unordered resourceVersions instead of numbers.
    #[arg(long, env = "K8S_API_SERVER_OPAQUE_VERSIONS")]
    opaque_versions: bool,
    /// How often watches that ask for bookmarks get one.
    #[arg(long, env = "K8S_API_SERVER_BOOKMARK_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    bookmark_interval: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let options = l5d_k8s_api_server::Options {
        opaque_versions: args.opaque_versions,
        bookmark_interval: args.bookmark_interval,
        ..Default::default()
    };
    let server = l5d_k8s_api_server::ApiServer::bind(args.listen, options).await?;
    tracing::info!(url = %server.url(), "serving the Kubernetes API");
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
