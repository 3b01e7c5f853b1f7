//! The gRPC backend over a real socket with tonic's client: the unary call,
//! the bidirectional stream (a reply to each request before the next is
//! sent) and the health service.

use std::net::SocketAddr;
use std::time::Duration;

use l5d_demo::greeter::greeter_client::GreeterClient;
use l5d_demo::greeter::{HelloReply, HelloRequest};
use l5d_demo::grpc::GreeterBackend;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// A backend on a loopback port; dropping the sender stops it.
async fn start(name: &str) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let backend = GreeterBackend::new(&name.parse().unwrap(), Duration::ZERO);
    tokio::spawn(backend.serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the backend accepts connections")
}

fn hello(name: &str) -> HelloRequest {
    HelloRequest {
        name: name.to_string(),
    }
}

fn reply(message: &str, served_by: &str) -> HelloReply {
    HelloReply {
        message: message.to_string(),
        served_by: served_by.to_string(),
    }
}

#[tokio::test]
async fn say_hello_names_the_caller_and_the_backend() {
    let (addr, _stop) = start("greeter-a").await;
    let mut client = GreeterClient::new(channel(addr).await);
    let got = client.say_hello(hello("alice")).await.unwrap().into_inner();
    assert_eq!(got, reply("hello alice from greeter-a", "greeter-a"));
}

/// Each request is sent only after the previous reply arrived, so the test
/// would hang (and time out) if the backend waited for the whole stream.
#[tokio::test]
async fn chat_replies_to_each_request_as_it_arrives() {
    let (addr, _stop) = start("greeter-b").await;
    let mut client = GreeterClient::new(channel(addr).await);
    let names = ["one", "two", "three"];
    let (requests, rx) = mpsc::channel(1);
    requests.send(hello(names[0])).await.unwrap();
    let mut replies = client
        .chat(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for (i, name) in names.iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(10), replies.message())
            .await
            .expect("a reply before the next request")
            .unwrap()
            .expect("the stream is open");
        assert_eq!(
            got,
            reply(&format!("hello {name} from greeter-b"), "greeter-b")
        );
        if let Some(next) = names.get(i + 1) {
            requests.send(hello(next)).await.unwrap();
        }
    }
    drop(requests);
    assert_eq!(
        replies.message().await.unwrap(),
        None,
        "ends after half-close"
    );
}

#[tokio::test]
async fn health_reports_serving_then_not_serving_on_shutdown() {
    let (addr, stop) = start("greeter-c").await;
    let mut health = HealthClient::new(channel(addr).await);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_string(),
    };
    for service in ["", "l5d.demo.Greeter"] {
        let got = health.check(check(service)).await.unwrap().into_inner();
        assert_eq!(got.status(), ServingStatus::Serving, "{service:?}");
    }

    let mut watch = health
        .watch(check("l5d.demo.Greeter"))
        .await
        .unwrap()
        .into_inner();
    let first: HealthCheckResponse = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    stop.send(()).unwrap();
    // Reported before the server starts draining, so open watches see it.
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the status changes on shutdown")
        .unwrap()
        .expect("the watch is still open");
    assert_eq!(next.status(), ServingStatus::NotServing);
}
