//! Dtab files given to `create` and `update`: how they are sniffed, what is
//! sent, and which version (`If-Match`) an update expects.
//!
//! Content that starts (after whitespace) with `{` or `[` is JSON: a
//! VersionedDtab object `{"version": ..., "dtab": [...]}` or a bare dentry
//! array. Its dtab is re-serialized and sent as `application/json`. Anything
//! else is dtab text, sent unchanged as `application/dtab`; its version is a
//! first non-blank line `# version <etag>`, exactly what `dtab get` prints,
//! and namerd's parser reads that line as a comment.
//!
//! Nothing here does I/O except [`read`], which reads the file or stdin.

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;

use crate::api::{Dentry, VersionedDtab};

pub const CONTENT_TYPE_JSON: &str = "application/json";
pub const CONTENT_TYPE_DTAB: &str = "application/dtab";

/// Where a dtab is read from: a file or, for `-`, stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Stdin => "stdin".to_string(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read dtab from {source_name}: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("dtab in {source_name} is not valid UTF-8")]
    NotUtf8 { source_name: String },
    #[error(
        "invalid JSON dtab in {source_name}: {message} \
         (expected {{\"version\": \"<etag>\", \"dtab\": [{{\"prefix\": \"...\", \"dst\": \"...\"}}]}} \
         or a [{{\"prefix\": \"...\", \"dst\": \"...\"}}] array)"
    )]
    Json {
        source_name: String,
        message: String,
    },
}

/// A dtab ready to send, with the version found in it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtabInput {
    pub body: Bytes,
    pub content_type: &'static str,
    /// The non-empty version the file carries (JSON `"version"` or the
    /// `# version` line).
    pub version: Option<String>,
}

/// Reads `source` and sniffs it.
pub fn read(source: &Source) -> Result<DtabInput, InputError> {
    let source_name = source.describe();
    let mut bytes = Vec::new();
    let result = match source {
        Source::Stdin => std::io::stdin().lock().read_to_end(&mut bytes).map(drop),
        Source::File(path) => std::fs::read(path).map(|b| bytes = b),
    };
    result.map_err(|error| InputError::Read {
        source_name: source_name.clone(),
        error,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| InputError::NotUtf8 {
        source_name: source_name.clone(),
    })?;
    parse(text, &source_name)
}

/// Sniffs JSON or text and extracts the version.
pub fn parse(text: String, source_name: &str) -> Result<DtabInput, InputError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let dtab = parse_json(trimmed).map_err(|e| InputError::Json {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        let body = serde_json::to_vec(&dtab.dtab).expect("dentries serialize");
        return Ok(DtabInput {
            body: Bytes::from(body),
            content_type: CONTENT_TYPE_JSON,
            version: dtab.version.filter(|v| !v.trim().is_empty()),
        });
    }
    let version = text_version(&text).map(str::to_string);
    Ok(DtabInput {
        body: Bytes::from(text),
        content_type: CONTENT_TYPE_DTAB,
        version,
    })
}

fn parse_json(text: &str) -> Result<VersionedDtab, serde_json::Error> {
    if text.starts_with('[') {
        let dtab: Vec<Dentry> = serde_json::from_str(text)?;
        Ok(VersionedDtab {
            version: None,
            dtab,
        })
    } else {
        serde_json::from_str(text)
    }
}

/// The `<etag>` of a first non-blank line `# version <etag>`.
pub fn text_version(text: &str) -> Option<&str> {
    let line = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let rest = line.strip_prefix('#')?.trim_start();
    let rest = rest.strip_prefix("version")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut words = rest.split_whitespace();
    match (words.next(), words.next()) {
        (Some(version), None) => Some(version),
        _ => None,
    }
}

/// What an update sends as its precondition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precondition {
    /// The `If-Match` value; `None` writes unconditionally (`--force`).
    pub if_match: Option<String>,
    /// Said on stderr before writing.
    pub warning: Option<String>,
}

/// Why an update was refused before anything was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to update dtab {name} without knowing which version it replaces: \
     pass --version <etag>, keep the \"# version <etag>\" line that `namerctl dtab get` prints \
     (or the \"version\" of `namerctl dtab get --json`), or use --force to overwrite whatever is stored"
)]
pub struct VersionRequired {
    pub name: String,
}

