use super::*;

fn wire_ep(address: Vec<u8>, port: i32, node: &str, md: &[(&str, &str)]) -> mesh::Endpoint {
    mesh::Endpoint {
        inet_af: 0,
        address,
        port,
        meta: Some(Meta {
            node_name: node.into(),
        }),
        metadata: md
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn wire_bound(endpoints: Vec<mesh::Endpoint>) -> mesh::Replicas {
    mesh::Replicas {
        result: Some(replicas::Result::Bound(replicas::Bound {
            endpoints,
            metadata: HashMap::new(),
        })),
    }
}

/// An endpoint on node `node-a` in zone `z1` with `weight`.
fn on_node_a(addr: &str, weight: f64) -> Endpoint {
    let mut e = Endpoint::new(addr.parse().unwrap());
    e.node_name = Some("node-a".into());
    e.weight = Some(weight);
    e.meta.insert("zone".into(), "z1".into());
    e
}

fn read(msg: &mesh::Replicas) -> Result<Addr, EndpointError> {
    Addr::try_from(msg)
}

fn write(addr: &Addr) -> mesh::Replicas {
    addr.into()
}

#[test]
fn states_map_one_to_one_both_ways() {
    let cases = [
        (
            Addr::Pending,
            replicas::Result::Pending(replicas::Pending {}),
        ),
        (Addr::Neg, replicas::Result::Neg(replicas::Neg {})),
        (
            Addr::Failed("boom".into()),
            replicas::Result::Failed(replicas::Failed {
                message: "boom".into(),
            }),
        ),
    ];
    for (addr, result) in cases {
        let msg = write(&addr);
        assert_eq!(msg.result, Some(result));
        assert_eq!(read(&msg), Ok(addr));
    }
    assert_eq!(read(&mesh::Replicas { result: None }), Ok(Addr::Neg));
}

#[test]
fn endpoints_are_written_with_raw_addresses_and_stringified_metadata() {
    let v4 = on_node_a("10.0.0.1:8080", 2.0);
    let v6 = Endpoint::new("[2001:db8::1]:9090".parse().unwrap());
    let mapped = Endpoint::new("[::ffff:10.0.0.2]:80".parse().unwrap());
    let meta = BTreeMap::from([("set".to_string(), "x".to_string())]);
    let addr = Addr::Bound(AddrSet::with_meta([v4, v6, mapped], meta));
    let Some(replicas::Result::Bound(bound)) = write(&addr).result else {
        panic!("bound");
    };
    assert_eq!(bound.metadata, HashMap::from([("set".into(), "x".into())]));
    // Sorted by address: the v4 one, the mapped v4 one, then v6.
    let [a, mapped, v6] = &bound.endpoints[..] else {
        panic!("three endpoints");
    };
    assert_eq!(
        (a.inet_af, &a.address[..], a.port),
        (AddressFamily::Inet4 as i32, &[10, 0, 0, 1][..], 8080)
    );
    assert_eq!(a.meta.as_ref().unwrap().node_name, "node-a");
    let expected: HashMap<String, String> = [
        ("zone", "z1"),
        ("nodeName", "node-a"),
        ("weight", "2.0"),
        ("endpoint_addr_weight", "2.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(a.metadata, expected);
    assert_eq!(
        (v6.inet_af, v6.address.len()),
        (AddressFamily::Inet6 as i32, 16)
    );
    assert_eq!(v6.meta.as_ref().unwrap().node_name, "");
    assert_eq!(
        (mapped.inet_af, &mapped.address[..]),
        (AddressFamily::Inet4 as i32, &[10, 0, 0, 2][..])
    );
}

#[test]
fn an_endpoint_without_weight_or_node_writes_neither() {
    let addr = Addr::bound([Endpoint::new("10.0.0.1:80".parse().unwrap())]);
    let Some(replicas::Result::Bound(bound)) = write(&addr).result else {
        panic!("bound");
    };
    assert!(bound.endpoints[0].metadata.is_empty());
}

#[test]
fn endpoints_are_read_with_node_weight_and_metadata() {
    let msg = wire_bound(vec![
        wire_ep(vec![10, 0, 0, 2], 80, "", &[("weight", "2.0")]),
        wire_ep(vec![10, 0, 0, 1], 8080, "node-a", &[("set", "x")]),
        wire_ep([0u8; 16].to_vec(), 1, "", &[("nodeName", "node-b")]),
        wire_ep(vec![10, 0, 0, 3], 80, "", &[("weight", "-1")]),
    ]);
    let Ok(Addr::Bound(set)) = read(&msg) else {
        panic!("bound")
    };
    let eps = set.endpoints();
    let addrs: Vec<String> = eps.iter().map(|e| e.addr.to_string()).collect();
    assert_eq!(
        addrs,
        ["10.0.0.1:8080", "10.0.0.2:80", "10.0.0.3:80", "[::]:1"]
    );
    assert_eq!(eps[0].node_name.as_deref(), Some("node-a"));
    assert_eq!((eps[0].weight, eps[0].effective_weight()), (None, 1.0));
    assert_eq!(eps[0].meta.get("set").map(String::as_str), Some("x"));
    assert_eq!(eps[1].weight, Some(2.0));
    assert_eq!(eps[2].weight, None, "a negative weight is ignored");
    assert_eq!(eps[3].node_name.as_deref(), Some("node-b"));
}

#[test]
fn bad_endpoints_are_named() {
    let err = read(&wire_bound(vec![
        wire_ep(vec![1, 2, 3, 4], 80, "", &[]),
        wire_ep(vec![1, 2, 3], 80, "", &[]),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Endpoint #1: an address is 4 or 16 bytes, not 3"
    );
    let err = read(&wire_bound(vec![wire_ep(vec![1, 2, 3, 4], 70000, "", &[])])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Endpoint #0: port 70000 is out of range"
    );
}

#[test]
fn a_set_round_trips_through_the_wire() {
    let a = on_node_a("10.0.0.1:8080", 0.25);
    let mut b = Endpoint::new("[2001:db8::1]:9090".parse().unwrap());
    b.weight = Some(3.0);
    let c = Endpoint::new("10.0.0.2:80".parse().unwrap());
    let meta = BTreeMap::from([("set".to_string(), "x".to_string())]);
    let addr = Addr::Bound(AddrSet::with_meta([a, b, c], meta));

    let msg = write(&addr);
    let back = read(&msg).unwrap();
    let (Addr::Bound(sent), Addr::Bound(got)) = (&addr, &back) else {
        panic!("bound");
    };
    assert_eq!(got.meta(), sent.meta());
    assert_eq!(got.len(), sent.len());
    for (g, s) in got.endpoints().iter().zip(sent.endpoints()) {
        assert_eq!(
            (g.addr, &g.node_name, g.weight),
            (s.addr, &s.node_name, s.weight)
        );
        // The metadata read keeps what was sent, plus the keys that carried
        // the node and the weight.
        assert!(
            s.meta.iter().all(|(k, v)| g.meta.get(k) == Some(v)),
            "{g:?}"
        );
    }
    // What the proxy reads, written again, is what namerd wrote.
    assert_eq!(write(&back), msg);
}

#[test]
fn weights_print_as_on_the_jvm() {
    assert_eq!(jvm_double(1.0), "1.0");
    assert_eq!(jvm_double(0.25), "0.25");
    assert_eq!(jvm_double(1e7), "10000000");
}
