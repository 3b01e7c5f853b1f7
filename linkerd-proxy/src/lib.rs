//! linkerd-proxy: the data plane.
//!
//! Depends on the naming core (`l5d-dtab`) and the wire protocol
//! (`l5d-proto`) only, never on namerd: proxies are stateless and learn
//! everything from namerd's streams.

pub mod interpreter;
