//! Arbitrary bytes as an HTTP request, in the text form a person writes a
//! seed in: a request line (`METHOD target [HTTP/1.0|HTTP/1.1|HTTP/2]`),
//! header lines (`name: value`), an empty line, the body. Lines end with
//! `\n` (a `\r` before it is dropped). Bytes no `http` type accepts (a bad
//! method, target, name or value) make no request: hyper and h2 refuse
//! them before the proxy or namerd sees a request.

use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Uri, Version};

/// A request head and its body.
pub(crate) struct Head<'a> {
    pub(crate) parts: Parts,
    pub(crate) body: &'a [u8],
}

pub(crate) fn parse(data: &[u8]) -> Option<Head<'_>> {
    let (line, mut rest) = split_line(data).unwrap_or((data, &[]));
    let mut words = line.split(|b| *b == b' ');
    let method = Method::from_bytes(words.next()?).ok()?;
    let uri = Uri::try_from(words.next()?).ok()?;
    let version = match words.next() {
        None | Some(b"HTTP/1.1") => Version::HTTP_11,
        Some(b"HTTP/1.0") => Version::HTTP_10,
        Some(b"HTTP/2") => Version::HTTP_2,
        Some(_) => return None,
    };
    let mut req = Request::builder().method(method).uri(uri).version(version);
    loop {
        let Some((line, after)) = split_line(rest) else {
            // No empty line: all headers, no body.
            if !rest.is_empty() {
                req = header(req, rest)?;
            }
            rest = &[];
            break;
        };
        rest = after;
        if line.is_empty() {
            break;
        }
        req = header(req, line)?;
    }
    let (parts, ()) = req.body(()).ok()?.into_parts();
    Some(Head { parts, body: rest })
}

fn header(req: http::request::Builder, line: &[u8]) -> Option<http::request::Builder> {
    let colon = line.iter().position(|b| *b == b':')?;
    let name = HeaderName::from_bytes(&line[..colon]).ok()?;
    let value = line[colon + 1..].trim_ascii_start();
    let value = HeaderValue::from_bytes(value).ok()?;
    Some(req.header(name, value))
}

fn split_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = data.iter().position(|b| *b == b'\n')?;
    let line = &data[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, &data[end + 1..]))
}
