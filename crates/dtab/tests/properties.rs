//! Properties of the naming core over generated inputs: text forms round
//! trip, binding and delegation always end within their limits, and no
//! string makes a parser panic.

use l5d_dtab::{
    Activity, Binder, Bound, DEFAULT_MAX_DEPTH, DEFAULT_MAX_LOOKUPS, Dentry, Dtab, Name, NameError,
    NameTree, Namer, Path, Prefix, PrefixElem, Weighted,
};
use proptest::prelude::*;

const CASES: u32 = 4096;
const LOOKUPS: usize = 250;

/// Labels: mostly from a small alphabet (so that generated dtabs match and
/// loop), sometimes arbitrary bytes (so that escaping is exercised).
fn label() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c", "svc", "host", "#", "$", "io.l5d.fs", "x-1"])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..6),
    ]
}

fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(label(), 0..5).prop_map(|ls| Path::try_from_labels(ls).unwrap())
}

fn prefix() -> impl Strategy<Value = Prefix> {
    // `None` is a wildcard.
    let elem = prop_oneof![3 => label().prop_map(Some), 1 => Just(None)];
    prop::collection::vec(elem, 0..4).prop_map(|elems| {
        Prefix::new(elems.iter().map(|e| match e {
            Some(l) => PrefixElem::Label(l),
            None => PrefixElem::Any,
        }))
        .unwrap()
    })
}

/// Trees as `show` can express them: alternations and unions have at least
/// two members, and weights have two decimals.
fn tree() -> impl Strategy<Value = NameTree<Path>> {
    let leaf = prop_oneof![
        6 => path().prop_map(NameTree::Leaf),
        1 => Just(NameTree::Neg),
        1 => Just(NameTree::Fail),
        1 => Just(NameTree::Empty),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let weight = prop_oneof![Just(1.0), (0u32..1000).prop_map(|k| f64::from(k) / 100.0)];
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(NameTree::Alt),
            prop::collection::vec((weight, inner), 2..4).prop_map(|ws| NameTree::Union(
                ws.into_iter().map(|(w, t)| Weighted::new(w, t)).collect()
            )),
        ]
    })
}

fn dtab() -> impl Strategy<Value = Dtab> {
    prop::collection::vec(
        (prefix(), tree()).prop_map(|(p, t)| Dentry::new(p, t)),
        0..6,
    )
    .prop_map(Dtab::new)
}

/// A namer that binds `/#/<one label>` and answers the rest of `/#` with
/// pending, failure, or a path to look up again, depending on the label.
struct GeneratedNamer;

impl Namer for GeneratedNamer {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        if path.label(0) != Some(b"#") {
            return Activity::Ok(NameTree::Neg);
        }
        match path.label(1) {
            Some(b"a") => Activity::Ok(NameTree::Leaf(Name::Bound(Bound::new(
                path.take(3),
                path.drop(3),
            )))),
            Some(b"b") => Activity::Pending,
            Some(b"c") => Activity::Failed(NameError::namer(path, "generated failure")),
            Some(b"svc") => Activity::Ok(NameTree::Leaf(Name::Path(path.drop(1)))),
            _ => Activity::Ok(NameTree::Neg),
        }
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn paths_round_trip(p in path()) {
        prop_assert_eq!(Path::read(&p.show()).unwrap(), p);
    }

    #[test]
    fn prefixes_round_trip(p in prefix()) {
        prop_assert_eq!(Prefix::read(&p.show()).unwrap(), p);
    }

    #[test]
    fn trees_round_trip(t in tree()) {
        prop_assert_eq!(NameTree::read(&t.show()).unwrap(), t);
    }

    #[test]
    fn dtabs_round_trip(d in dtab()) {
        prop_assert_eq!(Dtab::read(&d.show()).unwrap(), d);
    }

    #[test]
    fn simplify_is_idempotent_and_keeps_eval(t in tree()) {
        let s = t.simplified();
        prop_assert_eq!(s.simplified(), s.clone());
        prop_assert_eq!(s.eval(), t.eval());
    }

    /// Binding ends, within the depth limit and the lookup budget, with a
    /// tree that has no alternations, or with one of the expected errors.
    #[test]
    fn bind_terminates(d in dtab(), p in path()) {
        // A smaller lookup budget than the default keeps the test quick; it
        // still allows loops to reach the depth limit.
        let binder = Binder::new(&d, &GeneratedNamer).with_max_lookups(LOOKUPS);
        match binder.bind_path(&p) {
            Activity::Ok(t) => prop_assert!(no_alt(&t), "alternation in bound tree {:?}", t),
            Activity::Pending => {}
            Activity::Failed(e) => prop_assert!(
                matches!(
                    e,
                    NameError::MaxDepth { limit: DEFAULT_MAX_DEPTH }
                        | NameError::TooManyLookups { limit: LOOKUPS }
                        | NameError::UnknownNamer { .. }
                        | NameError::Namer { .. }
                ),
                "unexpected error {e}"
            ),
        }
        let _ = binder.delegate_path(&p);
    }

    #[test]
    fn arbitrary_strings_never_panic_a_parser(s in any::<String>()) {
        parse_everything(&s);
    }

    /// Strings over the grammar's own characters reach every parser state.
    #[test]
    fn grammar_soup_never_panics_a_parser(
        s in prop::collection::vec(
            prop::sample::select(vec![
                "/", "a", "*", "\\", "x", "2", "f", "(", ")", "|", "&", "~", "!", "$", "#", ";",
                "=", ">", "=>", ".", "0.5", " ", "\n", "é", "\u{661}", "\u{2003}",
            ]),
            0..40,
        ).prop_map(|parts| parts.concat())
    ) {
        parse_everything(&s);
    }
}

fn parse_everything(s: &str) {
    let _ = Path::read(s);
    let _ = Prefix::read(s);
    let _ = NameTree::read(s);
    let _ = Dentry::read(s);
    let _ = Dtab::read(s);
}

fn no_alt<T>(t: &NameTree<T>) -> bool {
    match t {
        NameTree::Alt(_) => false,
        NameTree::Union(ws) => ws.iter().all(|w| no_alt(&w.tree)),
        _ => true,
    }
}

#[test]
fn multiplying_unions_hit_the_lookup_budget() {
    let d = Dtab::read("/a => /a & /a").unwrap();
    let got = Binder::new(&d, &GeneratedNamer).bind_path(&Path::read("/a").unwrap());
    assert_eq!(
        got,
        Activity::Failed(NameError::TooManyLookups {
            limit: DEFAULT_MAX_LOOKUPS
        })
    );
    let trace = Binder::new(&d, &GeneratedNamer).delegate_path(&Path::read("/a").unwrap());
    assert!(matches!(trace, Activity::Ok(_) | Activity::Failed(_)));
}
