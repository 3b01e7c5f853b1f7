//! Kubernetes objects as namerd's watchers receive them (JSON, decoded
//! with serde as kube does) and as its ConfigMap store and EndpointSlice
//! namer read them: through `namerd::fuzzing`, which reaches their
//! crate-private indexes.

/// The first byte chooses what the JSON is: a ConfigMap of the dtab store,
/// or a Service, an EndpointSlice, or a list of either for the namer.
pub fn k8s_objects(data: &[u8]) {
    let Some((&kind, json)) = data.split_first() else {
        return;
    };
    match kind % 2 {
        0 => namerd::fuzzing::config_map(json),
        _ => namerd::fuzzing::endpoints(json),
    }
}
