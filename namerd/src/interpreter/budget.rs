//! The cost of binding and delegation: bounded, and kept off the async
//! runtime when it can be large.
//!
//! Every lookup tries each dentry of the dtab (`Dtab::lookup`), so the
//! work of one bind or delegation is its lookups times the dentries of
//! `stored ++ local`. The binder stops at 1,000 lookups, which is nothing
//! for a real dtab but was seconds of CPU with a 1 MB local dtab (80,000
//! dentries: 80 million dentry visits), on the thread that also served
//! every other request. So here a call may make at most `budget / dentries`
//! lookups, failing with an error that names the budget beyond, and a call
//! that could do more than [`INLINE_WORK`] visits runs on tokio's blocking
//! pool, a few at a time, so that the async runtime never waits for it.

use std::sync::Arc;

use l5d_dtab::{
    Activity, Binder, Bound, DEFAULT_MAX_LOOKUPS, DelegateTree, Dtab, NameError, NameTree,
    NamerSet, Path,
};
use tokio::sync::Semaphore;

use super::NamerRef;

/// Dentry visits a call may make on the async runtime: every dtab of up
/// to 64 dentries binds inline (about a millisecond at worst, unoptimised).
const INLINE_WORK: usize = 64 * DEFAULT_MAX_LOOKUPS;

/// Client input (a JSON body, dtab text) parsed on the async runtime;
/// longer input (a 1 MB body takes tens of milliseconds, unoptimised) is
/// parsed on the blocking pool.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// The work budget of binding and delegation, and the permits of the
/// blocking pool's share.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Dentry visits (lookups × dentries) per bind or delegation.
    visits: usize,
    /// Large calls running at once, so that a thousand bindings re-bound
    /// after a dtab change do not start a thousand threads.
    offloaded: Arc<Semaphore>,
}

impl Budget {
    pub(crate) fn new(visits: usize) -> Budget {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Budget {
            visits,
            offloaded: Arc::new(Semaphore::new(cores)),
        }
    }

    /// The lookups one call through `dtab` may make.
    fn max_lookups(&self, dtab: &Dtab) -> usize {
        (self.visits / dtab.len().max(1)).clamp(1, DEFAULT_MAX_LOOKUPS)
    }

    /// Binds `name` through `dtab` and `namers`.
    pub(crate) async fn bind(
        &self,
        dtab: Dtab,
        namers: Arc<NamerSet<NamerRef>>,
        name: Path,
    ) -> Activity<NameTree<Bound>> {
        let (max, visits) = (self.max_lookups(&dtab), self.visits);
        self.run(max * dtab.len() <= INLINE_WORK, move || {
            let bound = Binder::new(&dtab, &*namers)
                .with_max_lookups(max)
                .bind_path(&name);
            over_budget(bound, &name, &dtab, max, visits)
        })
        .await
    }

    /// The delegation trace of `tree` through `dtab` and `namers`.
    pub(crate) async fn delegate(
        &self,
        dtab: Dtab,
        namers: Arc<NamerSet<NamerRef>>,
        tree: NameTree<Path>,
    ) -> Activity<DelegateTree<Bound>> {
        let (max, visits) = (self.max_lookups(&dtab), self.visits);
        self.run(max * dtab.len() <= INLINE_WORK, move || {
            let trace = Binder::new(&dtab, &*namers)
                .with_max_lookups(max)
                .delegate(&tree);
            let root = match &tree {
                NameTree::Leaf(path) => path.clone(),
                _ => Path::empty(),
            };
            over_budget(trace, &root, &dtab, max, visits)
        })
        .await
    }

