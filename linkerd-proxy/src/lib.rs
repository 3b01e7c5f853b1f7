//! linkerd-proxy: the data plane.
//!
//! A request goes server ([`server`]) -> router ([`router`]: identify,
//! route, stamp headers) -> balancer ([`balance`]) -> endpoint connection
//! ([`client`]). Bindings and address sets come from an [`interpreter`]
//! (namerd's gRPC streams, or a fixed dtab), kept current in watch
//! channels. [`admin`] serves metrics and state; [`proxy`] starts it all.
//!
//! Depends on the naming core (`l5d-dtab`) and the wire protocol
//! (`l5d-proto`) only, never on namerd: proxies are stateless and learn
//! everything from namerd's streams.

pub mod admin;
pub mod balance;
pub mod classify;
pub mod client;
pub mod config;
pub mod deadline;
pub mod error;
pub mod headers;
pub mod identify;
pub mod interpreter;
pub mod metrics;
pub mod overrides;
pub mod proxy;
pub mod recent;
pub mod retry;
pub mod router;
pub mod server;
