//! A TCP forwarder between the proxy and namerd that a test can cut,
//! blackhole and point elsewhere: the address the proxy knows stays the
//! same while namerd behind it is stopped, restarted on another port, or
//! silently stops answering (R4).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What an open connection does with its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Bytes are neither forwarded nor answered; the sockets stay open.
    Blackhole,
    Close,
}

#[derive(Debug, Default)]
struct State {
    /// Where new connections go; `None` closes them at once (as a stopped
    /// namerd refuses them).
    target: Option<SocketAddr>,
    conns: Vec<watch::Sender<Mode>>,
    /// Blackholed connections, kept so their sockets stay open.
    held: Vec<watch::Sender<Mode>>,
    accepted: usize,
}

#[derive(Debug)]
pub(crate) struct Forwarder {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    pub(crate) async fn start(target: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("a local address");
        let state = Arc::new(Mutex::new(State {
            target: Some(target),
            ..State::default()
        }));
        let accept = tokio::spawn(accept(listener, state.clone()));
        Forwarder {
            addr,
            state,
            accept,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection and refuses new ones.
    pub(crate) fn cut(&self) {
        let mut s = self.state.lock().unwrap();
        s.target = None;
        for c in s.conns.drain(..) {
            c.send_replace(Mode::Close);
        }
    }

    /// New connections go to `target`.
    pub(crate) fn restore(&self, target: SocketAddr) {
        self.state.lock().unwrap().target = Some(target);
    }

    /// The open connections stop carrying bytes, without closing; new
    /// connections are forwarded as before.
    pub(crate) fn blackhole_open(&self) {
        let mut s = self.state.lock().unwrap();
        let open: Vec<_> = s.conns.drain(..).collect();
        for c in &open {
            c.send_replace(Mode::Blackhole);
        }
        s.held.extend(open);
    }

    pub(crate) fn accepted(&self) -> usize {
        self.state.lock().unwrap().accepted
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        let mut s = self.state.lock().unwrap();
        let mut all = std::mem::take(&mut s.conns);
        all.append(&mut s.held);
        for c in all {
            c.send_replace(Mode::Close);
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            return;
        };
        let (target, mode) = {
            let mut s = state.lock().unwrap();
            s.accepted += 1;
            let (tx, rx) = watch::channel(Mode::Pass);
            s.conns.push(tx);
            (s.target, rx)
        };
        let Some(target) = target else {
            drop(inbound);
            continue;
        };
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::join!(pipe(ri, wo, mode.clone()), pipe(ro, wi, mode));
        });
    }
}

/// Copies one direction until EOF, an error, or `Close`; under `Blackhole`
/// stops reading but keeps both sockets open.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Close => return,
            Mode::Blackhole => {
                let _ = mode.wait_for(|m| *m == Mode::Close).await;
                return;
            }
            Mode::Pass => {}
        }
        tokio::select! {
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = mode.changed() => if changed.is_err() { return },
        }
    }
}
