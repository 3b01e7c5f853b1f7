//! What a router applies to the requests of one logical name (its
//! `service` configuration, resolved once per route) and to those sent to
//! one bound id (its `client` configuration's attempt timeout and requeue
//! budget, once per id).

use std::sync::Arc;
use std::time::Duration;

use crate::balance::Balancer;
use crate::classify::Classifier;
use crate::config::{BackoffConfig, Protocol, RetryBufferConfig, ServiceConfig};
use crate::metrics::RetryMetrics;
use crate::retry::RetryBudget;

/// The policies of one logical name.
#[derive(Debug)]
pub struct Policy {
    pub classifier: Classifier,
    pub total_timeout: Option<Duration>,
    pub backoff: BackoffConfig,
    pub retry_buffer: RetryBufferConfig,
    pub classification_timeout: Duration,
    pub budget: RetryBudget,
    pub metrics: RetryMetrics,
}

impl Policy {
    pub fn new(config: ServiceConfig, protocol: Protocol, metrics: RetryMetrics) -> Self {
        Policy {
            classifier: Classifier::new(config.classifier, protocol),
            total_timeout: config.total_timeout,
            backoff: config.backoff,
            retry_buffer: config.retry_buffer,
            classification_timeout: config.classification_timeout,
            budget: RetryBudget::new(&config.budget),
            metrics,
        }
    }
}

/// A bound id's balancer and what its `client` configuration says of
/// attempts; shared by every route that binds to the id.
#[derive(Debug)]
pub struct IdClient {
    pub balancer: Balancer,
    pub attempt_timeout: Option<Duration>,
    pub requeues: RetryBudget,
}

impl IdClient {
    pub fn new(
        balancer: Balancer,
        attempt_timeout: Option<Duration>,
        requeues: RetryBudget,
    ) -> Arc<Self> {
        Arc::new(IdClient {
            balancer,
            attempt_timeout,
            requeues,
        })
    }
}
