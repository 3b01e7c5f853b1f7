//! The `interpreter` section: the live-binding cap and its idle TTL, and
//! what one client may hold and ask for (`crate::client`). Every count
//! must be at least 1: a zero would refuse every request.

use std::time::Duration;

use l5d_runtime::config::{ConfigError, check, or_default, typed};
use serde::Deserialize;
use serde_json::Value;

use crate::client::ClientLimits;
use crate::interpreter::InterpreterOptions;

/// Limits of the interpreter and of each client (`interpreter:` in our
/// configuration). The defaults are `InterpreterOptions`'s.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InterpreterConfig {
    /// Live bindings at most; at the cap, bindings held only by clients
    /// over their fair share are evicted, then new names are refused.
    #[serde(default = "defaults::max_bindings")]
    pub max_bindings: usize,
    /// A binding nobody watches is stopped after this long.
    #[serde(default = "defaults::idle_ttl_secs")]
    pub idle_ttl_secs: u64,
    /// Bindings one client may hold.
    #[serde(default = "defaults::max_bindings_per_client")]
    pub max_bindings_per_client: usize,
    /// Streams one client may hold open.
    #[serde(default = "defaults::max_streams_per_client")]
    pub max_streams_per_client: usize,
    /// The largest name plus local dtab of a request, in bytes.
    #[serde(default = "defaults::max_key_bytes")]
    pub max_key_bytes: usize,
    /// Dentry visits (lookups × dentries) per bind or delegation.
    #[serde(default = "defaults::bind_budget")]
    pub bind_budget: usize,
}

impl Default for InterpreterConfig {
    fn default() -> Self {
        InterpreterConfig {
            max_bindings: defaults::max_bindings(),
            idle_ttl_secs: defaults::idle_ttl_secs(),
            max_bindings_per_client: defaults::max_bindings_per_client(),
            max_streams_per_client: defaults::max_streams_per_client(),
            max_key_bytes: defaults::max_key_bytes(),
            bind_budget: defaults::bind_budget(),
        }
    }
}

impl InterpreterConfig {
    /// The section at `interpreter`, absent or null for the defaults.
    pub(super) fn parse(section: Option<Value>) -> Result<Self, ConfigError> {
        let config: InterpreterConfig = or_default(section, "interpreter", typed)?;
        let counts = [
            ("maxBindings", config.max_bindings),
            ("maxBindingsPerClient", config.max_bindings_per_client),
            ("maxStreamsPerClient", config.max_streams_per_client),
            ("maxKeyBytes", config.max_key_bytes),
            ("bindBudget", config.bind_budget),
        ];
        for (key, value) in counts {
            check(
                value > 0,
                format!("interpreter.{key}"),
                "must be at least 1",
            )?;
        }
        Ok(config)
    }

    pub fn options(&self) -> InterpreterOptions {
        InterpreterOptions {
            max_bindings: self.max_bindings,
            idle_ttl: Duration::from_secs(self.idle_ttl_secs),
            clients: ClientLimits {
                max_bindings_per_client: self.max_bindings_per_client,
                max_streams_per_client: self.max_streams_per_client,
            },
            max_key_bytes: self.max_key_bytes,
            bind_budget: self.bind_budget,
        }
    }
}

/// The interpreter's defaults, read from the types that define them.
mod defaults {
    use crate::client::ClientLimits;
    use crate::interpreter::InterpreterOptions;

    pub(super) fn max_bindings() -> usize {
        InterpreterOptions::default().max_bindings
    }
    pub(super) fn idle_ttl_secs() -> u64 {
        InterpreterOptions::default().idle_ttl.as_secs()
    }
    pub(super) fn max_bindings_per_client() -> usize {
        ClientLimits::default().max_bindings_per_client
    }
    pub(super) fn max_streams_per_client() -> usize {
        ClientLimits::default().max_streams_per_client
    }
    pub(super) fn max_key_bytes() -> usize {
        InterpreterOptions::default().max_key_bytes
    }
    pub(super) fn bind_budget() -> usize {
        InterpreterOptions::default().bind_budget
    }
}
