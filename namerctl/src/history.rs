//! namerd's history pages, put back together: namerd answers
//! `GET /api/1/dtabs/<name>/history` a page at a time, newest page first
//! (each page oldest first), with `Link: <...?limit=N&before=V>;
//! rel="next"` while older versions remain. Pure: the client fetches, this
//! reads the links and joins the pages.

use bytes::Bytes;

use crate::api::HistoryEntry;

/// The query of a `rel="next"` link (`limit=100&before=...`), if `link`
/// has one: the client asks for the same route with it, under its own
/// base URL, so a namerd behind a path prefix still works.
pub fn next_query(link: &str) -> Option<&str> {
    link.split(',').find_map(|value| {
        let (target, params) = value.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\"") || p.trim() == "rel=next");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.split_once('?').map(|(_, q)| q))?
    })
}

/// One document of every page, oldest first: the pages' JSON arrays
/// joined without re-encoding (fields this namerctl does not know survive,
/// in namerd's order), and their entries. `pages` are as fetched, newest
/// page first.
pub fn join(mut pages: Vec<(Bytes, Vec<HistoryEntry>)>) -> (Bytes, Vec<HistoryEntry>) {
    pages.reverse();
    let mut raw = String::from("[");
    let mut entries = Vec::new();
    for (body, page) in pages {
        let text = String::from_utf8_lossy(&body);
        // Each page decoded as an array of entries, so it is `[...]`.
        let inner = text
            .trim()
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or("")
            .trim();
        if !inner.is_empty() {
            if raw.len() > 1 {
                raw.push(',');
            }
            raw.push_str(inner);
        }
        entries.extend(page);
    }
    raw.push_str("]\n");
    (Bytes::from(raw), entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_gives_its_query() {
        let link = "</api/1/dtabs/internal/history?limit=100&before=AAAAAAAAAGU%3D>; rel=\"next\"";
        assert_eq!(next_query(link), Some("limit=100&before=AAAAAAAAAGU%3D"));
        assert_eq!(
            next_query("</x?a=1>; rel=\"prev\", </y?b=2>; rel=next"),
            Some("b=2")
        );
        assert_eq!(next_query("</x?a=1>; rel=\"prev\""), None);
        assert_eq!(next_query("garbage"), None);
    }

    #[test]
    fn pages_join_oldest_first_as_sent() {
        let entry = |v: &str| HistoryEntry {
            version: v.into(),
            op: "update".into(),
            committed_at: "t".into(),
            author: None,
            dtab: None,
        };
        let newest = (
            Bytes::from("[{\"version\":\"c\",\"z\":1},{\"version\":\"d\"}]\n"),
            vec![entry("c"), entry("d")],
        );
        let older = (
            Bytes::from("[{\"version\":\"a\"},{\"version\":\"b\"}]"),
            vec![entry("a"), entry("b")],
        );
        let empty = (Bytes::from("[]"), vec![]);
        let (raw, entries) = join(vec![newest, older, empty]);
        assert_eq!(
            raw,
            "[{\"version\":\"a\"},{\"version\":\"b\"},{\"version\":\"c\",\"z\":1},{\"version\":\"d\"}]\n"
        );
        let versions: Vec<_> = entries.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(versions, ["a", "b", "c", "d"]);
    }
}
