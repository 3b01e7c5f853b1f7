//! DNS for the ids the global namer binds: `/$/inet/<host>/<port>`,
//! `/$/inet/<port>` (the loopback address), `/$/fixedinet/<host>/<port>` and
//! `/$/io.buoyant.rinet/<port>/<host>`, kept current as Finagle's
//! `InetResolver` and `FixedInetResolver` do.
//!
//! One task per watched `(host, port)` re-resolves the name every refresh
//! interval (`inet`, `rinet`) or until it first succeeds (`fixedinet`), and
//! stops when nobody watches any more. A failed lookup keeps the last good
//! set; only a name that never resolved reports `Addr::Failed`.
//!
//! Also here: [`HostResolver`], the one way namers turn host names into IPs,
//! so that tests can replace the system resolver. This module knows nothing
//! of configuration or of the interpreter.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use l5d_dtab::{Addr, Endpoint, Path};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::{NamerState, fixed};

/// The metric label under which DNS failures of `/$` ids are counted.
const METRIC_LABEL: &str = "/$/inet";

type LookupFn = dyn Fn(String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync;

/// Turns a host name into IP addresses: the system resolver
/// (`getaddrinfo` through `tokio::net::lookup_host`), or a function a test
/// supplies. IP literals never reach the function.
#[derive(Clone)]
pub struct HostResolver {
    lookup: Arc<LookupFn>,
}

impl fmt::Debug for HostResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostResolver")
    }
}

impl Default for HostResolver {
    fn default() -> Self {
        HostResolver::system()
    }
}

impl HostResolver {
    /// The operating system's resolver.
    pub fn system() -> Self {
        HostResolver::from_fn(|host| async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }

    /// A resolver answering with `f` (tests).
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<Vec<IpAddr>>> + Send + 'static,
    {
        HostResolver {
            lookup: Arc::new(move |host| Box::pin(f(host))),
        }
    }

    /// The addresses of `host`, sorted and without duplicates; an IP
    /// literal (`10.0.0.1`, `::1`, `[::1]`) is its own answer. An empty
    /// answer is an error: a name without addresses cannot be used.
    pub async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![ip]);
        }
        let mut ips = (self.lookup)(host.to_string()).await?;
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no addresses"),
            ));
        }
        Ok(ips)
    }
}

/// `host` as an IP address, if it is one (IPv6 possibly in brackets).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// How often names are resolved again.
#[derive(Clone, Debug)]
pub struct InetOptions {
    /// For `/$/inet` and `/$/io.buoyant.rinet` (Finagle polls every 5 s).
    pub refresh: Duration,
    pub resolver: HostResolver,
    /// Hostnames watched at once at most. Ids arrive from clients
    /// (`StreamReplicas`, `/api/1/addr`), and a client asking for endless
    /// random names must not start endless DNS tasks (Linkerd #1766).
    pub max_names: usize,
}

/// The default of [`InetOptions::max_names`].
pub const MAX_NAMES: usize = 10_000;

impl Default for InetOptions {
    fn default() -> Self {
        InetOptions {
            refresh: Duration::from_secs(5),
            resolver: HostResolver::system(),
            max_names: MAX_NAMES,
        }
    }
}

/// What a `/$` inet id names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Target {
    host: String,
    port: u16,
    /// `fixedinet`: resolved until it first succeeds, never again.
    once: bool,
}

