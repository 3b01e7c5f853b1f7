//! Trace context in request headers: W3C `traceparent`, what OpenTelemetry
//! speaks, and B3 (`b3`, `X-B3-*`), what Zipkin taught Linkerd 1.x's users'
//! applications to forward.
//!
//! A malformed header is ignored, as the W3C recommendation asks (the
//! request starts a new trace); so is a B3 sampling decision sent without
//! ids (`b3: 0`), which names no trace to continue.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanId, TraceId};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const B3_SINGLE: HeaderName = HeaderName::from_static("b3");
pub const X_B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
pub const X_B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
pub const X_B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
pub const X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
pub const X_B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// The B3 form a request carried its context in; the next hop gets it the
/// same way (beside `traceparent`, always sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B3 {
    /// `b3: {trace}-{span}[-{sampled}[-{parent}]]`; `short`: a 64-bit trace
    /// id, sent back as 64 bits.
    Single { short: bool },
    /// `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`.
    Multi { short: bool },
}

/// The caller's span: the trace to continue and the span to be a child of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// The caller's sampling decision, when it made one.
    pub sampled: Option<bool>,
    /// Whether (and how) the request carried B3 headers too.
    pub b3: Option<B3>,
}

/// Ids and decision, from one of the forms.
type Ids = (TraceId, SpanId, Option<bool>);

/// The context `headers` carry: `traceparent` when it is valid, else B3
/// (`b3`, then `X-B3-*`).
pub fn extract(headers: &HeaderMap) -> Option<Parent> {
    let w3c = headers
        .get(TRACEPARENT)
        .and_then(|v| traceparent(v.as_bytes()));
    let (b3, b3_ids) = match headers.get(B3_SINGLE) {
        Some(v) => match b3_single(v.as_bytes()) {
            Some((ids, short)) => (Some(B3::Single { short }), Some(ids)),
            None => (None, None),
        },
        None => match b3_multi(headers) {
            Some((ids, short)) => (Some(B3::Multi { short }), Some(ids)),
            None => (None, None),
        },
    };
    let (trace_id, span_id, sampled) = w3c.or(b3_ids)?;
    Some(Parent {
        trace_id,
        span_id,
        sampled,
        b3,
    })
}

/// Writes the context of this hop's span (`span_id`, in `trace_id`,
/// whose parent is `parent_span`) for the next one: `traceparent`, and
/// B3 in the form the request carried it.
pub fn inject(
    headers: &mut HeaderMap,
    b3: Option<B3>,
    trace_id: TraceId,
    span_id: SpanId,
    parent_span: Option<SpanId>,
    sampled: bool,
) {
    let trace = trace_id.to_bytes();
    let span = span_id.to_bytes();
    // 00-<32>-<16>-<2>: 55 bytes.
    let mut buf = [0u8; 55];
    buf[..3].copy_from_slice(b"00-");
    hex(&trace, &mut buf[3..35]);
    buf[35] = b'-';
    hex(&span, &mut buf[36..52]);
    buf[52..].copy_from_slice(if sampled { b"-01" } else { b"-00" });
    headers.insert(TRACEPARENT, value(&buf));
    let sampled_flag = if sampled { "1" } else { "0" };
    match b3 {
        None => {}
        Some(B3::Single { short }) => {
            let mut s = String::with_capacity(68);
            push_hex(&mut s, trace_bytes(&trace, short));
            s.push('-');
            push_hex(&mut s, &span);
            s.push('-');
            s.push_str(sampled_flag);
            if let Some(parent) = parent_span {
                s.push('-');
                push_hex(&mut s, &parent.to_bytes());
            }
            headers.insert(B3_SINGLE, value(s.as_bytes()));
        }
        Some(B3::Multi { short }) => {
            let mut s = String::with_capacity(32);
            push_hex(&mut s, trace_bytes(&trace, short));
            headers.insert(X_B3_TRACE_ID, value(s.as_bytes()));
            s.clear();
            push_hex(&mut s, &span);
            headers.insert(X_B3_SPAN_ID, value(s.as_bytes()));
            match parent_span {
                Some(parent) => {
                    s.clear();
                    push_hex(&mut s, &parent.to_bytes());
                    headers.insert(X_B3_PARENT_SPAN_ID, value(s.as_bytes()));
                }
                None => {
                    headers.remove(X_B3_PARENT_SPAN_ID);
                }
            }
            headers.insert(X_B3_SAMPLED, HeaderValue::from_static(sampled_flag));
            headers.remove(X_B3_FLAGS);
        }
    }
}

