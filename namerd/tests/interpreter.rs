//! The interpreter: shared live bindings recomputed when the dtab or a
//! namer changes, last good trees kept on failures, idle eviction, the cap,
//! delegation and resolution routing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use l5d_dtab::{Activity, Addr, Bound, Dtab, Endpoint, Name, NameError, NameTree, Path};
use namerd::client::Client;
use namerd::interpreter::{Binding, InterpretError, Interpreter, InterpreterOptions};
use namerd::namer::inet::InetResolver;
use namerd::namer::{Namer, NamerState};
use namerd::store::memory::MemoryStore;
use namerd::store::{DtabStore, Namespace, WriteMeta};
use tokio::sync::watch;

/// A namer whose names the test sets: `/#/test/<name>` binds while `name`
/// is present; `fail` makes lookups fail; `pending` makes them pending.
struct TestNamer {
    prefix: Path,
    state: Mutex<(BTreeSet<String>, bool, bool)>,
    changes: watch::Sender<u64>,
    addrs: watch::Sender<Addr>,
}

impl TestNamer {
    fn new() -> Arc<TestNamer> {
        Arc::new(TestNamer {
            prefix: Path::read("/#/test").unwrap(),
            state: Mutex::new((BTreeSet::new(), false, false)),
            changes: watch::Sender::new(0),
            addrs: watch::Sender::new(Addr::bound(vec![Endpoint::new(
                "127.0.0.1:9000".parse().unwrap(),
            )])),
        })
    }

    fn set(&self, f: impl FnOnce(&mut (BTreeSet<String>, bool, bool))) {
        f(&mut self.state.lock().unwrap());
        self.changes.send_modify(|n| *n += 1);
    }
}

impl Namer for TestNamer {
    fn prefix(&self) -> &Path {
        &self.prefix
    }

    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        let (names, fail, pending) = &*self.state.lock().unwrap();
        if *fail {
            return Activity::Failed(NameError::namer(path, "test namer is down"));
        }
        if *pending {
            return Activity::Pending;
        }
        match path.first_str() {
            Some(name) if names.contains(name) => Activity::Ok(NameTree::Leaf(Name::Bound(
                Bound::new(self.prefix.concat(&path.take(1)), path.drop(1)),
            ))),
            _ => Activity::Ok(NameTree::Neg),
        }
    }

    fn lookup_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn resolve(&self, _: &Path) -> watch::Receiver<Addr> {
        self.addrs.subscribe()
    }

    fn state(&self) -> NamerState {
        NamerState::default()
    }
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name).unwrap()
}

fn path(p: &str) -> Path {
    Path::read(p).unwrap()
}

async fn setup(opts: InterpreterOptions) -> (Arc<MemoryStore>, Arc<TestNamer>, Arc<Interpreter>) {
    let store = Arc::new(MemoryStore::new(BTreeMap::new()));
    let namer = TestNamer::new();
    let interpreter = Interpreter::new(
        store.clone() as Arc<dyn DtabStore>,
        vec![namer.clone() as Arc<dyn Namer>],
        Arc::new(InetResolver::new()),
        opts,
    );
    (store, namer, interpreter)
}

/// Polls `done` until it holds, failing with `what` after 5 s; for state
/// that is observable but not published on a channel.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(Duration::from_secs(5), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "{what}");
}

/// Waits (bounded) until the binding's tree shows as `want`.
async fn wait_for_tree(rx: &mut watch::Receiver<Binding>, want: &str) -> Binding {
    let show = |b: &Binding| match &b.tree {
        Activity::Ok(t) => t.show_with(|b, out| out.push_str(&b.id.show())),
        Activity::Pending => "pending".into(),
        Activity::Failed(e) => format!("failed: {e}"),
    };
    let got = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|b| show(b) == want))
        .await
        .map(|r| r.map(|b| b.clone()));
    match got {
        Ok(Ok(b)) => b,
        _ => panic!(
            "binding never became {want:?}; it is {:?}",
            show(&rx.borrow())
        ),
    }
}

#[tokio::test]
async fn bindings_follow_the_dtab_and_the_namers() {
    let (store, namer, interpreter) = setup(InterpreterOptions::default()).await;
    let internal = ns("internal");
    let mut rx = interpreter
        .bind(
            &Client::UNKNOWN,
            &internal,
            &path("/svc/web"),
            &Dtab::empty(),
        )
        .unwrap();
    // An absent namespace binds with an empty dtab: ~.
    wait_for_tree(&mut rx, "~").await;

    store
        .create(
            &internal,
            &Dtab::read("/svc => /#/test").unwrap(),
            &WriteMeta::default(),
        )
        .await
        .unwrap();
    wait_for_tree(&mut rx, "~").await;
    namer.set(|s| {
        s.0.insert("web".into());
    });
    let b = wait_for_tree(&mut rx, "/#/test/web").await;
    assert!(
        b.dtab_changed_at.is_none(),
        "a namer change is not a dtab change"
    );

    // The same key shares one binding; a local dtab is another key.
    let again = interpreter
        .bind(
            &Client::UNKNOWN,
            &internal,
            &path("/svc/web"),
            &Dtab::empty(),
        )
        .unwrap();
    assert!(again.same_channel(&rx));
    let local = Dtab::read("/svc/web => /$/inet/127.0.0.1/8080").unwrap();
    let mut overridden = interpreter
        .bind(&Client::UNKNOWN, &internal, &path("/svc/web"), &local)
        .unwrap();
    assert!(!overridden.same_channel(&rx));
    wait_for_tree(&mut overridden, "/$/inet/127.0.0.1/8080").await;

    // A canary shift reaches the binding.
    store
        .put(
            &internal,
            &Dtab::read("/svc => 9 * /#/test & 1 * /$/inet/127.0.0.1/9090").unwrap(),
            &WriteMeta::default(),
        )
        .await
        .unwrap();
    let b = wait_for_tree(&mut rx, "9.00*/#/test/web & /$/inet/127.0.0.1/9090").await;
    assert!(
        b.dtab_changed_at.is_some(),
        "the tree came from a dtab change"
    );
}

