//! Response classification, as Linkerd 1.x's response classifiers: every
//! response (or failure) of an attempt is a success, a failure that may be
//! retried, or a failure that may not. The class drives the success and
//! failure metrics, failure accrual and retries, and is stamped on the
//! response as `l5d-success-class`.

/// The class of one attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    Success,
    /// A failure that a retry may fix (the classifier says so, or the
    /// request is known not to have reached an application).
    RetryableFailure,
    NonRetryableFailure,
}

impl ResponseClass {
    pub fn is_success(self) -> bool {
        self == ResponseClass::Success
    }
}
