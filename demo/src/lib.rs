//! The demo backends that the quickstart, the end-to-end tests and the
//! benchmarks route to: an HTTP server ([`http`]) that speaks HTTP/1.1 and
//! HTTP/2 (prior knowledge) on one port and echoes what the proxy forwarded,
//! and a gRPC server ([`grpc`]) with a unary call, a bidirectional stream and
//! the standard health service.
//!
//! Tests of a proxy's retries, response classification, failure accrual and
//! deadlines make either backend misbehave on purpose with `/fault` (a
//! status, a reset, a delay, a gRPC status, for an exact fraction of the
//! requests; [`fault`]) and read what it received with `/requests` (a log,
//! off unless `--log-requests`). [`http`] documents both endpoints.
//!
//! They stand next to nginx in the benchmarks, so the request path does no
//! work beyond what the answer needs: the body is built once and shared, and
//! nothing is logged per request unless asked; with no fault set and the log
//! off, the controls cost one atomic load. They know nothing of the rest of the
//! project: a backend must not depend on the proxy or namerd it is used to
//! test.
//!
//! # Generated code
//!
//! The `l5d.demo` gRPC API (`proto/l5d/demo/greeter.proto`) is generated
//! ahead of time and checked in as `src/gen/l5d.demo.rs`, as in `l5d-proto`.
//! `tests/codegen.rs` fails when it drifts from the `.proto` file; after
//! editing it, regenerate with:
//!
//! ```text
//! UPDATE_PROTO=1 cargo test -p l5d-demo --test codegen
//! ```

mod control;
pub mod fault;
pub mod grpc;
pub mod http;
mod name;

pub use name::{InvalidName, Name};

/// The `l5d.demo` protobuf package: `HelloRequest`, `HelloReply`, and the
/// `Greeter` client and server.
///
/// Generated from `proto/l5d/demo/greeter.proto`; do not edit by hand.
#[allow(missing_debug_implementations, unreachable_pub, clippy::all)]
pub mod greeter {
    include!("gen/l5d.demo.rs");
}
