//! `service`: the policies of a logical name, as Linkerd 1.x's: the total
//! timeout, retries (budget and backoff), the response classifier and the
//! retry buffers; for every name (`io.l5d.global`) or by prefix of the
//! name (`io.l5d.static`, see `prefix.rs`), later entries overriding
//! earlier ones field by field.

use std::time::Duration;

use l5d_dtab::Path;
use l5d_runtime::config::{ConfigError, check, kind_of, typed};
use serde::Deserialize;
use serde_json::Value;

use super::backoff::{BackoffConfig, parse_backoff};
use super::prefix::{PrefixPattern, Static};
use super::protocol::Protocol;
use super::retries::{BudgetConfig, parse_budget};

/// `service`, for every name or by prefix of the name.
pub type ServiceConfigs = Static<ServiceParams>;

/// What one `service` block (or `io.l5d.static` entry) sets; unset fields
/// come from earlier matching entries or the defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceParams {
    pub total_timeout: Option<Duration>,
    pub budget: Option<BudgetConfig>,
    pub backoff: Option<BackoffConfig>,
    pub classifier: Option<ClassifierConfig>,
    pub retry_buffer: Option<RetryBufferConfig>,
    pub classification_timeout: Option<Duration>,
}

/// The policies of one logical name: every matching entry applied in
/// order over the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// The whole request, retries included, from routing to the response
    /// head, may take this long (503 afterwards).
    pub total_timeout: Option<Duration>,
    pub budget: BudgetConfig,
    pub backoff: BackoffConfig,
    pub classifier: ClassifierConfig,
    pub retry_buffer: RetryBufferConfig,
    /// How long a response whose class is in its trailers (gRPC) is held
    /// to learn it before a retry decision; after that it is forwarded.
    pub classification_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            total_timeout: None,
            budget: BudgetConfig::default(),
            backoff: BackoffConfig::default(),
            classifier: ClassifierConfig::Default,
            retry_buffer: RetryBufferConfig::default(),
            classification_timeout: Duration::from_millis(100),
        }
    }
}

impl ServiceConfigs {
    /// The policies of `name`.
    pub fn resolve(&self, name: &Path) -> ServiceConfig {
        let mut config = ServiceConfig::default();
        for (_, entry, _) in self.matching(name) {
            let p = &entry.value;
            if p.total_timeout.is_some() {
                config.total_timeout = p.total_timeout;
            }
            if let Some(b) = p.budget {
                config.budget = b;
            }
            if let Some(b) = p.backoff {
                config.backoff = b;
            }
            if let Some(c) = &p.classifier {
                config.classifier = c.clone();
            }
            if let Some(b) = p.retry_buffer {
                config.retry_buffer = b;
            }
            if let Some(t) = p.classification_timeout {
                config.classification_timeout = t;
            }
        }
        config
    }
}

/// How much of a request (and of a response awaiting its class) is kept
/// so that it can be retried: Linkerd's h2 `retryBufferSize`, for both
/// protocols. A request body larger than `request_bytes` is streamed and
/// never replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBufferConfig {
    pub request_bytes: usize,
    pub response_bytes: usize,
}

impl Default for RetryBufferConfig {
    fn default() -> Self {
        RetryBufferConfig {
            request_bytes: 64 * 1024,
            response_bytes: 64 * 1024,
        }
    }
}

/// A response classifier (Linkerd's `responseClassifier` kinds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassifierConfig {
    /// `io.l5d.http.nonRetryable5XX` on HTTP/1.1 routers; on h2 routers
    /// also a non-zero `grpc-status` is a (non-retryable) failure, which
    /// Linkerd 1.x counted as a success unless configured.
    Default,
    /// 5xx is a failure, retryable for `methods`.
    Status(RetryableMethods),
    /// Every response is a success (errors of the proxy's own are not).
    AllSuccessful,
    /// By `grpc-status` (head or trailers): `0` and `success` are
    /// successes; the rest are failures, retryable as `retryable` says.
    Grpc {
        retryable: GrpcRetryable,
        success: Vec<u32>,
    },
}

