//! Resource exhaustion in namerd: at its binding cap a new name gets
//! RESOURCE_EXHAUSTED naming the limit while other clients still bind;
//! once the client lets its bindings go, its new names bind again.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use l5d_e2e::Namerd;

use super::limits_setup::{Interp, bind_req, channel, config};

const CAP: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_binding_cap_namerd_refuses_and_recovers() {
    let namerd = Namerd::start(&config(&format!("  maxBindingsPerClient: {CAP}\n"))).await;
    let channel = channel(&namerd.mesh, "127.0.0.1".parse().unwrap()).await;
    let open = |name: String| {
        let mut client = Interp::new(channel.clone());
        async move {
            let mut s = client
                .stream_bound_tree(bind_req(&name))
                .await?
                .into_inner();
            s.message().await?;
            Ok::<_, tonic::Status>(s)
        }
    };
    let held: Vec<_> = futures::stream::iter(0..CAP)
        .then(|i| open(format!("/svc/held{i}")))
        .collect()
        .await;
    let held: Vec<_> = held
        .into_iter()
        .map(|s| s.expect("under the cap"))
        .collect();
    let refused = open("/svc/one-more".to_string())
        .await
        .expect_err("over the cap");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("maxBindingsPerClient"),
        "the refusal names the limit: {}",
        refused.message()
    );
    // Another client (another address) still binds: the cap is this
    // client's.
    let other = super::limits_setup::channel(&namerd.mesh, "127.0.0.2".parse().unwrap()).await;
    let mut s = Interp::new(other)
        .stream_bound_tree(bind_req("/svc/other"))
        .await
        .expect("another client binds")
        .into_inner();
    assert!(s.message().await.expect("a tree").is_some());
    // The client lets its streams go, which gives its bindings back, and
    // a new name binds (bounded: 15 s).
    drop(held);
    let since = Instant::now();
    let recovered = loop {
        match open("/svc/one-more".to_string()).await {
            Ok(_) => break since.elapsed(),
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
                assert!(since.elapsed() < Duration::from_secs(15), "never recovered");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    eprintln!(
        "binding cap: the {}th name refused with RESOURCE_EXHAUSTED (\"{}\"), bound {recovered:?} after the held streams went",
        CAP + 1,
        refused.message()
    );
    namerd.stop().await;
}
