//! A backend's name, checked once at the command line.

use std::fmt;
use std::str::FromStr;

/// The name a backend answers with (`NAME\n`, `x-served-by`, `served_by`).
///
/// Non-empty printable ASCII without spaces: it is sent as a header value,
/// and scripts split the `l5d-demo listening name=NAME addr=...` line on
/// whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, InvalidName> {
        if s.is_empty() {
            return Err(InvalidName("must not be empty"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidName(
                "must be printable ASCII without spaces (it is sent as a header value)",
            ));
        }
        Ok(Name(s.to_owned()))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a [`Name`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidName(&'static str);

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a backend name {}", self.0)
    }
}

impl std::error::Error for InvalidName {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_header_safe_words() {
        assert_eq!("world-v1".parse::<Name>().unwrap().as_str(), "world-v1");
        for bad in ["", "two words", "tab\there", "caf\u{e9}", "nl\n"] {
            assert!(bad.parse::<Name>().is_err(), "{bad:?}");
        }
    }
}
