//! `io.l5d.k8s.ingress`: Kubernetes Ingresses as a rewriting namer, so that
//! an edge proxy routes by Ingress rules without Kubernetes credentials.
//!
//! The proxy's `io.l5d.ingress` identifier names a request
//! `<dstPrefix>/<host>/<path segments...>`; the dtab sends that prefix
//! here (`/ingress => /#/io.l5d.k8s.ingress`). A lookup of
//! `/<host>/<segments...>` finds the Ingress rule for it
//! (`ingress/table.rs`) and answers the path `<dst>/<namespace>/<port>/<service>`
//! (`dst` defaults to `/#/io.l5d.k8s`), which the binder binds again: the
//! backend becomes the very id the `io.l5d.k8s` namer gives, with its
//! address set, its transformers (the daemonset mesh hop) and any dtab
//! rule for it (a canary). This is Linkerd 1.x's ingress identifier split
//! in two: there the proxy watched Ingresses and named the request
//! `/svc/<namespace>/<port>/<service>`; here namerd holds the watch and the
//! proxy only names host and path.
//!
//! One watcher lists and watches the class's Ingresses (every namespace,
//! or `namespace`); the backend Services are checked through a
//! [`Discovery`] (one watcher pair per namespace in use, shared code with
//! the `io.l5d.k8s` namer). No rule: `~`, and the proxy answers 404. A rule
//! whose Service or port does not exist: `~` for its requests only.
//! Everything the table cannot use is reported in [`Namer::state`]
//! (`problem.<n>`), and logged once when it appears and once when it
//! clears. An API failure keeps the last good table (the namer reports
//! itself stale); it is never an empty one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use l5d_dtab::{Activity, Addr, Name, NameError, NameTree, Path};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::k8s::discovery::{Discovery, DiscoveryOptions};
use super::k8s::index::{PortCheck, PortSpec};
use super::{Namer, NamerState, fixed};
use crate::k8s::watch::{self as driver, Update};
use crate::k8s::{ClientError, Connection};

mod table;

use table::{Backend, IngressKey, Problem, Selection, Table};

/// How an [`IngressNamer`] is set up (the `io.l5d.k8s.ingress` keys).
#[derive(Clone, Debug, PartialEq)]
pub struct IngressNamerOptions {
    /// The complete prefix, `/#/io.l5d.k8s.ingress` unless configured.
    pub prefix: Path,
    pub connection: Connection,
    /// The class served (`ingressClass`, default `linkerd`).
    pub class: String,
    /// Only this Kubernetes namespace's Ingresses (`namespace`); all if
    /// unset.
    pub namespace: Option<String>,
    /// Linkerd's `ignoreDefaultBackends`.
    pub ignore_default_backends: bool,
    /// Where a backend is bound next (`dst`): `<dst>/<ns>/<port>/<service>`.
    pub dst: Path,
    /// A watch on which nothing arrives this long is restarted (at least 6 s).
    pub idle_timeout: Duration,
    /// The longest pause between attempts to reach the API server again.
    pub max_backoff: Duration,
}

