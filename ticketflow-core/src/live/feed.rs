//! One reader of the event table per process, fanned out to every subscriber.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::task::AbortHandle;

use super::frontier::Frontier;
use super::subscription::{Filter, Subscription};
use crate::store::{InFlight, Store, StoreError, TicketEvent};

/// How long a subscriber waits for the feed to start before it is told the database is
/// unavailable.
const START_WAIT: Duration = Duration::from_secs(10);

/// How the feed reads.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// How often it reads without a notice (the only way it learns of events when the database
    /// gives no notices, and a safety net when it does).
    pub poll: Duration,
    /// How soon it reads again while it holds events back.
    pub recheck: Duration,
    /// Events per read.
    pub batch: u32,
    /// Batches kept for subscribers that fall behind; one that falls further reads what it
    /// missed from the database.
    pub capacity: usize,
}

impl Default for FeedOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            recheck: Duration::from_millis(20),
            batch: 500,
            capacity: 1024,
        }
    }
}

/// The live event feed: one task reads new events in seq order as they commit (woken by the
/// store's commit notices, or polling), holds back what could still be preceded by an event
/// in flight ([`Frontier`]), and broadcasts the rest. Subscribers read their history from the
/// database and then follow the broadcast, so thousands of them cost one reader; a slow one
/// falls behind alone and catches up from the database. Cheap to clone; the tasks start with
/// the first subscriber and stop when the last clone is dropped.
#[derive(Clone)]
pub struct EventFeed {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) store: Arc<dyn Store>,
    options: FeedOptions,
    /// Batches of safe events, in seq order.
    pub(super) batches: broadcast::Sender<Arc<[TicketEvent]>>,
    /// The last seq broadcast (every seq at or below it that will ever commit has been);
    /// `None` until the feed has found where to start.
    pub(super) through: watch::Sender<Option<i64>>,
    /// The feed's tasks, aborted with the last clone.
    tasks: OnceLock<Tasks>,
}

/// Aborts the feed's tasks when dropped.
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFeed")
            .field("options", &self.shared.options)
            .field("through", &*self.shared.through.borrow())
            .finish_non_exhaustive()
    }
}

impl EventFeed {
    /// A feed of `store`'s events, with the default options.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_options(store, FeedOptions::default())
    }

    /// A feed of `store`'s events.
    pub fn with_options(store: Arc<dyn Store>, options: FeedOptions) -> Self {
        let (batches, _) = broadcast::channel(options.capacity.max(1));
        let (through, _) = watch::channel(None);
        Self {
            shared: Arc::new(Shared {
                store,
                options,
                batches,
                through,
                tasks: OnceLock::new(),
            }),
        }
    }

    /// Events after `after` (0: all of them) that pass `filter`, in seq order: first those
    /// already committed, then the new ones as they commit. Must be called within a Tokio
    /// runtime (the first call starts the feed).
    pub async fn subscribe(&self, filter: Filter, after: i64) -> Result<Subscription, StoreError> {
        self.start();
        // Subscribe first, then learn where the broadcast is: every event past that point
        // comes by the broadcast, everything up to it is in the database.
        let batches = self.shared.batches.subscribe();
        let mut through = self.shared.through.subscribe();
        // The feed starts once the database answers: until then, a subscriber waits a little,
        // then hears that the database is unavailable.
        let started = tokio::time::timeout(START_WAIT, through.wait_for(Option::is_some))
            .await
            .map_err(|_| StoreError::Unavailable("the event feed cannot read the database yet".into()))?;
        let through = match *started.map_err(closed)? {
            Some(through) => through,
            None => return Err(closed(())),
        };
        Ok(Subscription::new(self.shared.clone(), batches, filter, after, through))
    }

    /// The last seq the feed has sent, once it has started.
    pub fn through(&self) -> Option<i64> {
        *self.shared.through.borrow()
    }

    fn start(&self) {
        self.shared.tasks.get_or_init(|| {
            let wake = Arc::new(Notify::new());
            let listen = tokio::spawn(listen(self.shared.store.clone(), wake.clone()));
            let read = tokio::spawn(read(
                self.shared.store.clone(),
                self.shared.options.clone(),
                self.shared.batches.clone(),
                self.shared.through.clone(),
                wake,
            ));
            Tasks(vec![listen.abort_handle(), read.abort_handle()])
        });
    }
}

fn closed<E>(_: E) -> StoreError {
    StoreError::Unavailable("the event feed stopped".into())
}

/// Backoff after a failure: doubling from 100 ms to 5 s.
pub(super) fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(failures.min(6))).min(Duration::from_secs(5))
}

/// Wakes the reader at each commit notice, and after every reconnect.
async fn listen(store: Arc<dyn Store>, wake: Arc<Notify>) {
    let mut failures = 0;
    loop {
        match store.commit_notices().await {
            Ok(None) => return,
            Ok(Some(mut notices)) => loop {
                wake.notify_one();
                match notices.next().await {
                    Ok(()) => failures = 0,
                    Err(error) => {
                        tracing::warn!(%error, "the event feed lost its commit notices; reconnecting");
                        wake.notify_one();
                        tokio::time::sleep(backoff(failures)).await;
                        failures += 1;
                    }
                }
            },
            Err(error) => {
                tracing::warn!(%error, "the event feed cannot listen for commits; polling meanwhile");
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
            }
        }
    }
}

/// Where the feed starts: the newest seq, once every writer in flight when it was read has
/// ended (one of them could still commit a lower seq).
async fn starting_point(store: &dyn Store, recheck: Duration) -> Result<Frontier, StoreError> {
    let first = store.read_feed(i64::MAX, 1, &[]).await?;
    let InFlight::Writers(writers) = first.in_flight else {
        return Ok(Frontier::at(first.newest));
    };
    while !store.read_feed(i64::MAX, 1, &writers).await?.waited_for_ended {
        tokio::time::sleep(recheck).await;
    }
    Ok(Frontier::at(first.newest))
}

/// The reader: reads after the frontier at each wake (or poll, or recheck while holding
/// back), broadcasts what is safe, then publishes how far it got.
async fn read(
    store: Arc<dyn Store>,
    options: FeedOptions,
    batches: broadcast::Sender<Arc<[TicketEvent]>>,
    through: watch::Sender<Option<i64>>,
    wake: Arc<Notify>,
) {
    let mut failures = 0;
    let mut frontier = loop {
        match starting_point(&*store, options.recheck).await {
            Ok(frontier) => break frontier,
            Err(error) => {
                tracing::warn!(%error, "the event feed cannot read the events; retrying");
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
            }
        }
    };
    through.send_replace(Some(frontier.through()));
    loop {
        let wait = if frontier.holding() {
            options.recheck
        } else {
            options.poll
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        loop {
            match store
                .read_feed(frontier.through(), options.batch, frontier.waiting_for())
                .await
            {
                Ok(events) => {
                    failures = 0;
                    let more = events.events.len() >= options.batch as usize;
                    let safe = frontier.advance(events);
                    let sent = !safe.is_empty();
                    if sent {
                        metrics::counter!("event_feed_events_total").increment(safe.len() as u64);
                        // No subscriber is not an error: the batch is in the database.
                        let _ = batches.send(Arc::from(safe));
                    }
                    through.send_replace(Some(frontier.through()));
                    if !(more && sent) {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the event feed cannot read new events; retrying");
                    tokio::time::sleep(backoff(failures)).await;
                    failures += 1;
                }
            }
        }
    }
}
