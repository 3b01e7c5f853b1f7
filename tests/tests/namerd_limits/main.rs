//! Issue 12's probes of namerd's fair limits, against the real binary with
//! real clients (tonic, curl), each printing its numbers:
//!
//! - `bindings`: one client holding 10,000 names over gRPC (the global
//!   cap) does not keep another client from binding a new name: the first
//!   client's least recently asked-for binding makes room; namerd's memory
//!   comes back once the first leaves. 300 distinct ~900 KB names are
//!   refused by the key size cap without growing namerd.
//! - `work`: four 1 MB local dtabs sent to `/api/1/delegate` stall neither
//!   `/admin/ping` nor the API, refused by the key cap or, with the cap
//!   raised, by the binding budget, off the async runtime.
//! - `refusals`: every limit is named in its refusal, over HTTP and gRPC.

mod bindings;
mod refusals;
mod setup;
mod work;
