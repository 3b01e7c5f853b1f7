//! The text syntax of paths, prefixes, name trees, dentries and dtabs.
//!
//! A hand-written recursive-descent parser that follows Finagle's
//! `NameTreeParsers` rule for rule, so that what Linkerd 1.x accepts we accept,
//! and what it rejects we reject with the same message
//! (`'/' expected but 'i' found at '[i]nvalid'`). Character classes follow the
//! JVM: whitespace is `Character.isWhitespace`, weight digits are
//! `Character.isDigit` (a non-ASCII digit is accepted by the scanner and then
//! refused by the number conversion, as on the JVM).
//!
//! The parser never panics and never recurses deeper than the nesting of
//! parentheses in its input, which callers bound by bounding input size.

use crate::dentry::{Dentry, Prefix};
use crate::dtab::Dtab;
use crate::path::{Path, PathBuilder, is_showable};
use crate::tree::{NameTree, Weighted};

mod chars;
mod error;

use chars::{is_jvm_whitespace, is_number_char};
pub use error::ParseError;
use error::{ErrorKind, Expected};

/// Parentheses nest at most this deep. Finagle has no limit (and overflows
/// its stack); we refuse instead, with the usual message format. Every tree
/// algorithm recurses on nesting, so this also bounds their stack use.
pub const MAX_NESTING: usize = 100;

// Every path of one input is encoded into the parser's buffer as it is
// read, then that buffer is copied once into an allocation they all share
// (one allocation per input, not one per path and prefix).

pub(crate) fn path(s: &str) -> Result<Path, ParseError> {
    let mut p = Parser::new(s);
    let mut path = p.path()?;
    p.finish()?;
    path.rebase(&p.buf.freeze());
    Ok(path)
}

pub(crate) fn prefix(s: &str) -> Result<Prefix, ParseError> {
    let mut p = Parser::new(s);
    let mut prefix = p.prefix()?;
    p.finish()?;
    prefix.rebase(&p.buf.freeze());
    Ok(prefix)
}

pub(crate) fn tree(s: &str) -> Result<NameTree<Path>, ParseError> {
    let mut p = Parser::new(s);
    let mut tree = p.tree()?;
    p.finish()?;
    let buf = p.buf.freeze();
    tree.for_each_leaf_mut(&mut |path| path.rebase(&buf));
    Ok(tree)
}

pub(crate) fn dentry(s: &str) -> Result<Dentry, ParseError> {
    let mut p = Parser::new(s);
    let mut dentry = p.dentry()?;
    p.finish()?;
    dentry.rebase(&p.buf.freeze());
    Ok(dentry)
}

