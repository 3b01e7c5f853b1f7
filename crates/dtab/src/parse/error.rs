//! Parse errors, in Finagle's exact message format.

use std::fmt;

/// A syntax error, rendered exactly as Finagle renders it:
/// `<expected> expected but <found> found at '<input with [marker]>'`.
#[derive(Clone, PartialEq, Eq)]
pub struct ParseError {
    pub(super) kind: ErrorKind,
    pub(super) input: Box<str>,
    /// Byte offset of the offending character (or `input.len()` at the end).
    pub(super) pos: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ErrorKind {
    Syntax {
        expected: Expected,
        found: Option<char>,
    },
    /// The weight scanner accepted non-ASCII digits that are not a number
    /// (the JVM's `NumberFormatException`).
    Number { text: Box<str> },
    /// Parentheses nested deeper than [`super::MAX_NESTING`].
    TooDeep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expected {
    Char(char),
    EndOfInput,
    Named(&'static str),
}

impl ParseError {
    /// The byte offset in the input at which parsing failed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The input that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (expected, found) = match &self.kind {
            ErrorKind::Syntax { expected, found } => (*expected, *found),
            ErrorKind::Number { text } => return write!(f, "For input string: \"{text}\""),
            ErrorKind::TooDeep => (Expected::Named("nesting of at most 100"), Some('(')),
        };
        match expected {
            Expected::Char(c) => write!(f, "'{c}'")?,
            Expected::EndOfInput => f.write_str("end of input")?,
            Expected::Named(name) => f.write_str(name)?,
        }
        f.write_str(" expected but ")?;
        match found {
            Some(c) => write!(f, "'{c}'")?,
            None => f.write_str("end of input")?,
        }
        f.write_str(" found at '")?;
        let input = &*self.input;
        match input[self.pos..].chars().next() {
            Some(c) => {
                let after = self.pos + c.len_utf8();
                write!(f, "{}[{c}]{}", &input[..self.pos], &input[after..])?;
            }
            None => write!(f, "{input}[]")?,
        }
        f.write_str("'")
    }
}

impl fmt::Debug for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParseError({self})")
    }
}

impl std::error::Error for ParseError {}
