//! Turning queued tickets into results: the [`Processor`] (claim, run, finish), the
//! [`Worker`] that feeds it from a queue, the [`OutboxRelay`] that publishes what the database
//! says must be published, the [`Sweeper`] that rescues tickets nothing would wake, and the
//! [`MailRelay`] that delivers queued e-mail, and the `WebhookRelay` (feature `http`) that
//! delivers webhooks.
//! The binaries only wire these together; the embedded mode runs them all in one process.

mod background;
mod mail_relay;
mod processor;
mod relay;
mod reply;
mod sweeper;
#[cfg(feature = "http")]
mod webhook_relay;
mod worker;

pub use background::{Background, BackgroundOptions, shutdown_signal};
pub use mail_relay::MailRelay;
pub use processor::{ProcessError, Processed, Processor, ProcessorConfig, default_worker_id, requeue_failed};
pub use relay::{OutboxRelay, RelayError};
pub use sweeper::Sweeper;
#[cfg(feature = "http")]
pub use webhook_relay::WebhookRelay;
pub use worker::Worker;

/// Runs `round` until `shutdown`, as both relays do: after a round that found nothing to do, it
/// waits `idle` (a `wake` cuts the wait short); after a failed one, it backs off from 0.4 s,
/// doubling up to 6.4 s, logging `what` paused.
pub(crate) async fn run_rounds<F, Fut, E>(
    what: &'static str,
    shutdown: &tokio_util::sync::CancellationToken,
    wake: &tokio::sync::Notify,
    idle: std::time::Duration,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, E>>,
    E: std::fmt::Display,
{
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match round().await {
            Ok(0) => {
                failures = 0;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(idle) => {}
                }
            }
            Ok(_) => failures = 0,
            Err(error) => {
                failures += 1;
                let backoff = std::time::Duration::from_millis(200 * 2u64.pow(failures.min(5)));
                tracing::warn!(%error, backoff_ms = backoff.as_millis() as u64, "{what} paused");
                if !pause(backoff, shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps for `duration` unless `shutdown` fires first; returns false if it fired.
pub(crate) async fn pause(duration: std::time::Duration, shutdown: &tokio_util::sync::CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

/// How long a relay's claim must hide what it claimed: a round of `batch` attempts, at most
/// `concurrency` at a time, each up to `attempt_timeout`, must end well inside it (twice), and
/// never less than `floor`.
pub(crate) fn claim_visibility(
    batch: u32,
    concurrency: usize,
    attempt_timeout: std::time::Duration,
    floor: std::time::Duration,
) -> std::time::Duration {
    let waves = batch.div_ceil(u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX));
    floor.max(attempt_timeout.saturating_mul(waves.max(1)).saturating_mul(2))
}
