//! The `default` interpreter: the router's own `dtab`, bound locally with
//! the `/$` global namers only (`/$/inet`, `/$/fail`, `/$/nil`, Linkerd's
//! rewriters), for an edge proxy that runs without namerd.
//!
//! The dtab never changes, so a binding is computed once per key, when it
//! is first asked for, and its channel never changes either. A bound
//! `/$/inet/<host>/<port>` id is resolved through DNS ([`dns`]) and
//! refreshed; an IP literal needs no lookup. Channels are shared and
//! evicted as the mesh interpreter's are.

mod dns;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use l5d_dtab::{Activity, Addr, Binder, Dtab, NoNamers, Path};
use l5d_runtime::watch_cache::spawn_sweeper;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::cache::{self, BindKey, Cache, Entry};
use super::mesh::delegate_json;
use super::state_json;
use super::{BindState, DelegateError, Interpreter, Resolution};

/// How long a binding or address set nobody holds is kept.
const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(600);

/// The `default` interpreter. See the module documentation.
#[derive(Debug)]
pub struct FixedInterpreter {
    dtab: Dtab,
    dns_refresh: Duration,
    binds: Cache<BindKey, BindState>,
    resolves: Cache<Path, Resolution>,
}

/// What a bound id asks of the resolver.
#[derive(Debug, PartialEq)]
enum Target {
    Addr(SocketAddr),
    Host(String, u16),
    Invalid(String),
    /// Not an id this interpreter can resolve.
    Unknown,
}

// === impl FixedInterpreter ===

impl FixedInterpreter {
    /// Must be called within a tokio runtime (DNS refreshes and eviction
    /// run as tasks).
    pub fn new(dtab: Dtab, dns_refresh: Duration) -> Arc<Self> {
        Self::with_idle_ttl(dtab, dns_refresh, DEFAULT_IDLE_TTL)
    }

    pub fn with_idle_ttl(dtab: Dtab, dns_refresh: Duration, idle_ttl: Duration) -> Arc<Self> {
        let this = Arc::new(FixedInterpreter {
            dtab,
            dns_refresh,
            binds: cache::cache(idle_ttl),
            resolves: cache::cache(idle_ttl),
        });
        spawn_sweeper(Arc::downgrade(&this), idle_ttl, |this| {
            this.binds.sweep();
            this.resolves.sweep();
        });
        this
    }

    pub fn dtab(&self) -> &Dtab {
        &self.dtab
    }

    /// The number of bindings and address sets held.
    pub fn len(&self) -> (usize, usize) {
        (self.binds.len(), self.resolves.len())
    }
}

fn bind_now(dtab: &Dtab, name: &Path) -> BindState {
    match Binder::new(dtab, &NoNamers).bind_path(name) {
        Activity::Ok(tree) => BindState::Bound {
            tree: Arc::new(tree),
            at: SystemTime::now(),
        },
        Activity::Failed(e) => BindState::Failed {
            message: e.to_string().into(),
        },
        // The global namers answer at once; kept for completeness.
        Activity::Pending => BindState::Pending,
    }
}

/// `/$/inet/<host>/<port>`, `/$/inet/<port>` (the wildcard address, as
/// Finagle's `InetSocketAddress(port)`), `/$/fixedinet/...` and
/// `/$/io.buoyant.rinet/<port>/<host>`.
fn target(id: &Path) -> Target {
    let id = id.strip_transformer_prefix();
    let labels: Vec<&str> = match id.labels().map(std::str::from_utf8).collect() {
        Ok(l) => l,
        Err(_) => return Target::Unknown,
    };
    let (host, port) = match labels.as_slice() {
        ["$", "inet" | "fixedinet", host, port] => (*host, *port),
        ["$", "inet" | "fixedinet", port] => ("0.0.0.0", *port),
        ["$", "io.buoyant.rinet", port, host] => (*host, *port),
        _ => return Target::Unknown,
    };
    let Ok(port) = port.parse::<u16>() else {
        return Target::Invalid(format!("{}: invalid port `{port}`", id.show()));
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => Target::Addr(SocketAddr::new(ip, port)),
        Err(_) => Target::Host(host.to_owned(), port),
    }
}

impl Interpreter for FixedInterpreter {
    fn bind(&self, local: &Dtab, name: &Path) -> watch::Receiver<BindState> {
        cache::subscribe(&self.binds, BindKey::new(local, name), |key| {
            let state = bind_now(&self.dtab.concat(&key.local), &key.name);
            Entry::start(state, |_| None)
        })
    }

    fn resolve(&self, id: &Path) -> watch::Receiver<Resolution> {
        // Parsed on a miss only: a hit allocates nothing.
        cache::subscribe(&self.resolves, id.clone(), |id| {
            let fixed = |addr| Entry::start(Resolution::now(addr), |_| None);
            match target(id) {
                Target::Addr(addr) => Entry::start(dns::bound([addr]), |_| None),
                Target::Host(host, port) => Entry::start(Resolution::now(Addr::Pending), |entry| {
                    let task = tokio::spawn(dns::run(host, port, entry, self.dns_refresh));
                    Some(task.abort_handle())
                }),
                Target::Invalid(message) => fixed(Addr::Failed(message.into())),
                Target::Unknown => fixed(Addr::Neg),
            }
        })
    }

    fn release(&self, local: &Dtab, name: &Path) {
        self.binds.evict_if_unused(&BindKey::new(local, name));
    }

    fn release_resolution(&self, id: &Path) {
        // Stops the DNS task of a host name.
        self.resolves.evict_if_unused(id);
    }

    fn delegate(
        &self,
        local: &Dtab,
        path: &Path,
    ) -> BoxFuture<'static, Result<Value, DelegateError>> {
        let dtab = self.dtab.concat(local);
        let result = match Binder::new(&dtab, &NoNamers).delegate_path(path) {
            Activity::Ok(trace) => Ok(delegate_json::render(&trace, &|id| {
                self.resolves
                    .peek(id)
                    .map(|e| state_json::addr_json(&e.current().addr))
            })),
            Activity::Failed(e) => Err(DelegateError {
                message: e.to_string(),
            }),
            Activity::Pending => Err(DelegateError {
                message: format!("{}: binding is pending", path.show()),
            }),
        };
        Box::pin(futures::future::ready(result))
    }

    fn state(&self) -> Value {
        let streams = state_json::streams(&self.binds, &self.resolves);
        json!({
            "kind": "default",
            "dtab": self.dtab.show(),
            "dnsRefreshMs": u64::try_from(self.dns_refresh.as_millis()).unwrap_or(u64::MAX),
            "streams": streams,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_of_bound_ids() {
        let t = |s: &str| target(&Path::read(s).unwrap());
        assert_eq!(
            t("/$/inet/127.0.0.1/80"),
            Target::Addr("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            t("/$/inet/::1/80"),
            Target::Addr("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            t("/$/inet/8080"),
            Target::Addr("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            t("/$/inet/localhost/80"),
            Target::Host("localhost".into(), 80)
        );
        assert_eq!(
            t("/$/io.buoyant.rinet/80/example.com"),
            Target::Host("example.com".into(), 80)
        );
        assert_eq!(
            t("/$/inet/localhost/99999"),
            Target::Invalid("/$/inet/localhost/99999: invalid port `99999`".into())
        );
        assert_eq!(t("/#/io.l5d.fs/web"), Target::Unknown);
    }
}
