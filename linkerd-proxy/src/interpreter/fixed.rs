//! The `default` interpreter: a fixed dtab bound locally (in progress).
