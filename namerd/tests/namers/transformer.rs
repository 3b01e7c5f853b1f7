//! Transformers over a namer with fixed answers.

use std::collections::HashMap;
use std::sync::Arc;

use l5d_dtab::{Activity, Addr, Endpoint, Name, NameTree, Path};
use namerd::namer::{Namer, NamerState, fixed};
use namerd::transformer::{TransformedNamer, Transformer};
use tokio::sync::watch;

use super::support::{FakeDns, addr, addrs_of, bound, leaf, neg, path, wait_until};

/// `/#/static/<name>` for the names it holds; addresses from watch senders
/// the test keeps, so that it can change them.
struct StaticNamer {
    prefix: Path,
    addrs: HashMap<String, watch::Sender<Addr>>,
}

impl StaticNamer {
    fn new(names: &[(&str, Addr)]) -> Arc<Self> {
        let addrs = names
            .iter()
            .map(|(n, a)| (n.to_string(), watch::Sender::new(a.clone())))
            .collect();
        Arc::new(StaticNamer {
            prefix: path("/#/static"),
            addrs,
        })
    }
}

impl Namer for StaticNamer {
    fn prefix(&self) -> &Path {
        &self.prefix
    }
    fn lookup(&self, p: &Path) -> Activity<NameTree<Name>> {
        match p.first_str() {
            Some("rewrite") => Activity::Ok(NameTree::Leaf(Name::Path(path("/elsewhere")))),
            Some(n) if self.addrs.contains_key(n) => {
                leaf(&format!("/#/static/{n}"), &p.drop(1).show())
            }
            _ => neg(),
        }
    }
    fn lookup_changes(&self) -> watch::Receiver<u64> {
        fixed(0)
    }
    fn resolve(&self, id: &Path) -> watch::Receiver<Addr> {
        match id.first_str().and_then(|n| self.addrs.get(n)) {
            Some(tx) => tx.subscribe(),
            None => fixed(Addr::Neg),
        }
    }
    fn bound_names(&self) -> Vec<Path> {
        let mut names: Vec<Path> = self
            .addrs
            .keys()
            .map(|n| self.prefix.concat(&Path::utf8([n])))
            .collect();
        names.sort();
        names
    }
    fn state(&self) -> NamerState {
        NamerState::default()
    }
}

/// Two endpoints on node `a`, one on node `b`.
fn web() -> Addr {
    let mut endpoints = Vec::new();
    for (a, node) in [
        ("10.0.0.1:8080", "a"),
        ("10.0.0.1:9090", "a"),
        ("10.0.0.2:8080", "b"),
    ] {
        let mut e = Endpoint::new(addr(a));
        e.node_name = Some(node.into());
        endpoints.push(e);
    }
    Addr::bound(endpoints)
}

fn wrap(inner: &Arc<StaticNamer>, transformers: Vec<Transformer>) -> TransformedNamer {
    TransformedNamer::new(inner.clone(), transformers)
}

#[tokio::test]
async fn each_transformer_rewrites_ids_and_addresses() {
    let inner = StaticNamer::new(&[("web", web()), ("none", bound(&[]))]);
    let dns = FakeDns::default();
    dns.set("node-b.test", &["10.0.0.2"]);
    let specific = Transformer::specific_host("node-b.test", &dns.resolver())
        .await
        .unwrap();
    // (transformer, id of /web/x, addresses of /web; `None` is Neg)
    let cases: Vec<(Transformer, &str, Option<Vec<&str>>)> = vec![
        (
            Transformer::port(4141),
            "/%/io.l5d.port/4141/#/static/web",
            Some(vec!["10.0.0.1:4141", "10.0.0.2:4141"]),
        ),
        (
            Transformer::localhost(["10.0.0.1".parse().unwrap()]),
            "/%/io.l5d.localhost/#/static/web",
            Some(vec!["10.0.0.1:8080", "10.0.0.1:9090"]),
        ),
        (
            Transformer::localhost(["192.0.2.1".parse().unwrap()]),
            "/%/io.l5d.localhost/#/static/web",
            None,
        ),
        (
            specific,
            "/%/io.l5d.specificHost/#/static/web",
            Some(vec!["10.0.0.2:8080"]),
        ),
        (
            Transformer::port(80).with_prefix(&path("/incoming")),
            "/%/incoming/#/static/web",
            Some(vec!["10.0.0.1:80", "10.0.0.2:80"]),
        ),
    ];
    for (t, id, want) in cases {
        let label = format!("{t:?}");
        let namer = wrap(&inner, vec![t]);
        assert_eq!(namer.lookup(&path("/web/x")), leaf(id, "/x"), "{label}");
        assert_eq!(namer.lookup(&path("/missing")), neg(), "{label}");
        // The interpreter strips the `/%` prefix and the namer's own.
        let inner_id = path(id).strip_transformer_prefix().drop(2);
        let got = namer.resolve(&inner_id).borrow().clone();
        match want {
            Some(want) => {
                assert_eq!(addrs_of(&got).unwrap(), want, "{label}");
                let Addr::Bound(set) = got else {
                    unreachable!()
                };
                assert!(
                    set.endpoints().iter().all(|e| e.node_name.is_some()),
                    "{label}: metadata kept"
                );
            }
            None => assert_eq!(got, Addr::Neg, "{label}"),
        }
    }
}

