//! Linkerd 1.x's `io.l5d.static` configurations: a list of settings, each
//! for the ids (or names) under a `prefix` pattern; every entry whose
//! prefix matches applies, in order, so a later entry overrides an earlier
//! one field by field. `client` uses it over bound ids today; per-name
//! `service` settings (retries, classifiers) can use it as they are.
//!
//! A prefix pattern is a path whose segments are literals, `*` (any one
//! segment) or templates with `{name}` captures (`{service}`,
//! `{service}.svc`); it matches a path that begins with matching
//! segments. A capture can be substituted into a string of the entry
//! (`commonName: "{service}.example"`). As Linkerd's `PathMatcher`, a
//! segment is compared in its shown form and a capture is greedy.

use std::collections::BTreeSet;
use std::fmt;

use l5d_dtab::Path;
use l5d_runtime::config::{ConfigError, typed};
use serde::Deserialize;
use serde_json::Value;

/// `io.l5d.static`'s one key besides `kind`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticKeys {
    configs: Vec<Value>,
}

/// A parsed `prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixPattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Any,
    /// Literal text and capture names, alternating, starting and ending
    /// with (possibly empty) literal text.
    Template(Vec<Part>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Capture(String),
}

/// What a match captured: `(name, value)` in pattern order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures(Vec<(String, String)>);

/// One `io.l5d.static` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<T> {
    pub prefix: PrefixPattern,
    pub value: T,
    /// The entry's field path (`routers[0].client.configs[1]`), for
    /// errors found when it is used.
    pub field: String,
}

/// Settings by prefix (`io.l5d.static`), or one for everything
/// (`io.l5d.global`: one entry whose prefix is `/`).
#[derive(Clone, Debug, PartialEq)]
pub struct Static<T> {
    entries: Vec<Entry<T>>,
}

// === impl PrefixPattern ===

