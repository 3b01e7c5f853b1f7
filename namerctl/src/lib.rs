//! namerctl, the operator's CLI for namerd dtabs.
//!
//! It speaks Linkerd 1.x's namerd HTTP API (`/api/1/dtabs/...`) and keeps the
//! Go namerctl's commands, aliases, flags and output formats, with one
//! deliberate difference: every write is a compare-and-set by default.
//! `dtab update` sends the version it was given (`--version`, the JSON
//! `"version"` or the `# version` line that `dtab get` prints) as `If-Match`
//! and refuses to write without one unless `--force` is given.
//!
//! Beyond the Go tool it shows what a change would do before it is made
//! (`dtab diff`, `dtab explain`, `dtab update --dry-run`) and runs canary
//! shifts (`canary start|status|abort|promote`, [`canary`]) whose state
//! lives in namerd, so any operator can see and abort them.
//!
//! The binary (`src/main.rs`) only parses arguments and maps errors to exit
//! codes; everything else is here so it can be tested without a process.
//! The pure parts ([`config`], [`input`], [`format`](mod@format),
//! [`history`], [`dentries`], [`diff`](mod@diff), [`explain`], [`dry_run`]
//! and [`canary`]'s state) do no network I/O; only [`client`] talks to namerd, sending
//! the bearer token of [`token`] when one is given.

pub mod api;
pub mod canary;
pub mod cli;
pub mod client;
pub mod config;
pub mod dentries;
pub mod diff;
pub mod dry_run;
pub mod error;
pub mod explain;
pub mod format;
pub mod history;
pub mod input;
pub mod run;
pub mod token;

pub use error::Error;
pub use run::{Environment, run};