impl IngressNamerOptions {
    pub fn new(connection: Connection) -> Self {
        IngressNamerOptions {
            prefix: Path::utf8(["#", "io.l5d.k8s.ingress"]),
            connection,
            class: "linkerd".into(),
            namespace: None,
            ignore_default_backends: false,
            dst: Path::utf8(["#", "io.l5d.k8s"]),
            idle_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The `io.l5d.k8s.ingress` namer.
pub struct IngressNamer {
    prefix: Path,
    dst: Path,
    selection: Selection,
    namespace: Option<String>,
    shared: Arc<Shared>,
    discovery: Arc<Discovery>,
    tasks: Vec<AbortHandle>,
}

impl fmt::Debug for IngressNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngressNamer")
            .field("prefix", &self.prefix)
            .field("dst", &self.dst)
            .field("selection", &self.selection)
            .finish_non_exhaustive()
    }
}

impl Drop for IngressNamer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

/// What the Ingress watcher, the backend checker and lookups share.
struct Shared {
    state: Mutex<IngressState>,
    /// Ticks when a lookup may answer differently: the table changed, or a
    /// namespace's Services did.
    changes: watch::Sender<u64>,
    metric_label: String,
}

#[derive(Default)]
struct IngressState {
    ingresses: BTreeMap<IngressKey, Ingress>,
    table: Arc<Table>,
    /// What the table could not use.
    rule_problems: BTreeSet<Problem>,
    /// Routes whose Service or port does not exist.
    backend_problems: BTreeSet<Problem>,
    listed: bool,
    error: Option<String>,
    last_update: Option<SystemTime>,
}

// === impl IngressNamer ===

impl IngressNamer {
    /// Builds the client (reading a kubeconfig or service account now) and
    /// starts the Ingress watcher and the backend checker. Must run inside
    /// a tokio runtime.
    pub async fn new(opts: IngressNamerOptions) -> Result<Self, ClientError> {
        let client = opts.connection.client().await?;
        let metric_label = opts.prefix.show();
        let discovery = Arc::new(Discovery::new(
            client.clone(),
            DiscoveryOptions {
                idle_timeout: opts.idle_timeout,
                max_backoff: opts.max_backoff,
                metric_label: metric_label.clone(),
            },
        ));
        let shared = Arc::new(Shared {
            state: Mutex::new(IngressState::default()),
            changes: watch::Sender::new(0),
            metric_label,
        });
        let selection = Selection {
            class: opts.class,
            ignore_default_backends: opts.ignore_default_backends,
        };
        let api: Api<Ingress> = match &opts.namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let watcher = {
            let (shared, selection) = (shared.clone(), selection.clone());
            tokio::spawn(driver::drive(
                api,
                driver::config(None, opts.idle_timeout),
                opts.max_backoff,
                move |update| shared.ingress(update, &selection),
            ))
        };
        let checker = tokio::spawn(check_backends(shared.clone(), discovery.clone()));
        Ok(IngressNamer {
            prefix: opts.prefix,
            dst: opts.dst,
            selection,
            namespace: opts.namespace,
            shared,
            discovery,
            tasks: vec![watcher.abort_handle(), checker.abort_handle()],
        })
    }

    fn rewrite(&self, backend: &Backend) -> Path {
        let port = match &backend.port {
            PortSpec::Name(name) => name.clone(),
            PortSpec::Number(n) => n.to_string(),
        };
        self.dst
            .concat(&Path::utf8([&backend.namespace, &port, &backend.service]))
    }
}

/// The host label of a name: lower case, without a port.
fn host_of(label: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(label).ok()?.to_ascii_lowercase();
    let host = match text.rsplit_once(':') {
        // `[::1]:80` and `host:80`, not the colons inside `[::1]`.
        Some((host, port)) if !port.contains(']') => host.to_string(),
        _ => text,
    };
    (!host.is_empty()).then_some(host)
}

impl Namer for IngressNamer {
    fn prefix(&self) -> &Path {
        &self.prefix
    }

    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        let mut labels = path.labels();
        let Some(host) = labels.next().and_then(host_of) else {
            return Activity::Ok(NameTree::Neg);
        };
        let Some(segments) = labels
            .map(|l| std::str::from_utf8(l).ok())
            .collect::<Option<Vec<&str>>>()
        else {
            return Activity::Ok(NameTree::Neg);
        };
        let table = {
            let st = self.shared.lock();
            if !st.listed {
                return Activity::Pending;
            }
            st.table.clone()
        };
        let Some(route) = table.route(&host, &segments) else {
            return Activity::Ok(NameTree::Neg);
        };
        let b = &route.backend;
        match self
            .discovery
            .service_port(&b.namespace, &b.service, &b.port)
        {
            Err(e) => Activity::Failed(NameError::namer(path, e.to_string())),
            Ok(None) => Activity::Pending,
            Ok(Some(PortCheck::Found)) => Activity::Ok(NameTree::Leaf(Name::Path(self.rewrite(b)))),
            Ok(Some(PortCheck::NoService | PortCheck::NoPort)) => Activity::Ok(NameTree::Neg),
        }
    }

    fn lookup_changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// A rewriting namer: its answers are paths, never ids.
    fn resolve(&self, _id: &Path) -> watch::Receiver<Addr> {
        fixed(Addr::Neg)
    }

    fn state(&self) -> NamerState {
        let mut state = self.discovery.state();
        let st = self.shared.lock();
        let details = &mut state.details;
        details.insert("ingressClass".into(), self.selection.class.clone());
        details.insert(
            "namespace".into(),
            self.namespace.clone().unwrap_or_else(|| "(all)".into()),
        );
        details.insert("dst".into(), self.dst.show());
        let listed = if st.listed { "listed" } else { "pending" };
        details.insert(
            "ingresses".into(),
            format!(
                "{listed}, {} of the class, {} routes",
                st.table.ingresses(),
                st.table.routes().count()
            ),
        );
        let problems = st.rule_problems.iter().chain(&st.backend_problems);
        for (i, problem) in problems.enumerate() {
            details.insert(format!("problem.{i}"), problem.to_string());
        }
        if let Some(error) = &st.error {
            details.insert("error.ingresses".into(), error.clone());
            state
                .last_error
                .get_or_insert_with(|| format!("ingresses: {error}"));
        }
        state.stale = state.last_error.is_some();
        state.last_update = state.last_update.max(st.last_update);
        state
    }
}