impl PrefixPattern {
    /// Parses `/a/*/{b}/c-{d}`. The error says what is wrong.
    pub fn parse(text: &str) -> Result<PrefixPattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("prefix {text:?} must start with '/'"));
        };
        let mut segments = Vec::new();
        let mut names = BTreeSet::new();
        for seg in rest.split('/').filter(|s| !s.is_empty()) {
            let segment = match seg {
                "*" => Segment::Any,
                _ if seg.contains(['{', '}']) => Segment::Template(template(seg, &mut names)?),
                _ => Segment::Literal(seg.to_string()),
            };
            segments.push(segment);
        }
        Ok(PrefixPattern {
            text: text.to_string(),
            segments,
        })
    }

    /// Matches everything: `/`.
    pub fn root() -> PrefixPattern {
        PrefixPattern {
            text: "/".into(),
            segments: Vec::new(),
        }
    }

    /// The capture names, in pattern order.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().flat_map(|s| match s {
            Segment::Template(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    Part::Capture(name) => Some(name.as_str()),
                    Part::Text(_) => None,
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }

    /// What `path` captures, if it begins with segments this pattern
    /// matches.
    pub fn matches(&self, path: &Path) -> Option<Captures> {
        if path.len() < self.segments.len() {
            return None;
        }
        let shown = path.show();
        let labels = shown.split('/').skip(1);
        let mut captures = Captures::default();
        for (segment, label) in self.segments.iter().zip(labels) {
            match segment {
                Segment::Any => {}
                Segment::Literal(text) if text == label => {}
                Segment::Literal(_) => return None,
                Segment::Template(parts) => {
                    if !capture(parts, label, &mut captures.0) {
                        return None;
                    }
                }
            }
        }
        Some(captures)
    }

    /// Checks that every `{name}` in `template` is captured by this
    /// pattern.
    pub fn check_template(&self, template: &str) -> Result<(), String> {
        let names: BTreeSet<&str> = self.capture_names().collect();
        for used in template_names(template) {
            if !names.contains(used) {
                return Err(format!(
                    "{{{used}}} is not captured by the prefix {}",
                    self.text
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for PrefixPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The parts of a template segment; capture names are unique across the
/// pattern and two captures never touch (their split would be arbitrary).
fn template(seg: &str, names: &mut BTreeSet<String>) -> Result<Vec<Part>, String> {
    let mut parts = vec![Part::Text(String::new())];
    let mut rest = seg;
    while let Some(open) = rest.find('{') {
        let text = &rest[..open];
        if text.contains('}') {
            return Err(format!("unbalanced '}}' in segment {seg:?}"));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("unclosed '{{' in segment {seg:?}"));
        };
        let name = &rest[open + 1..open + close];
        if name.is_empty() || !name.bytes().all(is_name_byte) {
            return Err(format!(
                "capture {{{name}}} in segment {seg:?}: a name is letters, digits, '.', ':' or '-'"
            ));
        }
        if !names.insert(name.to_string()) {
            return Err(format!("capture {{{name}}} appears twice"));
        }
        let after_capture = parts.len() > 1;
        if after_capture && text.is_empty() {
            return Err(format!("two captures touch in segment {seg:?}"));
        }
        if let Some(Part::Text(t)) = parts.last_mut() {
            t.push_str(text);
        }
        parts.push(Part::Capture(name.to_string()));
        parts.push(Part::Text(String::new()));
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unbalanced '}}' in segment {seg:?}"));
    }
    if let Some(Part::Text(t)) = parts.last_mut() {
        t.push_str(rest);
    }
    Ok(parts)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_')
}

/// The `{name}`s of a template string.
fn template_names(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|s| {
        let (name, _) = s.split_once('}')?;
        (!name.is_empty() && name.bytes().all(is_name_byte)).then_some(name)
    })
}

/// Matches one label against a template's parts, pushing its captures;
/// each capture takes the longest value that lets the rest match.
fn capture(parts: &[Part], label: &str, out: &mut Vec<(String, String)>) -> bool {
    match parts {
        [] => label.is_empty(),
        [Part::Text(t), rest @ ..] => label
            .strip_prefix(t.as_str())
            .is_some_and(|l| capture(rest, l, out)),
        [Part::Capture(name), rest @ ..] => {
            // Longest first: the capture ends where the next text begins.
            let ends: Vec<usize> = (1..=label.len())
                .rev()
                .filter(|i| label.is_char_boundary(*i))
                .collect();
            for end in ends {
                let mark = out.len();
                out.push((name.clone(), label[..end].to_string()));
                if capture(rest, &label[end..], out) {
                    return true;
                }
                out.truncate(mark);
            }
            false
        }
    }
}

// === impl Captures ===

impl Captures {
    /// `template` with every `{name}` captured replaced by its value.
    pub fn substitute(&self, template: &str) -> String {
        let mut out = template.to_string();
        for (name, value) in &self.0 {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

// === impl Static ===

/// `io.l5d.global` with the defaults: what an absent section means.
impl<T: Default> Default for Static<T> {
    fn default() -> Self {
        Static::global(T::default(), String::new())
    }
}

impl<T> Static<T> {
    /// `io.l5d.global`: `value` for every path.
    pub fn global(value: T, field: String) -> Self {
        Static {
            entries: vec![Entry {
                prefix: PrefixPattern::root(),
                value,
                field,
            }],
        }
    }

    /// `io.l5d.static`: the entries, in the order they override.
    pub fn new(entries: Vec<Entry<T>>) -> Self {
        Static { entries }
    }

    /// Reads a `client` or `service` section (`what`) at `field`:
    /// `io.l5d.global` (the default kind; `parse` reads the section under
    /// the root prefix) or `io.l5d.static` with `configs: [{prefix, ...}]`
    /// (`parse` reads each entry without its `prefix`).
    pub fn parse(
        mut value: Value,
        field: &str,
        what: &str,
        parse: impl Fn(Value, &str, &PrefixPattern) -> Result<T, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let kind = match value.as_object_mut().and_then(|o| o.remove("kind")) {
            None => "io.l5d.global".to_string(),
            Some(Value::String(kind)) => kind,
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{field}.kind"),
                    "expected a string",
                ));
            }
        };
        match kind.as_str() {
            "io.l5d.global" => {
                let value = parse(value, field, &PrefixPattern::root())?;
                Ok(Static::global(value, field.to_string()))
            }
            "io.l5d.static" => {
                let keys: StaticKeys = typed(value, field)?;
                let mut entries = Vec::with_capacity(keys.configs.len());
                for (i, mut item) in keys.configs.into_iter().enumerate() {
                    let at = format!("{field}.configs[{i}]");
                    let prefix = match item.as_object_mut().and_then(|o| o.remove("prefix")) {
                        Some(Value::String(p)) => PrefixPattern::parse(&p)
                            .map_err(|e| ConfigError::new(format!("{at}.prefix"), e))?,
                        Some(_) => {
                            return Err(ConfigError::new(
                                format!("{at}.prefix"),
                                "expected a string",
                            ));
                        }
                        None => return Err(ConfigError::missing(format!("{at}.prefix"))),
                    };
                    let value = parse(item, &at, &prefix)?;
                    entries.push(Entry {
                        prefix,
                        value,
                        field: at,
                    });
                }
                Ok(Static::new(entries))
            }
            other => Err(ConfigError::unsupported_kind(
                field,
                what,
                other,
                "supported: io.l5d.global, io.l5d.static",
            )),
        }
    }

    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// The entries that apply to `path`, in order (later ones override),
    /// with their indexes and captures.
    pub fn matching<'a>(
        &'a self,
        path: &'a Path,
    ) -> impl Iterator<Item = (usize, &'a Entry<T>, Captures)> + 'a {
        self.entries
            .iter()
            .enumerate()
            .filter_map(move |(i, e)| e.prefix.matches(path).map(|c| (i, e, c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs = Option<Vec<(String, String)>>;

    fn caps(pattern: &str, path: &str) -> Pairs {
        let p = PrefixPattern::parse(pattern).unwrap();
        p.matches(&Path::read(path).unwrap()).map(|c| c.0)
    }

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        Some(
            list.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn prefixes_wildcards_and_captures() {
        let cases: &[(&str, &str, Pairs)] = &[
            ("/foo/bar", "/foo/bar", pairs(&[])),
            ("/foo/bar", "/foo/bar/bas", pairs(&[])),
            ("/foo/bar", "/foo/goo", None),
            ("/foo/bar", "/foo", None),
            ("/", "/anything/at/all", pairs(&[])),
            ("/foo/*/bas", "/foo/x/bas/y", pairs(&[])),
            (
                "/#/io.l5d.fs/{service}",
                "/#/io.l5d.fs/world-v1",
                pairs(&[("service", "world-v1")]),
            ),
            ("/$/inet/*/80", "/$/inet/10.0.0.1/80", pairs(&[])),
            ("/$/inet/*/80", "/$/inet/10.0.0.1/81", None),
            (
                "/{a}/x-{b}.svc",
                "/one/x-two.svc/z",
                pairs(&[("a", "one"), ("b", "two")]),
            ),
            ("/{a}-{b}x", "/p-q-rx", pairs(&[("a", "p-q"), ("b", "r")])),
            ("/{a}-{b}x", "/p-q-ry", None),
            ("/{a}-{b}", "/p-q-r", pairs(&[("a", "p-q"), ("b", "r")])),
            ("/x-{a}", "/y-z", None),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(&caps(pattern, path), want, "{pattern} against {path}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        for (pattern, fragment) in [
            ("foo", "must start with '/'"),
            ("/{a}{b}", "touch"),
            ("/{a}/{a}", "twice"),
            ("/{", "unclosed"),
            ("/a}", "unbalanced"),
            ("/{a b}", "a name is"),
        ] {
            let err = PrefixPattern::parse(pattern).unwrap_err();
            assert!(err.contains(fragment), "{pattern}: {err}");
        }
    }

    #[test]
    fn substitution_and_template_checks() {
        let p = PrefixPattern::parse("/#/io.l5d.fs/{service}").unwrap();
        let c = p
            .matches(&Path::read("/#/io.l5d.fs/world").unwrap())
            .unwrap();
        assert_eq!(c.substitute("{service}.example"), "world.example");
        assert_eq!(c.get("service"), Some("world"));
        assert!(p.check_template("{service}.example").is_ok());
        let err = p.check_template("{svc}.example").unwrap_err();
        assert!(err.contains("{svc} is not captured"), "{err}");
        assert!(PrefixPattern::root().check_template("plain").is_ok());
    }

    #[test]
    fn later_entries_come_later() {
        let s = Static::new(vec![
            Entry {
                prefix: PrefixPattern::parse("/#").unwrap(),
                value: 1,
                field: "c[0]".into(),
            },
            Entry {
                prefix: PrefixPattern::parse("/#/io.l5d.fs/{s}").unwrap(),
                value: 2,
                field: "c[1]".into(),
            },
            Entry {
                prefix: PrefixPattern::parse("/$").unwrap(),
                value: 3,
                field: "c[2]".into(),
            },
        ]);
        let id = Path::read("/#/io.l5d.fs/web").unwrap();
        let hits: Vec<(usize, i32)> = s.matching(&id).map(|(i, e, _)| (i, e.value)).collect();
        assert_eq!(hits, [(0, 1), (1, 2)]);
        let g = Static::global(7, "client".into());
        assert_eq!(g.matching(&id).count(), 1);
    }
}
