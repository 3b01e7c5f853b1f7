//! Server streams made from watch channels.
//!
//! Every mesh stream follows one value that changes over time (a binding,
//! an address set, a stored dtab), and every one has the same contract:
//! the current value first, then each change; never the same message twice
//! in a row; a slow client skips to the latest value instead of queueing
//! them; the stream ends when namerd shuts down.
//!
//! That contract is a `tokio::sync::watch` receiver polled directly by
//! tonic: nothing sits between the watch and the HTTP/2 stream but the one
//! message being sent, so a stream holds the watch and what it last sent
//! (a shared value such as an `Arc`'d tree, not the message) and nothing
//! more, however slow its client. (A channel fed by a task would
//! need its own bound and a task per stream.) HTTP/2 flow control is what
//! makes a client "slow": tonic asks for the next message only when the
//! previous one has been written.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;
use tonic::{Code, Status};

use super::error::MeshError;
use super::metrics::StreamGuard;
use crate::client::StreamLease;
use crate::interpreter::BindingLease;

/// The stream type of every streaming mesh RPC.
pub(crate) type MeshStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// What a stream holds against its client for as long as it is open: the
/// stream itself and, for a binding, the binding.
pub(crate) type Leases = (StreamLease, Option<BindingLease>);

/// What to do with one value of the watched source.
#[derive(Debug)]
pub(crate) enum Step<K> {
    /// Send the message made of this value (unless it equals the value last
    /// sent). The value is what the stream keeps to drop repeats, so it
    /// should be cheap to hold: a clone of a shared source value, not the
    /// message.
    Send(K),
    /// Nothing to send yet (e.g. a binding that is still pending).
    Wait,
    /// End the stream with this error.
    End(MeshError),
}

/// What the end of a source (its sender dropped) means.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OnClose {
    /// The last value is final (a fixed answer such as `neg`): keep the
    /// stream open with it. Ending it would only make the client re-open
    /// it in a loop, one backoff apart.
    Hold,
    /// The producer died: end the stream with `UNAVAILABLE` so that the
    /// client re-opens it and gets a live one, rather than waiting forever
    /// on a value nobody updates (the silent stale watch of Linkerd #2249).
    End { what: &'static str },
}

/// A server stream of `source`: each value mapped by `step`, and what it
/// sends made into a message by `message`.
pub(crate) fn from_watch<S, K, T, F>(
    rpc: &'static str,
    source: watch::Receiver<S>,
    leases: Leases,
    shutdown: watch::Receiver<bool>,
    on_close: OnClose,
    step: F,
    message: fn(&K) -> T,
) -> MeshStream<T>
where
    S: Send + Sync + 'static,
    K: PartialEq + Send + 'static,
    T: Send + 'static,
    F: FnMut(&S) -> Step<K> + Send + 'static,
{
    let watched = Watched {
        source,
        _leases: leases,
        shutdown,
        on_close,
        step,
        message,
        last: None,
        started: false,
        ended: false,
        guard: StreamGuard::open(rpc),
    };
    Box::pin(futures::stream::unfold(watched, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    }))
}

/// A stream of exactly one message (the deprecated `StreamDelegateTree`).
pub(crate) fn once<T: Send + 'static>(rpc: &'static str, message: T) -> MeshStream<T> {
    let mut guard = StreamGuard::open(rpc);
    Box::pin(futures::stream::once(async move {
        guard.sent();
        guard.ended(Code::Ok);
        Ok(message)
    }))
}

