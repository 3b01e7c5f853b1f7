//! Paths: sequences of non-empty byte labels, the names everything else is made of.
//!
//! A path is a range of a shared, immutable buffer in which every label is
//! written as a LEB128 length followed by its bytes. The encoding is canonical,
//! so equality, ordering and hashing work on the bytes directly (one `memcmp`
//! instead of a loop over labels), a clone is one reference-count increment, and
//! building a path costs one allocation however many labels it has. Those are
//! the operations a binder and a route cache do per request. Since a path is a
//! range, `take` and `drop` (how a namer splits an id from its residual) share
//! the buffer instead of copying, and a parsed dtab keeps all its paths in one
//! buffer. A path keeps the whole buffer alive, as a `bytes::Bytes` slice does.

use std::fmt;
use std::sync::{Arc, LazyLock};

use crate::parse::{self, ParseError};

/// An absolute name such as `/svc/world` or `/#/io.l5d.fs/world-v1`.
///
/// Labels are arbitrary non-empty byte strings; `Path::show` escapes the ones
/// that are not made only of showable characters.
#[derive(Clone)]
pub struct Path {
    buf: Arc<[u8]>,
    /// The byte range of this path's labels in `buf`.
    start: u32,
    end: u32,
    /// The number of labels.
    len: u32,
}

static EMPTY: LazyLock<Arc<[u8]>> = LazyLock::new(|| Arc::from(&[][..]));

/// A label was empty: a path has no empty labels (`/a//b` is not a path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmptyLabel;

impl fmt::Display for EmptyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("path labels must not be empty")
    }
}

impl std::error::Error for EmptyLabel {}

// === impl Path ===

impl Path {
    /// The empty path, shown as `/`.
    pub fn empty() -> Self {
        Path {
            buf: EMPTY.clone(),
            start: 0,
            end: 0,
            len: 0,
        }
    }

    /// `len` labels encoded in `buf[start..end]`.
    fn in_buf(buf: Arc<[u8]>, start: usize, end: usize, len: u32) -> Self {
        let offset = |n: usize| u32::try_from(n).expect("paths are shorter than 4 GiB");
        Path {
            buf,
            start: offset(start),
            end: offset(end),
            len,
        }
    }

