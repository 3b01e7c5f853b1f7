//! A router: names each request, finds its route (binding cache), picks a
//! bound id by weight and an endpoint by the balancer, stamps Linkerd's
//! headers and forwards the request, turning every failure into the
//! response Linkerd would give.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, Request, Response};
use l5d_dtab::{Dtab, Path};
use l5d_trace::{Span, Tracer};

use crate::classify::ResponseClass;
use crate::client::{Clients, RequestBody};
use crate::config::{IdentifierConfig, InterpreterConfig, Protocol, RouterConfig, ServerConfig};
use crate::deadline::{self, Malformed};
use crate::error::ProxyError;
use crate::headers::{self, L5D_ERR, L5D_SUCCESS_CLASS};
use crate::identify::{self, Identifier};
use crate::interpreter::Interpreter;
use crate::metrics::{Metrics, RequestMetrics, RetryMetrics};
use crate::overrides::{self, AddressOverrides};
use crate::recent::{Answered, RecentRequests, Served};
use crate::retry::BufferPool;

mod attempts;
pub mod handle;
pub mod plan;
pub mod policy;
pub mod response;
pub mod routes;

use plan::Plan;
pub use response::ResponseBody;
use routes::{Route, RouteKey, Routes, Shared};

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

/// A response leaving through an untrusting edge (`clearContext`): no
/// `l5d-*` header from the mesh or the application reaches the outside,
/// in the head or in the trailers. The proxy's own error answers keep
/// `l5d-err` and `l5d-retryable`: they describe this proxy's refusal (no
/// Ingress rule, no endpoints), which is what Linkerd's error header is
/// for, and say nothing a backend put there.
fn edge_response(rsp: Response<ResponseBody>) -> Response<ResponseBody> {
    let (mut head, body) = rsp.into_parts();
    let keep: &[HeaderName] = match &body {
        ResponseBody::Generated(_) => &[headers::L5D_ERR, headers::L5D_RETRYABLE],
        _ => &[],
    };
    headers::remove_l5d(&mut head.headers, keep);
    Response::from_parts(head, body.edge())
}

