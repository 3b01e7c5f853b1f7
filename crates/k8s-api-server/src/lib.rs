//! A Kubernetes API test server (skeleton; see issue 7).
