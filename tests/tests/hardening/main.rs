//! Issue 12's probes of the proxy, repeated against real processes (namerd
//! on SQLite with the fs namer, linkerd-proxy, an `l5d-demo` backend) with
//! curl, raw sockets and an HTTP/2 client:
//!
//! - `overrides`: the open proxy. A dtab override naming an address
//!   (`/$/inet/127.0.0.1/<namerd's admin port>`), in each override header,
//!   over HTTP/1.1, h2 and gRPC, gets 400 and reaches nothing; a PUT
//!   through the proxy to namerd's API creates no namespace; servers with
//!   `clearContext` ignore overrides; a server that allows addresses
//!   shows the probe is real.
//! - `loops`: a proxy routing to itself stops at `maxCallDepth` (20) over
//!   HTTP/1.1 and h2, and 30 concurrent loops hold few descriptors.
//! - `host`: duplicate `Host`, h2 `Host` disagreeing with `:authority`,
//!   and the header count limit.

mod host;
mod loops;
mod overrides;
mod setup;
