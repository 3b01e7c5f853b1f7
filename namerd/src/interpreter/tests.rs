//! The fair sharing of bindings, on paused time: per-client limits, who
//! is evicted at the global cap and in which order, what the evicted
//! watchers see, and that a departed client's bindings and counts go.

use std::collections::BTreeMap;

use super::*;
use crate::client::Usage;
use crate::store::memory::MemoryStore;

const TTL: Duration = Duration::from_secs(10);

fn interpreter(max_bindings: usize, per_client: usize) -> Arc<Interpreter> {
    let internal = Namespace::new("internal").unwrap();
    let store = MemoryStore::new(BTreeMap::from([(
        internal,
        Dtab::read("/svc => /$/inet/127.0.0.1/1").unwrap(),
    )]));
    Interpreter::new(
        Arc::new(store),
        Vec::new(),
        Arc::new(InetResolver::new()),
        InterpreterOptions {
            max_bindings,
            idle_ttl: TTL,
            clients: ClientLimits {
                max_bindings_per_client: per_client,
                ..ClientLimits::default()
            },
            ..InterpreterOptions::default()
        },
    )
}

fn client(ip: &str) -> Client {
    Client::new(ip.parse().unwrap())
}

fn bind(i: &Interpreter, c: &Client, name: &str) -> Result<BindingWatch, InterpretError> {
    let ns = Namespace::new("internal").unwrap();
    i.bind(c, &ns, &Path::read(name).unwrap(), &Dtab::empty())
}

/// Binds `names` for `c`, a paused second apart (so each is asked for at
/// a distinct time).
async fn bind_all(i: &Interpreter, c: &Client, names: &[&str]) -> Vec<BindingWatch> {
    let mut out = Vec::new();
    for name in names {
        out.push(bind(i, c, name).unwrap());
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    out
}

fn live(i: &Interpreter) -> Vec<String> {
    i.bindings().into_iter().map(|b| b.1.show()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_client_at_its_limit_is_refused_and_another_binds() {
    let i = interpreter(100, 2);
    let a = client("10.0.0.1");
    let _held = bind_all(&i, &a, &["/svc/1", "/svc/2"]).await;
    let refused = bind(&i, &a, "/svc/3").unwrap_err();
    assert!(
        matches!(
            refused,
            InterpretError::Limit(LimitError::BindingsPerClient { limit: 2, .. })
        ),
        "{refused}"
    );
    assert!(bind(&i, &client("10.0.0.2"), "/svc/3").is_ok());
    // Asking again for a name it holds is a second hold, also refused.
    assert!(bind(&i, &a, "/svc/1").is_err());
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_a_binding_held_only_by_clients_over_their_share_goes() {
    let i = interpreter(4, 100);
    let (a, b, c, d) = (
        client("10.0.0.1"),
        client("10.0.0.2"),
        client("10.0.0.3"),
        client("10.0.0.4"),
    );
    // A holds three, B one of its own and one of A's: the cap is full.
    let mut a_held = bind_all(&i, &a, &["/svc/a1", "/svc/a2", "/svc/a3"]).await;
    let _b_held = bind_all(&i, &b, &["/svc/b1", "/svc/a1"]).await;

    // C's share is 4 / 3 = 1; A (3) and B (2) hold more, so any binding
    // may go, and the one asked for least recently does: /svc/a2 (B asked
    // for /svc/a1 after A did).
    let _c1 = bind(&i, &c, "/svc/c1").unwrap();
    assert_eq!(live(&i), ["/svc/a1", "/svc/a3", "/svc/b1", "/svc/c1"]);
    assert!(a_held[1].borrow().evicted, "A's watcher is told");
    assert!(!a_held[0].borrow().evicted && !a_held[2].borrow().evicted);
    drop(a_held.remove(1)); // A's stream ends.

    // A, still over its share, cannot evict for itself.
    let refused = bind(&i, &a, "/svc/a4").unwrap_err();
    assert!(
        matches!(refused, InterpretError::TooManyBindings { limit: 4 }),
        "{refused}"
    );
    // D's share is 1: /svc/a3 goes (held by A only, asked for before
    // /svc/b1); /svc/a1 is older but B asked for it since.
    let _d1 = bind(&i, &d, "/svc/d1").unwrap();
    assert_eq!(live(&i), ["/svc/a1", "/svc/b1", "/svc/c1", "/svc/d1"]);
    // Bindings of clients within their share (C's, D's) never go: with
    // five clients and four bindings, a fifth is refused.
    let refused = bind(&i, &client("10.0.0.5"), "/svc/e1").unwrap_err();
    assert!(matches!(refused, InterpretError::TooManyBindings { .. }));
    assert_eq!(live(&i), ["/svc/a1", "/svc/b1", "/svc/c1", "/svc/d1"]);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_leaves_gives_back_its_bindings_after_the_ttl() {
    let i = interpreter(100, 100);
    let a = client("10.0.0.1");
    let held = bind_all(&i, &a, &["/svc/1", "/svc/2", "/svc/3"]).await;
    assert_eq!(i.clients().usage(&a).bindings, 3);
    drop(held);
    assert_eq!(i.clients().usage(&a), Usage::default(), "counts go at once");
    tokio::time::sleep(TTL * 2).await;
    assert!(i.bindings().is_empty(), "the bindings go after the TTL");
}