/// Chooses the expected version: `--version`, else the file's. With
/// `--force` nothing is expected (clap keeps `--force` and `--version`
/// apart), and a version in the file is ignored with a warning.
pub fn precondition(
    name: &str,
    flag: Option<&str>,
    file_version: Option<&str>,
    force: bool,
    source_name: &str,
) -> Result<Precondition, VersionRequired> {
    let flag = flag.map(str::trim).filter(|v| !v.is_empty());
    if force {
        let warning = file_version.map(|v| {
            format!("warning: ignoring version {v} in {source_name} because --force was given")
        });
        return Ok(Precondition {
            if_match: None,
            warning,
        });
    }
    match (flag, file_version) {
        (Some(flag), Some(file)) if flag != file => Ok(Precondition {
            if_match: Some(flag.to_string()),
            warning: Some(format!(
                "warning: --version {flag} overrides version {file} in {source_name}"
            )),
        }),
        (Some(v), _) | (None, Some(v)) => Ok(Precondition {
            if_match: Some(v.to_string()),
            warning: None,
        }),
        (None, None) => Err(VersionRequired {
            name: name.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_json_and_text() {
        // (input, content type, body sent, version)
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            (
                r#"{"version":"AAAAAAAAAAE=","dtab":[{"prefix":"/svc","dst":"/host"}]}"#,
                CONTENT_TYPE_JSON,
                r#"[{"prefix":"/svc","dst":"/host"}]"#,
                Some("AAAAAAAAAAE="),
            ),
            (
                " \n\t{ \"dtab\" : [ ] , \"extra\": 1 }",
                CONTENT_TYPE_JSON,
                "[]",
                None,
            ),
            (
                r#"{"version":"","dtab":[{"prefix":"/a","dst":"/b"}]}"#,
                CONTENT_TYPE_JSON,
                r#"[{"prefix":"/a","dst":"/b"}]"#,
                None,
            ),
            (
                r#"{"version":null,"dtab":[]}"#,
                CONTENT_TYPE_JSON,
                "[]",
                None,
            ),
            (
                "  [{\"prefix\":\"/a\", \"dst\":\"/b\"}]\n",
                CONTENT_TYPE_JSON,
                r#"[{"prefix":"/a","dst":"/b"}]"#,
                None,
            ),
            (
                "/svc => /host;\n",
                CONTENT_TYPE_DTAB,
                "/svc => /host;\n",
                None,
            ),
            (
                "# version AAAAAAAAAAI=\n/svc  => /host ;\n",
                CONTENT_TYPE_DTAB,
                "# version AAAAAAAAAAI=\n/svc  => /host ;\n",
                Some("AAAAAAAAAAI="),
            ),
            ("", CONTENT_TYPE_DTAB, "", None),
        ];
        for (input, content_type, body, version) in cases {
            let got = parse(input.to_string(), "f").unwrap();
            assert_eq!(got.content_type, *content_type, "{input:?}");
            assert_eq!(got.body, Bytes::from(body.to_string()), "{input:?}");
            assert_eq!(got.version.as_deref(), *version, "{input:?}");
        }
    }

    #[test]
    fn rejects_bad_json() {
        let cases = [
            "{}",
            r#"{"dtab":[null]}"#,
            r#"[{"prefix":"/a"}]"#,
            r#"{"version":1,"dtab":[]}"#,
            "[",
        ];
        for input in cases {
            let err = parse(input.to_string(), "f.json").unwrap_err();
            assert!(
                err.to_string().starts_with("invalid JSON dtab in f.json: "),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn finds_the_version_line() {
        let cases: &[(&str, Option<&str>)] = &[
            ("# version AAAAAAAAAAE=\n/a=>/b;", Some("AAAAAAAAAAE=")),
            ("\n  \n  # version   abc  \n/a=>/b;", Some("abc")),
            ("#version abc\n", Some("abc")),
            ("\u{feff}# version abc\n", Some("abc")),
            ("# version abc\r\n/a=>/b;", Some("abc")),
            ("/a=>/b;\n# version abc\n", None),
            ("# a comment\n# version abc\n", None),
            ("# version\n", None),
            ("# versions abc\n", None),
            ("# version a b\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(text_version(text), *want, "{text:?}");
        }
    }

    #[test]
    fn chooses_the_expected_version() {
        /// (flag, file version, force, if-match, warns)
        type Case = (
            Option<&'static str>,
            Option<&'static str>,
            bool,
            Option<&'static str>,
            bool,
        );
        let cases: &[Case] = &[
            (Some("F"), None, false, Some("F"), false),
            (None, Some("V"), false, Some("V"), false),
            (Some("F"), Some("F"), false, Some("F"), false),
            (Some("F"), Some("V"), false, Some("F"), true),
            (Some(""), Some("V"), false, Some("V"), false),
            (None, None, true, None, false),
            (None, Some("V"), true, None, true),
        ];
        for (flag, file, force, if_match, warns) in cases {
            let got = precondition("internal", *flag, *file, *force, "f").unwrap();
            assert_eq!(
                got.if_match.as_deref(),
                *if_match,
                "{flag:?} {file:?} {force}"
            );
            assert_eq!(got.warning.is_some(), *warns, "{flag:?} {file:?} {force}");
        }
        for flag in [None, Some(""), Some("  ")] {
            let err = precondition("internal", flag, None, false, "f").unwrap_err();
            assert_eq!(err.name, "internal");
            let msg = err.to_string();
            assert!(
                msg.contains("--version") && msg.contains("--force"),
                "{msg}"
            );
            assert!(msg.contains("# version"), "{msg}");
        }
    }

    #[test]
    fn all_three_sources_end_to_end() {
        let text = parse("# version T\n/a=>/b;".to_string(), "f").unwrap();
        let json = parse(r#"{"version":"J","dtab":[]}"#.to_string(), "f").unwrap();
        let none = parse("/a=>/b;".to_string(), "f").unwrap();
        let pick = |input: &DtabInput, flag| {
            precondition("n", flag, input.version.as_deref(), false, "f")
                .ok()
                .and_then(|p| p.if_match)
        };
        assert_eq!(pick(&text, None).as_deref(), Some("T"));
        assert_eq!(pick(&json, None).as_deref(), Some("J"));
        assert_eq!(pick(&none, Some("F")).as_deref(), Some("F"));
        assert_eq!(pick(&text, Some("F")).as_deref(), Some("F"));
        assert_eq!(pick(&json, Some("F")).as_deref(), Some("F"));
        assert_eq!(pick(&none, None), None);
    }
}
