//! `io.l5d.rewrite`: a namer that turns a path matching a pattern into
//! another path, to be bound again through the dtab (Linkerd's
//! `RewritingNamer` over Finagle-buoyant's `PathMatcher`).
//!
//! A pattern is a `/`-separated list of segments, each a literal, `*` (any
//! one label) or `{var}` (any one label, captured); `{var}:suffix` captures
//! the part before the colon of a `host:suffix` label. The pattern matches a
//! prefix of the path; labels after it are dropped, as in Linkerd. Captures
//! are substituted textually into the `name` template, in their shown form.
//!
//! Pure: no I/O, no addresses (ids under this prefix never resolve).

use std::fmt;

use l5d_dtab::{Activity, Addr, Name, NameTree, Path};
use tokio::sync::watch;

use super::{Namer, NamerState, fixed};

/// A `pattern` or `name` that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("pattern {pattern:?} has an empty segment")]
    EmptySegment { pattern: String },
    #[error("name {name:?} uses a variable that pattern {pattern:?} does not capture")]
    UnknownVariable { name: String, pattern: String },
    #[error("name {name:?} is not a path: {reason}")]
    NotAPath { name: String, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `*`
    Any,
    Literal(String),
    /// `{var}`
    Capture(String),
    /// `{var}:suffix`, matching `value:suffix`.
    CaptureBefore {
        var: String,
        suffix: String,
    },
}

/// Extracts variables from the first labels of a path.
#[derive(Clone, PartialEq, Eq)]
pub struct PathMatcher {
    expr: String,
    segments: Vec<Segment>,
}

impl fmt::Debug for PathMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathMatcher({})", self.expr)
    }
}

impl PathMatcher {
    /// Reads a pattern such as `/{port}/{ns}/{svc}` or `/svc/*/{host}:80`.
    pub fn new(expr: &str) -> Result<Self, RewriteError> {
        let mut parts = java_split(expr, '/');
        // Leading empty strings are dropped (the leading `/`), as upstream;
        // an empty segment inside could never match a label, so refuse it.
        let first = parts
            .iter()
            .position(|p| !p.is_empty())
            .unwrap_or(parts.len());
        parts.drain(..first);
        let segments = parts
            .into_iter()
            .map(|seg| {
                if seg.is_empty() {
                    return Err(RewriteError::EmptySegment {
                        pattern: expr.to_string(),
                    });
                }
                Ok(classify(seg))
            })
            .collect::<Result<_, _>>()?;
        Ok(PathMatcher {
            expr: expr.to_string(),
            segments,
        })
    }

    /// The captured variables (name, shown label) if `path` starts with a
    /// match, in pattern order.
    pub fn extract(&self, path: &Path) -> Option<Vec<(String, String)>> {
        if path.len() < self.segments.len() {
            return None;
        }
        let mut vars = Vec::new();
        for (segment, label) in self.segments.iter().zip(path.labels()) {
            let shown = show_label(label);
            match segment {
                Segment::Any => {}
                Segment::Literal(lit) if *lit == shown => {}
                Segment::Literal(_) => return None,
                Segment::Capture(var) => vars.push((var.clone(), shown)),
                Segment::CaptureBefore { var, suffix } => match java_split(&shown, ':')[..] {
                    [value, s] if s == suffix => vars.push((var.clone(), value.to_string())),
                    _ => return None,
                },
            }
        }
        Some(vars)
    }

    fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Capture(v) | Segment::CaptureBefore { var: v, .. } => Some(v.as_str()),
            _ => None,
        })
    }
}

/// One pattern segment, classified in upstream's order of tests.
fn classify(seg: &str) -> Segment {
    if seg == "*" {
        return Segment::Any;
    }
    if let Some(var) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        return Segment::Capture(var.to_string());
    }
    if let [head, suffix] = java_split(seg, ':')[..]
        && let Some(var) = head.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
    {
        return Segment::CaptureBefore {
            var: var.to_string(),
            suffix: suffix.to_string(),
        };
    }
    Segment::Literal(seg.to_string())
}

/// Java's `String.split` with a one-character literal: trailing empty
/// strings are removed.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// A label as `Path::show` writes it (Finagle's `showElems`).
fn show_label(label: &[u8]) -> String {
    let shown = Path::try_from_labels([label])
        .expect("path labels are never empty")
        .show();
    shown[1..].to_string()
}

/// Replaces every `{var}` of `template` with its value.
fn substitute(template: &str, vars: &[(String, String)]) -> String {
    vars.iter().fold(template.to_string(), |acc, (k, v)| {
        acc.replace(&format!("{{{k}}}"), v)
    })
}

/// The `io.l5d.rewrite` namer.
#[derive(Debug)]
pub struct RewriteNamer {
    prefix: Path,
    matcher: PathMatcher,
    name: String,
}

impl RewriteNamer {
    /// A namer at `prefix` (complete, e.g. `/#/k8s-rewrite`) rewriting
    /// paths matching `pattern` to `name`. Fails if `name` could not be a
    /// path whatever the captured values.
    pub fn new(prefix: Path, pattern: &str, name: &str) -> Result<Self, RewriteError> {
        let matcher = PathMatcher::new(pattern)?;
        let sample: Vec<(String, String)> = matcher
            .variables()
            .map(|v| (v.to_string(), "x".to_string()))
            .collect();
        let probe = substitute(name, &sample);
        if probe.contains('{') {
            return Err(RewriteError::UnknownVariable {
                name: name.to_string(),
                pattern: pattern.to_string(),
            });
        }
        Path::read(&probe).map_err(|e| RewriteError::NotAPath {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(RewriteNamer {
            prefix,
            matcher,
            name: name.to_string(),
        })
    }

    /// The rewritten path, if `path` matches.
    pub fn rewrite(&self, path: &Path) -> Option<Path> {
        let vars = self.matcher.extract(path)?;
        // Only an empty capture (`{h}:80` against `:80`) can fail to read;
        // Linkerd would fail the lookup, we answer `~` like the core's
        // rewriting namers do for empty labels.
        Path::read(&substitute(&self.name, &vars)).ok()
    }
}

impl Namer for RewriteNamer {
    fn prefix(&self) -> &Path {
        &self.prefix
    }

    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        Activity::Ok(match self.rewrite(path) {
            Some(p) => NameTree::Leaf(Name::Path(p)),
            None => NameTree::Neg,
        })
    }

    /// Answers depend on the path alone: never changes (the channel is
    /// closed, so waiters drop it).
    fn lookup_changes(&self) -> watch::Receiver<u64> {
        fixed(0)
    }

    fn resolve(&self, _id: &Path) -> watch::Receiver<Addr> {
        fixed(Addr::Neg)
    }

    fn state(&self) -> NamerState {
        let mut state = NamerState::default();
        state
            .details
            .insert("pattern".to_string(), self.matcher.expr.clone());
        state.details.insert("name".to_string(), self.name.clone());
        state
    }
}
