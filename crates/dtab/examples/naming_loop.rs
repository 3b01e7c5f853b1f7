//! A fixed amount of naming work for instruction counting, which is
//! repeatable where wall-clock benchmarks on a shared machine are not:
//!
//! ```text
//! cargo build --release -p l5d-dtab --example naming_loop
//! valgrind --tool=callgrind target/release/examples/naming_loop parse 2000
//! valgrind --tool=callgrind target/release/examples/naming_loop bind 2000
//! ```
//!
//! Divide the difference between two iteration counts by the difference in
//! iterations to remove start-up costs.

use std::hint::black_box;

use l5d_dtab::{Activity, Binder, Bound, Dtab, Name, NameTree, Namer, Path};

const INTERNAL: &str = "/srv => /#/io.l5d.k8s/default/http; /host => /srv; /tmp => /srv; \
                        /svc => /host; /host/world => /srv/world-v1;";

/// Binds `/#/io.l5d.k8s/<namespace>/<port>/<service>`, as the Kubernetes
/// namer does.
struct K8s(Path);

impl Namer for K8s {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        let id_len = self.0.len() + 3;
        if !path.starts_with(&self.0) || path.len() < id_len {
            return Activity::Ok(NameTree::Neg);
        }
        Activity::Ok(NameTree::Leaf(Name::Bound(Bound::new(
            path.take(id_len),
            path.drop(id_len),
        ))))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "bind".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let dtab = Dtab::read(INTERNAL).expect("the internal dtab parses");
    let namer = K8s(Path::utf8(["#", "io.l5d.k8s"]));
    let name = Path::utf8(["svc", "world"]);
    let mut done = 0usize;
    for _ in 0..n {
        done += match what.as_str() {
            "parse" => Dtab::read(black_box(INTERNAL)).map_or(0, |d| d.len()),
            "bind" => Binder::new(black_box(&dtab), &namer)
                .bind_path(black_box(&name))
                .ok()
                .map_or(0, |_| 1),
            other => panic!("unknown workload {other}; use parse or bind"),
        };
    }
    assert!(done > 0);
}
