//! A router: names each request, finds its route (binding cache), picks a
//! bound id by weight and an endpoint by the balancer, stamps Linkerd's
//! headers and forwards the request, turning every failure into the
//! response Linkerd would give.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use l5d_dtab::Dtab;

use crate::client::{Connector, PooledBody};
use crate::config::{InterpreterConfig, Protocol, RouterConfig};
use crate::error::ProxyError;
use crate::headers::{self, Destination};
use crate::identify::{self, Identifier};
use crate::interpreter::Interpreter;
use crate::metrics::{Metrics, RequestMetrics};

pub mod handle;
pub mod plan;
pub mod routes;

use plan::Plan;
use routes::{Route, RouteKey, Routes, Shared};

/// What the proxy answers with: an upstream's streaming body or a body the
/// proxy made itself (an error response).
pub type ResponseBody = Either<PooledBody, Full<Bytes>>;

/// A route unused this long is dropped with its streams.
pub const ROUTE_IDLE_TTL: Duration = Duration::from_secs(600);

/// What a server knows about where a request came from.
#[derive(Clone, Copy, Debug)]
pub struct ServerPolicy {
    pub clear_context: bool,
    pub max_call_depth: usize,
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
        metrics: &Metrics,
    ) -> Self {
        let base_dtab = match &config.interpreter {
            InterpreterConfig::Mesh { .. } => config.dtab.clone(),
            InterpreterConfig::Default { .. } => Dtab::empty(),
        };
        let shared = Arc::new(Shared::new(
            config.label.clone(),
            interpreter,
            Connector::new(config.protocol, &config.client),
            config.client.load_balancer,
            metrics.clone(),
            config.binding_timeout,
        ));
        Router {
            protocol: config.protocol,
            identifier: Identifier::new(config.dst_prefix.clone(), config.identifiers.clone()),
            base_dtab,
            binding_timeout: config.binding_timeout,
            total_timeout: config.service.total_timeout,
            routes: Routes::default(),
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

    /// Drops idle routes and their balancers.
    pub fn sweep(&self) {
        self.routes.sweep(&self.shared, ROUTE_IDLE_TTL);
    }

    /// Serves one request end to end. Never fails: errors become Linkerd's
    /// error responses.
    pub async fn route(
        &self,
        req: Request<Incoming>,
        policy: ServerPolicy,
    ) -> Response<ResponseBody> {
        let start = Instant::now();
        self.metrics.request();
        let (rsp, service) = match self.forward(req, policy, start).await {
            Ok((rsp, route)) => (rsp, Some(route)),
            Err((e, route)) => {
                self.errors.count(&e);
                (e.to_response().map(Either::Right), route)
            }
        };
        let success = !rsp.status().is_server_error();
        let elapsed = start.elapsed();
        self.metrics.response(success, elapsed);
        if let Some(route) = service {
            route.metrics.response(success, elapsed);
        }
        rsp
    }

    #[allow(clippy::type_complexity)]
    async fn forward(
        &self,
        req: Request<Incoming>,
        policy: ServerPolicy,
        start: Instant,
    ) -> Result<(Response<ResponseBody>, Arc<Route>), (ProxyError, Option<Arc<Route>>)> {
        let (mut parts, body) = req.into_parts();
        let hops = headers::via_hops(&parts.headers);
        if hops >= policy.max_call_depth {
            return Err((ProxyError::CallDepth(hops), None));
        }
        let local = if policy.clear_context {
            headers::clear_context(&mut parts.headers);
            None
        } else {
            headers::local_dtab(&parts.headers).map_err(|e| (e.into(), None))?
        };
        if identify::is_unroutable(&parts.method, &parts.uri) {
            return Err((
                ProxyError::Unidentified(format!(
                    "{} {} names no service",
                    parts.method, parts.uri
                )),
                None,
            ));
        }
        let identified = self
            .identifier
            .identify(&parts)
            .map_err(|why| (ProxyError::Unidentified(why), None))?;

        let route = self.route_for(identified.name, local)?;
        route.touch(&self.shared);
        route.metrics.request();
        let fail = |e: ProxyError| (e, Some(route.clone()));

        let plan = self.current_plan(&route).await.map_err(fail)?;
        let node = match &*plan {
            Plan::Ready(node) => node,
            Plan::Pending => unreachable!("current_plan waits for a binding"),
            Plan::Failed(message) => {
                return Err(fail(ProxyError::NoRoute {
                    name: route.name.clone(),
                    why: message.to_string(),
                }));
            }
            Plan::Unroutable(why) => {
                return Err(fail(ProxyError::NoRoute {
                    name: route.name.clone(),
                    why: why.to_string(),
                }));
            }
        };
        let leaf = node.pick();

        if identified.consume > 0
            && let Some(uri) = identify::consume_segments(&parts.uri, identified.consume)
        {
            parts.uri = uri;
        }
        headers::stamp_request(
            &mut parts.headers,
            &Destination {
                service: &route.name_header,
                client: &leaf.id_header,
                residual: leaf.residual_header.as_ref(),
                ctx_dtab: route.ctx_dtab_header.as_ref(),
            },
            match self.protocol {
                Protocol::Http => "1.1 linkerd",
                Protocol::H2 => "2.0 linkerd",
            },
        );
        let req = Request::from_parts(parts, body);
        let call = leaf.balancer.dispatch(req, &route.name).map_err(fail)?;
        let result = match self.total_timeout {
            None => call.await,
            Some(timeout) => {
                match tokio::time::timeout(timeout.saturating_sub(start.elapsed()), call).await {
                    Ok(r) => r,
                    Err(_) => Err(ProxyError::Timeout {
                        name: route.name.clone(),
                        timeout,
                    }),
                }
            }
        };
        let mut rsp = result.map_err(fail)?;
        headers::stamp_response(rsp.headers_mut());
        Ok((rsp.map(Either::Left), route))
    }

    fn route_for(
        &self,
        name: l5d_dtab::Path,
        local: Option<Dtab>,
    ) -> Result<Arc<Route>, (ProxyError, Option<Arc<Route>>)> {
        let key = RouteKey {
            local: local.as_ref().map(|d| Arc::from(d.show())),
            name,
        };
        let bind_dtab = match &local {
            None => self.base_dtab.clone(),
            Some(l) if self.base_dtab.is_empty() => l.clone(),
            Some(l) => self.base_dtab.concat(l),
        };
        self.routes
            .get_or_create(&self.shared, key, local, &bind_dtab)
            .ok_or((ProxyError::Overloaded, None))
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
        const KINDS: &[&str] = &[
            "unidentified",
            "bad_dtab",
            "call_depth",
            "no_route",
            "no_endpoints",
            "binding_timeout",
            "connect",
            "upstream",
            "timeout",
            "overloaded",
        ];
        ErrorCounters {
            by_kind: KINDS
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