impl Target {
    /// Reads `/$/inet/<host>/<port>`, `/$/inet/<port>`, `/$/fixedinet/...`
    /// and `/$/io.buoyant.rinet/<port>/<host>`; the error is the address to
    /// answer instead.
    fn parse(id: &Path) -> Result<Target, Addr> {
        let labels: Vec<&str> = match id.labels().map(std::str::from_utf8).collect() {
            Ok(labels) => labels,
            Err(_) => return Err(Addr::Neg),
        };
        let (host, port, once) = match labels.as_slice() {
            ["$", "inet", port] => ("", *port, false),
            ["$", "inet", host, port] => (*host, *port, false),
            ["$", "fixedinet", port] => ("", *port, true),
            ["$", "fixedinet", host, port] => (*host, *port, true),
            ["$", "io.buoyant.rinet", port, host] => (*host, *port, false),
            _ => return Err(Addr::Neg),
        };
        let port = parse_port(port).ok_or_else(|| {
            Addr::Failed(format!("{id}: port {port} is not a port number (0-65535)").into())
        })?;
        Ok(Target {
            host: host.to_string(),
            port,
            once,
        })
    }
}

/// A port as Java's `Integer.parseInt` reads it (an optional sign), in range.
fn parse_port(s: &str) -> Option<u16> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the admin page shows of one watched name.
#[derive(Debug, Default)]
struct Status {
    last_error: Option<String>,
    last_update: Option<SystemTime>,
}

struct Entry {
    tx: Arc<watch::Sender<Addr>>,
    status: Arc<Mutex<Status>>,
    task: AbortHandle,
}

type Entries = Mutex<HashMap<Target, Entry>>;

/// Resolves `/$/inet`-style ids to live address sets.
pub struct InetResolver {
    opts: InetOptions,
    entries: Arc<Entries>,
}

impl fmt::Debug for InetResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let watched = self.entries.lock().expect("inet lock").len();
        f.debug_struct("InetResolver")
            .field("opts", &self.opts)
            .field("watched", &watched)
            .finish()
    }
}

impl Default for InetResolver {
    fn default() -> Self {
        InetResolver::new()
    }
}

impl Drop for InetResolver {
    fn drop(&mut self) {
        for entry in self.entries.lock().expect("inet lock").values() {
            entry.task.abort();
        }
    }
}

impl InetResolver {
    /// The system resolver, refreshing every 5 s.
    pub fn new() -> Self {
        InetResolver::with_options(InetOptions::default())
    }