    /// The encoded labels.
    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.buf[self.start as usize..self.end as usize]
    }

    /// Builds a path from raw labels; fails if one of them is empty.
    pub fn try_from_labels<I, L>(labels: I) -> Result<Self, EmptyLabel>
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut b = PathBuilder::default();
        for l in labels {
            b.push(l.as_ref())?;
        }
        Ok(b.finish())
    }

    /// Builds a path from UTF-8 labels, as Finagle's `Path.Utf8` does.
    ///
    /// # Panics
    ///
    /// Panics if a label is empty; use [`Path::try_from_labels`] for input that
    /// is not known to be valid.
    pub fn utf8<I, S>(labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::try_from_labels(labels.into_iter().map(|s| s.as_ref().as_bytes().to_vec()))
            .expect("Path::utf8 requires non-empty labels")
    }

    /// Parses the show form (`/foo/bar`, `/\x66oo`), allowing surrounding
    /// whitespace and `#` comments.
    pub fn read(s: &str) -> Result<Self, ParseError> {
        parse::path(s)
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The labels, in order.
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            rest: self.bytes(),
            remaining: self.len,
        }
    }

    /// The label at `i`, if there is one.
    pub fn label(&self, i: usize) -> Option<&[u8]> {
        self.labels().nth(i)
    }

    /// The first label as UTF-8, if it is valid UTF-8.
    pub fn first_str(&self) -> Option<&str> {
        self.labels()
            .next()
            .and_then(|l| std::str::from_utf8(l).ok())
    }

    /// True when `prefix`'s labels are the first labels of `self`.
    #[inline]
    pub fn starts_with(&self, prefix: &Path) -> bool {
        // The encoding is canonical and self-delimiting, so a byte prefix at
        // a label boundary is a label prefix. Most candidates differ in their
        // first label's length or first byte: reject those without a call.
        let (this, that) = (self.bytes(), prefix.bytes());
        self.len >= prefix.len
            && this.len() >= that.len()
            && (that.len() < 2 || this[..2] == that[..2])
            && this.starts_with(that)
    }

    /// The first (up to) eight bytes of the encoding, zero-padded, and a
    /// mask of the bytes there are: a dtab lookup compares these first, as
    /// one word, to pass over most dentries that do not match.
    pub(crate) fn head(&self) -> (u64, u64) {
        let bytes = self.bytes();
        if let Some(word) = bytes.first_chunk::<8>() {
            return (u64::from_le_bytes(*word), u64::MAX);
        }
        let word = (bytes.iter().rev()).fold(0, |word, &b| word << 8 | u64::from(b));
        let mask = u64::MAX.checked_shr(64 - 8 * bytes.len() as u32);
        (word, mask.unwrap_or(0))
    }

    /// The path without its first `n` labels.
    pub fn drop(&self, n: usize) -> Path {
        if n == 0 {
            return self.clone();
        }
        if n >= self.len() {
            return Path::empty();
        }
        let offset = self.start as usize + self.byte_offset(n);
        Path::in_buf(
            self.buf.clone(),
            offset,
            self.end as usize,
            self.len - n as u32,
        )
    }

    /// The first `n` labels.
    pub fn take(&self, n: usize) -> Path {
        if n >= self.len() {
            return self.clone();
        }
        if n == 0 {
            return Path::empty();
        }
        let offset = self.start as usize + self.byte_offset(n);
        Path::in_buf(self.buf.clone(), self.start as usize, offset, n as u32)
    }

    /// `self ++ other.drop(skip)`, in one allocation: how a dentry rewrites
    /// a path (destination, then what the prefix did not consume).
    pub fn concat_tail(&self, other: &Path, skip: usize) -> Path {
        if skip == 0 {
            return self.concat(other);
        }
        if skip >= other.len() {
            return self.clone();
        }
        if self.is_empty() {
            return other.drop(skip);
        }
        let tail = &other.bytes()[other.byte_offset(skip)..];
        let mut buf = Vec::with_capacity(self.bytes().len() + tail.len());
        buf.extend_from_slice(self.bytes());
        buf.extend_from_slice(tail);
        let end = buf.len();
        Path::in_buf(buf.into(), 0, end, self.len + other.len - skip as u32)
    }

    /// Makes `buf` the buffer this path's range refers to: a parser builds
    /// the paths of a dtab as ranges before their shared buffer exists.
    /// Inside the crate, a zero-length label stands for a prefix wildcard.
    pub(crate) fn rebase(&mut self, buf: &Arc<[u8]>) {
        self.buf = buf.clone();
    }

    /// `self ++ other`.
    pub fn concat(&self, other: &Path) -> Path {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let mut buf = Vec::with_capacity(self.bytes().len() + other.bytes().len());
        buf.extend_from_slice(self.bytes());
        buf.extend_from_slice(other.bytes());
        let end = buf.len();
        Path::in_buf(buf.into(), 0, end, self.len + other.len)
    }

    /// The show form: `/` for the empty path, `/a/b` otherwise, with every
    /// label that is not entirely showable written as `\xHH` escapes.
    pub fn show(&self) -> String {
        let mut s = String::with_capacity(self.bytes().len() + 1);
        self.write_show(&mut s);
        s
    }

    pub(crate) fn write_show(&self, out: &mut String) {
        if self.is_empty() {
            out.push('/');
            return;
        }
        for label in self.labels() {
            out.push('/');
            write_label(label, out);
        }
    }

    /// Drops the `/%/<transformer>...` prefix that transformers put on ids,
    /// up to the first `#` or `$` label (linkerd's `stripTransformerPrefix`).
    pub fn strip_transformer_prefix(&self) -> Path {
        if self.first_str() != Some("%") {
            return self.clone();
        }
        let skip = self
            .labels()
            .position(|l| l == b"#" || l == b"$")
            .unwrap_or(self.len());
        self.drop(skip)
    }

    fn byte_offset(&self, n: usize) -> usize {
        let mut labels = self.labels();
        for _ in 0..n {
            labels.next();
        }
        self.bytes().len() - labels.rest.len()
    }
}

// Equality, hashing and ordering see the labels, not the buffer around them.
// Equal encodings have equal label counts, so the bytes decide equality and
// order alone.

impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Path {}

impl std::hash::Hash for Path {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As the derived impl did when the buffer was the whole path, so
        // that hashes stay what they were.
        self.bytes().hash(state);
        self.len.hash(state);
    }
}

impl PartialOrd for Path {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Path {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({})", self.show())
    }
}

impl std::str::FromStr for Path {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::read(s)
    }
}

impl Default for Path {
    fn default() -> Self {
        Path::empty()
    }
}

/// Iterator over the labels of a [`Path`].
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let (len, header) = read_varint(self.rest);
        let label = &self.rest[header..header + len];
        self.rest = &self.rest[header + len..];
        self.remaining -= 1;
        Some(label)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for Labels<'_> {}

/// Accumulates labels into a [`Path`] with a single final allocation.
#[derive(Debug, Default)]
pub struct PathBuilder {
    buf: Vec<u8>,
    /// Where the path being built starts in `buf`, after the paths a
    /// parser built before it.
    start: usize,
    len: u32,
}

impl PathBuilder {
    /// A builder with room for `bytes` bytes of encoded labels.
    pub fn with_capacity(bytes: usize) -> Self {
        PathBuilder {
            buf: Vec::with_capacity(bytes),
            start: 0,
            len: 0,
        }
    }

