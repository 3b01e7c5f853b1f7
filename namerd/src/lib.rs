//! namerd, the control plane: it stores versioned dtabs per namespace,
//! binds names through them and live service discovery, and serves the
//! results over Linkerd 1.x's namerd HTTP API and `io.linkerd.mesh` gRPC API.
//!
//! The binary (`src/main.rs`) only parses arguments and configuration and
//! calls [`Namerd::start`]; everything else is here so that tests can run a
//! namerd in-process on loopback sockets.

use std::time::Duration;

pub mod admin;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod interpreter;
pub mod k8s;
pub mod mesh;
pub mod namer;
mod server;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transformer;

pub use server::{Namerd, open_store};

/// The first pause of namerd's retry loops (the SQL store's reconnects and
/// re-reads, the Kubernetes watchers' restarts); each loop has its own cap.
const RETRY_BASE: Duration = Duration::from_millis(100);
