//! The route cache on paused time, over the `default` interpreter: which
//! route a new name evicts, that a route in use is never evicted, and that
//! an evicted route releases its binding and its balancers' address sets.

use std::time::Duration;

use l5d_dtab::{Dtab, Path};

use super::*;
use crate::client::Clients;
use crate::config::ClientConfigs;
use crate::interpreter::fixed::FixedInterpreter;

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
