//! The outbox relay: publishes due outbox rows with confirms and marks them sent. A row claimed
//! but never marked (the relay died, the broker refused) becomes due again after a short
//! visibility timeout, so every row is published at least once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::queue::{Queue, QueueError, TicketMessage};
use crate::store::{OutboxStore, StoreError};
use crate::tracing_context;
use tracing::Instrument;

/// Why a relay round stopped short.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The outbox could not be read or marked.
    #[error("outbox unavailable: {0}")]
    Store(#[from] StoreError),
    /// The queue refused a message; the rows not published come due again after the
    /// visibility timeout.
    #[error("published {sent} of {claimed} outbox rows: {source}")]
    Publish {
        /// Rows published (and marked sent) before the failure.
        sent: usize,
        /// Rows claimed this round.
        claimed: usize,
        /// The queue's error.
        source: QueueError,
    },
}

/// Publishes the outbox.
#[derive(Clone)]
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    queue: Arc<dyn Queue>,
    wake: Arc<Notify>,
    /// Rows per round.
    pub batch: u32,
    /// How long to wait for new rows when the outbox is empty (a `wake` cuts it short).
    pub idle: Duration,
    /// How long a claimed row stays hidden before another round may publish it again.
    pub visibility: Duration,
}

impl OutboxRelay {
    /// A relay from `store`'s outbox to `queue`.
    pub fn new(store: Arc<dyn OutboxStore>, queue: Arc<dyn Queue>) -> Self {
        Self {
            store,
            queue,
            wake: Arc::new(Notify::new()),
            batch: 100,
            idle: Duration::from_millis(500),
            visibility: Duration::from_secs(5),
        }
    }

    /// Wakes the relay now (after a ticket was created) instead of at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes one round; returns how many rows were published.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let due = self.store.claim_outbox(self.batch, self.visibility).await?;
        let mut sent = Vec::with_capacity(due.len());
        let mut failure = None;
        for row in &due {
            // The publish is a span of the trace the ticket's request started; the message
            // carries this span's context on to the worker.
            let span = tracing::info_span!("outbox.publish", ticket_id = %row.ticket_id, outbox_id = row.id);
            tracing_context::set_parent(&span, row.traceparent.as_deref());
            let message = TicketMessage {
                ticket_id: row.ticket_id,
                request_id: row.request_id.clone(),
                traceparent: span
                    .in_scope(tracing_context::current_traceparent)
                    .or_else(|| row.traceparent.clone()),
                attempt: u32::try_from(row.attempt).unwrap_or(0),
            };
            match self.queue.publish(&message).instrument(span).await {
                Ok(()) => sent.push(row.id),
                Err(error) => {
                    // The rest stay claimed and come due again after the visibility timeout.
                    failure = Some(error);
                    break;
                }
            }
        }
        if !sent.is_empty() {
            self.store.mark_sent(&sent).await?;
        }
        match failure {
            Some(source) => Err(RelayError::Publish {
                sent: sent.len(),
                claimed: due.len(),
                source,
            }),
            None => Ok(sent.len()),
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        super::run_rounds("outbox relay", &shutdown, &self.wake, self.idle, || self.relay_once()).await;
    }
}
