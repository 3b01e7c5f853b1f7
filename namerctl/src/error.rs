//! Everything that can go wrong after the arguments parsed, in words an
//! operator understands, and the exit code each maps to: 1 for errors, 3
//! for version conflicts, 4 when namerd wants other credentials (401), 5
//! when the identity lacks the permission (403); 2 is clap's, for usage
//! errors.

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
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Conflict { .. } | Error::AlreadyExists { .. } => EXIT_CONFLICT,
            Error::Unauthenticated { .. } => EXIT_UNAUTHENTICATED,
            Error::Forbidden { .. } => EXIT_FORBIDDEN,
            _ => EXIT_ERROR,
        }
    }
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
