//! The naming core's hot path: bind `/svc/world` through the Linkerd
//! handbook's `internal` dtab, with a namer answering for `/#/io.l5d.k8s`.
//!
//! Target (`performance.md`): parse + bind at least 1,000,000 times a second
//! on one core. Run with `cargo bench -p l5d-dtab --bench bind`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use l5d_dtab::{Activity, Binder, Bound, Dtab, Name, NameTree, Namer, Path};

const INTERNAL: &str = "/srv => /#/io.l5d.k8s/default/http; /host => /srv; /tmp => /srv; \
                        /svc => /host; /host/world => /srv/world-v1;";

/// `/#/io.l5d.k8s/<namespace>/<port>/<service>/residual...`, as the
/// Kubernetes namer binds it: the id takes three labels after the prefix.
struct K8s {
    prefix: Path,
}

impl Namer for K8s {
    fn lookup(&self, path: &Path) -> Activity<NameTree<Name>> {
        if !path.starts_with(&self.prefix) || path.len() < self.prefix.len() + 3 {
            return Activity::Ok(NameTree::Neg);
        }
        let id_len = self.prefix.len() + 3;
        Activity::Ok(NameTree::Leaf(Name::Bound(Bound::new(
            path.take(id_len),
            path.drop(id_len),
        ))))
    }
}

fn bench(c: &mut Criterion) {
    let namer = K8s {
        prefix: Path::read("/#/io.l5d.k8s").unwrap(),
    };
    let name = Path::read("/svc/world").unwrap();
    let dtab = Dtab::read(INTERNAL).unwrap();
    let expected = Path::read("/#/io.l5d.k8s/default/http/world-v1").unwrap();
    match Binder::new(&dtab, &namer).bind_path(&name) {
        Activity::Ok(NameTree::Leaf(b)) if b.id == expected => {}
        other => panic!("unexpected binding {other:?}"),
    }

    let mut group = c.benchmark_group("internal dtab, /svc/world");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bind", |b| {
        b.iter(|| Binder::new(black_box(&dtab), &namer).bind_path(black_box(&name)))
    });
    group.bench_function("parse + bind", |b| {
        b.iter(|| {
            let dtab = Dtab::read(black_box(INTERNAL)).unwrap();
            Binder::new(&dtab, &namer).bind_path(black_box(&name))
        })
    });
    group.bench_function("parse", |b| b.iter(|| Dtab::read(black_box(INTERNAL))));
    group.bench_function("delegate", |b| {
        b.iter(|| Binder::new(black_box(&dtab), &namer).delegate_path(black_box(&name)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
