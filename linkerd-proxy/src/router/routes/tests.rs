//! The route cache on paused time, over the `default` interpreter: which
//! route a new name evicts, that a route in use is never evicted, and that
//! an evicted route releases its binding and its balancers' address sets.

use std::time::Duration;

use std::collections::HashMap;
use std::sync::Mutex;

use l5d_dtab::{Addr, Dtab, Path};
use tokio::sync::watch;

use super::*;
use crate::client::Clients;
use crate::config::ClientConfigs;
use crate::interpreter::fixed::FixedInterpreter;
use crate::interpreter::{Interpreter, Resolution};

/// Longer than a tick of the cache's clock (a thousandth of the TTL).
const STEP: Duration = Duration::from_secs(1);

struct Fixture {
    fixed: Arc<FixedInterpreter>,
    shared: Arc<Shared>,
    routes: Routes,
}

/// Plaintext HTTP/1.1 clients with the default settings.
fn clients(metrics: &Metrics) -> Clients {
    Clients::new("test", Protocol::Http, ClientConfigs::default(), metrics).unwrap()
}

impl Fixture {
    /// Names `/svc/<x>` bind to `/$/inet/127.0.0.1/<port of x>`; at most
    /// `paths` routes.
    fn new(paths: usize) -> Self {
        let dtab = Dtab::read(
            "/svc/a=>/$/inet/127.0.0.1/8001;/svc/b=>/$/inet/127.0.0.1/8002;\
             /svc/c=>/$/inet/127.0.0.1/8003;/svc/d=>/$/inet/127.0.0.1/8004",
        )
        .unwrap();
        let idle = Duration::from_secs(3600);
        let fixed = FixedInterpreter::with_idle_ttl(dtab, Duration::from_secs(5), idle);
        let metrics = Metrics::new();
        let shared = Arc::new(Shared::new(
            "test".into(),
            Protocol::Http,
            fixed.clone(),
            clients(&metrics),
            ServiceConfigs::default(),
            metrics,
            Duration::from_millis(100),
        ));
        let routes = Routes::new(BindingCacheConfig {
            paths,
            ..BindingCacheConfig::default()
        });
        Fixture {
            fixed,
            shared,
            routes,
        }
    }

    fn get(&self, name: &str) -> Result<Arc<Route>, CacheFull> {
        let key = RouteKey {
            local: None,
            name: Path::read(name).unwrap(),
        };
        self.routes
            .get_or_create(&self.shared, key, None, &Dtab::empty())
    }

    fn cached(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .routes
            .snapshot()
            .iter()
            .map(|r| r.name.show())
            .collect();
        names.sort();
        names
    }

