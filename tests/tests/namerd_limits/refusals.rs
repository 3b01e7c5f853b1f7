//! Every limit is named in its refusal, with the status the issue asks for:
//! RESOURCE_EXHAUSTED (429 over HTTP) for a client over its own limit,
//! INVALID_ARGUMENT (400) for a key over the size cap.

use std::time::{Duration, Instant};

use l5d_e2e::Namerd;
use l5d_proto::mesh as pb;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use tonic::transport::Channel;

use crate::setup::{Interp, bind_req, channel, config};

/// A `curl -N` watch of `url` that has printed its first document.
async fn watch(url: &str) -> tokio::process::Child {
    let mut child = Command::new("curl")
        .args(["-sSN", url])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
    assert!(
        matches!(first, Ok(Ok(Some(_)))),
        "the watch streams: {first:?}"
    );
    // Reading no more is fine: a document or two fit the pipe.
    child
}

/// A local dtab of 1,000 dentries (over 8 KiB however it is encoded).
fn large_dtab() -> Vec<String> {
    (0..1_000).map(|i| format!("/s{i}=>/t")).collect()
}

/// A `StreamBoundTree` of `name` that has sent its first tree, opened once
/// namerd has seen the client's earlier streams close (it learns of a
/// closed connection asynchronously): tried for up to 10 s.
async fn first_tree(mesh: &Channel, name: &str) -> tonic::Streaming<pb::BoundTreeRsp> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let opened = Interp::new(mesh.clone())
            .stream_bound_tree(bind_req(name))
            .await;
        match opened {
            Ok(rsp) => {
                let mut stream = rsp.into_inner();
                let first = stream.message().await;
                assert!(matches!(first, Ok(Some(_))), "{name}: {first:?}");
                return stream;
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{name}: the client's old streams were not released: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_is_named_in_its_refusal() {
    let limits = "  maxStreamsPerClient: 2\n  maxBindingsPerClient: 2\n";
    let namerd = Namerd::start(&config(limits)).await;
    let base = format!("http://{}", namerd.http);

    // Two watches from curl are this client's stream limit: a third is 429
    // over HTTP, and a stream over gRPC from the same address is refused
    // too.
    let watches = [
        watch(&format!("{base}/api/1/dtabs/internal?watch=true")).await,
        watch(&format!("{base}/api/1/dtabs?watch=true")).await,
    ];
    let (_, out, _) = l5d_e2e::curl(&[
        "-w",
        "\n%{http_code}",
        &format!("{base}/api/1/bind/internal?path=/svc/a&watch=true"),
    ])
    .await;
    assert!(
        out.ends_with("429") && out.contains("interpreter.maxStreamsPerClient"),
        "{out}"
    );
    let mesh = channel(&namerd.mesh, [127, 0, 0, 1].into()).await;
    let status = Interp::new(mesh.clone())
        .stream_bound_tree(bind_req("/svc/a"))
        .await
        .expect_err("over the client's stream limit");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("interpreter.maxStreamsPerClient"),
        "{status:?}"
    );
    drop(watches);

    // Two bindings watched are this client's binding limit: a third name
    // is refused to it, and bound for another client.
    let _held = [
        first_tree(&mesh, "/svc/a").await,
        first_tree(&mesh, "/svc/b").await,
    ];
    let status = Interp::new(mesh.clone())
        .get_bound_tree(bind_req("/svc/c"))
        .await
        .expect_err("over the client's binding limit");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains(
            "client 127.0.0.1 holds 2 bindings, its limit (interpreter.maxBindingsPerClient)"
        ),
        "{status:?}"
    );
    let other = channel(&namerd.mesh, [127, 0, 0, 2].into()).await;
    let got = Interp::new(other).get_bound_tree(bind_req("/svc/c")).await;
    assert!(got.is_ok(), "another client binds: {got:?}");

    // A name and local dtab over 8 KiB: 400 over HTTP, INVALID_ARGUMENT
    // over gRPC, both naming the limit.
    let (_, out, _) = l5d_e2e::curl(&[
        "-G",
        "-w",
        "\n%{http_code}",
        "--data-urlencode",
        "path=/svc/a",
        "--data-urlencode",
        &format!("dtab={}", large_dtab().join(";")),
        &format!("{base}/api/1/bind/internal"),
    ])
    .await;
    assert!(
        out.ends_with("400") && out.contains("interpreter.maxKeyBytes"),
        "{out}"
    );
    let dentries = large_dtab()
        .iter()
        .map(|d| {
            let (prefix, _) = d.split_once("=>").unwrap();
            pb::dtab::Dentry {
                prefix: Some(pb::dtab::dentry::Prefix {
                    elems: vec![pb::dtab::dentry::prefix::Elem {
                        value: Some(pb::dtab::dentry::prefix::elem::Value::Label(
                            prefix.trim_start_matches('/').as_bytes().to_vec(),
                        )),
                    }],
                }),
                dst: Some(pb::PathNameTree {
                    node: Some(pb::path_name_tree::Node::Neg(pb::path_name_tree::Neg {})),
                }),
            }
        })
        .collect();
    let req = pb::BindReq {
        dtab: Some(pb::Dtab { dentries }),
        ..bind_req("/svc/a")
    };
    let status = Interp::new(mesh)
        .get_bound_tree(req)
        .await
        .expect_err("over the key size cap");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("interpreter.maxKeyBytes"),
        "{status:?}"
    );
    namerd.stop().await;
}
