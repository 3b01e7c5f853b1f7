//! The ConfigMap schema of the Kubernetes dtab store: one ConfigMap per
//! dtab namespace, and how a store's values are read from and written to it.
//!
//! - name: `<namePrefix><namespace>` when the namespace is already a valid
//!   object name (lowercase letters, digits, `-`), otherwise a lowercased
//!   form plus `-` and 16 hex digits of a stable hash (`Zed` and `zed` must
//!   not share an object), so that a create of one namespace always POSTs
//!   the same name and the API server picks exactly one winner;
//! - labels: those of the store's `labelSelector`, so that the store lists
//!   and watches only its own objects;
//! - annotations: `l5d.io/dtab-namespace` (the namespace name, the
//!   authority over the object name), `l5d.io/dtab-op`, `l5d.io/dtab-author`
//!   and `l5d.io/dtab-committed-at` (Unix milliseconds) of the current
//!   version;
//! - data: the dtab text under `dataKey`, and up to [`MAX_HISTORY`] earlier
//!   versions as JSON under `<dataKey>.history`, trimmed oldest first to
//!   keep the object under the API server's 1 MiB, and to the store's
//!   [`Retention`] (count and age) by every write.
//!
//! The version is `metadata.resourceVersion`, compared for equality only.
//! Pure: no I/O.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use l5d_dtab::Dtab;
use serde::{Deserialize, Serialize};

use crate::store::{HistoryEntry, Namespace, Op, Retention, Version, WriteMeta};

pub(super) const NAMESPACE_ANNOTATION: &str = "l5d.io/dtab-namespace";
const OP_ANNOTATION: &str = "l5d.io/dtab-op";
const AUTHOR_ANNOTATION: &str = "l5d.io/dtab-author";
const COMMITTED_ANNOTATION: &str = "l5d.io/dtab-committed-at";

/// The API server refuses larger objects (etcd's request limit is 1.5 MiB;
/// 1 MiB is the documented ConfigMap limit).
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;
/// Earlier versions kept in the object.
pub(super) const MAX_HISTORY: usize = 16;

/// Where the store's values go in a ConfigMap.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) name_prefix: String,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) data_key: String,
    pub(super) retention: Retention,
}

/// A dtab too large for one object.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "the dtab of {ns} is too large for a Kubernetes ConfigMap: {size} bytes with its metadata, at most {limit}"
)]
pub struct TooLarge {
    pub ns: Namespace,
    pub size: usize,
    pub limit: usize,
}

impl From<TooLarge> for crate::store::StoreError {
    fn from(e: TooLarge) -> Self {
        crate::store::StoreError::TooLarge {
            ns: e.ns,
            storage: "a Kubernetes ConfigMap (with its metadata)",
            size: e.size,
            limit: e.limit,
        }
    }
}

/// One ConfigMap read back.
#[derive(Clone, Debug)]
pub(super) struct Decoded {
    pub(super) ns: Namespace,
    pub(super) rv: String,
    /// The dtab, or why the stored text is not one.
    pub(super) dtab: Result<Dtab, String>,
}

/// An earlier version as stored under `<dataKey>.history`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredEntry {
    version: String,
    op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dtab: Option<String>,
    at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<String>,
}

impl Layout {
    fn history_key(&self) -> String {
        format!("{}.history", self.data_key)
    }

