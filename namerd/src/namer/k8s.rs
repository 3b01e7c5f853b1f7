//! `io.l5d.k8s`: service discovery from Kubernetes Services and
//! EndpointSlices, for names `/#/io.l5d.k8s/<namespace>/<port>/<service>`.
//!
//! So far this holds the pure per-namespace index (`k8s/index.rs`); the
//! watchers that feed it and the [`Namer`](super::Namer) built on it follow.
//! One watcher pair (Services, EndpointSlices) per Kubernetes namespace in
//! use, however many names and ids use it: a namespace-wide list+watch
//! costs one connection per resource and namespace, where one watch per
//! Service would multiply connections by the services of the mesh.

pub(crate) mod index;
