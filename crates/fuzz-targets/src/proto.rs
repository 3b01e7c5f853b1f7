//! Every `io.linkerd.mesh` message as namerd and the proxy receive it:
//! decoded with prost, then converted to `l5d-dtab` values with the
//! `TryFrom` impls of `l5d-proto`'s `convert.rs`. A value that converts
//! must go back to the wire and convert again to the same value.

use std::fmt::Debug;

use l5d_dtab::{Addr, Bound, DelegateTree, Dentry, Dtab, NameTree, Path, Prefix};
use l5d_proto::mesh;
use prost::Message;

/// The first byte chooses the message type, the rest is its encoding.
pub fn mesh_proto(data: &[u8]) {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 17 {
        0 => with(bytes, |m: mesh::Path| wire::<Path, _, _>(&m)),
        1 => with(bytes, |m: mesh::PathNameTree| {
            wire::<NameTree<Path>, _, _>(&m);
        }),
        2 => with(bytes, |m: mesh::BoundNameTree| {
            wire::<NameTree<Bound>, _, _>(&m);
        }),
        3 => with(bytes, |m: mesh::Dtab| wire::<Dtab, _, _>(&m)),
        4 => with(bytes, |m: mesh::dtab::Dentry| {
            wire::<Dentry, _, _>(&m);
            field::<Prefix, _, _>(m.prefix.as_ref());
        }),
        5 => with(bytes, |m: mesh::VersionedDtab| {
            field::<Dtab, _, _>(m.dtab.as_ref());
        }),
        6 => with(bytes, |m: mesh::BindReq| {
            field::<Path, _, _>(m.root.as_ref());
            field::<Path, _, _>(m.name.as_ref());
            field::<Dtab, _, _>(m.dtab.as_ref());
        }),
        7 => with(bytes, |m: mesh::BoundTreeRsp| {
            field::<NameTree<Bound>, _, _>(m.tree.as_ref());
        }),
        8 => with(bytes, |m: mesh::ReplicasReq| {
            field::<Path, _, _>(m.id.as_ref());
        }),
        9 => with(bytes, |m: mesh::Replicas| wire::<Addr, _, _>(&m)),
        10 => with(bytes, |m: mesh::Endpoint| {
            // An endpoint converts inside a `Replicas`, as it arrives.
            let replicas = mesh::Replicas {
                result: Some(mesh::replicas::Result::Bound(mesh::replicas::Bound {
                    endpoints: vec![m],
                    ..Default::default()
                })),
            };
            wire::<Addr, _, _>(&replicas);
        }),
        11 => with(bytes, |m: mesh::DtabReq| {
            field::<Path, _, _>(m.root.as_ref());
        }),
        12 => with(bytes, |m: mesh::DtabRsp| {
            field::<Dtab, _, _>(m.dtab.as_ref().and_then(|v| v.dtab.as_ref()));
        }),
        13 => with(bytes, |m: mesh::DelegateTreeReq| {
            field::<Path, _, _>(m.root.as_ref());
            field::<NameTree<Path>, _, _>(m.tree.as_ref());
            field::<Dtab, _, _>(m.dtab.as_ref());
        }),
        14 => with(bytes, |m: mesh::DelegateTreeRsp| {
            field::<DelegateTree<Bound>, _, _>(m.tree.as_ref());
        }),
        // The Codec service: text to values and back.
        15 => with(bytes, |m: mesh::ReadDtabReq| {
            if let Ok(dtab) = Dtab::read(&m.text) {
                wire::<Dtab, _, _>(&mesh::Dtab::from(&dtab));
            }
        }),
        _ => with(bytes, |m: mesh::ReadPathReq| {
            if let Ok(path) = Path::read(&m.text) {
                wire::<Path, _, _>(&mesh::Path::from(&path));
            }
        }),
    }
}

fn with<M: Message + Default>(bytes: &[u8], check: impl FnOnce(M)) {
    if let Ok(msg) = M::decode(bytes) {
        check(msg);
    }
}

/// Converts `msg`; a value that converts is sent again and must convert
/// again, and from then on to the same value each time. (Not the first
/// value: writing adds what Linkerd's writers add, the node and weight
/// keys of an endpoint's metadata, `convert/replicas.rs`.) Values are
/// compared by their `Debug` text: a union weight may be NaN, which `==`
/// never equals.
fn wire<T, M, E>(msg: &M)
where
    T: for<'a> TryFrom<&'a M, Error = E> + Debug,
    M: for<'a> From<&'a T>,
    E: Debug,
{
    let Ok(value) = T::try_from(msg) else {
        return;
    };
    let resend = |value: &T| -> T {
        T::try_from(&M::from(value))
            .unwrap_or_else(|e| panic!("{value:?} does not convert back from the wire: {e:?}"))
    };
    let once = resend(&value);
    let twice = resend(&once);
    assert_eq!(format!("{twice:?}"), format!("{once:?}"));
}

/// [`wire`] for an optional field.
fn field<T, M, E>(msg: Option<&M>)
where
    T: for<'a> TryFrom<&'a M, Error = E> + Debug,
    M: for<'a> From<&'a T>,
    E: Debug,
{
    if let Some(msg) = msg {
        wire::<T, M, E>(msg);
    }
}
