//! What retries need beside the router's attempt loop: the retry budget
//! (also the requeue budget) and the request body that a later attempt
//! can replay, bounded per request and per router.

mod body;
mod budget;

pub use body::{AttemptBody, BufferPool, Replay};
pub use budget::RetryBudget;