/// Resolves once `shutdown` is true; never if its sender is gone without
/// having said so (then nobody can ask for shutdown).
pub(crate) async fn shutdown_signal(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Watched<S, K, T, F> {
    source: watch::Receiver<S>,
    /// Given back when the stream is dropped, however it ends.
    _leases: Leases,
    shutdown: watch::Receiver<bool>,
    on_close: OnClose,
    step: F,
    message: fn(&K) -> T,
    /// The value last sent, to drop repeats (a binding re-published with
    /// only its staleness cleared maps to the same value). Not the message:
    /// a copy of a tree's message is an allocation per path and per label,
    /// held by every open stream.
    last: Option<K>,
    started: bool,
    ended: bool,
    guard: StreamGuard,
}

impl<S, K, T, F> Watched<S, K, T, F>
where
    S: Send + Sync + 'static,
    K: PartialEq + Send + 'static,
    T: Send + 'static,
    F: FnMut(&S) -> Step<K> + Send + 'static,
{
    async fn next(&mut self) -> Option<Result<T, Status>> {
        if self.ended {
            return None;
        }
        if !self.started && *self.shutdown.borrow() {
            return Some(self.end(MeshError::ShuttingDown));
        }
        loop {
            if self.started
                && let Err(e) = self.changed().await
            {
                return Some(self.end(e));
            }
            self.started = true;
            // Marks the value seen; a later change wakes `changed` again.
            let step = {
                let value = self.source.borrow_and_update();
                (self.step)(&value)
            };
            match step {
                Step::Wait => {}
                Step::Send(value) if self.last.as_ref() == Some(&value) => {}
                Step::Send(value) => {
                    let message = (self.message)(&value);
                    self.last = Some(value);
                    self.guard.sent();
                    return Some(Ok(message));
                }
                Step::End(e) => return Some(self.end(e)),
            }
        }
    }

    /// Waits for the next value, or for a reason to end.
    async fn changed(&mut self) -> Result<(), MeshError> {
        tokio::select! {
            biased;
            () = shutdown_signal(&mut self.shutdown) => Err(MeshError::ShuttingDown),
            changed = self.source.changed() => match (changed, self.on_close) {
                (Ok(()), _) => Ok(()),
                (Err(_), OnClose::Hold) => {
                    shutdown_signal(&mut self.shutdown).await;
                    Err(MeshError::ShuttingDown)
                }
                (Err(_), OnClose::End { what }) => Err(MeshError::WatchEnded { what }),
            },
        }
    }

    fn end(&mut self, e: MeshError) -> Result<T, Status> {
        self.ended = true;
        let status = Status::from(e);
        self.guard.ended(status.code());
        Err(status)
    }
}

#[cfg(test)]
mod tests {
    use futures::{FutureExt as _, StreamExt as _};

    use super::*;

    /// Even numbers are sent, as their half; odd ones wait; 99 ends.
    fn step(n: &u32) -> Step<u32> {
        match n {
            99 => Step::End(MeshError::RootNotFound),
            n if n % 2 == 1 => Step::Wait,
            n => Step::Send(n / 2),
        }
    }

    fn stream(on_close: OnClose) -> (watch::Sender<u32>, watch::Sender<bool>, MeshStream<u32>) {
        let (tx, rx) = watch::channel(0);
        let (stop, shutdown) = watch::channel(false);
        let clients = crate::client::Clients::new(Default::default());
        let lease = clients
            .open_stream(&crate::client::Client::UNKNOWN)
            .unwrap();
        let s = from_watch("Test", rx, (lease, None), shutdown, on_close, step, |n| *n);
        (tx, stop, s)
    }

    fn code(item: Option<Result<u32, Status>>) -> Code {
        item.expect("an item").expect_err("an error").code()
    }

    #[tokio::test]
    async fn a_slow_reader_gets_the_latest_value_once() {
        let (tx, _stop, mut s) = stream(OnClose::Hold);
        assert_eq!(s.next().await.unwrap().unwrap(), 0);
        for n in 1..=10 {
            tx.send_replace(n);
        }
        assert_eq!(s.next().await.unwrap().unwrap(), 5);
        // 11 waits; 10 again maps to the message just sent.
        tx.send_replace(11);
        tx.send_replace(10);
        assert!(s.next().now_or_never().is_none(), "nothing new to send");
        tx.send_replace(12);
        assert_eq!(s.next().await.unwrap().unwrap(), 6);
        tx.send_replace(99);
        assert_eq!(code(s.next().await), Code::NotFound);
        assert!(s.next().await.is_none(), "the stream ended");
    }

    #[tokio::test]
    async fn a_final_value_is_held_until_shutdown() {
        let (tx, stop, mut s) = stream(OnClose::Hold);
        assert_eq!(s.next().await.unwrap().unwrap(), 0);
        drop(tx);
        assert!(s.next().now_or_never().is_none(), "held open");
        stop.send_replace(true);
        assert_eq!(code(s.next().await), Code::Unavailable);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_dead_producer_ends_the_stream() {
        let (tx, _stop, mut s) = stream(OnClose::End { what: "test" });
        tx.send_replace(1);
        drop(tx);
        let status = s.next().await.unwrap().unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "the test watch ended; retry")
        );
    }

    #[tokio::test]
    async fn a_stream_opened_during_shutdown_ends_at_once() {
        let (_tx, stop, mut s) = stream(OnClose::Hold);
        stop.send_replace(true);
        assert_eq!(code(s.next().await), Code::Unavailable);
    }
}
