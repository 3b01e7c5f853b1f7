//! Everything that can go wrong after the arguments parsed, in words an
//! operator understands, and the exit code each maps to: 1 for errors, 3
//! for version conflicts, 4 when namerd wants other credentials (401), 5
//! when the identity lacks the permission (403), 6 when a canary's gate
//! failed and the canary was aborted; 2 is clap's, for usage errors.
//! `dtab diff` alone exits 1 for "different" (as diff(1)) and 2 for what
//! others exit 1 with.

use std::time::Duration;

use crate::config::ConfigError;
use crate::input::{InputError, VersionRequired};
use crate::token::TokenError;

/// Exit code for errors other than usage errors and conflicts.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for a refused compare-and-set: the dtab changed (412) or
/// already exists (409 on create).
pub const EXIT_CONFLICT: u8 = 3;
/// Exit code for 401: no token, or one namerd does not accept.
pub const EXIT_UNAUTHENTICATED: u8 = 4;
/// Exit code for 403: the token's identity may not do this.
pub const EXIT_FORBIDDEN: u8 = 5;
/// Exit code of `canary start` when its gate failed and it aborted.
pub const EXIT_CANARY_ABORTED: u8 = 6;
/// Exit code of `dtab diff` when the dtabs differ (as diff(1)).
pub const EXIT_DIFFERENT: u8 = 1;
/// Exit code of `dtab diff` for what other commands exit 1 with (as
/// diff(1): "trouble"), so that 1 only ever means "different".
pub const EXIT_DIFF_TROUBLE: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    VersionRequired(#[from] VersionRequired),
    #[error(transparent)]
    Token(#[from] TokenError),

    /// Kept word for word from the Go namerctl; scripts match on it.
    #[error("resource was not found by ID or name")]
    NotFound,
    #[error("dtab {name} has no version {version}")]
    UnknownVersion { name: String, version: String },
    #[error(
        "version {version} of dtab {name} is a deletion; there is no dtab to roll back to \
         (use `namerctl dtab delete {name}` to delete it)"
    )]
    VersionIsDeletion { name: String, version: String },
    #[error(
        "version conflict: dtab {name} has changed since version {expected}; {}",
        current_text(current.as_deref())
    )]
    Conflict {
        name: String,
        expected: String,
        /// `None` when the dtab no longer exists.
        current: Option<String>,
    },
    #[error(
        "dtab {name} already exists (current version {})",
        current.as_deref().unwrap_or("unknown")
    )]
    AlreadyExists {
        name: String,
        current: Option<String>,
    },
    #[error(
        "namerd did not report the current version of dtab {name}; refusing to write without one"
    )]
    MissingVersion { name: String },
    /// `unexpected response: 409 Conflict`, then the body, where namerd
    /// explains (e.g. a dtab parse error, which spans several lines).
    #[error(
        "unexpected response: {}{}",
        status_text(*status),
        detail_text(detail.as_deref())
    )]
    Unexpected {
        status: http::StatusCode,
        detail: Option<String>,
    },
    /// 401, with namerd's reason and what to do about it.
    #[error(
        "not authenticated (401 Unauthorized){}; {}",
        detail_text(detail.as_deref()),
        match token_file {
            Some(file) => format!("namerd did not accept the token in {}", file.display()),
            None => "give namerctl a token with --token-file or NAMERCTL_TOKEN_FILE".to_string(),
        }
    )]
    Unauthenticated {
        detail: Option<String>,
        /// Where the token that was sent came from; `None` if none was.
        token_file: Option<std::path::PathBuf>,
    },
    /// 403: namerd's body says which identity lacks which permission.
    #[error("not allowed (403 Forbidden){}", detail_text(detail.as_deref()))]
    Forbidden { detail: Option<String> },
    #[error("namerd sent an unreadable response to {what}: {message}")]
    BadResponse { what: String, message: String },
    #[error(
        "invalid version {version:?}: a version is the base64 ETag that `namerctl dtab get` \
         prints (e.g. AAAAAAAAAAE=)"
    )]
    InvalidVersion { version: String },

    #[error("{flag}: {reason}")]
    Tls { flag: &'static str, reason: String },
    #[error("cannot reach namerd at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("namerd at {url} did not answer within {}s", timeout.as_secs_f64())]
    Timeout { url: String, timeout: Duration },
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),

    #[error(transparent)]
    Dtab(#[from] crate::dentries::DtabError),
    #[error("{0}")]
    CanaryState(#[from] crate::canary::StateError),
    #[error(
        "a canary is already running on {path} in dtab {ns} (step {step}/{steps}, started in \
         version {version} by {by}); abort or promote it first"
    )]
    CanaryRunning {
        ns: String,
        path: String,
        step: usize,
        steps: usize,
        version: String,
        by: String,
    },
    #[error("{0}")]
    CanaryEdited(Box<EditedCanary>),
    #[error("the canary on {path} moved past step {step} without this namerctl; stopping")]
    CanaryStepMoved { path: String, step: usize },
    #[error("the canary on {path} was {action} in version {version} by {by}")]
    CanaryOver {
        path: String,
        action: &'static str,
        version: String,
        by: String,
    },
    #[error("no canary is running{} in dtab {ns}", path.as_ref().map(|p| format!(" on {p}")).unwrap_or_default())]
    NoCanary { ns: String, path: Option<String> },
    #[error("several canaries are running in dtab {ns} ({paths}); say which with --path")]
    CanaryAmbiguous { ns: String, paths: String },
    #[error("the gate failed after step {step} of the canary on {path} ({status}); aborted")]
    CanaryGateFailed {
        path: String,
        step: usize,
        status: String,
    },
    #[error(
        "the canary's marker {marker} makes an l5d-author of {bytes} bytes; namerd records at \
         most {} printable ASCII bytes and would drop it, and the canary's state with it: use \
         shorter --path, --from and --to, or fewer --steps",
        crate::client::MAX_AUTHOR_BYTES
    )]
    CanaryMarkerTooLong { marker: String, bytes: usize },
    #[error("cannot run the gate {gate:?}: {reason}")]
    CanaryGate { gate: String, reason: String },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Conflict { .. }
            | Error::AlreadyExists { .. }
            | Error::CanaryRunning { .. }
            | Error::CanaryEdited(_) => EXIT_CONFLICT,
            Error::CanaryGateFailed { .. } => EXIT_CANARY_ABORTED,
            Error::Unauthenticated { .. } => EXIT_UNAUTHENTICATED,
            Error::Forbidden { .. } => EXIT_FORBIDDEN,
            _ => EXIT_ERROR,
        }
    }
}

