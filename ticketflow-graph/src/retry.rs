//! Per-node retry policy.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::ExponentialBuilder;

use crate::NodeError;

type RetryPredicate = Arc<dyn Fn(&NodeError) -> bool + Send + Sync>;

/// How often, and how patiently, a failing node is run again.
///
/// The defaults are LangGraph's `RetryPolicy`: 3 attempts in all (counting the first), waits
/// starting at 0.5 s and doubling, capped at 128 s, with jitter, retrying every error. Nodes have
/// no retry policy unless one is set with [`GraphBuilder::retry`](crate::GraphBuilder::retry):
/// a node that calls a service which already retries (an LLM client, say) should not stack a
/// second retry layer on top.
///
/// ```
/// use std::time::Duration;
/// use ticketflow_graph::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .initial_interval(Duration::from_millis(100))
///     .retry_on(|error| error.is_timeout());
/// assert_eq!(policy.attempts(), 5);
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_interval: Duration,
    backoff_factor: f32,
    max_interval: Duration,
    jitter: bool,
    retry_on: RetryPredicate,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_interval: Duration::from_millis(500),
            backoff_factor: 2.0,
            max_interval: Duration::from_secs(128),
            jitter: true,
            retry_on: Arc::new(|_| true),
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("initial_interval", &self.initial_interval)
            .field("backoff_factor", &self.backoff_factor)
            .field("max_interval", &self.max_interval)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// Attempts in all, counting the first; at least 1.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait before the first retry.
    pub fn initial_interval(mut self, interval: Duration) -> Self {
        self.initial_interval = interval;
        self
    }

    /// What each wait is multiplied by for the next one.
    pub fn backoff_factor(mut self, factor: f32) -> Self {
        self.backoff_factor = factor;
        self
    }

    /// The longest single wait.
    pub fn max_interval(mut self, interval: Duration) -> Self {
        self.max_interval = interval;
        self
    }

    /// Adds a random part to each wait so that many failing runs do not retry in lockstep.
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Retries only the errors for which `predicate` is true (by default: all).
    pub fn retry_on(mut self, predicate: impl Fn(&NodeError) -> bool + Send + Sync + 'static) -> Self {
        self.retry_on = Arc::new(predicate);
        self
    }

    /// Attempts in all, counting the first.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether `error` is one this policy retries.
    pub fn should_retry(&self, error: &NodeError) -> bool {
        (self.retry_on)(error)
    }

    /// The backoff schedule, in the form `backon` runs.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.initial_interval)
            .with_factor(self.backoff_factor)
            .with_max_delay(self.max_interval)
            .with_max_times((self.max_attempts - 1) as usize);
        if self.jitter { builder.with_jitter() } else { builder }
    }
}
