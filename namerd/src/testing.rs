//! namerd in-process for tests of other crates: an in-memory store and the
//! dtab API on an ephemeral loopback port.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::config::{
    AdminConfig, HttpControllerConfig, InterfaceConfig, NamerdConfig, StorageConfig,
};
use crate::server::Namerd;

/// A namerd for a test; shut it down at the end.
#[derive(Debug)]
pub struct TestNamerd {
    namerd: Namerd,
}

/// Starts namerd with an in-memory store on 127.0.0.1 ports the OS picks.
pub async fn start_in_memory() -> TestNamerd {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let config = NamerdConfig {
        admin: AdminConfig {
            ip: loopback,
            port: 0,
        },
        storage: StorageConfig::InMemory {
            namespaces: BTreeMap::new(),
        },
        interfaces: vec![InterfaceConfig::HttpController(HttpControllerConfig {
            ip: loopback,
            port: 0,
            ..HttpControllerConfig::default()
        })],
    };
    let namerd = Namerd::start(config)
        .await
        .expect("namerd starts on loopback");
    tokio::time::timeout(Duration::from_secs(10), namerd.ready())
        .await
        .expect("an in-memory store opens at once");
    TestNamerd { namerd }
}

impl TestNamerd {
    /// `http://127.0.0.1:<port>`, the dtab API.
    pub fn base_url(&self) -> String {
        format!(
            "http://{}",
            self.namerd.http_addr().expect("the dtab API is configured")
        )
    }

    /// `http://127.0.0.1:<port>`, the admin server.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.namerd.admin_addr())
    }

    pub fn namerd(&self) -> &Namerd {
        &self.namerd
    }

    pub async fn shutdown(self) {
        self.namerd.shutdown().await;
    }
}