/// Someone else's change of a canary's dentry, which stops the canary.
#[derive(Debug, thiserror::Error)]
#[error(
    "the canary's dentry for {path} in dtab {ns} was changed by {by} in version {version} \
     (now `{now}`, the canary wrote `{wrote}`); not overwriting their change"
)]
pub struct EditedCanary {
    pub ns: String,
    pub path: String,
    pub version: String,
    pub by: String,
    pub now: String,
    pub wrote: String,
}

fn current_text(current: Option<&str>) -> String {
    match current {
        Some(v) => format!("the current version is {v}"),
        None => "it has since been deleted".to_string(),
    }
}

fn status_text(status: http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn detail_text(detail: Option<&str>) -> String {
    match detail {
        Some(d) => format!(": {d}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_exit_codes() {
        let cases: Vec<(Error, &str, u8)> = vec![
            (Error::NotFound, "resource was not found by ID or name", 1),
            (
                Error::Unexpected {
                    status: http::StatusCode::CONFLICT,
                    detail: None,
                },
                "unexpected response: 409 Conflict",
                1,
            ),
            (
                Error::Unexpected {
                    status: http::StatusCode::BAD_REQUEST,
                    detail: Some("bad dtab".into()),
                },
                "unexpected response: 400 Bad Request: bad dtab",
                1,
            ),
            (
                Error::Conflict {
                    name: "internal".into(),
                    expected: "AAAAAAAAAAE=".into(),
                    current: Some("AAAAAAAAAAI=".into()),
                },
                "version conflict: dtab internal has changed since version AAAAAAAAAAE=; \
                 the current version is AAAAAAAAAAI=",
                3,
            ),
            (
                Error::AlreadyExists {
                    name: "internal".into(),
                    current: Some("AAAAAAAAAAE=".into()),
                },
                "dtab internal already exists (current version AAAAAAAAAAE=)",
                3,
            ),
            (
                Error::Unauthenticated {
                    detail: Some("authentication required: send a bearer token".into()),
                    token_file: None,
                },
                "not authenticated (401 Unauthorized): authentication required: send a bearer \
                 token; give namerctl a token with --token-file or NAMERCTL_TOKEN_FILE",
                4,
            ),
            (
                Error::Unauthenticated {
                    detail: Some("the bearer token is not valid".into()),
                    token_file: Some("/run/namerctl/token".into()),
                },
                "not authenticated (401 Unauthorized): the bearer token is not valid; \
                 namerd did not accept the token in /run/namerctl/token",
                4,
            ),
            (
                Error::Forbidden {
                    detail: Some("deployer may not write dtab namespace external".into()),
                },
                "not allowed (403 Forbidden): deployer may not write dtab namespace external",
                5,
            ),
            (
                Error::Unreachable {
                    url: "http://127.0.0.1:1".into(),
                    reason: "Connection refused (os error 111)".into(),
                },
                "cannot reach namerd at http://127.0.0.1:1: Connection refused (os error 111)",
                1,
            ),
        ];
        for (err, msg, code) in cases {
            assert_eq!(err.to_string(), msg);
            assert_eq!(err.exit_code(), code, "{msg}");
        }
    }
}
