//! A plain HTTP client for the semantics tests: JSON calls and a watch
//! reader that yields one event per line, every wait bounded.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use l5d_k8s_api_server::ApiServer;
use serde_json::{Value, json};

pub(crate) const CM: &str = "/api/v1/namespaces/default/configmaps";
pub(crate) const WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    pub(crate) fn new(server: &ApiServer) -> Api {
        Api {
            base: server.url(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> hyper::Response<Incoming> {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        tokio::time::timeout(WAIT, self.client.request(request))
            .await
            .expect("response in time")
            .expect("request succeeds")
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.send(method, path, body).await;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub(crate) async fn watch(&self, path: &str) -> Watch {
        let response = self.send("GET", path, None).await;
        assert_eq!(response.status(), 200, "watch {path}");
        Watch {
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }
}

pub(crate) struct Watch {
    body: Incoming,
    buffer: Vec<u8>,
}

impl Watch {
    /// The next event, or `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        tokio::time::timeout(WAIT, self.read())
            .await
            .expect("a watch event in time")
    }

    /// Whether an event arrives within `d` (for asserting silence).
    pub(crate) async fn quiet_for(&mut self, d: Duration) -> bool {
        tokio::time::timeout(d, self.read()).await.is_err()
    }

    /// The next event that is not a bookmark.
    pub(crate) async fn next_change(&mut self) -> Option<Value> {
        loop {
            let event = self.next().await?;
            if event["type"] != "BOOKMARK" {
                return Some(event);
            }
        }
    }

    async fn read(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a JSON event line"));
            }
            let frame = self.body.frame().await?.expect("body frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}

pub(crate) fn cm(name: &str, labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "labels": labels}, "data": data})
}

pub(crate) fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_owned()
}

pub(crate) fn summary(event: &Value) -> (String, String) {
    (
        event["type"].as_str().unwrap_or("").to_owned(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

pub(crate) fn ev(kind: &str, name: &str) -> (String, String) {
    (kind.to_owned(), name.to_owned())
}
