//! The fuzz targets' bodies: one `pub fn <target>(data: &[u8])` per target
//! of `fuzz/fuzz_targets/`, each driving the project's real parsers and
//! request handling with arbitrary bytes and panicking only on a bug (a
//! crash, or a broken round trip).
//!
//! They live here, in the stable workspace, so that `cargo test` replays
//! every seed and every kept crash (`tests/replay.rs`) without nightly or
//! libFuzzer; the cargo-fuzz crate (`fuzz/`, its own workspace) only wraps
//! them in `fuzz_target!`. Nothing here is used by the binaries.

mod config;
mod dtab;
mod head;
mod k8s;
mod namerd_http;
mod proto;
mod proxy;

pub use config::{namerd_config, proxy_config};
pub use dtab::{dtab, name_tree, path};
pub use k8s::k8s_objects;
pub use namerd_http::namerd_http;
pub use proto::mesh_proto;
pub use proxy::{proxy_overrides, proxy_request_head};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and the corpus
/// directories `fuzz/corpus/<name>/` and `fuzz/artifacts/<name>/` call it.
pub const TARGETS: &[(&str, Target)] = &[
    ("dtab", dtab),
    ("path", path),
    ("name_tree", name_tree),
    ("proxy_overrides", proxy_overrides),
    ("proxy_request_head", proxy_request_head),
    ("mesh_proto", mesh_proto),
    ("namerd_http", namerd_http),
    ("namerd_config", namerd_config),
    ("proxy_config", proxy_config),
    ("k8s_objects", k8s_objects),
];
