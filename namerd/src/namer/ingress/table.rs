//! The `io.l5d.k8s.ingress` namer's routing table: the Ingresses of its
//! class turned into host and path rules, and the one lookup a request
//! name goes through. Pure: no I/O, so every rule is tested without a
//! server; which backend Services exist is checked by the namer.
//!
//! Order and conflicts, decided once here:
//!
//! - Ingresses are taken oldest first (`creationTimestamp`, then
//!   namespace/name): a host and path (or the default backend) claimed by
//!   an older Ingress stays with it, and the younger rule is reported and
//!   unused. A duplicate inside one Ingress keeps its first rule.
//! - A request's host is looked up exactly, then as a wildcard
//!   (`*.example.com` matches one more label), then in the rules without a
//!   host; the first of these with a matching path decides. Within one
//!   host the longest path wins, `Exact` before `Prefix` at equal length.
//!   No path anywhere: the oldest default backend, if any.
//! - Paths compare by segment (`/a/b` is a prefix of `/a/b/c`, not of
//!   `/a/bc`); a trailing slash is not significant, because the proxy names
//!   a request by its segments. `ImplementationSpecific` is a prefix match;
//!   Linkerd 1.x read such paths as regular expressions, which are refused
//!   here (reported) rather than matched as text they were not meant as.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use crate::namer::k8s::index::PortSpec;

/// The annotation that names an Ingress's class (before
/// `spec.ingressClassName`, and taking precedence over it).
pub(crate) const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// An Ingress by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct IngressKey {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl IngressKey {
    pub(crate) fn of(ingress: &Ingress) -> Option<IngressKey> {
        Some(IngressKey {
            namespace: ingress.metadata.namespace.clone()?,
            name: ingress.metadata.name.clone()?,
        })
    }
}

impl fmt::Display for IngressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Where a matching request goes: a Service port in the Ingress's
/// namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Backend {
    pub(crate) namespace: String,
    pub(crate) service: String,
    pub(crate) port: PortSpec,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = match &self.port {
            PortSpec::Name(name) => name.clone(),
            PortSpec::Number(n) => n.to_string(),
        };
        write!(f, "Service {}/{} port {port}", self.namespace, self.service)
    }
}

/// A rule in force: its backend and the Ingress that owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) ingress: IngressKey,
    pub(crate) backend: Backend,
}

/// Why an Ingress, or one of its rules, routes nothing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Problem {
    pub(crate) ingress: IngressKey,
    pub(crate) message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ingress {}: {}", self.ingress, self.message)
    }
}

/// Which Ingresses a table takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selection {
    /// The class, from the `kubernetes.io/ingress.class` annotation or else
    /// `spec.ingressClassName`. Ingresses without either are not taken
    /// (Kubernetes' rule for controllers that are not the default class).
    pub(crate) class: String,
    /// Linkerd's `ignoreDefaultBackends`: route only by explicit rules.
    pub(crate) ignore_default_backends: bool,
}

/// The class an Ingress asks for, if any.
pub(crate) fn class_of(ingress: &Ingress) -> Option<&str> {
    let annotation = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION));
    annotation
        .map(String::as_str)
        .or_else(|| ingress.spec.as_ref()?.ingress_class_name.as_deref())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    Exact,
    Prefix,
}

/// The rules of one host (or of every host).
#[derive(Clone, Debug, Default, PartialEq)]
struct Paths {
    exact: BTreeMap<Vec<String>, Route>,
    prefix: BTreeMap<Vec<String>, Route>,
}

impl Paths {
    fn best(&self, segments: &[&str]) -> Option<&Route> {
        let key = |n: usize| {
            segments[..n]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        if let Some(route) = self.exact.get(&key(segments.len())) {
            return Some(route);
        }
        (0..=segments.len())
            .rev()
            .find_map(|n| self.prefix.get(&key(n)))
    }

    fn slot(&mut self, kind: Match) -> &mut BTreeMap<Vec<String>, Route> {
        match kind {
            Match::Exact => &mut self.exact,
            Match::Prefix => &mut self.prefix,
        }
    }

    fn routes(&self) -> impl Iterator<Item = &Route> {
        self.exact.values().chain(self.prefix.values())
    }
}

/// Every rule in force, ready for lookups.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Table {
    exact_hosts: BTreeMap<String, Paths>,
    /// `*.example.com` under `example.com`.
    wildcard_hosts: BTreeMap<String, Paths>,
    any_host: Paths,
    default: Option<Route>,
    /// How many Ingresses of the class were read.
    ingresses: usize,
}

