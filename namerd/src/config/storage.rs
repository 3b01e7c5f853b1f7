//! The `storage` section: where dtabs are kept, selected by `kind`
//! (`io.l5d.inMemory`, `io.l5d.sqlite`, `io.l5d.postgres`, `io.l5d.k8s`),
//! with each kind's keys checked before any store is opened, and the
//! `history` every kind keeps (its [`Retention`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use l5d_dtab::Dtab;
use l5d_runtime::config::{ConfigError, check, kind_of, typed};
use serde::Deserialize;
use serde_json::Value;

use super::connection::connection;
use crate::store::k8s::{K8sOptions, selector_labels};
use crate::store::{Namespace, Retention};

/// Where dtabs are kept.
#[derive(Clone, Debug, PartialEq)]
pub enum StorageConfig {
    /// `io.l5d.inMemory`: lost on restart; `namespaces` seeds it.
    InMemory {
        namespaces: BTreeMap<Namespace, Dtab>,
    },
    /// `io.l5d.sqlite`: one file, the embedded default.
    Sqlite {
        path: PathBuf,
        poll_interval: Duration,
    },
    /// `io.l5d.postgres`: shared by several namerd replicas.
    Postgres {
        url: String,
        poll_interval: Duration,
    },
    /// `io.l5d.k8s`: ConfigMaps in a Kubernetes namespace, shared by
    /// several namerd replicas.
    Kubernetes(K8sOptions),
}

/// `storage.history`, for every kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HistoryKeys {
    #[serde(default = "default_history_versions")]
    max_versions: usize,
    #[serde(default = "default_history_days")]
    max_age_days: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InMemoryKeys {
    #[serde(default)]
    namespaces: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as in namerd; in-memory storage is not experimental here"
    )]
    experimental: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SqliteKeys {
    #[serde(default = "default_sqlite_path")]
    path: PathBuf,
    #[serde(default = "default_poll_ms")]
    poll_interval_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PostgresKeys {
    url: String,
    #[serde(default = "default_poll_ms")]
    poll_interval_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct K8sStorageKeys {
    host: Option<String>,
    port: Option<u16>,
    kubeconfig: Option<PathBuf>,
    #[serde(default = "default_k8s_namespace")]
    namespace: String,
    #[serde(default = "default_name_prefix")]
    name_prefix: String,
    #[serde(default = "default_label_selector")]
    label_selector: String,
    #[serde(default = "default_data_key")]
    data_key: String,
    #[serde(default = "default_idle_timeout_secs")]
    idle_timeout_secs: u64,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as in namerd; the k8s store is not experimental here"
    )]
    experimental: bool,
}

fn default_k8s_namespace() -> String {
    K8sOptions::default().namespace
}
fn default_name_prefix() -> String {
    K8sOptions::default().name_prefix
}
fn default_label_selector() -> String {
    K8sOptions::default().label_selector
}
fn default_data_key() -> String {
    K8sOptions::default().data_key
}
fn default_idle_timeout_secs() -> u64 {
    K8sOptions::default().idle_timeout.as_secs()
}
fn default_sqlite_path() -> PathBuf {
    PathBuf::from("namerd.db")
}
fn default_poll_ms() -> u64 {
    5_000
}
fn default_history_versions() -> usize {
    Retention::default().max_versions
}
fn default_history_days() -> u64 {
    Retention::default().max_age.as_secs() / DAY.as_secs()
}

const DAY: Duration = Duration::from_secs(24 * 3600);

// === impl StorageConfig ===

impl Default for StorageConfig {
    /// SQLite in `namerd.db` in the working directory.
    fn default() -> Self {
        StorageConfig::Sqlite {
            path: default_sqlite_path(),
            poll_interval: Duration::from_millis(default_poll_ms()),
        }
    }
}

impl StorageConfig {
    /// Reads the `storage` section: where, and how much history.
    pub(super) fn parse(value: Value) -> Result<(Self, Retention), ConfigError> {
        let (kind, mut rest) = kind_of(value, "storage")?;
        let history = rest.remove("history");
        let storage = Self::parse_kind(&kind, rest)?;
        let history = match history {
            None | Some(Value::Null) => Retention::default(),
            Some(v) => retention(typed(v, "storage.history")?)?,
        };
        Ok((storage, history))
    }

