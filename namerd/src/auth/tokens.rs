//! The token file: each identity with the SHA-256 of its bearer token, or
//! of several during a rotation.
//!
//! ```yaml
//! deployer: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//! ci: [sha256:<old>, sha256:<new>]
//! ```
//!
//! Only hashes are kept, so reading the file (a Kubernetes Secret, a
//! backup) grants nothing. Tokens are long random strings, which is why a
//! plain SHA-256 suffices where a password would need a slow hash. A
//! presented token is hashed and compared with every entry, each in
//! constant time and without stopping at a match, so timing says nothing
//! about the stored hashes.

use std::collections::BTreeMap;

use ring::digest::{SHA256, digest};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::Identity;

const SHA256_PREFIX: &str = "sha256:";

/// The identities of a token file.
#[derive(Clone, Debug, Default)]
pub struct TokenTable {
    entries: Vec<(Identity, [u8; 32])>,
}

/// Why a token file cannot be used; never quotes a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFileError {
    #[error(
        "expected a mapping of identity to sha256:<64 hex digits> (or a list of them): {message}"
    )]
    Shape { message: String },
    #[error("{0}")]
    Identity(String),
    #[error(
        "{identity}: expected sha256:<64 hex digits>, the SHA-256 of the token (never the token itself)"
    )]
    Hash { identity: String },
    #[error("{identity} and {other} have the same token hash; each token must name one identity")]
    Shared { identity: String, other: String },
}

/// One hash or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Hashes {
    One(String),
    Many(Vec<String>),
}

// === impl TokenTable ===

impl TokenTable {
    /// Reads a token file (YAML or JSON).
    ///
    /// # Errors
    ///
    /// When it is not a mapping of valid identities to `sha256:` hashes,
    /// or two identities share a hash.
    pub fn parse(bytes: &[u8]) -> Result<TokenTable, TokenFileError> {
        let shape = |message: String| TokenFileError::Shape { message };
        let text = std::str::from_utf8(bytes).map_err(|e| shape(e.to_string()))?;
        // A file caught half-written (truncated, not yet filled) must not
        // revoke every token; revoking them all is an explicit `{}`.
        if text.trim().is_empty() {
            return Err(shape("the file is empty (`{}` revokes every token)".into()));
        }
        let file: BTreeMap<String, Hashes> =
            serde_saphyr::from_str(text).map_err(|e| shape(e.to_string()))?;
        let mut entries: Vec<(Identity, [u8; 32])> = Vec::new();
        for (name, hashes) in file {
            let identity = Identity::new(&name).map_err(TokenFileError::Identity)?;
            let hashes = match hashes {
                Hashes::One(h) => vec![h],
                Hashes::Many(hs) => hs,
            };
            for hash in hashes {
                let digest = parse_hash(&hash).ok_or_else(|| TokenFileError::Hash {
                    identity: name.clone(),
                })?;
                if let Some((other, _)) = entries.iter().find(|(_, d)| *d == digest) {
                    return Err(TokenFileError::Shared {
                        identity: name.clone(),
                        other: other.to_string(),
                    });
                }
                entries.push((identity.clone(), digest));
            }
        }
        Ok(TokenTable { entries })
    }

    /// The identity whose token this is, if any.
    pub fn identify(&self, token: &[u8]) -> Option<&Identity> {
        let presented = sha256(token);
        let mut found = None;
        for (identity, stored) in &self.entries {
            if bool::from(stored.ct_eq(&presented)) {
                found = Some(identity);
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `sha256:<hex>` of a token, as a token file holds it (what
/// `printf %s "$TOKEN" | sha256sum` prints, prefixed).
pub fn hashed(token: &str) -> String {
    let hex: String = sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{SHA256_PREFIX}{hex}")
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.trim().strip_prefix(SHA256_PREFIX)?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_sum_output() {
        // printf %s foo | sha256sum
        assert_eq!(
            hashed("foo"),
            "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
    }

    #[test]
    fn tokens_identify_their_identity() {
        let file = format!(
            "deployer: {}\nci: [{}, \"{}\"]\n",
            hashed("t-deployer"),
            hashed("t-ci-old"),
            hashed("t-ci-new")
                .to_uppercase()
                .replace("SHA256:", "sha256:"),
        );
        let table = TokenTable::parse(file.as_bytes()).unwrap();
        assert_eq!(table.len(), 3);
        let who = |t: &str| table.identify(t.as_bytes()).map(Identity::to_string);
        assert_eq!(who("t-deployer").as_deref(), Some("deployer"));
        assert_eq!(who("t-ci-old").as_deref(), Some("ci"));
        assert_eq!(who("t-ci-new").as_deref(), Some("ci"));
        assert_eq!(who("t-deployer "), None);
        assert_eq!(who(""), None);
        assert!(TokenTable::parse(b"{}").unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_refused_without_quoting_hashes() {
        let h = hashed("x");
        let cases = [
            ("", "expected a mapping"),
            ("- a list", "expected a mapping"),
            ("deployer: my-secret-token", "deployer: expected sha256:"),
            ("deployer: sha256:abc", "deployer: expected sha256:"),
            ("\"a b\": sha256:00", "invalid identity \"a b\""),
            (
                &format!("a: {h}\nb: [{h}]"),
                "b and a have the same token hash",
            ),
        ];
        for (text, want) in cases {
            let err = TokenTable::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains("my-secret-token"), "{err}");
        }
    }
}
