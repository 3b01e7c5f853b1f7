//! Resource versions as clients see them. Internally one global counter
//! orders every write (as etcd's revision does); outside, a version is either
//! the counter in decimal or, with opaque versions, a random token per
//! counter value, so a client that parses or orders versions breaks here
//! before it breaks against a real server.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// Renders counter values as version strings and parses them back.
#[derive(Debug)]
pub(crate) struct Versions {
    opaque: Option<Tokens>,
}

#[derive(Debug)]
struct Tokens {
    seed: RandomState,
    to_token: HashMap<u64, String>,
    to_counter: HashMap<String, u64>,
}

/// A version string the server never issued.
#[derive(Debug, thiserror::Error)]
#[error("invalid resource version {0:?}")]
pub(crate) struct InvalidVersion(pub(crate) String);

impl Versions {
    pub(crate) fn new(opaque: bool) -> Self {
        let opaque = opaque.then(|| Tokens {
            seed: RandomState::new(),
            to_token: HashMap::new(),
            to_counter: HashMap::new(),
        });
        Versions { opaque }
    }

    /// The version string of a counter value; stable for the server's life.
    pub(crate) fn render(&mut self, counter: u64) -> String {
        let Some(tokens) = &mut self.opaque else {
            return counter.to_string();
        };
        if let Some(token) = tokens.to_token.get(&counter) {
            return token.clone();
        }
        let mut salt = 0u64;
        let token = loop {
            // Base32 of a keyed hash: neither numeric nor ordered. The
            // leading letter keeps it from ever parsing as a number.
            let hash = tokens.seed.hash_one((counter, salt));
            let token = base32(hash);
            if !tokens.to_counter.contains_key(&token) {
                break token;
            }
            salt += 1;
        };
        tokens.to_token.insert(counter, token.clone());
        tokens.to_counter.insert(token.clone(), counter);
        token
    }

    /// The counter value of a version string a client sent back.
    pub(crate) fn parse(&self, version: &str) -> Result<u64, InvalidVersion> {
        let parsed = match &self.opaque {
            None => version.parse().ok(),
            Some(tokens) => tokens.to_counter.get(version).copied(),
        };
        parsed.ok_or_else(|| InvalidVersion(version.to_owned()))
    }
}

fn base32(mut value: u64) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::from("x");
    for _ in 0..13 {
        out.push(ALPHABET[(value & 31) as usize] as char);
        value >>= 5;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_versions_round_trip_and_are_not_numbers() {
        let mut versions = Versions::new(true);
        let a = versions.render(1);
        let b = versions.render(2);
        assert_ne!(a, b);
        assert!(a.parse::<u64>().is_err());
        assert_eq!(versions.render(1), a);
        assert_eq!(versions.parse(&b).unwrap(), 2);
        assert!(versions.parse("2").is_err());
    }

    #[test]
    fn numeric_versions_are_decimal() {
        let mut versions = Versions::new(false);
        assert_eq!(versions.render(42), "42");
        assert_eq!(versions.parse("42").unwrap(), 42);
        assert!(versions.parse("x").is_err());
    }
}