    /// The object name of `ns`.
    pub(super) fn object_name(&self, ns: &Namespace) -> String {
        let name = ns.as_str();
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && name.bytes().last().is_some_and(|b| b != b'-');
        if plain {
            return format!("{}{name}", self.name_prefix);
        }
        let lower: String = name
            .chars()
            .map(|c| match c {
                '_' => '-',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        format!(
            "{}{lower}-{:016x}",
            self.name_prefix,
            fnv1a(name.as_bytes())
        )
    }

    /// Reads one of our objects; `None` for objects that are not (no
    /// namespace annotation, or a name that is not the annotation's).
    pub(super) fn decode(&self, cm: &ConfigMap) -> Option<Decoded> {
        let annotations = cm.metadata.annotations.as_ref()?;
        let ns = Namespace::new(annotations.get(NAMESPACE_ANNOTATION)?).ok()?;
        if cm.metadata.name.as_deref() != Some(self.object_name(&ns).as_str()) {
            tracing::warn!(name = ?cm.metadata.name, %ns, "ignoring a ConfigMap whose name is not its namespace's");
            return None;
        }
        let rv = cm.metadata.resource_version.clone()?;
        let dtab = match cm.data.as_ref().and_then(|d| d.get(&self.data_key)) {
            Some(text) => Dtab::read(text).map_err(|e| e.to_string()),
            None => Err(format!("no {:?} key in its data", self.data_key)),
        };
        Some(Decoded { ns, rv, dtab })
    }

    /// A new object for `ns` holding `dtab`, with `previous` (the object it
    /// replaces, if any) moved into its history, and `resource_version` set
    /// for a compare-and-set replace.
    pub(super) fn build(
        &self,
        ns: &Namespace,
        dtab: &Dtab,
        op: Op,
        meta: &WriteMeta,
        previous: Option<&ConfigMap>,
    ) -> Result<ConfigMap, TooLarge> {
        let mut annotations = BTreeMap::new();
        annotations.insert(NAMESPACE_ANNOTATION.to_string(), ns.as_str().to_string());
        annotations.insert(OP_ANNOTATION.to_string(), op.as_str().to_string());
        annotations.insert(
            COMMITTED_ANNOTATION.to_string(),
            unix_millis(SystemTime::now()).to_string(),
        );
        if let Some(author) = &meta.author {
            annotations.insert(AUTHOR_ANNOTATION.to_string(), author.clone());
        }
        let mut data = BTreeMap::new();
        data.insert(self.data_key.clone(), dtab.show());
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.object_name(ns)),
                labels: Some(self.labels.clone()),
                annotations: Some(annotations),
                resource_version: previous.and_then(|p| p.metadata.resource_version.clone()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        };
        let size = object_size(&cm);
        if size > MAX_OBJECT_BYTES {
            return Err(TooLarge {
                ns: ns.clone(),
                size,
                limit: MAX_OBJECT_BYTES,
            });
        }
        let mut history = previous.map(|p| self.stored_history(p)).unwrap_or_default();
        // The new version is the newest and counts as one of the versions
        // kept; pruning happens here because the object is the history.
        history.truncate(MAX_HISTORY.min(self.retention.versions() - 1));
        let cutoff = unix_millis(self.retention.cutoff(SystemTime::now()));
        history.retain(|e| e.at >= cutoff);
        // Newest first in storage, so trimming drops the oldest.
        while !history.is_empty() {
            let json = serde_json::to_string(&history).expect("history serializes");
            cm.data
                .as_mut()
                .expect("built with data")
                .insert(self.history_key(), json);
            if object_size(&cm) <= MAX_OBJECT_BYTES {
                break;
            }
            history.pop();
            cm.data
                .as_mut()
                .expect("built with data")
                .remove(&self.history_key());
        }
        Ok(cm)
    }

    /// `cm`'s current version followed by its stored history, newest first.
    fn stored_history(&self, cm: &ConfigMap) -> Vec<StoredEntry> {
        let annotations = cm.metadata.annotations.clone().unwrap_or_default();
        let data = cm.data.clone().unwrap_or_default();
        let current = StoredEntry {
            version: cm.metadata.resource_version.clone().unwrap_or_default(),
            op: annotations
                .get(OP_ANNOTATION)
                .cloned()
                .unwrap_or_else(|| Op::Update.as_str().to_string()),
            dtab: data.get(&self.data_key).cloned(),
            at: annotations
                .get(COMMITTED_ANNOTATION)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            author: annotations.get(AUTHOR_ANNOTATION).cloned(),
        };
        let earlier: Vec<StoredEntry> = data
            .get(&self.history_key())
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        std::iter::once(current).chain(earlier).collect()
    }

    /// The history of `cm`, oldest first, its current version last.
    pub(super) fn history(
        &self,
        ns: &Namespace,
        cm: &ConfigMap,
    ) -> Result<Vec<HistoryEntry>, String> {
        let mut out = Vec::new();
        for stored in self.stored_history(cm).into_iter().rev() {
            let op = Op::parse(&stored.op)
                .ok_or_else(|| format!("unknown operation {:?}", stored.op))?;
            let dtab = stored
                .dtab
                .as_deref()
                .map(Dtab::read)
                .transpose()
                .map_err(|e| format!("{ns} at {}: {e}", stored.version))?;
            out.push(HistoryEntry {
                version: Version::from_bytes(stored.version.as_bytes()),
                op,
                dtab,
                committed_at: UNIX_EPOCH + Duration::from_millis(stored.at),
                author: stored.author,
            });
        }
        Ok(out)
    }
}

fn object_size(cm: &ConfigMap) -> usize {
    serde_json::to_vec(cm).map_or(usize::MAX, |v| v.len())
}

fn unix_millis(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

/// FNV-1a, 64 bits: stable across processes and releases, which the
/// standard library's hashers do not promise.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            name_prefix: "dtab-".into(),
            labels: [("l5d.io/dtab".to_string(), "true".to_string())].into(),
            data_key: "dtab".into(),
            retention: Retention::default(),
        }
    }

    fn ns(name: &str) -> Namespace {
        Namespace::new(name).unwrap()
    }

    #[test]
    fn names_are_valid_and_distinct() {
        let l = layout();
        assert_eq!(l.object_name(&ns("internal")), "dtab-internal");
        let upper = l.object_name(&ns("Zed"));
        assert!(
            upper.starts_with("dtab-zed-") && upper.len() == "dtab-zed-".len() + 16,
            "{upper}"
        );
        assert_ne!(upper, l.object_name(&ns("zed")));
        assert_ne!(l.object_name(&ns("fig_2")), l.object_name(&ns("fig-2")));
        assert!(
            l.object_name(&ns("a-"))
                .ends_with(|c: char| c.is_ascii_hexdigit())
        );
    }

    #[test]
    fn build_then_decode_and_history() {
        let l = layout();
        let meta = WriteMeta {
            author: Some("alice".into()),
        };
        let mut first = l
            .build(
                &ns("web"),
                &Dtab::read("/a=>/b").unwrap(),
                Op::Create,
                &meta,
                None,
            )
            .unwrap();
        first.metadata.resource_version = Some("v1".into());
        let d = l.decode(&first).unwrap();
        assert_eq!((d.ns, d.rv.as_str()), (ns("web"), "v1"));
        assert_eq!(d.dtab.unwrap().show(), "/a=>/b");
        let mut second = l
            .build(
                &ns("web"),
                &Dtab::read("/a=>/c").unwrap(),
                Op::Update,
                &WriteMeta::default(),
                Some(&first),
            )
            .unwrap();
        assert_eq!(second.metadata.resource_version.as_deref(), Some("v1"));
        second.metadata.resource_version = Some("x9".into());
        let history = l.history(&ns("web"), &second).unwrap();
        let steps: Vec<_> = history
            .iter()
            .map(|e| (e.version.as_bytes().to_vec(), e.op, e.author.clone()))
            .collect();
        assert_eq!(
            steps,
            [
                (b"v1".to_vec(), Op::Create, Some("alice".to_string())),
                (b"x9".to_vec(), Op::Update, None)
            ]
        );
    }

    #[test]
    fn too_large_is_refused_and_history_is_trimmed_to_fit() {
        let l = layout();
        let entries = |n: usize, len: usize| {
            (0..n)
                .map(|i| format!("/s{i:05}=>/{}", "x".repeat(len)))
                .collect::<Vec<_>>()
                .join(";")
        };
        let huge = Dtab::read(&entries(12_000, 90)).unwrap();
        let err = l
            .build(&ns("big"), &huge, Op::Create, &WriteMeta::default(), None)
            .unwrap_err();
        assert!(err.size > MAX_OBJECT_BYTES, "{err}");
        let half = Dtab::read(&entries(5_500, 90)).unwrap();
        let mut prev = l
            .build(&ns("big"), &half, Op::Create, &WriteMeta::default(), None)
            .unwrap();
        prev.metadata.resource_version = Some("1".into());
        let next = l
            .build(
                &ns("big"),
                &half,
                Op::Update,
                &WriteMeta::default(),
                Some(&prev),
            )
            .unwrap();
        assert!(object_size(&next) <= MAX_OBJECT_BYTES);
        assert!(
            !next.data.unwrap().contains_key("dtab.history"),
            "one half-sized version cannot be kept"
        );
    }

    #[test]
    fn writes_prune_the_history_by_count_and_by_age() {
        let l = Layout {
            retention: Retention {
                max_versions: 3,
                max_age: Duration::from_secs(3600),
            },
            ..layout()
        };
        let mut object: Option<ConfigMap> = None;
        for i in 1..=5 {
            let text = format!("/a=>/v{i}");
            let op = if i == 1 { Op::Create } else { Op::Update };
            let mut next = l
                .build(
                    &ns("web"),
                    &Dtab::read(&text).unwrap(),
                    op,
                    &WriteMeta::default(),
                    object.as_ref(),
                )
                .unwrap();
            next.metadata.resource_version = Some(format!("rv{i}"));
            object = Some(next);
        }
        let object = object.unwrap();
        let versions = |cm: &ConfigMap| {
            l.history(&ns("web"), cm)
                .unwrap()
                .iter()
                .map(|e| String::from_utf8(e.version.as_bytes().to_vec()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&object), ["rv3", "rv4", "rv5"], "by count");
        // The current version two hours old: the next write keeps only it.
        let mut aged = object;
        let two_hours_ago = unix_millis(SystemTime::now()) - 2 * 3600 * 1000;
        aged.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(COMMITTED_ANNOTATION.into(), two_hours_ago.to_string());
        let mut next = l
            .build(
                &ns("web"),
                &Dtab::read("/a=>/v6").unwrap(),
                Op::Update,
                &WriteMeta::default(),
                Some(&aged),
            )
            .unwrap();
        next.metadata.resource_version = Some("rv6".into());
        assert_eq!(versions(&next), ["rv4", "rv6"], "rv5 is too old");
    }

    #[test]
    fn foreign_objects_are_ignored() {
        let l = layout();
        let mut cm = ConfigMap::default();
        assert!(l.decode(&cm).is_none());
        cm.metadata.name = Some("dtab-other".into());
        cm.metadata.resource_version = Some("1".into());
        cm.metadata.annotations =
            Some([(NAMESPACE_ANNOTATION.to_string(), "web".to_string())].into());
        assert!(l.decode(&cm).is_none(), "the name must be the namespace's");
        cm.metadata.name = Some("dtab-web".into());
        let d = l.decode(&cm).unwrap();
        assert!(d.dtab.is_err(), "no data key is not a dtab");
    }
}
