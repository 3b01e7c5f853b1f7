//! The two dtab encodings of namerd's API and content negotiation.
//!
//! JSON (`application/json`, the default): `[{"prefix":"/svc","dst":"/host"}]`.
//! Text (`application/dtab` or `text/plain`): `/svc=>/host`. Documents end
//! with a newline.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use l5d_dtab::{Dentry, Dtab, NameTree, Prefix};
use serde_json::Value;

use crate::store::Namespace;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Media {
    Json,
    Dtab,
    Text,
}

impl Media {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Media::Json => "application/json",
            Media::Dtab => "application/dtab",
            Media::Text => "text/plain",
        }
    }

    fn parse(media_type: &str) -> Option<Self> {
        let essence = media_type.split(';').next().unwrap_or("").trim();
        [Media::Json, Media::Dtab, Media::Text]
            .into_iter()
            .find(|m| essence.eq_ignore_ascii_case(m.as_str()))
    }

    /// namerd's negotiation: the first `Accept` value it can produce, in the
    /// order the client listed them (quality values are not weighed); JSON
    /// when none.
    pub(super) fn negotiate(headers: &HeaderMap) -> Self {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(Media::parse)
            .unwrap_or(Media::Json)
    }
}

pub(super) fn respond(status: StatusCode, media: Media, body: String) -> Response {
    let mut rsp = (status, body).into_response();
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.as_str()),
    );
    rsp
}

pub(super) fn names(names: &[Namespace]) -> String {
    let list = Value::Array(names.iter().map(|n| Value::String(n.to_string())).collect());
    format!("{list}\n")
}

/// A dentry as namerd writes it: `prefix` first, then `dst`.
#[derive(Debug, serde::Serialize)]
pub(super) struct DentryJson {
    prefix: String,
    dst: String,
}

pub(super) fn dentry_json(d: &Dentry) -> DentryJson {
    DentryJson {
        prefix: d.prefix.show(),
        dst: d.dst.show(),
    }
}

pub(super) fn dentries_json(dtab: &Dtab) -> Vec<DentryJson> {
    dtab.dentries().iter().map(dentry_json).collect()
}

pub(super) fn encode(dtab: &Dtab, media: Media) -> String {
    match media {
        Media::Json => {
            let json = serde_json::to_string(&dentries_json(dtab)).expect("dentries serialize");
            format!("{json}\n")
        }
        Media::Dtab | Media::Text => format!("{}\n", dtab.show()),
    }
}

/// Decodes a request body by its `Content-Type`; the error is the message
/// for a 400.
pub(super) fn decode(content_type: Option<&HeaderValue>, body: &[u8]) -> Result<Dtab, String> {
    let raw = content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media = raw.as_deref().and_then(Media::parse);
    match media {
        Some(Media::Json) => decode_json(body),
        Some(Media::Dtab | Media::Text) => {
            let text =
                std::str::from_utf8(body).map_err(|_| "the dtab is not valid UTF-8".to_string())?;
            Dtab::read(text).map_err(|e| e.to_string())
        }
        None => Err(format!(
            "Invalid Content-Type \"{}\". ",
            raw.unwrap_or_default()
        )),
    }
}

fn decode_json(body: &[u8]) -> Result<Dtab, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the dtab is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err(
            "a JSON dtab must be a list of {\"prefix\": ..., \"dst\": ...} objects".to_string(),
        );
    };
    let invalid = || {
        format!(
            "The dtab contains invalid dentries: {}",
            String::from_utf8_lossy(body)
        )
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let (Some(prefix), Some(dst)) = (
                item.get("prefix").and_then(Value::as_str),
                item.get("dst").and_then(Value::as_str),
            ) else {
                return Err(if item.is_null() {
                    invalid()
                } else {
                    format!("dentry {i}: expected string fields \"prefix\" and \"dst\"")
                });
            };
            let prefix = Prefix::read(prefix).map_err(|e| format!("dentry {i} prefix: {e}"))?;
            let dst = NameTree::read(dst).map_err(|e| format!("dentry {i} dst: {e}"))?;
            Ok(Dentry::new(prefix, dst))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for a in accept {
            h.append(header::ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn negotiation_takes_the_first_known_type_in_order() {
        assert_eq!(Media::negotiate(&headers(&[])), Media::Json);
        assert_eq!(
            Media::negotiate(&headers(&["text/html, application/dtab"])),
            Media::Dtab
        );
        assert_eq!(
            Media::negotiate(&headers(&["text/plain;q=0.1, application/json"])),
            Media::Text
        );
        assert_eq!(
            Media::negotiate(&headers(&["image/png", "application/json"])),
            Media::Json
        );
        assert_eq!(Media::negotiate(&headers(&["*/*"])), Media::Json);
    }

    #[test]
    fn bodies_decode_by_content_type() {
        let json = HeaderValue::from_static("application/json; charset=utf-8");
        let text = HeaderValue::from_static("application/dtab");
        let d = decode(Some(&json), br#"[{"prefix":"/svc","dst":"/host | /x"}]"#).unwrap();
        assert_eq!(d.show(), "/svc=>/host | /x");
        assert_eq!(
            decode(Some(&text), b"/svc => /host;").unwrap().show(),
            "/svc=>/host"
        );
        assert_eq!(
            decode(Some(&json), b"[null]").unwrap_err(),
            "The dtab contains invalid dentries: [null]"
        );
        assert_eq!(
            decode(Some(&text), b"i am not a dtab").unwrap_err(),
            "'/' expected but 'i' found at '[i] am not a dtab'"
        );
        assert_eq!(
            decode(Some(&HeaderValue::from_static("image/png")), b"").unwrap_err(),
            "Invalid Content-Type \"image/png\". "
        );
        assert_eq!(
            decode(None, b"").unwrap_err(),
            "Invalid Content-Type \"\". "
        );
        assert!(
            decode(Some(&json), br#"[{"prefix":"/svc","dst":"/a &"}]"#)
                .unwrap_err()
                .starts_with("dentry 0 dst: simple expected")
        );
    }

    #[test]
    fn documents_end_with_a_newline() {
        let d = Dtab::read("/svc=>/host;/host/world=>/srv/world-v1").unwrap();
        assert_eq!(
            encode(&d, Media::Json),
            "[{\"prefix\":\"/svc\",\"dst\":\"/host\"},{\"prefix\":\"/host/world\",\"dst\":\"/srv/world-v1\"}]\n"
        );
        assert_eq!(
            encode(&d, Media::Text),
            "/svc=>/host;/host/world=>/srv/world-v1\n"
        );
        assert_eq!(names(&[]), "[]\n");
    }
}
