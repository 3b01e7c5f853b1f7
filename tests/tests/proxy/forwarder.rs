//! A TCP forwarder between the proxy and namerd, so a test can take namerd
//! away (connections refused) and bring a new one back behind the same
//! address, with no port reuse race.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub(crate) struct Forwarder {
    addr: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    /// Bumped on every cut, so forwarded connections close.
    generation: watch::Sender<u64>,
}

impl Forwarder {
    pub(crate) async fn start() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let (generation, _) = watch::channel(0u64);
        let (t, g) = (target.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let to = *t.lock().unwrap();
                let Some(to) = to else {
                    // No namerd: close at once, as a refused connection.
                    drop(inbound);
                    continue;
                };
                let mut cut = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(to).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Forwarder {
            addr,
            target,
            generation,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn set_target(&self, to: SocketAddr) {
        *self.target.lock().unwrap() = Some(to);
    }

    /// Closes every forwarded connection and refuses new ones.
    pub(crate) fn cut(&self) {
        *self.target.lock().unwrap() = None;
        self.generation.send_modify(|g| *g += 1);
    }
}