    pub fn push(&mut self, label: &[u8]) -> Result<(), EmptyLabel> {
        if label.is_empty() {
            return Err(EmptyLabel);
        }
        write_varint(&mut self.buf, label.len());
        self.buf.extend_from_slice(label);
        self.len += 1;
        Ok(())
    }

    pub fn push_path(&mut self, path: &Path) {
        self.buf.extend_from_slice(path.bytes());
        self.len += path.len;
    }

    /// Appends a label that may be empty: the encoding of a wildcard in a
    /// prefix. Never exposed as a `Path`.
    #[inline]
    pub(crate) fn push_raw(&mut self, label: &[u8]) {
        write_varint(&mut self.buf, label.len());
        self.buf.extend_from_slice(label);
        self.len += 1;
    }

    /// Starts another path after those already in the buffer: a parser
    /// builds every path of its input in one buffer.
    pub(crate) fn begin(&mut self) {
        self.start = self.buf.len();
        self.len = 0;
    }

    /// The path begun last, as a range of the buffer that [`Self::freeze`]
    /// will make. It must not be looked at before [`Path::rebase`] onto
    /// that buffer.
    pub(crate) fn pending(&self) -> Path {
        if self.len == 0 {
            return Path::empty();
        }
        Path::in_buf(EMPTY.clone(), self.start, self.buf.len(), self.len)
    }

    /// The shared buffer of every path built so far.
    pub(crate) fn freeze(&self) -> Arc<[u8]> {
        Arc::from(&self.buf[..])
    }

    pub fn finish(self) -> Path {
        if self.len == 0 {
            return Path::empty();
        }
        let end = self.buf.len();
        Path::in_buf(self.buf.into(), 0, end, self.len)
    }
}

#[inline]
fn write_varint(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Reads a length written by `write_varint`; returns it and its byte count.
/// Only ever called on buffers this module encoded.
fn read_varint(buf: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    for (i, b) in buf.iter().enumerate() {
        n |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            return (n, i + 1);
        }
        shift += 7;
    }
    unreachable!("path buffers always hold complete varints")
}

/// Finagle's showable label characters: `0-9 A-Z a-z _ : . # $ % -`.
pub(crate) fn is_showable(c: u8) -> bool {
    SHOWABLE[c as usize]
}

static SHOWABLE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b':' | b'.' | b'#' | b'$' | b'%' | b'-');
        c += 1;
    }
    table
};

/// Writes a label, escaping all of it when any byte is not showable.
pub(crate) fn write_label(label: &[u8], out: &mut String) {
    if label.iter().all(|&c| is_showable(c)) {
        // Showable bytes are ASCII.
        out.extend(label.iter().map(|&c| c as char));
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in label {
            out.push('\\');
            out.push('x');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slicing_and_concat_preserve_labels() {
        let long = "x".repeat(300);
        let p = Path::utf8(["a", long.as_str(), "c"]);
        assert_eq!(p.len(), 3);
        assert_eq!(p.drop(1), Path::utf8([long.as_str(), "c"]));
        assert_eq!(p.take(2), Path::utf8(["a", long.as_str()]));
        assert_eq!(p.take(1).concat(&p.drop(1)), p);
        assert!(p.starts_with(&Path::utf8(["a"])));
        assert!(!p.starts_with(&Path::utf8(["ab"])));
        assert!(p.starts_with(&Path::empty()));
        assert_eq!(p.drop(3), Path::empty());
        assert_eq!(p.label(1), Some(long.as_bytes()));
    }

    #[test]
    fn transformer_prefix_is_stripped_to_the_namer() {
        let p = Path::read("/%/io.l5d.port/4141/#/io.l5d.fs/web").unwrap();
        assert_eq!(p.strip_transformer_prefix().show(), "/#/io.l5d.fs/web");
        let q = Path::read("/#/io.l5d.fs/web").unwrap();
        assert_eq!(q.strip_transformer_prefix(), q);
    }

    #[test]
    fn head_is_the_start_of_the_encoding() {
        let short = Path::read("/ab").unwrap();
        let word = u64::from_le_bytes([2, b'a', b'b', 0, 0, 0, 0, 0]);
        assert_eq!(short.head(), (word, 0xFF_FFFF));
        assert_eq!(Path::empty().head(), (0, 0));
        let long = Path::read("/abcdefgh/i").unwrap().drop(0);
        let word = u64::from_le_bytes([8, b'a', b'b', b'c', b'd', b'e', b'f', b'g']);
        assert_eq!(long.head(), (word, u64::MAX));
        // A range of a shared buffer starts where the range does.
        let tail = Path::read("/abcdefgh/i").unwrap().drop(1);
        assert_eq!(
            tail.head(),
            (u64::from_le_bytes([1, b'i', 0, 0, 0, 0, 0, 0]), 0xFFFF)
        );
        assert_eq!(tail, Path::read("/i").unwrap());
    }

    #[test]
    fn empty_labels_are_refused() {
        assert_eq!(Path::try_from_labels(["a", ""]), Err(EmptyLabel));
    }
}
