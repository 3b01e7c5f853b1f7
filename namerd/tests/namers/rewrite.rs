//! `io.l5d.rewrite` patterns, as Linkerd's `PathMatcher` matches them.

use l5d_dtab::{Activity, Addr, Name, NameTree};
use namerd::namer::Namer;
use namerd::namer::rewrite::{RewriteError, RewriteNamer};

use super::support::path;

#[test]
fn patterns_rewrite_paths() {
    // (pattern, name, path, rewritten or `None` for `~`)
    let k8s = ("/{port}/{ns}/{svc}", "/k8s/{ns}/{port}/{svc}");
    let cases = [
        (k8s, "/http/default/web", Some("/k8s/default/http/web")),
        // Labels after the match are dropped, as in Linkerd.
        (
            k8s,
            "/http/default/web/extra",
            Some("/k8s/default/http/web"),
        ),
        (k8s, "/http/default", None),
        (("/svc/*/{name}", "/srv/{name}"), "/svc/x/y", Some("/srv/y")),
        (("/svc/*/{name}", "/srv/{name}"), "/other/x/y", None),
        (
            ("/{host}:8080", "/h/{host}/http"),
            "/web:8080",
            Some("/h/web/http"),
        ),
        (("/{host}:8080", "/h/{host}/http"), "/web:9090", None),
        (("/{host}:8080", "/h/{host}/http"), "/web", None),
        (
            ("/{host}:8080/{svc}", "/h/{host}/{svc}"),
            "/web:8080/api",
            Some("/h/web/api"),
        ),
        // An empty capture would make an empty label: `~`.
        (("/{host}:8080", "/h/{host}"), "/:8080", None),
        // Captures may be used twice, or inside a label.
        (("/{a}/{b}", "/{b}-{a}/{a}"), "/x/y", Some("/y-x/x")),
        // Labels are compared and substituted in their shown form.
        (
            ("/{a}", "/x/{a}"),
            "/\\x61\\x20\\x62",
            Some("/x/\\x61\\x20\\x62"),
        ),
        (("/a b", "/x"), "/a", None),
        // No segments match every path.
        (("/", "/fixed"), "/anything/at/all", Some("/fixed")),
        (("/{a}/", "/{a}"), "/x/y", Some("/x")),
    ];
    for ((pattern, name), input, want) in cases {
        let namer = RewriteNamer::new(path("/#/rw"), pattern, name).unwrap();
        let want = match want {
            Some(p) => NameTree::Leaf(Name::Path(path(p))),
            None => NameTree::Neg,
        };
        assert_eq!(
            namer.lookup(&path(input)),
            Activity::Ok(want),
            "{pattern} => {name} on {input}"
        );
    }
}

#[test]
fn bad_patterns_and_names_are_refused() {
    let cases = [
        ("/a//b", "/x", "has an empty segment"),
        ("/{a}", "/x/{b}", "uses a variable that pattern"),
        ("/{a}", "x/{a}", "is not a path"),
        ("/{a}", "/x y/{a}", "is not a path"),
    ];
    for (pattern, name, want) in cases {
        let err: RewriteError = RewriteNamer::new(path("/#/rw"), pattern, name).unwrap_err();
        assert!(err.to_string().contains(want), "{pattern} {name}: {err}");
    }
}

#[tokio::test]
async fn rewrites_never_resolve() {
    let namer = RewriteNamer::new(path("/#/rw"), "/{a}", "/b/{a}").unwrap();
    assert_eq!(*namer.resolve(&path("/x")).borrow(), Addr::Neg);
    assert_eq!(namer.prefix(), &path("/#/rw"));
    assert!(namer.bound_names().is_empty());
    assert_eq!(namer.state().details["pattern"], "/{a}");
}
