//! The bearer token namerctl sends to a namerd that authenticates its
//! clients: read from `--token-file` / `NAMERCTL_TOKEN_FILE`, one line of
//! printable ASCII (surrounding whitespace and the final newline are
//! dropped), sent as `Authorization: Bearer <token>`. Errors name the
//! file, never its content.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use http::HeaderValue;

/// Larger files are not token files.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// A token, ready to send; its header value is marked sensitive so that
/// HTTP/2 never indexes it.
#[derive(Clone)]
pub struct Token {
    file: PathBuf,
    authorization: HeaderValue,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error(
        "token file {}: a token is one line of printable ASCII without spaces",
        path.display()
    )]
    Invalid { path: PathBuf },
}

impl Token {
    pub fn read(path: &Path) -> Result<Token, TokenError> {
        let read_error = |source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read_error)?
            .take(MAX_TOKEN_FILE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        Token::new(path, &bytes)
    }

    fn new(path: &Path, bytes: &[u8]) -> Result<Token, TokenError> {
        let token = bytes.trim_ascii();
        if token.is_empty() {
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        if !token.iter().all(u8::is_ascii_graphic) {
            return Err(TokenError::Invalid {
                path: path.to_path_buf(),
            });
        }
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(token);
        let mut authorization =
            HeaderValue::from_bytes(&value).expect("printable ASCII is a valid header value");
        authorization.set_sensitive(true);
        Ok(Token {
            file: path.to_path_buf(),
            authorization,
        })
    }

    /// The `Authorization` header's value.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// The file the token came from, for messages.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_printable_line() {
        let path = Path::new("/t");
        let token = Token::new(path, b"  s3cret-Token_1\n").unwrap();
        assert_eq!(token.authorization(), "Bearer s3cret-Token_1");
        assert!(token.authorization().is_sensitive());
        assert!(!format!("{token:?}").contains("s3cret"));
        for (bytes, want) in [
            (&b"\n \n"[..], "token file /t is empty"),
            (b"two words", "token file /t: a token is one line"),
            (b"line\nline", "token file /t: a token is one line"),
            (b"caf\xc3\xa9", "token file /t: a token is one line"),
        ] {
            let err = Token::new(path, bytes).unwrap_err().to_string();
            assert!(err.starts_with(want), "{bytes:?}: {err}");
        }
        let err = Token::read(Path::new("/nonexistent/token")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read token file /nonexistent/token:")
        );
    }
}