#[tokio::test]
async fn a_failing_namer_keeps_the_last_good_tree() {
    let (store, namer, interpreter) = setup(InterpreterOptions::default()).await;
    let internal = ns("internal");
    store
        .create(
            &internal,
            &Dtab::read("/svc => /#/test").unwrap(),
            &WriteMeta::default(),
        )
        .await
        .unwrap();
    namer.set(|s| {
        s.0.insert("web".into());
    });
    let mut rx = interpreter
        .bind(
            &Client::UNKNOWN,
            &internal,
            &path("/svc/web"),
            &Dtab::empty(),
        )
        .unwrap();
    wait_for_tree(&mut rx, "/#/test/web").await;

    namer.set(|s| s.1 = true);
    // Staleness alone is not published to watchers: poll the state page.
    eventually("the failure is reported as staleness", || {
        interpreter.bindings()[0].3.stale.is_some()
    })
    .await;
    let b = rx.borrow().clone();
    assert!(
        matches!(&b.tree, Activity::Ok(t) if matches!(**t, NameTree::Leaf(_))),
        "kept: {:?}",
        b.tree
    );
    assert_eq!(b.stale.as_deref(), Some("test namer is down"));

    // A name that never bound fails instead of hanging.
    let mut fresh = interpreter
        .bind(
            &Client::UNKNOWN,
            &internal,
            &path("/svc/other"),
            &Dtab::empty(),
        )
        .unwrap();
    wait_for_tree(&mut fresh, "failed: test namer is down").await;

    namer.set(|s| s.1 = false);
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|b| b.stale.is_none()))
        .await
        .expect("recovery clears the staleness")
        .unwrap();
}

#[tokio::test]
async fn idle_bindings_are_evicted_and_the_cap_holds() {
    let opts = InterpreterOptions {
        max_bindings: 2,
        idle_ttl: Duration::from_millis(50),
        ..InterpreterOptions::default()
    };
    let (_store, _namer, interpreter) = setup(opts).await;
    let internal = ns("internal");
    let a = interpreter
        .bind(&Client::UNKNOWN, &internal, &path("/a"), &Dtab::empty())
        .unwrap();
    let _b = interpreter
        .bind(&Client::UNKNOWN, &internal, &path("/b"), &Dtab::empty())
        .unwrap();
    match interpreter.bind(&Client::UNKNOWN, &internal, &path("/c"), &Dtab::empty()) {
        Err(InterpretError::TooManyBindings { limit: 2 }) => {}
        other => panic!("expected the cap, got {:?}", other.map(|_| ())),
    }
    // Once nobody watches /a, it is evicted and /c fits.
    drop(a);
    eventually("an idle binding is evicted after its TTL", || {
        interpreter.bindings().len() == 1
    })
    .await;
    assert!(
        interpreter
            .bind(&Client::UNKNOWN, &internal, &path("/c"), &Dtab::empty())
            .is_ok()
    );
}

#[tokio::test]
async fn delegation_waits_for_pending_namers_then_times_out() {
    let (_store, namer, interpreter) = setup(InterpreterOptions::default()).await;
    let local = Dtab::read("/svc => /#/test").unwrap();
    let tree = NameTree::Leaf(path("/svc/web"));
    namer.set(|s| s.2 = true);
    let started = tokio::time::Instant::now();
    let timed_out = interpreter
        .delegate(None, &tree, &local, Duration::from_millis(100))
        .await;
    assert!(matches!(timed_out, Err(InterpretError::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(100));

    let delegating = {
        let interpreter = interpreter.clone();
        let (local, tree) = (local.clone(), tree.clone());
        tokio::spawn(async move {
            interpreter
                .delegate(None, &tree, &local, Duration::from_secs(5))
                .await
        })
    };
    namer.set(|s| {
        s.2 = false;
        s.0.insert("web".into());
    });
    let trace = delegating.await.unwrap().unwrap();
    assert_eq!(trace.path.show(), "/svc/web");
}

#[tokio::test]
async fn resolution_goes_to_the_owner_of_the_id() {
    let (_store, _namer, interpreter) = setup(InterpreterOptions::default()).await;
    let inet = interpreter.resolve(&path("/$/inet/127.0.0.1/8080"));
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let bound = tokio::time::timeout(
        Duration::from_secs(5),
        inet.clone().wait_for(|a| matches!(a, Addr::Bound { .. })),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert_eq!(bound, Addr::bound(vec![Endpoint::new(addr)]));
    let namer = interpreter.resolve(&path("/%/io.l5d.port/9000/#/test/web"));
    assert_eq!(
        *namer.borrow(),
        Addr::bound(vec![Endpoint::new("127.0.0.1:9000".parse().unwrap())])
    );
    assert_eq!(
        *interpreter.resolve(&path("/#/nobody/web")).borrow(),
        Addr::Neg
    );
    assert!(matches!(
        *interpreter.resolve(&path("/$/nope/x")).borrow(),
        Addr::Failed(_)
    ));
}