/// Which methods a 5xx may be retried for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryableMethods {
    None,
    /// GET, HEAD, OPTIONS, TRACE.
    Read,
    /// Read, and PUT, DELETE.
    Idempotent,
    All,
}

/// Which gRPC failures are retryable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrpcRetryable {
    /// `io.l5d.h2.grpc.default`: UNAVAILABLE (14).
    Unavailable,
    Always,
    Never,
    /// The gRPC specification's mapping: UNAVAILABLE, and HTTP 502, 503,
    /// 504 and 429 without a `grpc-status` (which it maps to UNAVAILABLE).
    Compliant,
    Codes(Vec<u32>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceKeys {
    total_timeout_ms: Option<u64>,
    retries: Option<RetriesKeys>,
    response_classifier: Option<Value>,
    retry_buffer_size: Option<BufferKeys>,
    classification_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RetriesKeys {
    budget: Option<Value>,
    backoff: Option<Value>,
}

/// Request bodies buffered for a retry at most: retried bodies are held in
/// memory, so a larger setting is refused.
const MAX_RETRY_BUFFER: usize = 16 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BufferKeys {
    request_bytes: Option<usize>,
    response_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GrpcKeys {
    retryable_status_codes: Option<Vec<u32>>,
    #[serde(default)]
    success_status_codes: Vec<u32>,
}

/// Reads the `service` section at `field` of a router of `protocol`.
pub(super) fn parse_service(
    value: Value,
    field: &str,
    protocol: Protocol,
) -> Result<ServiceConfigs, ConfigError> {
    Static::parse(value, field, "service", |v, at, _: &PrefixPattern| {
        parse_params(v, at, protocol)
    })
}

fn parse_params(
    value: Value,
    field: &str,
    protocol: Protocol,
) -> Result<ServiceParams, ConfigError> {
    let k: ServiceKeys = typed(value, field)?;
    check(
        k.total_timeout_ms != Some(0),
        format!("{field}.totalTimeoutMs"),
        "must be greater than 0",
    )?;
    check(
        k.classification_timeout_ms != Some(0),
        format!("{field}.classificationTimeoutMs"),
        "must be greater than 0",
    )?;
    let (budget, backoff) = match k.retries {
        None => (None, None),
        Some(r) => (
            r.budget
                .map(|v| parse_budget(v, &format!("{field}.retries.budget")))
                .transpose()?,
            r.backoff
                .map(|v| parse_backoff(v, &format!("{field}.retries.backoff"), Some(0)))
                .transpose()?,
        ),
    };
    let classifier = k
        .response_classifier
        .map(|v| parse_classifier(v, &format!("{field}.responseClassifier"), protocol))
        .transpose()?;
    let retry_buffer = match k.retry_buffer_size {
        None => None,
        Some(b) => {
            let default = RetryBufferConfig::default();
            let at = format!("{field}.retryBufferSize");
            let request_bytes = b.request_bytes.unwrap_or(default.request_bytes);
            let response_bytes = b.response_bytes.unwrap_or(default.response_bytes);
            for (key, n) in [
                ("requestBytes", request_bytes),
                ("responseBytes", response_bytes),
            ] {
                check(
                    n <= MAX_RETRY_BUFFER,
                    format!("{at}.{key}"),
                    "must be at most 16777216 (16 MiB): retried bodies are held in memory",
                )?;
            }
            Some(RetryBufferConfig {
                request_bytes,
                response_bytes,
            })
        }
    };
    Ok(ServiceParams {
        total_timeout: k.total_timeout_ms.map(Duration::from_millis),
        budget,
        backoff,
        classifier,
        retry_buffer,
        classification_timeout: k.classification_timeout_ms.map(Duration::from_millis),
    })
}

/// The HTTP status classifiers, by the name after `io.l5d.http.` or
/// `io.l5d.h2.`.
const STATUS_KINDS: &[(&str, Option<RetryableMethods>)] = &[
    ("nonRetryable5XX", Some(RetryableMethods::None)),
    ("retryableRead5XX", Some(RetryableMethods::Read)),
    ("retryableIdempotent5XX", Some(RetryableMethods::Idempotent)),
    ("retryableAll5XX", Some(RetryableMethods::All)),
    ("allSuccessful", None),
];

fn parse_classifier(
    value: Value,
    field: &str,
    protocol: Protocol,
) -> Result<ClassifierConfig, ConfigError> {
    let (kind, rest) = kind_of(value, field)?;
    let (own, other) = match protocol {
        Protocol::Http => ("io.l5d.http.", "io.l5d.h2."),
        Protocol::H2 => ("io.l5d.h2.", "io.l5d.http."),
    };
    if let Some(name) = kind.strip_prefix(own)
        && let Some((_, methods)) = STATUS_KINDS.iter().find(|(n, _)| *n == name)
    {
        typed::<Empty>(rest, field)?;
        return Ok(match methods {
            Some(m) => ClassifierConfig::Status(*m),
            None => ClassifierConfig::AllSuccessful,
        });
    }
    if protocol == Protocol::H2
        && let Some(name) = kind.strip_prefix("io.l5d.h2.grpc.")
    {
        let k: GrpcKeys = typed(rest, field)?;
        if name != "retryableStatusCodes" && k.retryable_status_codes.is_some() {
            return Err(ConfigError::new(
                format!("{field}.retryableStatusCodes"),
                "only io.l5d.h2.grpc.retryableStatusCodes takes a list of codes",
            ));
        }
        let retryable = match name {
            "default" => GrpcRetryable::Unavailable,
            "alwaysRetryable" => GrpcRetryable::Always,
            "neverRetryable" => GrpcRetryable::Never,
            "compliant" => GrpcRetryable::Compliant,
            "retryableStatusCodes" => match k.retryable_status_codes {
                Some(codes) => GrpcRetryable::Codes(codes),
                None => {
                    return Err(ConfigError::missing(format!(
                        "{field}.retryableStatusCodes"
                    )));
                }
            },
            _ => return Err(unsupported(field, &kind, protocol)),
        };
        for (i, code) in k.success_status_codes.iter().enumerate() {
            check(
                *code <= 16,
                format!("{field}.successStatusCodes[{i}]"),
                "expected a gRPC status code from 0 to 16",
            )?;
        }
        if let GrpcRetryable::Codes(codes) = &retryable {
            for (i, code) in codes.iter().enumerate() {
                check(
                    (1..=16).contains(code),
                    format!("{field}.retryableStatusCodes[{i}]"),
                    "expected a gRPC status code from 1 to 16",
                )?;
            }
        }
        return Ok(ClassifierConfig::Grpc {
            retryable,
            success: k.success_status_codes,
        });
    }
    if let Some(name) = kind.strip_prefix(other)
        && (STATUS_KINDS.iter().any(|(n, _)| *n == name) || name.starts_with("grpc."))
    {
        let hint = if name.starts_with("grpc.") {
            "gRPC classifiers are for h2 routers".to_string()
        } else {
            format!("on a {} router it is {own}{name}", protocol.name())
        };
        return Err(ConfigError::new(
            format!("{field}.kind"),
            format!("{kind} is for {} routers; {hint}", other_protocol(protocol)),
        ));
    }
    Err(unsupported(field, &kind, protocol))
}

fn other_protocol(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http => "h2",
        Protocol::H2 => "http",
    }
}

fn unsupported(field: &str, kind: &str, protocol: Protocol) -> ConfigError {
    let prefix = match protocol {
        Protocol::Http => "io.l5d.http.",
        Protocol::H2 => "io.l5d.h2.",
    };
    let mut supported: Vec<String> = STATUS_KINDS
        .iter()
        .map(|(n, _)| format!("{prefix}{n}"))
        .collect();
    if protocol == Protocol::H2 {
        for n in [
            "default",
            "alwaysRetryable",
            "neverRetryable",
            "compliant",
            "retryableStatusCodes",
        ] {
            supported.push(format!("io.l5d.h2.grpc.{n}"));
        }
    }
    ConfigError::unsupported_kind(
        field,
        "response classifier",
        kind,
        &format!("supported: {}", supported.join(", ")),
    )
}

/// A classifier that takes no keys besides `kind`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}