pub(crate) fn dtab(s: &str) -> Result<Dtab, ParseError> {
    let mut p = Parser::new(s);
    let mut dentries = p.dentries()?;
    p.finish()?;
    let buf = p.buf.freeze();
    for d in &mut dentries {
        d.rebase(&buf);
    }
    Ok(Dtab::new(dentries))
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
    /// Every path read so far, encoded; an escaped label is decoded into
    /// `label` first.
    buf: PathBuilder,
    label: Vec<u8>,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser {
            s,
            pos: 0,
            depth: 0,
            // Encoded paths are no longer than their text, but for a
            // label of 128 bytes or more (a two-byte length).
            buf: PathBuilder::with_capacity(s.len() + 8),
            label: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        let b = *self.s.as_bytes().get(self.pos)?;
        if b.is_ascii() {
            Some(b as char)
        } else {
            self.s[self.pos..].chars().next()
        }
    }

    fn peek_byte(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn advance(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn error(&self, expected: Expected) -> ParseError {
        ParseError {
            kind: ErrorKind::Syntax {
                expected,
                found: self.peek(),
            },
            input: self.s.into(),
            pos: self.pos,
        }
    }

    fn maybe_eat(&mut self, c: u8) -> bool {
        if self.peek_byte() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), ParseError> {
        if self.maybe_eat(c) {
            Ok(())
        } else {
            Err(self.error(Expected::Char(c as char)))
        }
    }

    /// Skips whitespace and comments. The parser calls this before most
    /// tokens, usually where there is none or one space, so those cases are
    /// inlined: every other character it could skip is below `' '`, `#` or
    /// outside ASCII.
    #[inline]
    fn eat_whitespace(&mut self) {
        if self.peek_byte() == Some(b' ') {
            self.pos += 1;
        }
        match self.peek_byte() {
            Some(b) if b > b' ' && b != b'#' && b.is_ascii() => {}
            None => {}
            Some(_) => self.skip_whitespace(),
        }
    }

    #[inline(never)]
    fn skip_whitespace(&mut self) {
        let bytes = self.s.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C | 0x1C..=0x1F => self.pos += 1,
                b'#' => {
                    // A comment runs to the end of the line, newline included.
                    match bytes[self.pos..].iter().position(|&c| c == b'\n') {
                        Some(nl) => self.pos += nl + 1,
                        None => self.pos = bytes.len(),
                    }
                }
                _ if b.is_ascii() => return,
                _ => match self.peek() {
                    Some(c) if is_jvm_whitespace(c) => self.pos += c.len_utf8(),
                    _ => return,
                },
            }
        }
    }

    fn finish(&mut self) -> Result<(), ParseError> {
        self.eat_whitespace();
        if self.pos < self.s.len() {
            return Err(self.error(Expected::EndOfInput));
        }
        Ok(())
    }

    fn is_label_char(&self) -> bool {
        matches!(self.peek_byte(), Some(c) if is_showable(c) || c == b'\\')
    }

    fn hex_digit(&mut self) -> Result<u8, ParseError> {
        let digit = self
            .peek_byte()
            .and_then(|c| (c as char).to_digit(16))
            .ok_or_else(|| self.error(Expected::Named("hex char")))?;
        self.pos += 1;
        Ok(digit as u8)
    }

    /// A label: one or more showable characters or `\xHH` escapes, appended
    /// to the path being built.
    fn label(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        // Unescaped labels, the usual kind, are copied straight from input.
        while self.peek_byte().is_some_and(is_showable) {
            self.pos += 1;
        }
        if self.peek_byte() != Some(b'\\') {
            if self.pos == start {
                return Err(self.error(Expected::Named("label char")));
            }
            self.buf.push_raw(&self.s.as_bytes()[start..self.pos]);
            return Ok(());
        }
        self.label.clear();
        self.label
            .extend_from_slice(&self.s.as_bytes()[start..self.pos]);
        loop {
            match self.peek_byte() {
                Some(c) if is_showable(c) => {
                    self.pos += 1;
                    self.label.push(c);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.eat(b'x')?;
                    let hi = self.hex_digit()?;
                    let lo = self.hex_digit()?;
                    self.label.push(hi << 4 | lo);
                }
                _ => return Err(self.error(Expected::Named("label char"))),
            }
            if !self.is_label_char() {
                self.buf.push_raw(&self.label);
                return Ok(());
            }
        }
    }

    fn path(&mut self) -> Result<Path, ParseError> {
        self.eat_whitespace();
        self.eat(b'/')?;
        self.buf.begin();
        if self.is_label_char() {
            loop {
                self.label()?;
                if !self.maybe_eat(b'/') {
                    break;
                }
            }
        }
        Ok(self.buf.pending())
    }

    fn prefix(&mut self) -> Result<Prefix, ParseError> {
        self.eat_whitespace();
        self.eat(b'/')?;
        self.buf.begin();
        let mut has_wildcard = false;
        if self.is_label_char() || self.peek_byte() == Some(b'*') {
            loop {
                if self.maybe_eat(b'*') {
                    // A wildcard is an empty label in a prefix's encoding.
                    has_wildcard = true;
                    self.buf.push_raw(&[]);
                } else {
                    self.label()?;
                }
                if !self.maybe_eat(b'/') {
                    break;
                }
            }
        }
        Ok(Prefix::pending(self.buf.pending(), has_wildcard))
    }

    fn tree(&mut self) -> Result<NameTree<Path>, ParseError> {
        let first = self.union()?;
        self.eat_whitespace();
        if !self.maybe_eat(b'|') {
            return Ok(first);
        }
        let mut trees = vec![first];
        loop {
            trees.push(self.union()?);
            self.eat_whitespace();
            if !self.maybe_eat(b'|') {
                return Ok(NameTree::Alt(trees));
            }
        }
    }

    fn union(&mut self) -> Result<NameTree<Path>, ParseError> {
        let first = self.weighted()?;
        self.eat_whitespace();
        if !self.maybe_eat(b'&') {
            // A weight outside an `&` chain is parsed and then discarded.
            return Ok(first.tree);
        }
        let mut trees = vec![first];
        loop {
            trees.push(self.weighted()?);
            self.eat_whitespace();
            if !self.maybe_eat(b'&') {
                return Ok(NameTree::Union(trees));
            }
        }
    }

    fn weighted(&mut self) -> Result<Weighted<Path>, ParseError> {
        self.eat_whitespace();
        let weight = if self.peek().is_some_and(is_number_char) {
            let w = self.number()?;
            self.eat_whitespace();
            self.eat(b'*')?;
            self.eat_whitespace();
            w
        } else {
            Weighted::<Path>::DEFAULT_WEIGHT
        };
        Ok(Weighted {
            weight,
            tree: self.simple()?,
        })
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        let start = self.pos;
        let mut seen_dot = false;
        while let Some(c) = self.peek().filter(|&c| is_number_char(c)) {
            if c == '.' {
                if seen_dot {
                    return Err(self.error(Expected::Named("number char")));
                }
                seen_dot = true;
            }
            self.advance();
        }
        let text = &self.s[start..self.pos];
        if text == "." {
            // Finagle reports the dot but marks the character after it.
            return Err(ParseError {
                kind: ErrorKind::Syntax {
                    expected: Expected::Named("weight"),
                    found: Some('.'),
                },
                input: self.s.into(),
                pos: self.pos,
            });
        }
        // Only ASCII digits and one dot reach here when the text parses.
        // A weight too large for an f64 is refused: the JVM reads it as
        // Infinity, which `show` would write as text no parser reads back.
        text.parse::<f64>()
            .ok()
            .filter(|w| w.is_finite())
            .ok_or_else(|| ParseError {
                kind: ErrorKind::Number { text: text.into() },
                input: self.s.into(),
                pos: start,
            })
    }

    fn simple(&mut self) -> Result<NameTree<Path>, ParseError> {
        self.eat_whitespace();
        match self.peek_byte() {
            Some(b'(') => {
                if self.depth >= MAX_NESTING {
                    return Err(ParseError {
                        kind: ErrorKind::TooDeep,
                        input: self.s.into(),
                        pos: self.pos,
                    });
                }
                self.pos += 1;
                self.depth += 1;
                let tree = self.tree()?;
                self.depth -= 1;
                self.eat_whitespace();
                self.eat(b')')?;
                Ok(tree)
            }
            Some(b'/') => Ok(NameTree::Leaf(self.path()?)),
            Some(b'!') => {
                self.pos += 1;
                Ok(NameTree::Fail)
            }
            Some(b'~') => {
                self.pos += 1;
                Ok(NameTree::Neg)
            }
            Some(b'$') => {
                self.pos += 1;
                Ok(NameTree::Empty)
            }
            _ => Err(self.error(Expected::Named("simple"))),
        }
    }

    fn dentry(&mut self) -> Result<Dentry, ParseError> {
        let prefix = self.prefix()?;
        self.eat_whitespace();
        self.eat(b'=')?;
        self.eat(b'>')?;
        let dst = self.tree()?;
        Ok(Dentry::new(prefix, dst))
    }

    fn dentries(&mut self) -> Result<Vec<Dentry>, ParseError> {
        let mut dentries = Vec::with_capacity(8);
        loop {
            self.eat_whitespace();
            if self.pos < self.s.len() {
                dentries.push(self.dentry()?);
                self.eat_whitespace();
            }
            if !self.maybe_eat(b';') {
                break;
            }
        }
        Ok(dentries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_digits_fail_number_conversion() {
        let err = tree("/a & \u{0661} * /b").unwrap_err();
        assert_eq!(err.to_string(), "For input string: \"\u{0661}\"");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let input = "(".repeat(100_000);
        let err = tree(&input).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("nesting of at most 100 expected")
        );
        let deepest = format!("{}/a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(tree(&deepest).unwrap().show(), "/a");
    }

    #[test]
    fn jvm_whitespace_excludes_no_break_spaces() {
        assert!(path("\u{2003}/a\u{1F}").is_ok());
        assert!(path("\u{A0}/a").is_err());
        assert!(path("/a\u{85}").is_err());
    }
}