    pub fn with_options(opts: InetOptions) -> Self {
        InetResolver {
            opts,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The live addresses of `id`, the full `/$/...` id as the global
    /// namer binds it. Ids that are not inet ids are `Neg`. Hostnames start
    /// (or join) a background task, so this must run inside a tokio runtime.
    pub fn resolve(&self, id: &Path) -> watch::Receiver<Addr> {
        let mut target = match Target::parse(id) {
            Ok(target) => target,
            Err(addr) => return fixed(addr),
        };
        if target.host.is_empty() {
            // Java's `InetAddress.getByName("")` is the loopback address.
            target.host = Ipv4Addr::LOCALHOST.to_string();
        }
        if let Some(ip) = ip_literal(&target.host) {
            let endpoint = Endpoint::new(SocketAddr::new(ip, target.port));
            return fixed(Addr::bound(vec![endpoint]));
        }
        let mut entries = self.entries.lock().expect("inet lock");
        if let Some(entry) = entries.get(&target) {
            // An entry without receivers has a task that is stopping (or
            // stopped): never join it, replace it.
            if entry.tx.receiver_count() > 0 {
                return entry.tx.subscribe();
            }
        }
        if let Some(old) = entries.remove(&target) {
            old.task.abort();
        }
        if entries.len() >= self.opts.max_names {
            // Names nobody watches any more make room first.
            entries.retain(|_, e| {
                let live = e.tx.receiver_count() > 0;
                if !live {
                    e.task.abort();
                }
                live
            });
        }
        if entries.len() >= self.opts.max_names {
            metrics::counter!("namerd_dns_refused_total").increment(1);
            let limit = self.opts.max_names;
            return fixed(Addr::Failed(
                format!("too many DNS names watched at once (the limit is {limit})").into(),
            ));
        }
        let tx = Arc::new(watch::Sender::new(Addr::Pending));
        let rx = tx.subscribe();
        let status = Arc::new(Mutex::new(Status::default()));
        let task = tokio::spawn(watch_name(
            target.clone(),
            tx.clone(),
            status.clone(),
            Arc::downgrade(&self.entries),
            self.opts.clone(),
        ));
        entries.insert(
            target,
            Entry {
                tx,
                status,
                task: task.abort_handle(),
            },
        );
        rx
    }

    /// The watched names and how they fare, for the admin page: `details`
    /// maps `host:port` (`host:port (fixed)` for `fixedinet`) to the
    /// address count or the last error.
    pub fn state(&self) -> NamerState {
        let entries = self.entries.lock().expect("inet lock");
        let mut state = NamerState::default();
        let mut details = BTreeMap::new();
        for (target, entry) in entries.iter() {
            let status = entry.status.lock().expect("inet status lock");
            let summary = match (&*entry.tx.borrow(), &status.last_error) {
                (Addr::Bound(set), None) => format!("{} addresses", set.len()),
                (Addr::Bound(set), Some(e)) => format!("{} addresses (stale: {e})", set.len()),
                (Addr::Pending, _) => "pending".to_string(),
                (other, _) => format!("{other:?}"),
            };
            if let Some(e) = &status.last_error {
                state.stale = true;
                state.last_error = Some(e.clone());
            }
            state.last_update = state.last_update.max(status.last_update);
            let kind = if target.once { " (fixed)" } else { "" };
            details.insert(format!("{}:{}{kind}", target.host, target.port), summary);
        }
        state.details = details;
        state
    }
}

/// Resolves `target` now and every refresh interval (once for `fixedinet`)
/// until nobody watches `tx`.
async fn watch_name(
    target: Target,
    tx: Arc<watch::Sender<Addr>>,
    status: Arc<Mutex<Status>>,
    entries: Weak<Entries>,
    opts: InetOptions,
) {
    let mut resolved = false;
    loop {
        if !(target.once && resolved) {
            resolved |= resolve_once(&target, &tx, &status, &opts.resolver).await;
        }
        tokio::select! {
            () = tokio::time::sleep(opts.refresh) => {}
            () = tx.closed() => {
                // Remove our entry unless `resolve` already replaced it.
                if let Some(entries) = entries.upgrade() {
                    let mut entries = entries.lock().expect("inet lock");
                    if entries.get(&target).is_some_and(|e| Arc::ptr_eq(&e.tx, &tx)) {
                        entries.remove(&target);
                    }
                }
                return;
            }
        }
    }
}

/// One lookup of `target`; true when it succeeded.
async fn resolve_once(
    target: &Target,
    tx: &watch::Sender<Addr>,
    status: &Mutex<Status>,
    resolver: &HostResolver,
) -> bool {
    match resolver.lookup(&target.host).await {
        Ok(ips) => {
            let addr = Addr::bound(
                ips.into_iter()
                    .map(|ip| Endpoint::new(SocketAddr::new(ip, target.port))),
            );
            tx.send_if_modified(|current| {
                let changed = *current != addr;
                *current = addr;
                changed
            });
            let mut status = status.lock().expect("inet status lock");
            status.last_error = None;
            status.last_update = Some(SystemTime::now());
            true
        }
        Err(e) => {
            let message = format!("cannot resolve {}: {e}", target.host);
            metrics::counter!("namerd_namer_errors_total", "namer" => METRIC_LABEL).increment(1);
            let mut status = status.lock().expect("inet status lock");
            if status.last_error.as_deref() != Some(message.as_str()) {
                tracing::warn!(host = %target.host, port = target.port, error = %e, "DNS lookup failed");
            }
            status.last_error = Some(message.clone());
            // A name that resolved before keeps its last good set.
            tx.send_if_modified(|current| match current {
                Addr::Bound { .. } => false,
                Addr::Failed(old) if **old == *message => false,
                _ => {
                    *current = Addr::Failed(message.into());
                    true
                }
            });
            false
        }
    }
}
