//! The `io.l5d.mesh` interpreter: namerd's gRPC streams (in progress).
