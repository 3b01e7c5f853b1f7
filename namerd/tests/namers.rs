//! Namers, the inet resolver, transformers and their configuration, each
//! against a real directory, an injected resolver or a fixed inner namer.
//! Waits are on watch channels (or polls of admin state) with deadlines,
//! never fixed sleeps.

mod namers {
    mod config;
    mod fs;
    mod inet;
    mod rewrite;
    mod support;
    mod transformer;
}