    /// Runs `parse` over `bytes` of client input, here if they are few.
    pub(crate) async fn parse<T: Send + 'static>(
        &self,
        bytes: usize,
        parse: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        self.run(bytes <= INLINE_PARSE_BYTES, parse).await
    }

    /// Runs `f` here if `inline`, else on the blocking pool once a permit
    /// is free.
    async fn run<T: Send + 'static>(
        &self,
        inline: bool,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        if inline {
            return f();
        }
        // The semaphore is never closed.
        let _permit = self.offloaded.acquire().await.ok();
        match tokio::task::spawn_blocking(f).await {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The binder names only its lookup limit; when the budget lowered that
/// limit, say so, in the namer-message form the APIs show as is.
fn over_budget<T>(
    result: Activity<T>,
    path: &Path,
    dtab: &Dtab,
    max_lookups: usize,
    visits: usize,
) -> Activity<T> {
    match result {
        Activity::Failed(NameError::TooManyLookups { limit })
            if limit == max_lookups && limit < DEFAULT_MAX_LOOKUPS =>
        {
            Activity::Failed(NameError::namer(
                path,
                format!(
                    "over the binding budget of {visits} dentry visits \
                     (interpreter.bindBudget): {limit} lookups through {} dentries",
                    dtab.len()
                ),
            ))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dtab(entries: usize) -> Dtab {
        let text: Vec<String> = (0..entries).map(|i| format!("/x{i}=>/y{i}")).collect();
        Dtab::read(&text.join(";")).unwrap()
    }

    fn namers() -> Arc<NamerSet<NamerRef>> {
        Arc::new(NamerSet::new(Vec::new()))
    }

    #[tokio::test]
    async fn a_large_dtab_gets_fewer_lookups_and_an_error_naming_the_budget() {
        let budget = Budget::new(1_000_000);
        assert_eq!(budget.max_lookups(&dtab(10)), DEFAULT_MAX_LOOKUPS);
        assert_eq!(budget.max_lookups(&dtab(10_000)), 100);
        // Each dentry of /a rewrites to the next: 200 lookups are needed,
        // 10,000 dentries allow 100.
        let mut text = vec!["/a=>/b0".to_string()];
        text.extend((0..200).map(|i| format!("/b{i}=>/b{}", i + 1)));
        text.extend((0..9_799).map(|i| format!("/z{i}=>/z")));
        let big = Dtab::read(&text.join(";")).unwrap();
        let bound = budget.bind(big, namers(), Path::read("/a").unwrap()).await;
        let Activity::Failed(e) = bound else {
            panic!("over the budget: {bound:?}");
        };
        assert_eq!(
            e.to_string(),
            "over the binding budget of 1000000 dentry visits (interpreter.bindBudget): \
             100 lookups through 10000 dentries"
        );
        // The binder's own limit keeps its own message.
        let mut doubling: Vec<String> = (0..20)
            .map(|i| format!("/d{i}=>/d{0}&/d{0}", i + 1))
            .collect();
        doubling.push("/d20=>/$/inet/127.0.0.1/1".into());
        let small = Dtab::read(&doubling.join(";")).unwrap();
        let bound = budget
            .bind(small, namers(), Path::read("/d0").unwrap())
            .await;
        assert!(
            matches!(
                bound,
                Activity::Failed(NameError::TooManyLookups { limit: 1000 })
            ),
            "{bound:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn large_work_leaves_the_runtime_free() {
        use std::time::Duration;

        let budget = Budget::new(usize::MAX);
        // On a current-thread runtime, another task can run while the work
        // waits for it only if the work is not on the runtime's thread.
        let waits_for_another_task = |work: usize, wait: Duration| {
            let (tx, rx) = std::sync::mpsc::channel();
            tokio::spawn(async move {
                let _ = tx.send(());
            });
            budget.run(work <= INLINE_WORK, move || rx.recv_timeout(wait).is_ok())
        };
        assert!(waits_for_another_task(INLINE_WORK + 1, Duration::from_secs(10)).await);
        // Small work runs inline (so the other task cannot run meanwhile).
        assert!(!waits_for_another_task(INLINE_WORK, Duration::from_millis(50)).await);
    }
}
