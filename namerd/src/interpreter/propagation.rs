//! The last propagation per namespace: from a dtab change a binding saw to
//! a stream's write of the tree it produced, as the admin page and
//! `/admin/namespaces.json` show it. The histogram
//! `namerd_dtab_to_stream_seconds` has the distribution; this keeps the
//! latest one of each namespace, so that an operator who just saved a
//! dtab sees how long it took to reach the proxies.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// The latest stream write that followed a dtab change, per namespace.
#[derive(Debug, Default)]
pub struct Propagation {
    last: Mutex<BTreeMap<String, Propagated>>,
}

/// One namespace's latest propagation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Propagated {
    /// When the stream wrote the new tree.
    pub written_at: SystemTime,
    /// From the dtab change to that write.
    pub seconds: f64,
}

impl Propagation {
    /// A stream of `ns` wrote the tree of the dtab change seen at `changed_at`.
    pub fn record(&self, ns: &str, changed_at: Instant) {
        let seconds = changed_at.elapsed().as_secs_f64();
        metrics::histogram!("namerd_dtab_to_stream_seconds").record(seconds);
        // Several streams write the same change, each later than the one
        // before: the last write ends the change's propagation.
        let written = Propagated {
            written_at: SystemTime::now(),
            seconds,
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        // Every stream of the namespace records each change: the key is
        // allocated once per namespace, not once per stream and change.
        match last.get_mut(ns) {
            Some(entry) => *entry = written,
            None => {
                last.insert(ns.to_owned(), written);
            }
        }
    }

    /// The latest propagation of `ns`, if a stream wrote one.
    pub fn last(&self, ns: &str) -> Option<Propagated> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.get(ns).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keeps_the_last_write_of_each_namespace() {
        let p = Propagation::default();
        assert_eq!(p.last("default"), None);
        let changed = Instant::now() - Duration::from_millis(40);
        p.record("default", changed);
        let first = p.last("default").expect("recorded");
        assert!(first.seconds >= 0.04, "{first:?}");
        // A second stream writing the same change later ends the propagation.
        p.record("default", changed);
        let second = p.last("default").expect("recorded");
        assert!(second.seconds >= first.seconds && second.written_at >= first.written_at);
        assert_eq!(p.last("other"), None);
    }
}
