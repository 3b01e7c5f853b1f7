//! The test namers of the vector schema, and the little address resolver the
//! `delegate` kind needs for `/$/inet` leaves with literal IPv4 hosts.

use l5d_dtab::{Activity, Bound, Name, NameError, NameTree, Namer, NamerSet, Path};
use serde_json::{Value, json};

use crate::ast::{Result, path, str_field};

/// One configured test namer; it knows its prefix, as Linkerd namers do.
#[derive(Debug)]
pub(crate) struct TestNamer {
    prefix: Path,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// `id = prefix`, residual = the rest; `~` when the rest starts with `buh`.
    Test,
    /// Always fails with `error naming <full path>`.
    Error,
    /// `id = prefix + the first n labels`; `~` with fewer labels.
    Take(usize),
    /// Always the unbound path `target`, looked up through the dtab again.
    Const(Path),
    Neg,
}

impl Namer for TestNamer {
    fn lookup(&self, rest: &Path) -> Activity<NameTree<Name>> {
        let full = self.prefix.concat(rest);
        Activity::Ok(match &self.kind {
            Kind::Test if rest.label(0) == Some(b"buh") => NameTree::Neg,
            Kind::Test => {
                NameTree::Leaf(Name::Bound(Bound::new(self.prefix.clone(), rest.clone())))
            }
            Kind::Error => {
                return Activity::Failed(NameError::namer(&full, format!("error naming {full}")));
            }
            Kind::Take(n) if rest.len() < *n => NameTree::Neg,
            Kind::Take(n) => NameTree::Leaf(Name::Bound(Bound::new(
                self.prefix.concat(&rest.take(*n)),
                rest.drop(*n),
            ))),
            Kind::Const(target) => NameTree::Leaf(Name::Path(target.clone())),
            Kind::Neg => NameTree::Neg,
        })
    }
}

/// The vector's `namers` list, tried in list order.
pub(crate) fn namers(v: &Value) -> Result<NamerSet<TestNamer>> {
    let Some(list) = v.get("namers") else {
        return Ok(NamerSet::new(Vec::new()));
    };
    let list = list.as_array().ok_or("`namers` is not a list")?;
    let mut out = Vec::with_capacity(list.len());
    for n in list {
        let prefix = path(str_field(n, "prefix")?)?;
        let kind = match str_field(n, "kind")? {
            "test" => Kind::Test,
            "error" => Kind::Error,
            "hostport" => Kind::Take(2),
            "fs" => Kind::Take(1),
            "const" => Kind::Const(path(str_field(n, "target")?)?),
            "neg" => Kind::Neg,
            other => return Err(format!("unknown test namer kind {other:?}")),
        };
        out.push((prefix.clone(), TestNamer { prefix, kind }));
    }
    Ok(NamerSet::new(out))
}

/// The address of `/$/inet/<ipv4 literal>/<port>` ids, as the JVM resolves
/// it (`127.1` is `127.0.0.1`); `None` for anything that would need DNS or a
/// namer's own addresses, which the schema does not describe.
pub(crate) fn inet_addr(b: &Bound) -> Option<Value> {
    let labels: Vec<&[u8]> = b.id.labels().collect();
    let [b"$", b"inet" | b"fixedinet", host, port] = labels.as_slice() else {
        return None;
    };
    let ip = inet_aton(std::str::from_utf8(host).ok()?)?;
    let port: u16 = std::str::from_utf8(port).ok()?.parse().ok()?;
    Some(json!({"type": "bound", "addrs": [{"ip": ip, "port": port, "meta": {}}], "meta": {}}))
}

/// `a`, `a.b`, `a.b.c` and `a.b.c.d` decimal forms of an IPv4 address.
fn inet_aton(s: &str) -> Option<String> {
    let parts = s
        .split('.')
        .map(|p| p.parse::<u32>().ok())
        .collect::<Option<Vec<_>>>()?;
    let (last, init) = parts.split_last()?;
    if init.len() > 3 || init.iter().any(|&p| p > 255) {
        return None;
    }
    let mut value: u32 = 0;
    for (i, &p) in init.iter().enumerate() {
        value |= p << (24 - 8 * i);
    }
    let room = 32 - 8 * init.len() as u32;
    if room < 32 && *last >= 1 << room {
        return None;
    }
    value |= last;
    Some(std::net::Ipv4Addr::from(value).to_string())
}
