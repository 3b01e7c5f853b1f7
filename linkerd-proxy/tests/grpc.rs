//! gRPC through the h2 router: many concurrent calls on one client
//! connection, each a small DATA frame and trailers each way. h2 bounds the
//! unread small frames a connection may hold by its window; with default
//! windows a proxy forwarding ~150 concurrent calls tripped that flood
//! protection and lost its upstream connection (ENHANCE_YOUR_CALM).

use std::time::Duration;

use l5d_demo::greeter::HelloRequest;
use l5d_demo::greeter::greeter_client::GreeterClient;
use linkerd_proxy::config::ProxyConfig;
use linkerd_proxy::proxy::Proxy;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_grpc_calls_on_one_connection_all_succeed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let greeter = l5d_demo::grpc::GreeterBackend::new(&"greeter".parse().unwrap(), Duration::ZERO);
    tokio::spawn(greeter.serve(listener, std::future::pending()));

    let config = ProxyConfig::from_yaml(&format!(
        "admin: {{port: 0}}\nrouters:\n- protocol: h2\n  servers: [{{port: 0}}]\n  \
         identifier: {{kind: io.l5d.header.path, segments: 1}}\n  \
         dtab: /svc/l5d.demo.Greeter => /$/inet/127.0.0.1/{}\n",
        backend.port()
    ))
    .unwrap();
    let proxy = Proxy::start(config).await.unwrap();
    let addr = proxy.server_addrs("h2")[0];
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    for round in 0..5 {
        let calls: Vec<_> = (0..400)
            .map(|i| {
                let mut client = GreeterClient::new(channel.clone());
                tokio::spawn(async move {
                    client
                        .say_hello(HelloRequest {
                            name: format!("caller-{i}"),
                        })
                        .await
                })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            let reply = tokio::time::timeout(Duration::from_secs(20), call)
                .await
                .expect("every call answers within 20 s")
                .unwrap()
                .unwrap_or_else(|status| panic!("round {round}, call {i}: {status:?}"))
                .into_inner();
            assert_eq!(reply.served_by, "greeter");
            assert_eq!(reply.message, format!("hello caller-{i} from greeter"));
        }
    }
    proxy.shutdown(Duration::from_secs(1)).await;
}