fn trace_bytes(trace: &[u8; 16], short: bool) -> &[u8] {
    if short { &trace[8..] } else { &trace[..] }
}

fn value(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).expect("hex digits and dashes are a valid header value")
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// `version-traceid-parentid-flags`. Version `ff` is invalid; a later
/// version than `00` is read as `00` when it starts the same way.
fn traceparent(v: &[u8]) -> Option<Ids> {
    if v.len() < 55 || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let version = unhex::<1>(&v[..2])?;
    if version[0] == 0xff || (version[0] == 0 && v.len() != 55) {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_bytes(unhex::<16>(&v[3..35])?);
    let span_id = SpanId::from_bytes(unhex::<8>(&v[36..52])?);
    let flags = unhex::<1>(&v[53..55])?[0];
    valid(trace_id, span_id).then_some((trace_id, span_id, Some(flags & 1 == 1)))
}

/// The ids, and whether the trace id was 64 bits.
fn b3_single(v: &[u8]) -> Option<(Ids, bool)> {
    let mut parts = v.split(|b| *b == b'-');
    let (trace_id, short) = b3_trace_id(parts.next()?)?;
    let span_id = SpanId::from_bytes(unhex::<8>(parts.next()?)?);
    let sampled = match parts.next() {
        None => None,
        Some(s) => Some(b3_sampled(s)?),
    };
    // The parent span id, when present, is the caller's business.
    if parts.nth(1).is_some() {
        return None;
    }
    valid(trace_id, span_id).then_some(((trace_id, span_id, sampled), short))
}

fn b3_multi(headers: &HeaderMap) -> Option<(Ids, bool)> {
    let (trace_id, short) = b3_trace_id(headers.get(X_B3_TRACE_ID)?.as_bytes())?;
    let span_id = SpanId::from_bytes(unhex::<8>(headers.get(X_B3_SPAN_ID)?.as_bytes())?);
    let debug = headers
        .get(X_B3_FLAGS)
        .is_some_and(|f| f.as_bytes() == b"1");
    let sampled = match headers.get(X_B3_SAMPLED) {
        _ if debug => Some(true),
        None => None,
        Some(s) => match s.as_bytes() {
            b"1" | b"true" => Some(true),
            b"0" | b"false" => Some(false),
            _ => None,
        },
    };
    valid(trace_id, span_id).then_some(((trace_id, span_id, sampled), short))
}

/// A B3 trace id: 32 hex digits, or 16 (the upper half zero).
fn b3_trace_id(v: &[u8]) -> Option<(TraceId, bool)> {
    match v.len() {
        32 => Some((TraceId::from_bytes(unhex::<16>(v)?), false)),
        16 => {
            let mut bytes = [0u8; 16];
            bytes[8..].copy_from_slice(&unhex::<8>(v)?);
            Some((TraceId::from_bytes(bytes), true))
        }
        _ => None,
    }
}

fn b3_sampled(v: &[u8]) -> Option<bool> {
    match v {
        b"1" | b"d" => Some(true),
        b"0" => Some(false),
        _ => None,
    }
}

fn valid(trace_id: TraceId, span_id: SpanId) -> bool {
    trace_id != TraceId::INVALID && span_id != SpanId::INVALID
}

/// Exactly `2 * N` lower-case hex digits (W3C forbids upper case; B3
/// implementations send lower case too).
fn unhex<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    if v.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in v.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        h
    }

    fn ids() -> (TraceId, SpanId) {
        (
            TraceId::from_hex(TRACE).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
        )
    }

    #[test]
    fn reads_traceparent() {
        let (trace_id, span_id) = ids();
        let p = extract(&headers(&[(
            "traceparent",
            &format!("00-{TRACE}-{SPAN}-01"),
        )]))
        .unwrap();
        assert_eq!(
            (p.trace_id, p.span_id, p.sampled),
            (trace_id, span_id, Some(true))
        );
        let p = extract(&headers(&[(
            "traceparent",
            &format!("00-{TRACE}-{SPAN}-00"),
        )]))
        .unwrap();
        assert_eq!(p.sampled, Some(false));
        // A later version, with more fields, is read as version 00.
        let later = format!("01-{TRACE}-{SPAN}-01-what-comes-next");
        assert!(extract(&headers(&[("traceparent", &later)])).is_some());
    }

    #[test]
    fn refuses_malformed_traceparent() {
        for bad in [
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-{SPAN}-1"),
            format!("00_{TRACE}-{SPAN}-01"),
            String::new(),
        ] {
            assert_eq!(extract(&headers(&[("traceparent", &bad)])), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_b3_in_both_forms() {
        let (trace_id, span_id) = ids();
        let p = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}-1-{SPAN}"))])).unwrap();
        assert_eq!(
            (p.trace_id, p.span_id, p.sampled),
            (trace_id, span_id, Some(true))
        );
        let p = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}"))])).unwrap();
        assert_eq!(p.sampled, None);
        let p = extract(&headers(&[("b3", &format!("{}-{SPAN}-d", &TRACE[16..]))])).unwrap();
        assert_eq!(p.b3, Some(B3::Single { short: true }));
        assert_eq!(p.sampled, Some(true));
        assert_eq!(p.trace_id.to_bytes()[..8], [0; 8]);
        assert_eq!(extract(&headers(&[("b3", "0")])), None);

        let p = extract(&headers(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-sampled", "0"),
        ]))
        .unwrap();
        assert_eq!(
            (p.trace_id, p.sampled, p.b3),
            (trace_id, Some(false), Some(B3::Multi { short: false }))
        );
        let debug = headers(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-flags", "1"),
        ]);
        assert_eq!(extract(&debug).unwrap().sampled, Some(true));
        assert_eq!(extract(&headers(&[("x-b3-traceid", TRACE)])), None);
    }

    #[test]
    fn traceparent_wins_over_b3_which_is_still_rewritten() {
        let other = "11111111111111111111111111111111";
        let h = headers(&[
            ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
            ("b3", &format!("{other}-{SPAN}-0")),
        ]);
        let p = extract(&h).unwrap();
        assert_eq!((p.trace_id, p.sampled), (ids().0, Some(true)));
        assert_eq!(p.b3, Some(B3::Single { short: false }));
        // An invalid traceparent falls back to B3.
        let h = headers(&[
            ("traceparent", "00-bad"),
            ("b3", &format!("{other}-{SPAN}-0")),
        ]);
        assert_eq!(extract(&h).unwrap().sampled, Some(false));
    }

    #[test]
    fn writes_what_it_reads() {
        let (trace_id, parent) = ids();
        let span_id = SpanId::from_hex("1111111111111111").unwrap();
        for b3 in [
            None,
            Some(B3::Single { short: false }),
            Some(B3::Multi { short: false }),
            Some(B3::Multi { short: true }),
        ] {
            let mut h = HeaderMap::new();
            let trace_id = if b3 == Some(B3::Multi { short: true }) {
                TraceId::from_hex(&TRACE[16..]).unwrap()
            } else {
                trace_id
            };
            inject(&mut h, b3, trace_id, span_id, Some(parent), true);
            assert_eq!(
                h["traceparent"],
                format!("00-{}-1111111111111111-01", hex_of(trace_id))
            );
            let back = extract(&h).unwrap();
            assert_eq!(
                (back.trace_id, back.span_id, back.sampled, back.b3),
                (trace_id, span_id, Some(true), b3)
            );
            // The B3 headers alone say the same.
            h.remove(TRACEPARENT);
            if b3.is_some() {
                let back = extract(&h).unwrap();
                assert_eq!(
                    (back.trace_id, back.span_id, back.sampled),
                    (trace_id, span_id, Some(true))
                );
            }
        }
        let mut h = headers(&[("x-b3-flags", "1")]);
        inject(
            &mut h,
            Some(B3::Multi { short: false }),
            trace_id,
            parent,
            None,
            false,
        );
        assert_eq!(h["x-b3-sampled"], "0");
        assert!(!h.contains_key("x-b3-flags"));
        assert!(h["traceparent"].to_str().unwrap().ends_with("-00"));
    }

    fn hex_of(t: TraceId) -> String {
        let mut s = String::new();
        push_hex(&mut s, &t.to_bytes());
        s
    }
}
