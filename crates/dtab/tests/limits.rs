//! Hostile dtabs end with an error, never with a stack overflow or an
//! unbounded amount of work: each case runs on a thread with the 2 MiB stack
//! that tokio and `std::thread` give by default, unoptimised.

use l5d_dtab::{
    Activity, Binder, DEFAULT_MAX_DEPTH, DEFAULT_MAX_LOOKUPS, DelegateTree, Dtab, NameError,
    NoNamers, Path,
};

fn nested(n: usize, open: &str, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(n), ")".repeat(n))
}

/// What binding `/s` must give; delegation only has to finish.
enum Want {
    MaxDepth,
    TooManyLookups,
}

fn check(dtab: String, want: Want) {
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let dtab = Dtab::read(&dtab).unwrap();
            let binder = Binder::new(&dtab, &NoNamers);
            let path = Path::read("/s").unwrap();
            let bound = binder.bind_path(&path);
            let trace: Activity<DelegateTree<_>> = binder.delegate_path(&path);
            (
                bound,
                matches!(trace, Activity::Ok(_) | Activity::Failed(_)),
            )
        })
        .unwrap();
    let (bound, traced) = handle.join().expect("binding must not overflow the stack");
    assert!(traced, "the delegation trace must finish");
    let depth = Activity::Failed(NameError::MaxDepth {
        limit: DEFAULT_MAX_DEPTH,
    });
    let lookups = Activity::Failed(NameError::TooManyLookups {
        limit: DEFAULT_MAX_LOOKUPS,
    });
    match want {
        Want::MaxDepth => assert_eq!(bound, depth),
        Want::TooManyLookups => assert_eq!(bound, lookups),
    }
}

#[test]
fn a_rewrite_loop_ends_at_the_depth_limit() {
    check("/s => /s/srv".into(), Want::MaxDepth);
}

#[test]
fn a_loop_through_alternatives_ends_at_the_depth_limit() {
    check("/s => ~ | /s/srv".into(), Want::MaxDepth);
}

#[test]
fn a_loop_through_deeply_nested_trees_ends_at_the_recursion_limit() {
    check(
        format!("/s => {}", nested(99, "(~ | ", "/s/x")),
        Want::MaxDepth,
    );
}

#[test]
fn multiplying_unions_end_at_the_lookup_budget() {
    // 2^12 leaves within a depth of 13: the budget, not the depth, stops it,
    // and the answer is an error rather than the part bound so far.
    let mut doubling = (0..12)
        .map(|i| format!("/l{i} => /l{n} & /l{n}", n = i + 1))
        .collect::<Vec<_>>();
    doubling.push("/l12 => /$/inet/1; /s => /l0".into());
    check(doubling.join(";"), Want::TooManyLookups);
    check("/s => /s/a & /s/b".into(), Want::TooManyLookups);
    check(
        format!("/s => {}", nested(99, "(/s/x & ", "/s/y")),
        Want::TooManyLookups,
    );
}
