//! Where namerd is: the base URL from the `--base-url` flag, else the
//! `NAMERCTL_BASE_URL` environment variable, else the `base-url` key of a
//! config file, as the Go namerctl (viper) resolved it; else namerd's own
//! default address, `http://127.0.0.1:4180`, which is what a user who just
//! started namerd on this machine expects (the Go tool failed instead).
//!
//! The config file is the one given by `--config`, else the first
//! `.namerctl.yaml`, `.namerctl.yml` or `.namerctl.json` found in the
//! current directory or one of its parents. TOML, which viper also read, is
//! not supported; a `.namerctl.toml` is reported rather than ignored.
//!
//! The resolver takes the environment value and the current directory as
//! parameters, so it is tested without touching the process environment.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The config file names searched for, in order, in each directory.
pub const CONFIG_FILE_NAMES: [&str; 3] = [".namerctl.yaml", ".namerctl.yml", ".namerctl.json"];

/// namerd's default HTTP API address (`io.l5d.httpController` on 4180),
/// used when nothing names another.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:4180";

/// Everything the base URL may come from.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    /// The `--base-url` flag.
    pub flag: Option<&'a str>,
    /// The value of `NAMERCTL_BASE_URL`.
    pub env: Option<&'a str>,
    /// The `--config` flag.
    pub config_file: Option<&'a Path>,
    /// Where the search for `.namerctl.*` starts.
    pub cwd: &'a Path,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("empty base URL")]
    Empty,
    #[error("invalid base URL: {value}")]
    Invalid { value: String },
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error(
        "config file {}: TOML is not supported; use .namerctl.yaml, .namerctl.yml or .namerctl.json",
        path.display()
    )]
    UnsupportedFormat { path: PathBuf },
}

/// A validated `http://` or `https://` namerd location.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The base path, always ending with `/`.
    path: String,
}

// === impl BaseUrl ===

impl BaseUrl {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ConfigError::Empty);
        }
        let invalid = || ConfigError::Invalid {
            value: value.to_string(),
        };
        let uri: http::Uri = value.parse().map_err(|_| invalid())?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(invalid());
        };
        if authority.host().is_empty() {
            return Err(invalid());
        }
        if !matches!(scheme.as_str(), "http" | "https") {
            return Err(invalid());
        }
        let mut path = uri.path().to_string();
        if !path.ends_with('/') {
            path.push('/');
        }
        Ok(BaseUrl {
            scheme: scheme.clone(),
            authority: authority.clone(),
            path,
        })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == http::uri::Scheme::HTTPS
    }

    /// The host and port to dial (the scheme's port if none is given).
    pub fn host_port(&self) -> (&str, u16) {
        let default = if self.is_https() { 443 } else { 80 };
        let host = self.authority.host();
        // `[::1]` is dialled and verified as `::1`.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        (host, self.authority.port_u16().unwrap_or(default))
    }

    /// `<base>/api/1/dtabs` followed by the given segments, each
    /// percent-encoded so a name or version cannot change the route.
    pub fn dtabs_uri(&self, segments: &[&str]) -> http::Uri {
        self.build(self.dtabs_path(segments))
            .expect("a validated base URL and percent-encoded segments form a URI")
    }

    /// [`dtabs_uri`](Self::dtabs_uri) with a query namerd sent (the next
    /// page of a history); `None` if it is not a valid query.
    pub fn dtabs_uri_with_query(&self, segments: &[&str], query: &str) -> Option<http::Uri> {
        self.build(format!("{}?{query}", self.dtabs_path(segments)))
    }

    /// `<base>/api/1/<segments>?<k>=<v>&...`, every part percent-encoded
    /// (the interpreter routes, e.g. `delegate/<ns>?path=...`).
    pub fn api_uri(&self, segments: &[&str], query: &[(&str, &str)]) -> http::Uri {
        let mut path = format!("{}api/1", self.path);
        for segment in segments {
            path.push('/');
            path.push_str(&percent_encode(segment));
        }
        let pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        if !pairs.is_empty() {
            path = format!("{path}?{}", pairs.join("&"));
        }
        self.build(path)
            .expect("a validated base URL and percent-encoded parts form a URI")
    }

    fn dtabs_path(&self, segments: &[&str]) -> String {
        let mut path = format!("{}api/1/dtabs", self.path);
        for segment in segments {
            path.push('/');
            path.push_str(&percent_encode(segment));
        }
        path
    }

    fn build(&self, path_and_query: String) -> Option<http::Uri> {
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .ok()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.trim_end_matches('/');
        write!(f, "{}://{}{}", self.scheme, self.authority, path)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({self})")
    }
}

