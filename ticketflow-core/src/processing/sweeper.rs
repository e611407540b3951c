//! The sweeper: the safety net under the queue. At start-up and then periodically it
//! re-enqueues tickets nothing will otherwise wake — `pending` with no recent enqueue (a lost
//! in-process queue, a purged or dead-lettered message), `processing` with an expired lease (a
//! crashed worker).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{OutboxRelay, pause};
use crate::store::{OutboxStore, StoreError};

/// Rescues stranded tickets.
#[derive(Clone)]
pub struct Sweeper {
    store: Arc<dyn OutboxStore>,
    relay: Option<OutboxRelay>,
    /// Time between sweeps.
    pub interval: Duration,
    /// A pending ticket enqueued more recently than this is left alone (its message is
    /// probably still in the queue); avoids publishing duplicates under a backlog.
    pub quiet_for: Duration,
    /// Tickets per sweep.
    pub batch: u32,
}

impl Sweeper {
    /// A sweeper over `store`; `relay`, when given, is woken after a sweep enqueued something.
    pub fn new(store: Arc<dyn OutboxStore>, relay: Option<OutboxRelay>) -> Self {
        Self {
            store,
            relay,
            interval: Duration::from_secs(15),
            quiet_for: Duration::from_secs(60),
            batch: 500,
        }
    }

    /// One sweep; returns how many tickets were re-enqueued.
    pub async fn sweep_once(&self) -> Result<u64, StoreError> {
        let enqueued = self.store.sweep(self.quiet_for, self.batch).await?;
        if enqueued > 0 {
            tracing::info!(enqueued, "sweeper re-enqueued stranded tickets");
            if let Some(relay) = &self.relay {
                relay.wake();
            }
        }
        Ok(enqueued)
    }

    /// Sweeps now and every `interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.sweep_once().await {
                tracing::warn!(%error, "sweep failed");
            }
            if !pause(self.interval, &shutdown).await {
                return;
            }
        }
    }
}