    fn parse_kind(kind: &str, rest: serde_json::Map<String, Value>) -> Result<Self, ConfigError> {
        Ok(match kind {
            "io.l5d.inMemory" => in_memory(typed(rest, "storage")?)?,
            "io.l5d.sqlite" => {
                let keys: SqliteKeys = typed(rest, "storage")?;
                StorageConfig::Sqlite {
                    path: keys.path,
                    poll_interval: poll_interval(keys.poll_interval_ms)?,
                }
            }
            "io.l5d.postgres" => {
                let keys: PostgresKeys = typed(rest, "storage")?;
                StorageConfig::Postgres {
                    url: keys.url,
                    poll_interval: poll_interval(keys.poll_interval_ms)?,
                }
            }
            "io.l5d.k8s" => StorageConfig::Kubernetes(k8s(typed(rest, "storage")?)?),
            other => {
                return Err(ConfigError::unsupported_kind(
                    "storage",
                    "storage",
                    other,
                    "supported: io.l5d.sqlite, io.l5d.postgres, io.l5d.inMemory, io.l5d.k8s",
                ));
            }
        })
    }
}

fn retention(keys: HistoryKeys) -> Result<Retention, ConfigError> {
    check(
        keys.max_versions >= 1,
        "storage.history.maxVersions",
        "must be at least 1 (the current version is always kept)",
    )?;
    check(
        keys.max_age_days >= 1,
        "storage.history.maxAgeDays",
        "must be at least 1",
    )?;
    let max_age = DAY
        .checked_mul(u32::try_from(keys.max_age_days).unwrap_or(u32::MAX))
        .unwrap_or(Duration::MAX);
    Ok(Retention {
        max_versions: keys.max_versions,
        max_age,
    })
}

fn in_memory(keys: InMemoryKeys) -> Result<StorageConfig, ConfigError> {
    let mut namespaces = BTreeMap::new();
    for (name, text) in keys.namespaces {
        let field = format!("storage.namespaces.{name}");
        let ns = Namespace::new(&name).map_err(|e| ConfigError::new(&field, e))?;
        let dtab = Dtab::read(&text).map_err(|e| ConfigError::new(&field, e))?;
        namespaces.insert(ns, dtab);
    }
    Ok(StorageConfig::InMemory { namespaces })
}

fn k8s(keys: K8sStorageKeys) -> Result<K8sOptions, ConfigError> {
    let connection = connection(keys.host, keys.port, keys.kubeconfig, "storage")?;
    if selector_labels(&keys.label_selector).is_none() {
        return Err(ConfigError::new(
            "storage.labelSelector",
            "expected key=value pairs separated by commas (the store labels its ConfigMaps with them)",
        ));
    }
    let name_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    let prefix = &keys.name_prefix;
    if prefix.is_empty() || !name_ok(prefix) || prefix.len() > 100 {
        return Err(ConfigError::new(
            "storage.namePrefix",
            "must be 1-100 lowercase letters, digits, '-' or '.'",
        ));
    }
    let key_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if keys.data_key.is_empty() || !key_ok(&keys.data_key) {
        return Err(ConfigError::new(
            "storage.dataKey",
            "must be letters, digits, '-', '_' or '.'",
        ));
    }
    if keys.idle_timeout_secs < 6 {
        return Err(ConfigError::new(
            "storage.idleTimeoutSecs",
            "must be at least 6 (the server ends each watch 5 s earlier)",
        ));
    }
    Ok(K8sOptions {
        connection,
        namespace: keys.namespace,
        name_prefix: keys.name_prefix,
        label_selector: keys.label_selector,
        data_key: keys.data_key,
        idle_timeout: Duration::from_secs(keys.idle_timeout_secs),
        ..K8sOptions::default()
    })
}

fn poll_interval(ms: u64) -> Result<Duration, ConfigError> {
    check(ms != 0, "storage.pollIntervalMs", "must be at least 1")?;
    Ok(Duration::from_millis(ms))
}
