//! The `io.linkerd.mesh` gRPC API of Linkerd 1.x and namerd, as [prost]
//! messages and [tonic] clients and servers.
//!
//! The protocol definitions live in `proto/io/linkerd/mesh/*.proto`
//! (`dtab`, `interpreter`, `resolver`, `delegator`, `codec`). They keep the
//! package name, message names, field numbers, oneofs and streaming modes of
//! the upstream Linkerd 1.x files, so that a Linkerd 1.x proxy configured with
//! the `io.l5d.mesh` interpreter can talk to a server built on this crate, and
//! the other way round. gRPC method paths are therefore e.g.
//! `/io.linkerd.mesh.Interpreter/StreamBoundTree`.
//!
//! Everything is in the [`mesh`] module:
//!
//! * messages such as [`mesh::BindReq`], [`mesh::BoundNameTree`],
//!   [`mesh::Replicas`] and [`mesh::Dtab`], with nested messages and oneofs in
//!   snake-case submodules (e.g. [`mesh::path_name_tree::Node`]);
//! * clients in `mesh::<service>_client` (e.g.
//!   [`mesh::interpreter_client::InterpreterClient`]);
//! * servers in `mesh::<service>_server` (e.g. the trait
//!   [`mesh::interpreter_server::Interpreter`] and the service wrapper
//!   [`mesh::interpreter_server::InterpreterServer`]).
//!
//! The [`convert`] module converts between these messages and the naming core
//! (`l5d-dtab` paths, dtabs, name trees and delegation traces): `From` out of
//! the core, `TryFrom` into it, since messages from the network may be invalid.
//!
//! # Generated code
//!
//! The Rust code is generated ahead of time and checked in as
//! `src/gen/io.linkerd.mesh.rs`, so building this crate needs neither `protoc`
//! nor a build script. The test `tests/codegen.rs` regenerates it with
//! [protox](https://docs.rs/protox) and
//! [tonic-prost-build](https://docs.rs/tonic-prost-build) and fails if the
//! checked-in file has drifted from the `.proto` files. After editing a
//! `.proto` file, regenerate with:
//!
//! ```text
//! UPDATE_PROTO=1 cargo test -p l5d-proto --test codegen
//! ```
//!
//! The same test also checks in `src/gen/descriptor.bin`, the encoded
//! `FileDescriptorSet` of the `.proto` files ([`FILE_DESCRIPTOR_SET`]), which
//! a server hands to gRPC reflection so that tools such as `grpcurl` can
//! list and describe the services without the `.proto` files.

pub mod codec;
pub mod convert;

#[cfg(feature = "codegen")]
pub mod codegen;

/// The encoded `google.protobuf.FileDescriptorSet` of
/// `proto/io/linkerd/mesh/*.proto` (with source info and imports), for gRPC
/// reflection (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("gen/descriptor.bin");

/// The `io.linkerd.mesh` protobuf package: messages, clients and servers.
///
/// Generated from `proto/io/linkerd/mesh/*.proto`; do not edit by hand.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod mesh {
    include!("gen/io.linkerd.mesh.rs");
}
