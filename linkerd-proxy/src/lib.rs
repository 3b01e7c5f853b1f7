//! linkerd-proxy (skeleton; see issue 5).
