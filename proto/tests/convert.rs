//! Round trips between `l5d-dtab` types and the wire messages, including
//! through protobuf encoding, and refusal of invalid messages.

use l5d_dtab::{Binder, DelegateTree, Dtab, NameTree, NoNamers, Path};
use l5d_proto::convert::ConvertError;
use l5d_proto::mesh;
use prost::Message;
use serde_json::Value;

/// Every dtab and tree the naming vectors parse successfully.
fn vector_inputs(kind: &str) -> Vec<String> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/dtab/tests/dtab-vectors.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == kind && v["error"] != true)
        .filter_map(|v| v["input"].as_str().map(String::from))
        .collect()
}

fn through_the_wire<M: Message + Default>(m: &M) -> M {
    M::decode(m.encode_to_vec().as_slice()).unwrap()
}

#[test]
fn dtabs_round_trip() {
    let inputs = vector_inputs("parse_dtab");
    assert!(inputs.len() >= 10);
    for input in inputs {
        let dtab = Dtab::read(&input).unwrap();
        let wire = through_the_wire(&mesh::Dtab::from(&dtab));
        assert_eq!(Dtab::try_from(&wire).unwrap(), dtab, "{input}");
    }
}

#[test]
fn trees_round_trip() {
    let inputs = vector_inputs("parse_tree");
    assert!(inputs.len() >= 10);
    for input in inputs {
        let tree = NameTree::read(&input).unwrap();
        let wire = through_the_wire(&mesh::PathNameTree::from(&tree));
        assert_eq!(NameTree::<Path>::try_from(&wire).unwrap(), tree, "{input}");
    }
}

#[test]
fn bound_trees_and_delegations_round_trip() {
    let dtab = Dtab::read(
        "/srv=>/$/inet/127.1; /host=>/srv; /svc=>/host; \
         /host/world=>3*/srv/8080 & 1*/srv/8081 | /$/fail; /bad=>/$/nope",
    )
    .unwrap();
    let binder = Binder::new(&dtab, &NoNamers);
    let mut bound_names = 0;
    for name in [
        "/svc/world/residual",
        "/svc/8080",
        "/svc/other",
        "/bad/x",
        "/nothing",
    ] {
        let path = Path::read(name).unwrap();
        if let Some(bound) = binder.bind_path(&path).ok() {
            bound_names += 1;
            // Leaf weights are not part of the wire format.
            let bound = bound.map(&mut |b| l5d_dtab::Bound::new(b.id.clone(), b.residual.clone()));
            let wire = through_the_wire(&mesh::BoundNameTree::from(&bound));
            assert_eq!(NameTree::try_from(&wire).unwrap(), bound, "{name}");
        }

        let trace = binder.delegate_path(&path).ok().unwrap();
        let wire = through_the_wire(&mesh::BoundDelegateTree::from(&trace));
        let back = DelegateTree::try_from(&wire).unwrap();
        assert_eq!(mesh::BoundDelegateTree::from(&back), wire, "{name}");
    }
    assert_eq!(bound_names, 3);
}

#[test]
fn invalid_messages_are_refused_with_the_field() {
    let empty_label = mesh::Path {
        elems: vec![b"a".to_vec(), Vec::new()],
    };
    assert_eq!(
        Path::try_from(&empty_label).unwrap_err().to_string(),
        "invalid Path: a label is empty"
    );
    let no_node = mesh::PathNameTree { node: None };
    assert_eq!(
        NameTree::<Path>::try_from(&no_node).unwrap_err(),
        ConvertError {
            message: "PathNameTree",
            reason: "no node is set"
        }
    );
    let leafless = mesh::BoundNameTree {
        node: Some(mesh::bound_name_tree::Node::Leaf(
            mesh::bound_name_tree::Leaf {
                id: None,
                residual: None,
            },
        )),
    };
    assert_eq!(
        NameTree::<l5d_dtab::Bound>::try_from(&leafless)
            .unwrap_err()
            .to_string(),
        "invalid BoundNameTree.Leaf: the path is missing"
    );
    let no_prefix = mesh::Dtab {
        dentries: vec![mesh::dtab::Dentry {
            prefix: None,
            dst: Some((&NameTree::Neg).into()),
        }],
    };
    assert_eq!(
        Dtab::try_from(&no_prefix).unwrap_err().to_string(),
        "invalid Dentry: the prefix is missing"
    );
}

proptest::proptest! {
    /// Arbitrary bytes never panic the decoder or the conversions.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        if let Ok(m) = mesh::DelegateTreeReq::decode(bytes.as_slice()) {
            let _ = m.tree.as_ref().map(NameTree::<Path>::try_from);
            let _ = m.dtab.as_ref().map(Dtab::try_from);
        }
        if let Ok(m) = mesh::BoundDelegateTree::decode(bytes.as_slice()) {
            let _ = DelegateTree::try_from(&m);
        }
    }
}