// === impl Shared ===

impl Shared {
    fn lock(&self) -> MutexGuard<'_, IngressState> {
        // Plain inserts and removals: the state is consistent after a panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One update from the Ingress watcher: the table is rebuilt from every
    /// Ingress (they are few, and a rebuild keeps one order rule).
    fn ingress(&self, update: Update<Ingress>, selection: &Selection) {
        let mut st = self.lock();
        // Lookups answered `Pending` until the first list, and wait for a
        // change: the first list is one, even if its table is empty (as
        // `Discovery` does for its first list of Services).
        let mut first = false;
        match update {
            Update::Reset { objects, .. } => {
                first = !st.listed;
                st.ingresses = objects
                    .into_iter()
                    .filter_map(|i| Some((IngressKey::of(&i)?, i)))
                    .collect();
                st.listed = true;
                st.error = None;
            }
            Update::Apply(ingress) => {
                if let Some(key) = IngressKey::of(&ingress) {
                    st.ingresses.insert(key, ingress);
                }
            }
            Update::Delete(ingress) => {
                if let Some(key) = IngressKey::of(&ingress) {
                    st.ingresses.remove(&key);
                }
            }
            Update::Failed(error) => {
                metrics::counter!("namerd_namer_errors_total", "namer" => self.metric_label.clone())
                    .increment(1);
                tracing::warn!(namer = %self.metric_label, %error, "Kubernetes API failed; keeping the last good Ingress rules");
                st.error = Some(error);
                return;
            }
        }
        let (table, problems) = Table::build(st.ingresses.values(), selection);
        let problems: BTreeSet<Problem> = problems.into_iter().collect();
        report(&self.metric_label, &st.rule_problems, &problems);
        st.rule_problems = problems;
        st.last_update = Some(SystemTime::now());
        let changed = first || *st.table != table;
        st.table = Arc::new(table);
        drop(st);
        if changed {
            self.changes.send_modify(|generation| *generation += 1);
        }
    }
}

/// Logs the problems that appeared (once each) and those that cleared.
fn report(namer: &str, before: &BTreeSet<Problem>, after: &BTreeSet<Problem>) {
    for problem in after.difference(before) {
        tracing::warn!(namer, %problem, "Ingress rule not routed");
    }
    for problem in before.difference(after) {
        tracing::info!(namer, %problem, "Ingress problem cleared");
    }
}

/// Checks every route's Service and port whenever the table or a
/// namespace's Services change, and passes Service changes on to lookups.
/// Asking [`Discovery`] also starts the watchers of the backends'
/// namespaces before the first request needs them.
async fn check_backends(shared: Arc<Shared>, discovery: Arc<Discovery>) {
    let mut table_changes = shared.changes.subscribe();
    let mut service_changes = discovery.changes();
    loop {
        let table = shared.lock().table.clone();
        let mut problems = BTreeSet::new();
        for route in table.routes() {
            let b = &route.backend;
            let message = match discovery.service_port(&b.namespace, &b.service, &b.port) {
                Ok(None | Some(PortCheck::Found)) => continue,
                Ok(Some(PortCheck::NoService)) => {
                    format!(
                        "backend Service {}/{} does not exist",
                        b.namespace, b.service
                    )
                }
                Ok(Some(PortCheck::NoPort)) => format!("backend {b}: the Service has no such port"),
                Err(e) => e.to_string(),
            };
            problems.insert(Problem {
                ingress: route.ingress.clone(),
                message,
            });
        }
        {
            let mut st = shared.lock();
            report(&shared.metric_label, &st.backend_problems, &problems);
            st.backend_problems = problems;
        }
        tokio::select! {
            changed = table_changes.changed() => if changed.is_err() { return },
            changed = service_changes.changed() => {
                if changed.is_err() {
                    return;
                }
                shared.changes.send_modify(|generation| *generation += 1);
                // Our own tick: seen, so it does not run the check twice.
                table_changes.borrow_and_update();
            }
        }
    }
}
