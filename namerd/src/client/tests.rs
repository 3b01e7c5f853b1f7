//! The accounting's rules: each limit refuses its client and nobody else,
//! a dropped lease gives its count back, a client is its address and
//! certificate identity as the listener saw them, and the fair share of a
//! cap.

use super::*;

fn client(ip: &str) -> Client {
    Client::new(ip.parse().unwrap())
}

fn identified(ip: &str, name: &str) -> Client {
    let identity = ClientIdentity {
        names: vec![name.to_string()],
    };
    Client::identified(ip.parse().unwrap(), Some(Arc::new(identity)))
}

fn clients(bindings: usize, streams: usize) -> Arc<Clients> {
    Clients::new(ClientLimits {
        max_bindings_per_client: bindings,
        max_streams_per_client: streams,
    })
}

#[test]
fn a_client_at_its_binding_limit_is_refused_and_others_are_not() {
    let clients = clients(2, 10);
    let a = client("10.0.0.1");
    let held: Vec<_> = (0..2).map(|_| clients.hold_binding(&a).unwrap()).collect();
    let refused = clients.hold_binding(&a).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "client 10.0.0.1 holds 2 bindings, its limit (interpreter.maxBindingsPerClient); \
         close some streams before binding more names"
    );
    let b = clients.hold_binding(&client("10.0.0.2")).unwrap();
    assert_eq!(clients.usage(&a).bindings, 2);
    drop(held);
    assert!(clients.hold_binding(&a).is_ok(), "dropped holds give back");
    drop(b);
}

#[test]
fn streams_are_limited_per_client() {
    let clients = clients(10, 2);
    let a = client("10.0.0.1");
    let s1 = clients.open_stream(&a).unwrap();
    let _s2 = clients.open_stream(&a).unwrap();
    assert_eq!(
        clients.open_stream(&a).unwrap_err(),
        LimitError::StreamsPerClient {
            client: a.clone(),
            limit: 2
        }
    );
    assert!(clients.open_stream(&client("10.0.0.2")).is_ok());
    drop(s1);
    assert!(
        clients.open_stream(&a).is_ok(),
        "a closed stream gives back"
    );
}

#[test]
fn an_address_and_an_identity_together_are_one_client() {
    let clients = clients(1, 10);
    let plain = client("10.0.0.1");
    let proxy_a = identified("10.0.0.1", "proxy-a.l5d");
    let proxy_b = identified("10.0.0.1", "proxy-b.l5d");
    // Three clients behind one address, each with its own limit.
    let _held: Vec<_> = [&plain, &proxy_a, &proxy_b]
        .into_iter()
        .map(|c| clients.hold_binding(c).unwrap())
        .collect();
    let refused = clients.hold_binding(&proxy_a).unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("client 10.0.0.1 (proxy-a.l5d) holds 1 bindings"),
        "{refused}"
    );
    // One certificate on another address is another client.
    assert!(
        clients
            .hold_binding(&identified("10.0.0.2", "proxy-a.l5d"))
            .is_ok()
    );
}

#[test]
fn clients_holding_nothing_are_forgotten() {
    let clients = clients(1, 1);
    let a = client("10.0.0.1");
    let hold = clients.hold_binding(&a).unwrap();
    let lease = clients.open_stream(&a).unwrap();
    drop((hold, lease));
    assert!(clients.lock().is_empty());
    // Refusals leave nothing behind either.
    let zero = self::clients(0, 0);
    assert!(zero.hold_binding(&a).is_err());
    assert!(zero.open_stream(&a).is_err());
    assert!(zero.lock().is_empty());
}

#[test]
fn the_fair_share_divides_the_cap_among_the_clients_holding_bindings() {
    let clients = clients(100, 100);
    let (a, b) = (client("10.0.0.1"), client("10.0.0.2"));
    let _held: Vec<_> = (0..6)
        .map(|_| clients.hold_binding(&a).unwrap())
        .chain((0..3).map(|_| clients.hold_binding(&b).unwrap()))
        .collect();
    // Streams alone do not make a client one of those sharing bindings.
    let _stream = clients.open_stream(&client("10.0.0.3")).unwrap();
    let fair = clients.fair_share(10);
    assert_eq!(fair.share, 5);
    assert_eq!(fair.over, HashSet::from([a]));
}

#[test]
fn the_client_is_read_from_the_listeners_peer() {
    let mut ext = http::Extensions::new();
    assert_eq!(Client::of(&ext), Client::UNKNOWN);
    let local = "127.0.0.1:4321".parse().unwrap();
    ext.insert(Peer::plain("10.0.0.2:2000".parse().unwrap(), local));
    assert_eq!(Client::of(&ext), client("10.0.0.2"));
    let identity = ClientIdentity {
        names: vec!["proxy-a.l5d".into()],
    };
    ext.insert(Peer {
        identity: Some(Arc::new(identity)),
        ..Peer::plain("10.0.0.2:2001".parse().unwrap(), local)
    });
    assert_eq!(Client::of(&ext), identified("10.0.0.2", "proxy-a.l5d"));
    // An IPv4 peer of a dual-stack listener is the same client.
    assert_eq!(client("::ffff:10.0.0.1"), client("10.0.0.1"));
}
