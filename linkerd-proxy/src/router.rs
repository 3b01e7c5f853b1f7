//! A router: names each request, finds its route (binding cache), picks a
//! bound id by weight and an endpoint by the balancer, stamps Linkerd's
//! headers and forwards the request, turning every failure into the
//! response Linkerd would give.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use l5d_dtab::Dtab;

use crate::classify::ResponseClass;
use crate::client::{Clients, PooledBody, RequestBody};
use crate::config::{InterpreterConfig, Protocol, RouterConfig, ServerConfig};
use crate::error::ProxyError;
use crate::headers::{self, Destination};
use crate::identify::{self, Identifier};
use crate::interpreter::Interpreter;
use crate::metrics::{Metrics, RequestMetrics};
use crate::overrides::{self, AddressOverrides};

pub mod handle;
pub mod plan;
pub mod routes;

use plan::Plan;
use routes::{Route, RouteKey, Routes, Shared};

/// What the proxy answers with: an upstream's streaming body or a body the
/// proxy made itself (an error response).
pub type ResponseBody = Either<PooledBody, Full<Bytes>>;

/// What a server trusts its clients with.
#[derive(Clone, Debug)]
pub struct ServerPolicy {
    pub clear_context: bool,
    pub address_overrides: AddressOverrides,
    pub max_call_depth: usize,
}

impl ServerPolicy {
    pub fn new(config: &ServerConfig) -> Self {
        ServerPolicy {
            clear_context: config.clear_context,
            address_overrides: config.allow_override_to_addresses.clone(),
            max_call_depth: config.max_call_depth,
        }
    }
}

/// One configured router.
#[derive(Debug)]
pub struct Router {
    protocol: Protocol,
    identifier: Identifier,
    /// Sent with every binding: the router's `dtab` for `io.l5d.mesh`
    /// (the `default` interpreter already holds it).
    base_dtab: Dtab,
    binding_timeout: Duration,
    total_timeout: Option<Duration>,
    shared: Arc<Shared>,
    routes: Routes,
    metrics: RequestMetrics,
    errors: ErrorCounters,
}

impl Router {
    pub fn new(
        config: &RouterConfig,
        interpreter: Arc<dyn Interpreter>,
        clients: Clients,
        metrics: &Metrics,
    ) -> Self {
        let base_dtab = match &config.interpreter {
            InterpreterConfig::Mesh { .. } => config.dtab.clone(),
            InterpreterConfig::Default { .. } => Dtab::empty(),
        };
        let shared = Arc::new(Shared::new(
            config.label.clone(),
            interpreter,
            clients,
            metrics.clone(),
            config.binding_timeout,
        ));
        Router {
            protocol: config.protocol,
            identifier: Identifier::new(config.dst_prefix.clone(), config.identifiers.clone()),
            base_dtab,
            binding_timeout: config.binding_timeout,
            total_timeout: config.service.total_timeout,
            routes: Routes::new(config.binding_cache),
            metrics: metrics.router(&config.label),
            errors: ErrorCounters::new(metrics, &config.label),
            shared,
        }
    }

    pub fn label(&self) -> &str {
        &self.shared.label
    }

    pub fn interpreter(&self) -> &Arc<dyn Interpreter> {
        &self.shared.interpreter
    }

    pub fn routes(&self) -> Vec<Arc<Route>> {
        self.routes.snapshot()
    }

    /// Drops idle routes (each releases its binding and balancers).
    pub fn sweep(&self) {
        self.routes.sweep(&self.shared);
    }

    /// The routes cached now, and the bytes of their keys.
    pub fn route_usage(&self) -> (usize, usize) {
        self.routes.usage()
    }

    /// Serves one request end to end in two steps, [`lookup`](Self::lookup)
    /// then [`forward`](Self::forward). Never fails: errors become
    /// Linkerd's error responses, counted by the route's metrics too once
    /// the request has one.
    pub async fn route(
        &self,
        req: Request<RequestBody>,
        policy: &ServerPolicy,
    ) -> Response<ResponseBody> {
        let start = Instant::now();
        self.metrics.request();
        let (mut parts, body) = req.into_parts();
        let (rsp, route) = match self.lookup(&mut parts, policy) {
            Err(e) => (self.error_response(&e), None),
            Ok(route) => {
                route.metrics.request();
                let rsp = match self.forward(&route, parts, body, start).await {
                    Ok(rsp) => rsp.map(Either::Left),
                    Err(e) => self.error_response(&e),
                };
                (rsp, Some(route))
            }
        };
        let success = !rsp.status().is_server_error();
        let elapsed = start.elapsed();
        self.metrics.response(success, elapsed);
        if let Some(route) = route {
            route.metrics.response(success, elapsed);
        }
        rsp
    }

    /// Counts a failure and makes the response the client sees.
    fn error_response(&self, e: &ProxyError) -> Response<ResponseBody> {
        self.errors.count(e);
        e.to_response().map(Either::Right)
    }

    /// The first step: checks the request's context headers, names it and
    /// finds (or starts) its route. Leaves `parts` ready to forward: context
    /// cleared where untrusted, identifying path segments consumed.
    fn lookup(
        &self,
        parts: &mut http::request::Parts,
        policy: &ServerPolicy,
    ) -> Result<Arc<Route>, ProxyError> {
        let hops = headers::via_hops(&parts.headers);
        if hops >= policy.max_call_depth {
            return Err(ProxyError::CallDepth {
                hops,
                limit: policy.max_call_depth,
            });
        }
        identify::check_authority(parts).map_err(ProxyError::BadHost)?;
        let local = if policy.clear_context {
            headers::clear_context(&mut parts.headers);
            None
        } else {
            overrides::local_dtab(&parts.headers, &policy.address_overrides)?
        };
        if identify::is_unroutable(&parts.method, &parts.uri) {
            return Err(ProxyError::Unidentified(format!(
                "{} {} names no service",
                parts.method, parts.uri
            )));
        }
        let identified = self
            .identifier
            .identify(parts)
            .map_err(ProxyError::Unidentified)?;
        let route = self.route_for(identified.name, local)?;
        if identified.consume > 0
            && let Some(uri) = identify::consume_segments(&parts.uri, identified.consume)
        {
            parts.uri = uri;
        }
        Ok(route)
    }

