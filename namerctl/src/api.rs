//! The JSON shapes of namerd's HTTP API that namerctl reads and writes.
//!
//! Dentries stay as the text namerd sends (`{"prefix": "...", "dst": "..."}`
//! in Finagle syntax): namerctl never interprets a dtab, it only moves and
//! prints it, so it does not depend on the dtab parser.

use serde::{Deserialize, Serialize};

/// One dtab rule, `prefix => dst`, as namerd's JSON codec writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dentry {
    pub prefix: String,
    pub dst: String,
}

impl Dentry {
    pub fn new(prefix: impl Into<String>, dst: impl Into<String>) -> Self {
        Dentry {
            prefix: prefix.into(),
            dst: dst.into(),
        }
    }
}

/// A dtab with the version (ETag) it was read at: the output of
/// `dtab get --json` and an accepted input of `create`/`update`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedDtab {
    #[serde(default)]
    pub version: Option<String>,
    pub dtab: Vec<Dentry>,
}

/// One committed version of a namespace, from
/// `GET /api/1/dtabs/<name>/history` (oldest first).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub version: String,
    /// `create`, `update` or `delete`; kept as text so a newer namerd's
    /// operations still print.
    pub op: String,
    /// RFC 3339, printed as namerd sent it.
    pub committed_at: String,
    #[serde(default)]
    pub author: Option<String>,
    /// The dtab as of this version; `None` for a deletion.
    #[serde(default)]
    pub dtab: Option<Vec<Dentry>>,
}
