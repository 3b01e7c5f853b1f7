//! A running router as the proxy's upkeep and the admin pages see it.
//! Built by [`crate::proxy`], read by [`crate::admin`]; it sits below both
//! so neither depends on the other.

use std::sync::Arc;

use super::Router;
use crate::interpreter::mesh::MeshInterpreter;

/// A router with what the admin pages need to know about it.
#[derive(Debug, Clone)]
pub struct RouterHandle {
    pub router: Arc<Router>,
    /// Set when the router's interpreter is namerd's, for its stream
    /// figures.
    pub mesh: Option<Arc<MeshInterpreter>>,
}
