//! The history routes of the dtab API: `GET /api/1/dtabs/{ns}/history`, a
//! page of a namespace's retained versions, and `.../history/{version}`,
//! one version to inspect or roll back to.
//!
//! A page is a JSON array, oldest first, as the unpaginated route was; a
//! client that passes nothing gets the newest [`DEFAULT_PAGE`] versions.
//! `?limit=` asks for more or fewer (at most [`MAX_PAGE`]), and a page also
//! stops before it exceeds [`MAX_PAGE_BYTES`] (it always holds at least one
//! version, so paging makes progress). When older versions remain, the
//! response has `Link: </api/1/dtabs/{ns}/history?limit=N&before=V>;
//! rel="next"`, where `V` is the oldest version of the page: the cursor is
//! a version, compared for equality only. Depends on the store trait only.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::codec::{self, Media};
use super::error::ApiError;
use super::extract::{Ns, Params};
use super::{ApiState, set_etag};
use crate::store::{DtabStore, HistoryEntry, HistoryPage, Namespace, StoreError, Version};

/// Versions in a page when the client names no `limit`.
pub(super) const DEFAULT_PAGE: usize = 100;
/// The largest `limit` accepted.
pub(super) const MAX_PAGE: usize = 1_000;
/// A page stops before its JSON would exceed this, unless it holds a
/// single version (a dtab may be larger on its own).
pub(super) const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Versions read from the store at a time at most while a page is filled.
/// Fewer are read when the versions read so far say that no more would fit
/// in [`MAX_PAGE_BYTES`], so a page of large dtabs holds about one version
/// beyond what it answers in memory, not `limit` of them.
const MAX_CHUNK: usize = 64;

/// `?limit=` and `?before=` of a history request.
#[derive(Debug)]
struct PageQuery {
    limit: usize,
    before: Option<Version>,
}

/// A page read: the versions as JSON, newest first, and whether older
/// versions remain.
#[derive(Debug, Default)]
struct Page {
    entries: Vec<(Version, String)>,
    more: bool,
}

pub(super) async fn history(
    State(state): State<ApiState>,
    Ns(ns): Ns,
    params: Params,
) -> Result<Response, ApiError> {
    let query = PageQuery::parse(&params)?;
    let page = read_page(&*state.store, &ns, &query).await?;
    if page.entries.is_empty() && query.before.is_none() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let mut body = String::with_capacity(page.entries.iter().map(|(_, j)| j.len() + 1).sum());
    body.push('[');
    for (i, (_, json)) in page.entries.iter().rev().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(json);
    }
    body.push_str("]\n");
    let mut rsp = codec::respond(StatusCode::OK, Media::Json, body);
    if page.more
        && let Some((oldest, _)) = page.entries.last()
        && let Ok(link) = HeaderValue::from_str(&next_link(&ns, query.limit, oldest))
    {
        rsp.headers_mut().insert(header::LINK, link);
    }
    Ok(rsp)
}

/// Fills a page from the store, newest first, until it holds `limit`
/// versions, the next would pass [`MAX_PAGE_BYTES`], or the history ends.
/// Each read asks for one version more than it needs, to know whether any
/// are left.
async fn read_page(
    store: &dyn DtabStore,
    ns: &Namespace,
    query: &PageQuery,
) -> Result<Page, StoreError> {
    let mut page = Page::default();
    let mut bytes = 0;
    let mut before = query.before.clone();
    loop {
        let read = page.entries.len();
        // One version first, then as many as their average size says fit.
        let fit = match read {
            0 => 1,
            n => (MAX_PAGE_BYTES.saturating_sub(bytes)) / (bytes / n).max(1),
        };
        let wanted = (query.limit - read).min(MAX_CHUNK).min(fit);
        if wanted == 0 {
            // The last read had one more than it used.
            page.more = true;
            return Ok(page);
        }
        let request = HistoryPage {
            before: before.clone(),
            limit: wanted + 1,
        };
        let chunk = store.history_page(ns, &request).await?;
        let exhausted = chunk.len() <= wanted;
        for entry in chunk.into_iter().take(wanted) {
            let json =
                serde_json::to_string(&HistoryJson::from(&entry)).expect("history serializes");
            if !page.entries.is_empty() && bytes + json.len() + 1 > MAX_PAGE_BYTES {
                page.more = true;
                return Ok(page);
            }
            bytes += json.len() + 1;
            before = Some(entry.version.clone());
            page.entries.push((entry.version, json));
        }
        if exhausted {
            return Ok(page);
        }
        if page.entries.len() == query.limit {
            page.more = true;
            return Ok(page);
        }
    }
}

/// The `Link` to the page after the one that ended on `oldest`.
fn next_link(ns: &Namespace, limit: usize, oldest: &Version) -> String {
    let cursor = oldest
        .to_etag()
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("</api/1/dtabs/{ns}/history?limit={limit}&before={cursor}>; rel=\"next\"")
}

impl PageQuery {
    fn parse(params: &Params) -> Result<Self, ApiError> {
        let limit = match params.get("limit") {
            None => DEFAULT_PAGE,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "limit must be a number from 1 to {MAX_PAGE}, not {text:?}"
                    )));
                }
            },
        };
        // A `+` sent unencoded arrives as a space; base64 has no spaces.
        let before = params
            .get("before")
            .map(|v| Version::from_etag(&v.replace(' ', "+")))
            .transpose()?;
        Ok(PageQuery { limit, before })
    }
}

/// One history entry on the wire.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson {
    version: String,
    op: &'static str,
    committed_at: String,
    author: Option<String>,
    dtab: Option<Vec<codec::DentryJson>>,
}

impl From<&HistoryEntry> for HistoryJson {
    fn from(e: &HistoryEntry) -> Self {
        HistoryJson {
            version: e.version.to_etag(),
            op: e.op.as_str(),
            committed_at: humantime::format_rfc3339_millis(e.committed_at).to_string(),
            author: e.author.clone(),
            dtab: e.dtab.as_ref().map(codec::dentries_json),
        }
    }
}

/// The `{version}` of a history route: an `ETag`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct VersionParam {
    version: String,
}

/// One past version, to inspect or roll back to.
pub(super) async fn history_version(
    State(state): State<ApiState>,
    Ns(ns): Ns,
    Path(VersionParam { version }): Path<VersionParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = Version::from_etag(&version)?;
    let media = Media::negotiate(&headers);
    let Some(entry) = state.store.version(&ns, &version).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let Some(dtab) = entry.dtab else {
        return Err(ApiError::Deleted { ns, version });
    };
    let mut rsp = codec::respond(StatusCode::OK, media, codec::encode(&dtab, media));
    set_etag(&mut rsp, &entry.version);
    Ok(rsp)
}
