//! Bounded waits on watch channels, so that tests wait for a value rather
//! than sleep and hope. Depends only on tokio.

use std::fmt::Debug;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Waits until the channel holds a value that satisfies `pred`, at most
/// `within`; panics naming `what` and the last value otherwise.
pub(crate) async fn wait_for<T, F>(
    rx: &mut watch::Receiver<T>,
    within: Duration,
    what: &str,
    pred: F,
) -> T
where
    T: Clone + Debug,
    F: Fn(&T) -> bool,
{
    let deadline = Instant::now() + within;
    loop {
        {
            let value = rx.borrow_and_update();
            if pred(&value) {
                return value.clone();
            }
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the watch closed while waiting for {what}"),
            Err(_) => panic!("no {what} within {within:?}; last value {:?}", *rx.borrow()),
        }
    }
}

/// Polls `cond` every 10 ms until it holds, at most `within`; for state
/// that has no channel to wait on (counters). Panics naming `what`.
pub(crate) async fn wait_until<F>(within: Duration, what: &str, cond: F)
where
    F: Fn() -> bool,
{
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "no {what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
