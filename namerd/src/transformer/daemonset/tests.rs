//! The daemonset mapping as a table: app endpoints and proxies in, the
//! proxies used out.

use std::sync::Arc;

use super::map;
use l5d_dtab::{Addr, Endpoint};

fn ep(addr: &str, node: Option<&str>) -> Endpoint {
    let mut e = Endpoint::new(addr.parse().expect("socket address"));
    e.node_name = node.map(Arc::from);
    e
}

fn bound(eps: &[(&str, Option<&str>)]) -> Addr {
    Addr::bound(eps.iter().map(|(a, n)| ep(a, *n)))
}

fn addrs(addr: &Addr) -> Option<Vec<String>> {
    match addr {
        Addr::Bound(set) => Some(set.endpoints().iter().map(|e| e.addr.to_string()).collect()),
        _ => None,
    }
}

/// Proxies on nodes n1 and n2 (pod IPs in the nodes' /24s); none on n3.
fn proxies() -> Addr {
    bound(&[
        ("10.0.1.200:4141", Some("n1")),
        ("10.0.2.200:4141", Some("n2")),
        ("[fd00:0:0:1::9]:4141", Some("n1")),
    ])
}

#[test]
fn endpoints_map_to_the_proxy_beside_them() {
    let app = bound(&[
        ("10.0.1.5:8080", Some("n1")),
        ("10.0.1.6:8080", Some("n1")),
        ("10.0.2.5:8080", Some("n2")),
        ("10.0.3.5:8080", Some("n3")),
        ("[fd00:0:0:1::5]:8080", Some("n1")),
    ]);
    let cases: [(&str, bool, Option<Vec<&str>>); 2] = [
        (
            "by subnet: n3's endpoint has no proxy; IPv6 by /64",
            false,
            Some(vec![
                "10.0.1.200:4141",
                "10.0.2.200:4141",
                "[fd00:0:0:1::9]:4141",
            ]),
        ),
        (
            "by node name: the first proxy of n1 (by address) wins",
            true,
            Some(vec!["10.0.1.200:4141", "10.0.2.200:4141"]),
        ),
    ];
    for (what, host_network, want) in cases {
        let got = map(app.clone(), &proxies(), host_network);
        let want = want.map(|v| v.into_iter().map(str::to_string).collect());
        assert_eq!(addrs(&got), want, "{what}");
    }
}

#[test]
fn by_node_name_ignores_subnets_and_unknown_nodes() {
    // Host-network proxies have the node's IP, in no pod's /24.
    let proxies = bound(&[("192.168.0.1:4141", Some("n1"))]);
    let app = bound(&[("10.0.1.5:8080", Some("n1")), ("10.0.9.5:8080", None)]);
    assert_eq!(
        addrs(&map(app.clone(), &proxies, true)),
        Some(vec!["192.168.0.1:4141".to_string()])
    );
    assert_eq!(map(app, &proxies, false), Addr::Neg);
}

#[test]
fn nothing_to_send_to_is_neg_and_unknowns_pass_through() {
    let app = bound(&[("10.0.3.5:8080", Some("n3"))]);
    let cases: [(&str, Addr, Addr, Addr); 6] = [
        ("no proxy beside", app.clone(), proxies(), Addr::Neg),
        (
            "no app endpoints",
            Addr::bound(vec![]),
            proxies(),
            Addr::Neg,
        ),
        ("no proxies", app.clone(), Addr::bound(vec![]), Addr::Neg),
        (
            "proxies' Service missing",
            app.clone(),
            Addr::Neg,
            Addr::Neg,
        ),
        ("proxies pending", app.clone(), Addr::Pending, Addr::Pending),
        ("app neg", Addr::Neg, proxies(), Addr::Neg),
    ];
    for (what, app, proxies, want) in cases {
        assert_eq!(map(app, &proxies, false), want, "{what}");
    }
    assert_eq!(map(Addr::Pending, &proxies(), true), Addr::Pending);
}
