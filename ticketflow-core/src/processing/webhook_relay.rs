//! The webhook relay: delivers the webhook outbox, at least once. A claimed delivery hides
//! for `visibility`; one the receiver did not accept comes due again after a backoff that
//! doubles, with jitter, until the delivery is `retry_window` old — then it is `failed`, and
//! a person can retry it. It runs beside the workers, never in their way: a slow or dead
//! receiver holds only the relay, and an endpoint that is down rests — its deliveries wait,
//! untouched, while a few probe it after a backoff of its own — so a dead receiver costs the
//! database nearly nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::{StoreError, WebhookAttempt, WebhookDelivery, WebhookOutcome, WebhookStore};
use crate::webhooks::{Answer, WebhookSender};

/// Delivers the webhook outbox.
#[derive(Clone)]
pub struct WebhookRelay {
    store: Arc<dyn WebhookStore>,
    sender: WebhookSender,
    wake: Arc<Notify>,
    /// How long a delivery is retried (`WEBHOOK_RETRY_HOURS`), from when it was queued (or
    /// retried by a person).
    pub retry_window: Duration,
    /// The delay after the first failed attempt (`WEBHOOK_RETRY_SECONDS`); it doubles with
    /// each one after, up to `max_backoff`, and each delay is drawn between its half and its
    /// whole (jitter: receivers coming back are not hit by every relay at once).
    pub backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// Deliveries claimed per round.
    pub batch: u32,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long to wait when nothing is due (a `wake` cuts it short).
    pub idle: Duration,
    /// How long a claimed delivery stays hidden: longer than a round can take.
    pub visibility: Duration,
    /// The longest one attempt may take (`WEBHOOK_TIMEOUT_SECONDS`), to size `visibility`.
    pub attempt_timeout: Duration,
    /// Endpoints that failed (no answer, 5xx, 429), and until when they rest: shared by the
    /// relay's clones, in memory only (after a restart every endpoint is tried again).
    resting: Arc<Mutex<HashMap<String, Rest>>>,
}

/// An endpoint at rest.
#[derive(Debug, Clone, Copy)]
struct Rest {
    /// Failures in a row.
    failures: u32,
    /// When its deliveries are tried again.
    until: Instant,
}

impl std::fmt::Debug for WebhookRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRelay")
            .field("retry_window", &self.retry_window)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl WebhookRelay {
    /// A relay from `store`'s webhook outbox through `sender`.
    pub fn new(store: Arc<dyn WebhookStore>, sender: WebhookSender, attempt_timeout: Duration) -> Self {
        Self {
            store,
            sender,
            wake: Arc::new(Notify::new()),
            retry_window: Duration::from_secs(24 * 3600),
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            batch: 32,
            concurrency: 16,
            idle: Duration::from_millis(500),
            visibility: Duration::from_secs(120),
            attempt_timeout,
            resting: Arc::default(),
        }
    }

    /// The endpoints resting now.
    fn resting_now(&self) -> Vec<String> {
        let now = Instant::now();
        let resting = self.resting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        resting
            .iter()
            .filter(|(_, rest)| rest.until > now)
            .map(|(endpoint, _)| endpoint.clone())
            .collect()
    }

    /// Notes what an attempt said of its endpoint: an answer that is not the receiver's
    /// verdict on this delivery (none at all, 5xx, 429) rests the endpoint, for a backoff that
    /// doubles with each such failure in a row; any other answer wakes it.
    fn note(&self, endpoint: &str, answer: &Answer) {
        let down = match answer {
            Answer::Unreachable(_) => true,
            Answer::Refused(status) => *status >= 500 || *status == 429,
            Answer::Accepted(_) => false,
        };
        let mut resting = self.resting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !down {
            resting.remove(endpoint);
            return;
        }
        let now = Instant::now();
        let rest = resting.entry(endpoint.to_owned()).or_insert(Rest {
            failures: 0,
            until: now,
        });
        // Failures of one batch's deliveries, attempted together, count once.
        if rest.until <= now {
            rest.failures = rest.failures.saturating_add(1);
            rest.until = now + self.delay_after(rest.failures);
        }
    }

    /// Wakes the relay now instead of at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers one round of due webhooks; returns how many it attempted.
    pub async fn deliver_once(&self) -> Result<usize, StoreError> {
        let visibility = super::claim_visibility(self.batch, self.concurrency, self.attempt_timeout, self.visibility);
        let due = self
            .store
            .claim_webhooks(self.batch, visibility, &self.resting_now())
            .await?;
        let attempted = due.len();
        // Outcomes are recorded as they come, a statement for all that are ready together:
        // a dead receiver fails a whole batch at once, for one write.
        let mut outcomes = futures::stream::iter(due)
            .map(|delivery| async move {
                let outcome = self.attempt(&delivery).await;
                WebhookAttempt { delivery, outcome }
            })
            .buffer_unordered(self.concurrency.max(1))
            .ready_chunks(self.batch.max(1) as usize);
        while let Some(ready) = outcomes.next().await {
            // An outcome not recorded comes due again after the visibility timeout (and may be
            // delivered twice, with the same webhook-id).
            self.store.record_webhooks(&ready).await?;
        }
        Ok(attempted)
    }

    async fn attempt(&self, delivery: &WebhookDelivery) -> WebhookOutcome {
        let answer = self.sender.send(delivery).await;
        self.note(&delivery.endpoint, &answer);
        let (error, status) = match answer {
            Answer::Accepted(status) => {
                metrics::counter!("webhooks_delivered_total").increment(1);
                tracing::info!(ticket_id = %delivery.ticket_id, event_type = %delivery.event_type,
                    endpoint = %delivery.endpoint, attempts = delivery.attempts, "webhook delivered");
                return WebhookOutcome::Delivered { status };
            }
            Answer::Refused(status) => (format!("the receiver answered {status}"), Some(status)),
            Answer::Unreachable(error) => (error, None),
        };
        let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
        let retry_at =
            Utc::now() + chrono::Duration::from_std(self.delay_after(attempts)).unwrap_or(chrono::Duration::MAX);
        let window = chrono::Duration::from_std(self.retry_window).unwrap_or(chrono::Duration::MAX);
        if retry_at > delivery.retry_from + window {
            metrics::counter!("webhooks_failed_total").increment(1);
            tracing::error!(ticket_id = %delivery.ticket_id, endpoint = %delivery.endpoint, attempts, %error,
                "webhook failed: its retry window is over");
            return WebhookOutcome::Failed { error, status };
        }
        metrics::counter!("webhook_retries_total").increment(1);
        tracing::warn!(ticket_id = %delivery.ticket_id, endpoint = %delivery.endpoint, attempts, %error,
            "webhook not accepted; it is retried");
        WebhookOutcome::Retry {
            error,
            status,
            retry_at,
        }
    }

    /// The delay after failed attempt number `attempts`: `backoff` doubled for each attempt
    /// before (at most `max_backoff`), drawn between its half and its whole.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        let full = self.backoff.saturating_mul(1 << doublings).min(self.max_backoff);
        let mut byte = [0u8; 1];
        let fraction = match getrandom::fill(&mut byte) {
            Ok(()) => f64::from(byte[0]) / 255.0,
            Err(_) => 1.0,
        };
        full.mul_f64(0.5 + 0.5 * fraction)
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        super::run_rounds("webhook relay", &shutdown, &self.wake, self.idle, || {
            self.deliver_once()
        })
        .await;
    }
}
