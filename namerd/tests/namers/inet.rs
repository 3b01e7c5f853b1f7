//! DNS for `/$/inet`, `/$/fixedinet` and `/$/io.buoyant.rinet` ids.

use std::time::Duration;

use l5d_dtab::Addr;
use namerd::namer::inet::{InetOptions, InetResolver};

use super::support::{FakeDns, addrs_of, bound, path, poll_until, wait_until};

fn resolver(dns: &FakeDns, refresh: Duration) -> InetResolver {
    InetResolver::with_options(InetOptions {
        refresh,
        resolver: dns.resolver(),
        ..InetOptions::default()
    })
}

#[tokio::test]
async fn watched_names_are_capped() {
    let dns = FakeDns::default();
    let inet = InetResolver::with_options(InetOptions {
        refresh: Duration::from_secs(60),
        resolver: dns.resolver(),
        max_names: 2,
    });
    let a = inet.resolve(&path("/$/inet/a.example/80"));
    let _b = inet.resolve(&path("/$/inet/b.example/80"));
    let refused = inet.resolve(&path("/$/inet/c.example/80"));
    assert!(
        matches!(&*refused.borrow(), Addr::Failed(m) if m.contains("the limit is 2")),
        "a third name is refused: {:?}",
        *refused.borrow()
    );
    // Literals need no task and are never refused.
    assert_eq!(
        *inet.resolve(&path("/$/inet/127.0.0.1/80")).borrow(),
        bound(&["127.0.0.1:80"])
    );
    // Once nobody watches a name, a new one fits.
    drop(a);
    let c = inet.resolve(&path("/$/inet/c.example/80"));
    assert!(
        !matches!(&*c.borrow(), Addr::Failed(_)),
        "{:?}",
        *c.borrow()
    );
}

#[tokio::test]
async fn literals_resolve_at_once_and_bad_ids_do_not() {
    let inet = InetResolver::new();
    let cases = [
        ("/$/inet/127.0.0.1/8080", Some(bound(&["127.0.0.1:8080"]))),
        ("/$/inet/8080", Some(bound(&["127.0.0.1:8080"]))),
        ("/$/inet/::1/80", Some(bound(&["[::1]:80"]))),
        ("/$/fixedinet/10.0.0.1/0", Some(bound(&["10.0.0.1:0"]))),
        (
            "/$/io.buoyant.rinet/443/10.0.0.2",
            Some(bound(&["10.0.0.2:443"])),
        ),
        (
            "/$/inet/10.0.0.1/\\x2b\\x38\\x30",
            Some(bound(&["10.0.0.1:80"])),
        ),
        ("/$/nil", Some(Addr::Neg)),
        ("/$/inet", Some(Addr::Neg)),
        ("/#/io.l5d.fs/web", Some(Addr::Neg)),
        ("/$/inet/10.0.0.1/65536", None),
        ("/$/inet/10.0.0.1/-1", None),
        ("/$/io.buoyant.rinet/99999/host", None),
    ];
    for (id, want) in cases {
        let got = inet.resolve(&path(id)).borrow().clone();
        match want {
            Some(want) => assert_eq!(got, want, "{id}"),
            None => {
                let Addr::Failed(message) = &got else {
                    panic!("{id}: {got:?}")
                };
                assert!(
                    message.contains("is not a port number (0-65535)"),
                    "{id}: {message}"
                );
            }
        }
    }
}

#[tokio::test]
async fn host_names_are_resolved_and_refreshed() {
    let dns = FakeDns::default();
    dns.set("web.test", &["10.0.0.2", "10.0.0.1"]);
    let inet = resolver(&dns, Duration::from_millis(20));
    let mut rx = inet.resolve(&path("/$/inet/web.test/8080"));
    wait_until(&mut rx, "resolved", |a| {
        *a == bound(&["10.0.0.1:8080", "10.0.0.2:8080"])
    })
    .await;
    // `rinet` names the same (host, port): one watch.
    let rinet = inet.resolve(&path("/$/io.buoyant.rinet/8080/web.test"));
    assert_eq!(*rinet.borrow(), bound(&["10.0.0.1:8080", "10.0.0.2:8080"]));
    dns.set("web.test", &["10.0.0.3"]);
    wait_until(&mut rx, "refreshed", |a| *a == bound(&["10.0.0.3:8080"])).await;
    assert_eq!(inet.state().details["web.test:8080"], "1 addresses");
}

#[tokio::test]
async fn a_failure_keeps_the_last_good_set() {
    let dns = FakeDns::default();
    dns.set("flaky.test", &["10.0.0.1"]);
    let inet = resolver(&dns, Duration::from_millis(20));
    let mut rx = inet.resolve(&path("/$/inet/flaky.test/80"));
    wait_until(&mut rx, "resolved", |a| *a == bound(&["10.0.0.1:80"])).await;
    dns.remove("flaky.test");
    poll_until("stale", || inet.state().stale).await;
    assert!(
        inet.state()
            .last_error
            .unwrap()
            .contains("cannot resolve flaky.test")
    );
    assert_eq!(*rx.borrow_and_update(), bound(&["10.0.0.1:80"]));
    dns.set("flaky.test", &["10.0.0.9"]);
    wait_until(&mut rx, "recovered", |a| *a == bound(&["10.0.0.9:80"])).await;
    poll_until("fresh", || !inet.state().stale).await;
}

#[tokio::test]
async fn a_name_that_never_resolved_fails() {
    // The system resolver: `.invalid` never exists (RFC 6761).
    let inet = InetResolver::new();
    let mut rx = inet.resolve(&path("/$/inet/name.invalid/80"));
    let addr = wait_until(&mut rx, "failed", |a| matches!(a, Addr::Failed(_))).await;
    let Addr::Failed(message) = addr else {
        unreachable!()
    };
    assert!(message.contains("cannot resolve name.invalid"), "{message}");
}

#[tokio::test]
async fn fixedinet_resolves_once() {
    let dns = FakeDns::default();
    dns.set("fixed.test", &["10.0.0.1"]);
    dns.set("polled.test", &["10.0.0.2"]);
    let inet = resolver(&dns, Duration::from_millis(10));
    let mut fixed = inet.resolve(&path("/$/fixedinet/fixed.test/80"));
    let _polled = inet.resolve(&path("/$/inet/polled.test/80"));
    wait_until(&mut fixed, "resolved", |a| addrs_of(a).is_some()).await;
    // Both tasks tick at the same interval: by the time the polled name has
    // been looked up five times, the fixed one would have been too.
    poll_until("polled", || dns.lookups("polled.test") >= 5).await;
    assert_eq!(dns.lookups("fixed.test"), 1);
}

#[tokio::test]
async fn names_nobody_watches_are_dropped() {
    let dns = FakeDns::default();
    dns.set("gone.test", &["10.0.0.1"]);
    let inet = resolver(&dns, Duration::from_secs(3600));
    let mut rx = inet.resolve(&path("/$/inet/gone.test/80"));
    wait_until(&mut rx, "resolved", |a| addrs_of(a).is_some()).await;
    assert!(inet.state().details.contains_key("gone.test:80"));
    drop(rx);
    poll_until("dropped", || inet.state().details.is_empty()).await;
    // Watching again starts afresh.
    let mut again = inet.resolve(&path("/$/inet/gone.test/80"));
    wait_until(&mut again, "resolved again", |a| addrs_of(a).is_some()).await;
    assert_eq!(dns.lookups("gone.test"), 2);
}