#[tokio::test]
async fn replace_and_const_bind_a_fixed_path() {
    let inner = StaticNamer::new(&[("web", web())]);
    let target = path("/$/inet/127.0.0.1/4141");
    let replace = wrap(&inner, vec![Transformer::replace(&target).unwrap()]);
    let constant = wrap(&inner, vec![Transformer::constant(&target).unwrap()]);
    let cases = [
        (
            &replace,
            "/web/x",
            leaf("/%/io.l5d.replace/$/inet/127.0.0.1/4141", "/"),
        ),
        (&replace, "/missing", neg()),
        (
            &constant,
            "/web/x",
            leaf("/%/io.l5d.const/$/inet/127.0.0.1/4141", "/"),
        ),
        (
            &constant,
            "/missing",
            leaf("/%/io.l5d.const/$/inet/127.0.0.1/4141", "/"),
        ),
    ];
    for (namer, p, want) in cases {
        assert_eq!(namer.lookup(&path(p)), want, "{p}");
    }
    // The id strips to the `/$/inet` id, which the inet resolver serves.
    let id = path("/%/io.l5d.replace/$/inet/127.0.0.1/4141");
    assert_eq!(id.strip_transformer_prefix(), target);
}

#[tokio::test]
async fn transformers_apply_in_order_and_follow_changes() {
    let inner = StaticNamer::new(&[("web", web())]);
    let namer = wrap(
        &inner,
        vec![
            Transformer::port(4141),
            Transformer::localhost(["10.0.0.1".parse().unwrap()]),
        ],
    );
    assert_eq!(
        namer.lookup(&path("/web")),
        leaf("/%/io.l5d.localhost/%/io.l5d.port/4141/#/static/web", "/")
    );
    let mut rx = namer.resolve(&path("/web"));
    assert_eq!(
        addrs_of(&rx.borrow_and_update()).unwrap(),
        ["10.0.0.1:4141"]
    );
    inner.addrs["web"].send_replace(bound(&["10.0.0.1:1", "10.0.0.3:1"]));
    // The same address, now without node metadata.
    wait_until(&mut rx, "forwarded", |a| *a == bound(&["10.0.0.1:4141"])).await;
    inner.addrs["web"].send_replace(bound(&["10.0.0.3:1"]));
    wait_until(&mut rx, "filtered to nothing", |a| *a == Addr::Neg).await;
    inner.addrs["web"].send_replace(Addr::Pending);
    wait_until(&mut rx, "pending passes", |a| *a == Addr::Pending).await;
    // A second watcher shares the forwarding.
    assert_eq!(*namer.resolve(&path("/web")).borrow(), Addr::Pending);
}

#[tokio::test]
async fn unbound_trees_and_names_pass_through() {
    let inner = StaticNamer::new(&[("web", web()), ("api", web())]);
    let namer = wrap(&inner, vec![Transformer::port(4141)]);
    assert_eq!(
        namer.lookup(&path("/rewrite")),
        Activity::Ok(NameTree::Leaf(Name::Path(path("/elsewhere"))))
    );
    let names: Vec<String> = namer.bound_names().iter().map(Path::show).collect();
    assert_eq!(
        names,
        [
            "/%/io.l5d.port/4141/#/static/api",
            "/%/io.l5d.port/4141/#/static/web"
        ]
    );
    assert_eq!(namer.prefix(), &path("/#/static"));
    assert_eq!(namer.state().details["transformers"], "/%/io.l5d.port/4141");
}
