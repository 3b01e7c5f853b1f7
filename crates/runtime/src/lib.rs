//! What namerd and linkerd-proxy both need at run time, written once:
//!
//! - [`Backoff`]: capped, never-ending retry delays with decorrelated
//!   jitter, for every reconnect loop;
//! - [`watch_cache`]: the idle-evicting cache of live values keyed by what
//!   is watched (bindings, address sets, routes), optionally bounded by
//!   least-recently-used eviction by count and key weight;
//! - [`config`]: the configuration toolkit (errors that name the field
//!   path, kind dispatch, unknown-field refusal, the admin block, telemetry
//!   kinds, exit status 64);
//! - [`log`]: tracing initialisation;
//! - [`reload`]: a file's parsed contents, re-read when it changes;
//! - [`Peer`]: who is on the other end of an accepted connection;
//! - [`tls`]: rustls server and client configurations from the `tls`
//!   blocks, reloaded when their files change;
//! - [`listen`]: the listener of every server (caps per listener and per
//!   peer, TLS handshakes off the accept loop);
//! - [`serve`]: HTTP/1.1 and HTTP/2 serving on it, with timeouts;
//! - [`web`]: the admin dashboards' embedded files and their headers;
//! - `testing` (feature `testing`): a PKI generated at test time.
//!
//! It knows neither binary: no namerd, proxy, naming or protocol types, so
//! that either can use it without pulling in the other.

mod backoff;
pub mod config;
pub mod listen;
pub mod log;
mod peer;
pub mod reload;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod watch_cache;
pub mod web;

pub use backoff::Backoff;
pub use peer::{ClientIdentity, Peer};
