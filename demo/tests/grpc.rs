//! The gRPC backend over a real socket with tonic's client: the unary call,
//! the bidirectional stream (a reply to each request before the next is
//! sent), the health service, and faults and the request log driven over
//! HTTP/1.1 on the same port.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use l5d_demo::greeter::greeter_client::GreeterClient;
use l5d_demo::greeter::{HelloReply, HelloRequest};
use l5d_demo::grpc::GreeterBackend;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// A backend on a loopback port; dropping the sender stops it.
async fn start(name: &str) -> (SocketAddr, oneshot::Sender<()>) {
    start_backend(GreeterBackend::new(&name.parse().unwrap(), Duration::ZERO)).await
}

async fn start_backend(backend: GreeterBackend) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
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

/// `/fault` or `/requests` on the gRPC port, over HTTP/1.1.
async fn control(addr: SocketAddr, path: &str) -> (StatusCode, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = format!("http://{addr}{path}").parse().unwrap();
    let rsp = client
        .get(uri)
        .await
        .expect("the gRPC port answers HTTP/1.1");
    let status = rsp.status();
    (status, rsp.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn a_fault_fails_a_deterministic_fraction_of_calls_with_its_grpc_status() {
    let backend = GreeterBackend::new(&"greeter-f".parse().unwrap(), Duration::ZERO);
    let (addr, _stop) = start_backend(backend.with_request_log(true)).await;
    let (status, body) = control(addr, "/fault?grpc_status=14&fraction=0.5").await;
    assert_eq!(
        (status, body.as_ref()),
        (
            StatusCode::OK,
            &b"fault grpc_status=14 grpc_in=trailers fraction=0.5\n"[..]
        )
    );
    let mut client = GreeterClient::new(channel(addr).await);
    let mut codes = Vec::new();
    for i in 0..6 {
        let mut req = tonic::Request::new(hello(&format!("c{i}")));
        req.metadata_mut()
            .insert("l5d-reqid", format!("r{i}").parse().unwrap());
        match client.say_hello(req).await {
            Ok(_) => codes.push(Code::Ok),
            Err(status) => {
                assert_eq!(status.message(), "fault");
                codes.push(status.code());
            }
        }
    }
    let (ok, unavailable) = (Code::Ok, Code::Unavailable);
    assert_eq!(codes, [ok, unavailable, ok, unavailable, ok, unavailable]);

    let (_, body) = control(addr, "/requests").await;
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(entries.len(), 6);
    for (i, entry) in entries.iter().enumerate() {
        let faulted = i % 2 == 1;
        assert_eq!(entry["path"], "/l5d.demo.Greeter/SayHello");
        assert_eq!(
            entry["grpc_status"],
            if faulted { 14 } else { 0 },
            "{entry}"
        );
        let reason = if faulted {
            "grpc_status".into()
        } else {
            serde_json::Value::Null
        };
        assert_eq!(entry["faulted"], reason, "{entry}");
        assert_eq!(entry["headers"]["l5d-reqid"], format!("r{i}"));
    }
}

/// `grpc_in=trailers`: the stream opens, then fails with the status;
/// `grpc_in=headers`: the call fails before any stream.
#[tokio::test]
async fn a_chat_fails_where_grpc_in_says() {
    let (addr, _stop) = start("greeter-g").await;
    let mut client = GreeterClient::new(channel(addr).await);
    let chat = |client: &mut GreeterClient<Channel>| {
        let mut client = client.clone();
        async move {
            let (requests, rx) = mpsc::channel(1);
            requests.send(hello("x")).await.unwrap();
            client.chat(ReceiverStream::new(rx)).await
        }
    };

    control(addr, "/fault?grpc_status=9&path=/l5d.demo.Greeter/Chat").await;
    let mut replies = chat(&mut client)
        .await
        .expect("the stream opens")
        .into_inner();
    let status = replies.message().await.expect_err("then fails");
    assert_eq!(
        (status.code(), status.message()),
        (Code::FailedPrecondition, "fault")
    );
    // SayHello is not on the fault's path.
    assert!(client.say_hello(hello("y")).await.is_ok());

    control(addr, "/fault?grpc_status=9&grpc_in=headers").await;
    let status = chat(&mut client).await.expect_err("fails at once");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn the_grpc_port_refuses_http_faults_and_keeps_the_one_in_force() {
    let (addr, _stop) = start("greeter-h").await;
    control(addr, "/fault?grpc_status=2").await;
    for (query, name) in [("status=503", "status"), ("reset=before_head", "reset")] {
        let (status, body) = control(addr, &format!("/fault?{query}")).await;
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body.starts_with(&format!("/fault: {name}: expected grpc_status or delay_ms")),
            "{body}"
        );
    }
    let mut client = GreeterClient::new(channel(addr).await);
    let status = client.say_hello(hello("z")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    // Off by default, as on the HTTP backend.
    assert_eq!(control(addr, "/requests").await.0, StatusCode::CONFLICT);
}