    /// The second step: waits for the route's plan, picks a bound id and an
    /// endpoint, stamps Linkerd's headers and sends the request, within
    /// the total timeout counted from `start`.
    async fn forward(
        &self,
        route: &Route,
        mut parts: http::request::Parts,
        body: RequestBody,
        start: Instant,
    ) -> Result<Response<PooledBody>, ProxyError> {
        let plan = self.current_plan(route).await?;
        let node = match &*plan {
            Plan::Ready(node) => node,
            Plan::Pending => unreachable!("current_plan waits for a binding"),
            Plan::Failed(message) => {
                return Err(ProxyError::NoRoute {
                    name: route.name.clone(),
                    why: message.to_string(),
                });
            }
            Plan::Unroutable(why) => {
                return Err(ProxyError::NoRoute {
                    name: route.name.clone(),
                    why: why.to_string(),
                });
            }
        };
        let leaf = node.pick();
        headers::stamp_request(
            &mut parts.headers,
            &Destination {
                service: &route.name_header,
                client: &leaf.id_header,
                residual: leaf.residual_header.as_ref(),
                ctx_dtab: route.ctx_dtab_header.as_ref(),
                client_id: headers::client_id(parts.extensions.get()),
            },
            match self.protocol {
                Protocol::Http => "1.1 linkerd",
                Protocol::H2 => "2.0 linkerd",
            },
        );
        let req = Request::from_parts(parts, body);
        let picked = leaf.balancer.pick(None, &route.name)?;
        let call = picked.client().send(req);
        let result = match self.total_timeout {
            None => call.await,
            Some(timeout) => tokio::time::timeout(timeout.saturating_sub(start.elapsed()), call)
                .await
                .map_err(|_| ProxyError::Timeout {
                    name: route.name.clone(),
                    timeout,
                })?,
        };
        let class = match &result {
            Ok(rsp) if !rsp.status().is_server_error() => ResponseClass::Success,
            _ => ResponseClass::NonRetryableFailure,
        };
        picked.responded().record(class);
        let mut rsp = result?;
        headers::stamp_response(rsp.headers_mut());
        Ok(rsp)
    }

    /// The route for `name` under `local`, made on first use;
    /// `RouteCacheFull` when the cache is at a bound and no route in it can
    /// be evicted, `RouteKeyTooLarge` when the key alone exceeds the byte
    /// bound.
    fn route_for(
        &self,
        name: l5d_dtab::Path,
        local: Option<Dtab>,
    ) -> Result<Arc<Route>, ProxyError> {
        let key = RouteKey {
            local: local.as_ref().map(|d| Arc::from(d.show())),
            name,
        };
        let bind_dtab = match &local {
            None => self.base_dtab.clone(),
            Some(l) if self.base_dtab.is_empty() => l.clone(),
            Some(l) => self.base_dtab.concat(l),
        };
        // Arc clones, for the refusal's message only: weighing the key
        // shows the name, which would allocate on every request.
        let refused = RouteKey {
            local: key.local.clone(),
            name: key.name.clone(),
        };
        self.routes
            .get_or_create(&self.shared, key, local, &bind_dtab)
            .map_err(|_| self.refusal(&refused))
    }

    /// Why the route cache refused `key`.
    fn refusal(&self, key: &RouteKey) -> ProxyError {
        let limits = self.routes.config();
        let bytes = key.bytes();
        if bytes > limits.max_key_bytes {
            return ProxyError::RouteKeyTooLarge {
                name: key.name.clone(),
                bytes,
                max_key_bytes: limits.max_key_bytes,
            };
        }
        let (routes, key_bytes) = self.routes.usage();
        ProxyError::RouteCacheFull {
            name: key.name.clone(),
            routes,
            paths: limits.paths,
            key_bytes,
            max_key_bytes: limits.max_key_bytes,
        }
    }

    /// The route's plan, waiting up to the binding timeout for the first.
    async fn current_plan(&self, route: &Route) -> Result<Arc<Plan>, ProxyError> {
        {
            let plan = route.plan.borrow();
            if !matches!(**plan, Plan::Pending) {
                return Ok(plan.clone());
            }
        }
        let mut rx = route.plan.clone();
        match tokio::time::timeout(
            self.binding_timeout,
            rx.wait_for(|p| !matches!(**p, Plan::Pending)),
        )
        .await
        {
            Ok(Ok(plan)) => Ok(plan.clone()),
            Ok(Err(_)) | Err(_) => Err(ProxyError::BindingTimeout {
                name: route.name.clone(),
                timeout: self.binding_timeout,
            }),
        }
    }
}

/// `linkerd_proxy_errors_total{router,kind}`, registered once per kind.
#[derive(Debug)]
struct ErrorCounters {
    by_kind: Vec<(&'static str, metrics::Counter)>,
}

impl ErrorCounters {
    fn new(metrics: &Metrics, router: &str) -> Self {
        ErrorCounters {
            by_kind: ProxyError::KINDS
                .iter()
                .map(|k| (*k, metrics.error(router, k)))
                .collect(),
        }
    }

    fn count(&self, e: &ProxyError) {
        let kind = e.kind();
        if let Some((_, c)) = self.by_kind.iter().find(|(k, _)| *k == kind) {
            c.increment(1);
        }
    }
}
