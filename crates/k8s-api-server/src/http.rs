//! The HTTP face of the server (placeholder while the routes land).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::Shared;

pub(crate) fn router(shared: Arc<Shared>, _addr: SocketAddr) -> axum::Router {
    let _ = shared;
    axum::Router::new()
}
