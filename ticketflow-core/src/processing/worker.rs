//! The consume loop: subscribes, processes deliveries concurrently, settles each one, and
//! resubscribes when the connection breaks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Processed, Processor, pause};
use crate::queue::{Delivery, Queue};

/// Feeds a [`Processor`] from a [`Queue`].
#[derive(Clone)]
pub struct Worker {
    queue: Arc<dyn Queue>,
    processor: Processor,
    /// Deliveries processed at once (and the broker prefetch).
    pub concurrency: usize,
}

impl Worker {
    /// A worker processing up to `concurrency` tickets at once.
    pub fn new(queue: Arc<dyn Queue>, processor: Processor, concurrency: usize) -> Self {
        Self {
            queue,
            processor,
            concurrency: concurrency.max(1),
        }
    }

    /// Consumes until `shutdown`, then stops taking deliveries and waits for the ones in flight
    /// to finish (a caller that cannot wait drops the future: unacknowledged deliveries go back
    /// to the queue and the leases expire).
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let prefetch = u16::try_from(self.concurrency).unwrap_or(u16::MAX);
        let mut in_flight = JoinSet::new();
        let mut failures = 0u32;
        'subscribe: while !shutdown.is_cancelled() {
            let subscribed = tokio::select! {
                () = shutdown.cancelled() => break,
                subscribed = self.queue.subscribe(prefetch) => subscribed,
            };
            let mut subscription = match subscribed {
                Ok(subscription) => {
                    failures = 0;
                    subscription
                }
                Err(error) => {
                    failures += 1;
                    let backoff = Duration::from_millis(250 * 2u64.pow(failures.min(5)));
                    tracing::warn!(%error, backoff_ms = backoff.as_millis() as u64, "cannot subscribe; retrying");
                    if !pause(backoff, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            loop {
                while in_flight.try_join_next().is_some() {}
                let permit = tokio::select! {
                    () = shutdown.cancelled() => None,
                    permit = permits.clone().acquire_owned() => permit.ok(),
                };
                let delivery = match permit {
                    None => None,
                    Some(permit) => tokio::select! {
                        () = shutdown.cancelled() => None,
                        delivery = subscription.next() => Some((permit, delivery)),
                    },
                };
                let Some((permit, delivery)) = delivery else {
                    // Shutting down: the tickets in flight finish while the channel (owned by
                    // the subscription) stays open, so their acks still count.
                    while in_flight.join_next().await.is_some() {}
                    break 'subscribe;
                };
                let Some(delivery) = delivery else {
                    tracing::warn!("subscription ended; resubscribing");
                    if !pause(Duration::from_millis(500), &shutdown).await {
                        break 'subscribe;
                    }
                    continue 'subscribe;
                };
                let processor = self.processor.clone();
                let shutdown = shutdown.clone();
                in_flight.spawn(async move {
                    handle(&processor, delivery, &shutdown).await;
                    drop(permit);
                });
            }
        }
        while in_flight.join_next().await.is_some() {}
    }
}

/// Processes one delivery and settles it: acknowledged once the outcome is recorded,
/// dead-lettered if malformed (or if processing panicked). While the database is down the
/// delivery is held and processing retried with backoff — never requeued, which would burn the
/// queue's delivery limit — so the worker in effect pauses until the database is back.
async fn handle(processor: &Processor, delivery: Delivery, shutdown: &CancellationToken) {
    let message = match delivery.message {
        Ok(message) => message,
        Err(malformed) => {
            tracing::error!(%malformed, "malformed message: dead-lettered");
            if let Err(error) = delivery.settle.dead_letter().await {
                tracing::warn!(%error, "could not dead-letter a malformed message");
            }
            return;
        }
    };
    // Every log line of this ticket's processing carries its id and request id.
    let span = tracing::info_span!("queue.process", ticket_id = %message.ticket_id, request_id = ?message.request_id);
    crate::tracing_context::set_parent(&span, message.traceparent.as_deref());
    let mut pause = processor.config().infrastructure_pause;
    let settled = loop {
        let attempt = std::panic::AssertUnwindSafe(processor.process(&message).instrument(span.clone()));
        match futures::FutureExt::catch_unwind(attempt).await {
            Ok(Ok(outcome)) => {
                if !matches!(outcome, Processed::Skipped(_)) {
                    tracing::info!(ticket_id = %message.ticket_id, ?outcome, "ticket processed");
                }
                break delivery.settle.ack().await;
            }
            Ok(Err(error)) if !error.is_outage() => {
                // Retrying will not help (stored data that cannot be read, a refused write).
                tracing::error!(ticket_id = %message.ticket_id, %error, "processing failed: message dead-lettered");
                break delivery.settle.dead_letter().await;
            }
            Ok(Err(error)) => {
                tracing::warn!(
                    ticket_id = %message.ticket_id, %error, pause_ms = pause.as_millis() as u64,
                    "database unavailable; holding the message and retrying"
                );
                if !super::pause(pause, shutdown).await {
                    // Shutting down: leave it unacknowledged; the broker redelivers it.
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            Err(_) => {
                tracing::error!(ticket_id = %message.ticket_id, "processing panicked: message dead-lettered");
                break delivery.settle.dead_letter().await;
            }
        }
    };
    // An ack on a dead channel fails harmlessly: the broker redelivers, and the ticket's state
    // in the database makes the redelivery a no-op.
    if let Err(error) = settled {
        tracing::warn!(%error, "could not settle a delivery");
    }
}