    /// Waits (on paused time: a bounded number of short sleeps) until the
    /// interpreter holds `bindings` bindings and `resolutions` address
    /// sets.
    async fn interpreter_holds(&self, bindings: usize, resolutions: usize) {
        for _ in 0..1_000 {
            if self.fixed.len() == (bindings, resolutions) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!(
            "the interpreter holds {:?}, not ({bindings}, {resolutions})",
            self.fixed.len()
        );
    }

    fn balancer_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .shared
            .balancers
            .lock()
            .unwrap()
            .keys()
            .map(Path::show)
            .collect();
        ids.sort();
        ids
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_name_evicts_the_least_recently_used_route_and_releases_it() {
    let f = Fixture::new(2);
    drop(f.get("/svc/a").unwrap());
    tokio::time::advance(STEP).await;
    drop(f.get("/svc/b").unwrap());
    tokio::time::advance(STEP).await;
    // a is used again, so b is now the least recently used.
    drop(f.get("/svc/a").unwrap());
    tokio::time::advance(STEP).await;
    f.interpreter_holds(2, 2).await;
    drop(f.get("/svc/c").unwrap());
    assert_eq!(f.cached(), ["/svc/a", "/svc/c"]);
    // b's binding and its id's address set are released at once, not
    // after the interpreter's hour of idle TTL.
    let want = ["/$/inet/127.0.0.1/8001", "/$/inet/127.0.0.1/8003"];
    for _ in 0..1_000 {
        if f.balancer_ids() == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(f.balancer_ids(), want);
    f.interpreter_holds(2, 2).await;
}

#[tokio::test(start_paused = true)]
async fn a_route_in_use_is_not_evicted_and_a_full_cache_refuses() {
    let f = Fixture::new(2);
    let a = f.get("/svc/a").unwrap();
    tokio::time::advance(STEP).await;
    let b = f.get("/svc/b").unwrap();
    tokio::time::advance(STEP).await;
    assert_eq!(f.get("/svc/c").unwrap_err(), CacheFull { capacity: 2 });
    assert_eq!(f.cached(), ["/svc/a", "/svc/b"]);
    // b is done; a, older but in use, stays.
    drop(b);
    drop(f.get("/svc/c").unwrap());
    assert_eq!(f.cached(), ["/svc/a", "/svc/c"]);
    assert_eq!(f.routes.usage(), (2, "/svc/a".len() + "/svc/c".len()));
    drop(a);
}

#[tokio::test(start_paused = true)]
async fn swept_routes_release_their_bindings_too() {
    let f = Fixture::new(10);
    drop(f.get("/svc/a").unwrap());
    drop(f.get("/svc/b").unwrap());
    f.interpreter_holds(2, 2).await;
    tokio::time::advance(Duration::from_secs(601)).await;
    f.routes.sweep(&f.shared);
    assert!(f.cached().is_empty());
    f.interpreter_holds(0, 0).await;
    assert!(f.balancer_ids().is_empty());
}

// === a dtab shift while namerd is away ===

/// An interpreter whose one binding and whose address sets the test sets.
#[derive(Debug)]
struct Scripted {
    binding: watch::Sender<BindState>,
    sets: Mutex<HashMap<Path, watch::Sender<Resolution>>>,
}

impl Scripted {
    fn new() -> Self {
        Scripted {
            binding: watch::Sender::new(BindState::Pending),
            sets: Mutex::default(),
        }
    }

    fn set(&self, id: &str) -> watch::Sender<Resolution> {
        let mut sets = self.sets.lock().unwrap();
        let pending = || watch::Sender::new(Resolution::now(Addr::Pending));
        sets.entry(Path::read(id).unwrap())
            .or_insert_with(pending)
            .clone()
    }

    fn bind_to(&self, id: &str) {
        let bound = l5d_dtab::Bound::new(Path::read(id).unwrap(), Path::empty());
        self.binding.send_replace(BindState::Bound {
            tree: Arc::new(l5d_dtab::NameTree::Leaf(bound)),
            at: std::time::SystemTime::now(),
        });
    }
}

impl Interpreter for Scripted {
    fn bind(&self, _: &Dtab, _: &Path) -> watch::Receiver<BindState> {
        self.binding.subscribe()
    }
    fn resolve(&self, id: &Path) -> watch::Receiver<Resolution> {
        self.set(&id.show()).subscribe()
    }
    fn delegate(
        &self,
        _: &Dtab,
        _: &Path,
    ) -> futures::future::BoxFuture<
        'static,
        Result<serde_json::Value, crate::interpreter::DelegateError>,
    > {
        Box::pin(async { Ok(serde_json::Value::Null) })
    }
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

fn endpoints(port: u16) -> Resolution {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    Resolution::now(Addr::bound([l5d_dtab::Endpoint::new(addr)]))
}

/// The ids of the route's current plan, once it has leaves.
async fn plan_ids(route: &Route) -> Vec<String> {
    let mut plan = route.plan.clone();
    let plan = plan
        .wait_for(|p| !p.leaves().is_empty())
        .await
        .expect("the route's task runs");
    plan.leaves().iter().map(|l| l.id.show()).collect()
}

/// Sets up `/svc/world` bound to v1 with endpoints, then shifted to v2.
async fn shifted_route() -> (Arc<Scripted>, Arc<Route>, Routes, Arc<Shared>) {
    let scripted = Arc::new(Scripted::new());
    let metrics = Metrics::new();
    let resolve_timeout = Duration::from_millis(100);
    let shared = Arc::new(Shared::new(
        "test".into(),
        Protocol::Http,
        scripted.clone(),
        clients(&metrics),
        ServiceConfigs::default(),
        metrics,
        resolve_timeout,
    ));
    let routes = Routes::new(BindingCacheConfig::default());
    scripted.set("/#/v1").send_replace(endpoints(8001));
    scripted.bind_to("/#/v1");
    let key = RouteKey {
        local: None,
        name: Path::read("/svc/world").unwrap(),
    };
    let route = routes
        .get_or_create(&shared, key, None, &Dtab::empty())
        .unwrap();
    assert_eq!(plan_ids(&route).await, ["/#/v1"]);
    scripted.bind_to("/#/v2");
    (scripted, route, routes, shared)
}

/// Waits (5 s of paused time at most) until the route's plan routes to
/// `id`; panics with `why` if it does not.
async fn routes_to(route: &Route, id: &str, why: &str) {
    let mut plan = route.plan.clone();
    let to_id = |p: &Arc<Plan>| p.leaves().iter().any(|l| l.id.show() == id);
    tokio::time::timeout(Duration::from_secs(5), plan.wait_for(to_id))
        .await
        .expect(why)
        .expect("the route's task runs");
}

#[tokio::test(start_paused = true)]
async fn a_shift_to_ids_namerd_has_not_answered_keeps_the_routable_plan() {
    let (scripted, route, _routes, _shared) = shifted_route().await;
    // namerd goes away before it answers for v2.
    let v2 = scripted.set("/#/v2");
    v2.send_replace(Resolution::now(Addr::Failed(
        "namerd is shutting down".into(),
    )));
    // Well past the resolve timeout, v1 still routes.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(plan_ids(&route).await, ["/#/v1"]);
    // namerd answers for v2: the shift takes effect.
    v2.send_replace(endpoints(8002));
    routes_to(
        &route,
        "/#/v2",
        "the shift to v2 takes effect once namerd answers",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_shift_to_an_id_namerd_says_is_gone_takes_effect() {
    let (scripted, route, _routes, _shared) = shifted_route().await;
    scripted
        .set("/#/v2")
        .send_replace(Resolution::now(Addr::Neg));
    routes_to(
        &route,
        "/#/v2",
        "an answer of no endpoints is the operator's routing",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_held_shift_follows_a_newer_binding() {
    let (scripted, route, _routes, _shared) = shifted_route().await;
    scripted.set("/#/v2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(plan_ids(&route).await, ["/#/v1"]);
    // The operator shifts again, to an id with endpoints.
    scripted.set("/#/v3").send_replace(endpoints(8003));
    scripted.bind_to("/#/v3");
    routes_to(&route, "/#/v3", "a newer binding replaces the held one").await;
}
