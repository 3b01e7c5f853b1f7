//! Every way a mesh RPC can fail, and the one place that turns each into a
//! gRPC status.
//!
//! Messages that Linkerd 1.x's namerd defines (`Errors.scala`: "No namespace
//! specified", "No name given", "Invalid root: ...", "Root not found") are
//! kept word for word: Linkerd proxies and operators' scripts match on them.

use l5d_dtab::Path;
use l5d_proto::convert::ConvertError;
use tonic::{Code, Status};

use crate::client::LimitError;
use crate::interpreter::InterpretError;
use crate::store::StoreError;

/// Why a mesh request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MeshError {
    /// The request has no `root` (the namerd namespace).
    #[error("No namespace specified")]
    NoNamespace,
    /// The request has no name (or tree) to bind, or an empty one.
    #[error("No name given")]
    NoName,
    /// The root is not a single segment such as `/default`.
    #[error("Invalid root: `{}` must have exactly one segment", root.show())]
    InvalidRoot { root: Path },
    /// A path, tree or dtab field of the request is not valid.
    #[error("Invalid {field}: {source}")]
    InvalidField {
        field: &'static str,
        source: ConvertError,
    },
    /// Text given to the codec does not parse; the parser's own message.
    #[error("{0}")]
    Parse(#[from] l5d_dtab::ParseError),
    /// The namespace of a `GetDtab`/`StreamDtab` does not exist.
    #[error("Root not found")]
    RootNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Interpret(#[from] InterpretError),
    /// The name never bound: the binder's or namer's message.
    #[error("{message}")]
    BindingFailed { message: String },
    /// A unary request waited for a binding that stayed pending.
    #[error("binding is still pending")]
    StillPending,
    /// A live value's producer went away (it is restarted on the next
    /// request, so the client should retry).
    #[error("the {what} watch ended; retry")]
    WatchEnded { what: &'static str },
    /// namerd is draining; the client should reconnect elsewhere or later.
    #[error("namerd is shutting down")]
    ShuttingDown,
}

impl MeshError {
    pub(crate) fn invalid(field: &'static str) -> impl FnOnce(ConvertError) -> MeshError {
        move |source| MeshError::InvalidField { field, source }
    }

    pub(crate) fn code(&self) -> Code {
        match self {
            MeshError::NoNamespace
            | MeshError::InvalidRoot { .. }
            | MeshError::InvalidField { .. }
            | MeshError::Parse(_) => Code::InvalidArgument,
            MeshError::NoName | MeshError::RootNotFound => Code::NotFound,
            MeshError::Store(e) => store_code(e),
            MeshError::Interpret(e) => match e {
                InterpretError::TooManyBindings { .. }
                | InterpretError::Limit(_)
                | InterpretError::Evicted => Code::ResourceExhausted,
                InterpretError::KeyTooLarge { .. } => Code::InvalidArgument,
                InterpretError::Timeout => Code::DeadlineExceeded,
                // A name that cannot be bound (a namer failed, a dtab loops)
                // may bind later: the same status as a failed binding.
                InterpretError::Name(_) => Code::Unavailable,
                InterpretError::Store(e) => store_code(e),
            },
            MeshError::BindingFailed { .. }
            | MeshError::StillPending
            | MeshError::WatchEnded { .. }
            | MeshError::ShuttingDown => Code::Unavailable,
        }
    }
}

/// An invalid namespace name or a dtab too large to store is the caller's
/// mistake; anything else the store reports is namerd's (Linkerd answers
/// `INTERNAL` for all of them).
fn store_code(e: &StoreError) -> Code {
    match e {
        StoreError::InvalidNamespace { .. } | StoreError::TooLarge { .. } => Code::InvalidArgument,
        _ => Code::Internal,
    }
}

impl From<LimitError> for MeshError {
    fn from(e: LimitError) -> MeshError {
        MeshError::Interpret(e.into())
    }
}

impl From<MeshError> for Status {
    fn from(e: MeshError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;

    #[test]
    fn statuses_and_messages() {
        let root = Path::read("/a/b").unwrap();
        let cases: Vec<(MeshError, Code, &str)> = vec![
            (
                MeshError::NoNamespace,
                Code::InvalidArgument,
                "No namespace specified",
            ),
            (MeshError::NoName, Code::NotFound, "No name given"),
            (
                MeshError::InvalidRoot { root },
                Code::InvalidArgument,
                "Invalid root: `/a/b` must have exactly one segment",
            ),
            (MeshError::RootNotFound, Code::NotFound, "Root not found"),
            (
                InterpretError::TooManyBindings { limit: 3 }.into(),
                Code::ResourceExhausted,
                "too many live bindings (the limit is 3, interpreter.maxBindings); try again later",
            ),
            (
                LimitError::BindingsPerClient {
                    client: Client::new([10, 0, 0, 1].into()),
                    limit: 2,
                }
                .into(),
                Code::ResourceExhausted,
                "client 10.0.0.1 holds 2 bindings, its limit (interpreter.maxBindingsPerClient); \
                 close some streams before binding more names",
            ),
            (
                InterpretError::KeyTooLarge {
                    size: 9000,
                    limit: 8192,
                }
                .into(),
                Code::InvalidArgument,
                "the name and local dtab are 9000 bytes, over the limit of 8192 (interpreter.maxKeyBytes)",
            ),
            (
                InterpretError::Evicted.into(),
                Code::ResourceExhausted,
                "binding evicted: namerd is at its limit of live bindings (interpreter.maxBindings) \
                 and this client holds more than its share; try again later",
            ),
            (
                InterpretError::Timeout.into(),
                Code::DeadlineExceeded,
                "Request timed out.",
            ),
            (
                StoreError::unavailable("down").into(),
                Code::Internal,
                "dtab storage is unavailable: down",
            ),
            (
                StoreError::TooLarge {
                    ns: crate::store::Namespace::new("big").unwrap(),
                    storage: "a Kubernetes ConfigMap",
                    size: 2,
                    limit: 1,
                }
                .into(),
                Code::InvalidArgument,
                "the dtab of big is too large for a Kubernetes ConfigMap: 2 bytes, at most 1",
            ),
            (
                MeshError::StillPending,
                Code::Unavailable,
                "binding is still pending",
            ),
        ];
        for (error, code, message) in cases {
            let status = Status::from(error);
            assert_eq!((status.code(), status.message()), (code, message));
        }
    }
}