/// One configured router.
#[derive(Debug)]
pub struct Router {
    protocol: Protocol,
    identifier: Identifier,
    /// The router names requests by Ingress rules (`io.l5d.ingress`): a
    /// name bound to nothing is "no rule", a 404, not a 502.
    ingress: bool,
    /// Sent with every binding: the router's `dtab` for `io.l5d.mesh`
    /// (the `default` interpreter already holds it).
    base_dtab: Dtab,
    binding_timeout: Duration,
    shared: Arc<Shared>,
    routes: Routes,
    metrics: RequestMetrics,
    retry_metrics: RetryMetrics,
    /// Request bodies held for retries, for all of the router's requests.
    buffers: Arc<BufferPool>,
    /// Malformed `l5d-ctx-deadline` and `grpc-timeout` values, ignored.
    bad_deadlines: [metrics::Counter; 2],
    errors: ErrorCounters,
    /// `io.l5d.recentRequests`, when configured.
    recent: Option<Arc<RecentRequests>>,
    /// `io.l5d.opentelemetry`, when configured.
    tracer: Option<Tracer>,
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
            config.protocol,
            interpreter,
            clients,
            config.service.clone(),
            metrics.clone(),
            config.binding_timeout,
        ));
        let label = || metrics::Label::new("router", config.label.clone());
        let buffers = Arc::new(BufferPool::new(
            config.retry_buffer_total_bytes,
            metrics.gauge("linkerd_router_retry_buffer_bytes", vec![label()]),
            metrics.counter("linkerd_router_retry_buffer_exhausted_total", vec![label()]),
        ));
        let bad_deadline = |header: &'static str| {
            metrics.counter(
                "linkerd_router_malformed_deadlines_total",
                vec![label(), metrics::Label::new("header", header)],
            )
        };
        Router {
            protocol: config.protocol,
            identifier: Identifier::new(config.dst_prefix.clone(), config.identifiers.clone()),
            ingress: config
                .identifiers
                .iter()
                .any(|i| matches!(i, IdentifierConfig::Ingress)),
            base_dtab,
            binding_timeout: config.binding_timeout,
            routes: Routes::new(config.binding_cache),
            metrics: metrics.router(&config.label),
            retry_metrics: metrics.router_retries(&config.label),
            buffers,
            bad_deadlines: [
                bad_deadline("l5d-ctx-deadline"),
                bad_deadline("grpc-timeout"),
            ],
            errors: ErrorCounters::new(metrics, &config.label),
            shared,
            recent: None,
            tracer: None,
        }
    }

    /// Records the requests this router answers in `recent` (sampled).
    pub fn with_recent(mut self, recent: Option<Arc<RecentRequests>>) -> Self {
        self.recent = recent;
        self
    }

    /// Makes a span of each sampled request with `tracer`.
    pub fn with_tracer(mut self, tracer: Option<Tracer>) -> Self {
        self.tracer = tracer;
        self
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
        let method = self.recent.as_ref().map(|_| parts.method.clone());
        let mut span = match &self.tracer {
            None => Span::default(),
            Some(tracer) => self.request_span(tracer, &mut parts, policy),
        };
        let route = match self.lookup(&mut parts, policy) {
            Ok(route) => route,
            Err(e) => {
                let mut rsp = self.error_response(&e);
                self.metrics.response(false, start.elapsed());
                self.note(method, None, &rsp, start);
                finish_span(span, None, &rsp);
                if policy.clear_context {
                    rsp = edge_response(rsp);
                }
                return rsp;
            }
        };
        route.metrics.request();
        let mut malformed = Malformed::default();
        let deadline = deadline::of_request(
            &parts.headers,
            !policy.clear_context,
            self.protocol == Protocol::H2,
            route.policy.total_timeout,
            start,
            &mut malformed,
        );
        for (bad, counter) in [malformed.ctx_deadline, malformed.grpc_timeout]
            .into_iter()
            .zip(&self.bad_deadlines)
        {
            if bad {
                counter.increment(1);
            }
        }
        if span.is_sampled() {
            span.rename(route.name.show());
        }
        let served = self.recent.is_some() || span.is_sampled();
        let (mut rsp, class) = match self
            .forward(&route, parts, body, start, deadline, served)
            .await
        {
            Ok(forwarded) => (forwarded.rsp, forwarded.class),
            Err(e) => (
                self.error_response(&e),
                Some(ResponseClass::NonRetryableFailure),
            ),
        };
        finish_span(span, Some(&route.name), &rsp);
        if policy.clear_context {
            rsp = edge_response(rsp);
        }
        // A response whose class is in its trailers reports it itself.
        if let Some(class) = class {
            let elapsed = start.elapsed();
            self.metrics.response(class.is_success(), elapsed);
            route.metrics.response(class.is_success(), elapsed);
        }
        self.note(method, Some(&route.name), &rsp, start);
        rsp
    }

    /// The request's span (see [`Tracer::request`]: the headers now name
    /// it for the next hop), with what is known before routing.
    fn request_span(
        &self,
        tracer: &Tracer,
        parts: &mut http::request::Parts,
        policy: &ServerPolicy,
    ) -> Span {
        let mut span = tracer.request(&mut parts.headers, !policy.clear_context);
        if span.is_sampled() {
            span.rename(self.label().to_owned());
            span.set("l5d.router", self.label().to_owned());
            span.set("http.request.method", parts.method.to_string());
            span.set("url.path", parts.uri.path().to_owned());
        }
        span
    }

    /// Offers the answered request to `io.l5d.recentRequests` (`method`
    /// is taken only when it is configured).
    fn note(
        &self,
        method: Option<http::Method>,
        name: Option<&Path>,
        rsp: &Response<ResponseBody>,
        start: Instant,
    ) {
        if let (Some(recent), Some(method)) = (&self.recent, method) {
            recent.record(Answered {
                router: self.label(),
                method: &method,
                name,
                served: rsp.extensions().get::<Served>(),
                status: rsp.status(),
                elapsed: start.elapsed(),
            });
        }
    }

    /// Counts a failure and makes the response the client sees.
    fn error_response(&self, e: &ProxyError) -> Response<ResponseBody> {
        self.errors.count(e);
        let mut rsp = e.to_response();
        rsp.headers_mut().insert(
            L5D_SUCCESS_CLASS,
            ResponseClass::NonRetryableFailure.header_value(),
        );
        rsp.map(ResponseBody::Generated)
    }

    /// The `Via` entry this router appends.
    fn via(&self) -> &'static str {
        match self.protocol {
            Protocol::Http => "1.1 linkerd",
            Protocol::H2 => "2.0 linkerd",
        }
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

/// Ends a request's span with what answered and how: the logical name,
/// the bound id, endpoint and retries, the status, and the proxy's error
/// (`l5d-err`) or a 5xx as the span's failure. The span ends with the
/// response head; a body or gRPC trailers that fail later are not on it.
fn finish_span(mut span: Span, name: Option<&Path>, rsp: &Response<ResponseBody>) {
    if !span.is_sampled() {
        return;
    }
    if let Some(name) = name {
        span.set("l5d.name", name.show());
    }
    if let Some(served) = rsp.extensions().get::<Served>() {
        span.set("l5d.bound_id", served.id.show());
        span.set("l5d.endpoint", served.endpoint.to_string());
        span.set("l5d.retries", i64::from(served.retries));
    }
    let status = rsp.status();
    span.set("http.response.status_code", i64::from(status.as_u16()));
    if let Some(err) = rsp.headers().get(L5D_ERR) {
        span.fail(String::from_utf8_lossy(err.as_bytes()).into_owned());
    } else if status.is_server_error() {
        span.fail(status.to_string());
    }
    span.end();
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