/// Encodes everything but RFC 3986 unreserved characters; base64 versions
/// contain `/`, `+` and `=`.
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where the base URL in use came from, for `--verbose`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    File(PathBuf),
    /// Nothing was configured: [`DEFAULT_BASE_URL`].
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("from --base-url"),
            Origin::Env => f.write_str("from NAMERCTL_BASE_URL"),
            Origin::File(path) => write!(f, "from {}", path.display()),
            Origin::Default => f.write_str(
                "the default: no --base-url, NAMERCTL_BASE_URL or base-url in a .namerctl file",
            ),
        }
    }
}

/// Resolves the base URL: flag, else environment, else config file, else
/// [`DEFAULT_BASE_URL`].
///
/// An explicit `--config` file is always read, so a typo in its name is
/// reported even when the flag or environment supplies the URL; a searched
/// file is only read when it is needed. An empty environment value counts
/// as unset, as it did for viper; an empty value anywhere else is an error,
/// not a reason to fall back.
pub fn resolve_base_url(sources: &Sources<'_>) -> Result<(BaseUrl, Origin), ConfigError> {
    let explicit = match sources.config_file {
        Some(path) => Some((path.to_path_buf(), read_config(path)?)),
        None => None,
    };
    if let Some(flag) = sources.flag {
        return Ok((BaseUrl::parse(flag)?, Origin::Flag));
    }
    if let Some(env) = sources.env.filter(|v| !v.trim().is_empty()) {
        return Ok((BaseUrl::parse(env)?, Origin::Env));
    }
    let file = match explicit {
        Some(file) => Some(file),
        None => match find_config(sources.cwd)? {
            Some(path) => {
                let file = read_config(&path)?;
                Some((path, file))
            }
            None => None,
        },
    };
    match file.and_then(|(path, f)| f.base_url.map(|url| (path, url))) {
        Some((path, url)) => Ok((BaseUrl::parse(&url)?, Origin::File(path))),
        None => Ok((BaseUrl::parse(DEFAULT_BASE_URL)?, Origin::Default)),
    }
}

/// The keys of a `.namerctl.*` file; unknown keys are ignored.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(rename = "base-url")]
    base_url: Option<String>,
}

/// The first config file in `start` or one of its parents.
fn find_config(start: &Path) -> Result<Option<PathBuf>, ConfigError> {
    for dir in start.ancestors() {
        for name in CONFIG_FILE_NAMES {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(Some(path));
            }
        }
        let toml = dir.join(".namerctl.toml");
        if toml.is_file() {
            return Err(ConfigError::UnsupportedFormat { path: toml });
        }
    }
    Ok(None)
}

fn read_config(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(path, &text)
}