impl Table {
    /// Builds the table from every Ingress known, reporting what it cannot
    /// use.
    pub(crate) fn build<'a>(
        all: impl IntoIterator<Item = &'a Ingress>,
        selection: &Selection,
    ) -> (Table, Vec<Problem>) {
        let mut chosen: Vec<(&Ingress, IngressKey)> = all
            .into_iter()
            .filter(|i| class_of(i) == Some(selection.class.as_str()))
            .filter_map(|i| Some((i, IngressKey::of(i)?)))
            .collect();
        // Oldest first; an object without a timestamp (never from a real
        // server) after every dated one.
        chosen.sort_by(|(a, ka), (b, kb)| {
            let created = |i: &Ingress| i.metadata.creation_timestamp.clone();
            (created(a).is_none(), created(a), ka).cmp(&(created(b).is_none(), created(b), kb))
        });
        let mut table = Table {
            ingresses: chosen.len(),
            ..Table::default()
        };
        let mut problems = Vec::new();
        for (ingress, key) in chosen {
            table.add(ingress, &key, selection, &mut problems);
        }
        (table, problems)
    }

    fn add(
        &mut self,
        ingress: &Ingress,
        key: &IngressKey,
        selection: &Selection,
        problems: &mut Vec<Problem>,
    ) {
        let before = problems.len();
        let mut report = |message: String| {
            problems.push(Problem {
                ingress: key.clone(),
                message,
            })
        };
        let Some(spec) = &ingress.spec else {
            report("no spec: routes nothing".into());
            return;
        };
        let mut used = 0;
        if let Some(default) = spec.default_backend.as_ref()
            && !selection.ignore_default_backends
        {
            match (backend(default, &key.namespace), &self.default) {
                (Err(e), _) => report(format!("spec.defaultBackend: {e}")),
                (Ok(_), Some(owner)) => report(format!(
                    "spec.defaultBackend: unused, Ingress {} (older) has the default backend",
                    owner.ingress
                )),
                (Ok(b), None) => {
                    self.default = Some(Route {
                        ingress: key.clone(),
                        backend: b,
                    });
                    used += 1;
                }
            }
        }
        for (r, rule) in spec.rules.iter().flatten().enumerate() {
            let host = rule.host.as_deref().unwrap_or("").to_ascii_lowercase();
            for (p, path) in rule.http.iter().flat_map(|h| &h.paths).enumerate() {
                let field = format!("spec.rules[{r}].http.paths[{p}]");
                let rule = parse_path(path.path.as_deref(), &path.path_type)
                    .and_then(|m| Ok((m, backend(&path.backend, &key.namespace)?)));
                let (kind, segments, backend) = match rule {
                    Ok(((kind, segments), backend)) => (kind, segments, backend),
                    Err(e) => {
                        report(format!("{field}: {e}"));
                        continue;
                    }
                };
                let paths = self.paths_mut(&host);
                let slot = paths.slot(kind);
                if let Some(owner) = slot.get(&segments) {
                    let whose = match owner.ingress == *key {
                        true => "an earlier rule of this Ingress".to_string(),
                        false => format!("Ingress {} (older)", owner.ingress),
                    };
                    report(format!(
                        "{field}: unused, host {:?} path {:?} is routed by {whose}",
                        if host.is_empty() { "*" } else { &host },
                        path.path.as_deref().unwrap_or("/"),
                    ));
                    continue;
                }
                slot.insert(
                    segments,
                    Route {
                        ingress: key.clone(),
                        backend,
                    },
                );
                used += 1;
            }
        }
        if used == 0 && problems.len() == before {
            let why = match selection.ignore_default_backends && spec.default_backend.is_some() {
                true => "no rule with paths, and default backends are ignored",
                false => "no rule with paths and no default backend",
            };
            problems.push(Problem {
                ingress: key.clone(),
                message: format!("{why}: routes nothing"),
            });
        }
    }

    fn paths_mut(&mut self, host: &str) -> &mut Paths {
        if host.is_empty() {
            &mut self.any_host
        } else if let Some(suffix) = host.strip_prefix("*.") {
            self.wildcard_hosts.entry(suffix.to_string()).or_default()
        } else {
            self.exact_hosts.entry(host.to_string()).or_default()
        }
    }

    /// The route for a request to `host` (lower case, no port) with these
    /// path segments.
    pub(crate) fn route(&self, host: &str, segments: &[&str]) -> Option<&Route> {
        let wildcard = host
            .split_once('.')
            .and_then(|(_, suffix)| self.wildcard_hosts.get(suffix));
        [self.exact_hosts.get(host), wildcard, Some(&self.any_host)]
            .into_iter()
            .flatten()
            .find_map(|paths| paths.best(segments))
            .or(self.default.as_ref())
    }

    /// Every route in force (rules and the default backend).
    pub(crate) fn routes(&self) -> impl Iterator<Item = &Route> {
        self.exact_hosts
            .values()
            .chain(self.wildcard_hosts.values())
            .chain(std::iter::once(&self.any_host))
            .flat_map(Paths::routes)
            .chain(self.default.as_ref())
    }

    /// How many Ingresses of the class the table was built from.
    pub(crate) fn ingresses(&self) -> usize {
        self.ingresses
    }
}

/// The characters of a regular expression that no plain URL path has.
const REGEX: &[char] = &[
    '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '^', '$', '\\',
];

fn parse_path(path: Option<&str>, path_type: &str) -> Result<(Match, Vec<String>), String> {
    let kind = match path_type {
        "Exact" => Match::Exact,
        "Prefix" | "ImplementationSpecific" => Match::Prefix,
        other => {
            return Err(format!(
                "pathType {other:?} is not Exact, Prefix or ImplementationSpecific"
            ));
        }
    };
    let text = path.unwrap_or("/");
    if !text.starts_with('/') {
        return Err(format!("path {text:?} is not absolute"));
    }
    if path_type == "ImplementationSpecific" && text.contains(REGEX) {
        return Err(format!(
            "path {text:?} looks like a Linkerd 1.x regular expression; \
             ImplementationSpecific paths are prefixes here"
        ));
    }
    let segments = text
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok((kind, segments))
}

fn backend(b: &IngressBackend, namespace: &str) -> Result<Backend, String> {
    let Some(service) = &b.service else {
        return Err("the backend is a resource, not a Service; only Services are routed".into());
    };
    let port = match service.port.as_ref().map(|p| (&p.name, p.number)) {
        Some((Some(name), None)) if !name.is_empty() => PortSpec::Name(name.clone()),
        Some((None, Some(n))) => PortSpec::Number(
            u16::try_from(n)
                .ok()
                .filter(|n| *n != 0)
                .ok_or_else(|| format!("port number {n} is out of range"))?,
        ),
        _ => return Err("the Service port needs a name or a number".into()),
    };
    Ok(Backend {
        namespace: namespace.to_string(),
        service: service.name.clone(),
        port,
    })
}

#[cfg(test)]
mod tests;
