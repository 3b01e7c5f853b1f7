//! namerd, the control plane: it stores versioned dtabs per namespace and
//! serves them over Linkerd 1.x's namerd HTTP API.
//!
//! The binary (`src/main.rs`) only parses arguments and configuration and
//! calls [`Namerd::start`]; everything else is here so that tests can run a
//! namerd in-process on loopback sockets.

pub mod admin;
pub mod api;
pub mod config;
mod server;
pub mod store;
pub mod testing;

pub use server::{Namerd, open_store};