/// Parses by extension: `.json` as JSON, `.toml` is refused, anything else
/// as YAML (which also reads most JSON).
fn parse_config(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Err(ConfigError::UnsupportedFormat {
            path: path.to_path_buf(),
        }),
        Some("json") => serde_json::from_str(text).map_err(|e| parse_error(e.to_string())),
        _ if text.trim().is_empty() => Ok(ConfigFile::default()),
        _ => serde_saphyr::from_str(text).map_err(|e| parse_error(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources<'a>(
        flag: Option<&'a str>,
        env: Option<&'a str>,
        config_file: Option<&'a Path>,
        cwd: &'a Path,
    ) -> Sources<'a> {
        Sources {
            flag,
            env,
            config_file,
            cwd,
        }
    }

    #[test]
    fn parses_and_joins_base_urls() {
        let cases = [
            ("http://namerd:4180", "http://namerd:4180/api/1/dtabs/x"),
            ("http://namerd:4180/", "http://namerd:4180/api/1/dtabs/x"),
            ("http://h/prefix", "http://h/prefix/api/1/dtabs/x"),
            ("http://h/prefix/", "http://h/prefix/api/1/dtabs/x"),
            ("  http://127.0.0.1:1 ", "http://127.0.0.1:1/api/1/dtabs/x"),
        ];
        for (base, want) in cases {
            let url = BaseUrl::parse(base).unwrap();
            assert_eq!(url.dtabs_uri(&["x"]).to_string(), want, "{base}");
        }
        let url = BaseUrl::parse("http://h:1").unwrap();
        assert_eq!(url.dtabs_uri(&[]).to_string(), "http://h:1/api/1/dtabs");
        assert_eq!(url.to_string(), "http://h:1");
    }

    #[test]
    fn encodes_segments() {
        let url = BaseUrl::parse("http://h").unwrap();
        assert_eq!(
            url.dtabs_uri(&["internal", "history", "AB+/cw=="])
                .to_string(),
            "http://h/api/1/dtabs/internal/history/AB%2B%2Fcw%3D%3D"
        );
        assert_eq!(percent_encode("a b/c?d#e"), "a%20b%2Fc%3Fd%23e");
    }

    #[test]
    fn rejects_bad_base_urls() {
        let cases = [
            ("", "empty base URL"),
            ("   ", "empty base URL"),
            ("namerd:4180", "invalid base URL: namerd:4180"),
            ("namerd", "invalid base URL: namerd"),
            ("/api", "invalid base URL: /api"),
            ("ftp://namerd", "invalid base URL: ftp://namerd"),
            ("http://", "invalid base URL: http://"),
        ];
        for (value, want) in cases {
            let err = BaseUrl::parse(value).unwrap_err();
            assert_eq!(err.to_string(), want, "{value:?}");
        }
        let https = BaseUrl::parse("https://namerd:4180").unwrap();
        assert!(https.is_https());
        assert_eq!(https.host_port(), ("namerd", 4180));
        assert_eq!(
            BaseUrl::parse("https://[::1]").unwrap().host_port(),
            ("::1", 443)
        );
    }

    #[test]
    fn flag_beats_env_beats_config_file_in_a_parent() {
        let root = tempfile::tempdir().unwrap();
        let child = root.path().join("a/b");
        std::fs::create_dir_all(&child).unwrap();
        std::fs::write(
            root.path().join(".namerctl.yaml"),
            "base-url: http://from-file:4180\nother: 1\n",
        )
        .unwrap();
        let cwd = child.as_path();

        let cases = [
            (Some("http://flag:1"), Some("http://env:2"), "http://flag:1"),
            (None, Some("http://env:2"), "http://env:2"),
            (None, Some(""), "http://from-file:4180"),
            (None, None, "http://from-file:4180"),
        ];
        for (flag, env, want) in cases {
            let (got, _) = resolve_base_url(&sources(flag, env, None, cwd)).unwrap();
            assert_eq!(got.to_string(), want, "flag={flag:?} env={env:?}");
        }
        let origins = [
            (Some("http://flag:1"), None, Origin::Flag),
            (None, Some("http://env:2"), Origin::Env),
            (None, None, Origin::File(root.path().join(".namerctl.yaml"))),
        ];
        for (flag, env, want) in origins {
            let (_, got) = resolve_base_url(&sources(flag, env, None, cwd)).unwrap();
            assert_eq!(got, want, "flag={flag:?} env={env:?}");
        }
    }

    #[test]
    fn nearest_config_file_wins_and_json_is_read() {
        let root = tempfile::tempdir().unwrap();
        let child = root.path().join("a");
        std::fs::create_dir_all(&child).unwrap();
        std::fs::write(root.path().join(".namerctl.yml"), "base-url: http://far\n").unwrap();
        std::fs::write(
            child.join(".namerctl.json"),
            r#"{"base-url": "http://near:9"}"#,
        )
        .unwrap();
        let (got, _) = resolve_base_url(&sources(None, None, None, &child)).unwrap();
        assert_eq!(got.to_string(), "http://near:9");
    }

    #[test]
    fn explicit_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("namerctl.yaml");
        std::fs::write(&file, "base-url: http://explicit:4180\n").unwrap();
        let (got, _) = resolve_base_url(&sources(None, None, Some(&file), dir.path())).unwrap();
        assert_eq!(got.to_string(), "http://explicit:4180");

        let missing = dir.path().join("missing.yaml");
        let err = resolve_base_url(&sources(
            Some("http://flag"),
            None,
            Some(&missing),
            dir.path(),
        ))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }

    #[test]
    fn nothing_configured_is_namerds_default_address() {
        let dir = tempfile::tempdir().unwrap();
        let got = resolve_base_url(&sources(None, None, None, dir.path())).unwrap();
        assert_eq!(got.0.to_string(), DEFAULT_BASE_URL);
        assert_eq!(got.1, Origin::Default);

        // A file without the key configures nothing either.
        std::fs::write(dir.path().join(".namerctl.yaml"), "other: 1\n").unwrap();
        let got = resolve_base_url(&sources(None, None, None, dir.path())).unwrap();
        assert_eq!(got.0.to_string(), DEFAULT_BASE_URL);
        assert_eq!(got.1, Origin::Default);
    }

    #[test]
    fn missing_or_unusable_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".namerctl.yaml"), "base-url: ''\n").unwrap();
        let err = resolve_base_url(&sources(None, None, None, dir.path())).unwrap_err();
        assert_eq!(err.to_string(), "empty base URL");
        let err = resolve_base_url(&sources(Some(" "), None, None, dir.path())).unwrap_err();
        assert_eq!(err.to_string(), "empty base URL");

        std::fs::write(dir.path().join(".namerctl.yaml"), "base-url: [\n").unwrap();
        let err = resolve_base_url(&sources(None, None, None, dir.path())).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");

        let toml_dir = tempfile::tempdir().unwrap();
        std::fs::write(toml_dir.path().join(".namerctl.toml"), "base-url = \"x\"").unwrap();
        let err = resolve_base_url(&sources(None, None, None, toml_dir.path())).unwrap_err();
        assert!(
            matches!(err, ConfigError::UnsupportedFormat { .. }),
            "{err}"
        );
    }
}
