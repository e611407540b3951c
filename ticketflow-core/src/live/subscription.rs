//! One subscriber's events: its history from the database, then the feed's broadcast, with
//! the database again whenever it falls behind.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::feed::Shared;
use crate::store::{EventType, StoreError, TicketEvent, TicketStatus};

/// Events read from the database at a time.
const PAGE: u32 = 500;

/// Which events a subscriber gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// One ticket's events only; the subscription then ends once the ticket is completed,
    /// failed or escalated and every event it had is sent.
    pub ticket: Option<Uuid>,
    /// Only these event types (empty: all).
    pub event_types: Vec<String>,
    /// Only events that moved a ticket to one of these statuses: its `created` event and its
    /// `status_change` events (empty: all events).
    pub statuses: Vec<TicketStatus>,
}

impl Filter {
    /// One ticket's events.
    pub fn ticket(id: Uuid) -> Self {
        Self {
            ticket: Some(id),
            ..Self::default()
        }
    }

    /// True when `event` passes.
    pub fn matches(&self, event: &TicketEvent) -> bool {
        self.ticket.is_none_or(|t| t == event.ticket_id)
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && (self.statuses.is_empty() || status_reached(event).is_some_and(|s| self.statuses.contains(&s)))
    }
}

/// The status an event moved its ticket to, if it moved it.
fn status_reached(event: &TicketEvent) -> Option<TicketStatus> {
    let field = if event.event_type == EventType::StatusChange.as_str() {
        "to"
    } else if event.event_type == EventType::Created.as_str() {
        "status"
    } else {
        return None;
    };
    event.payload.get(field)?.as_str()?.parse().ok()
}

/// A subscriber's events (see [`EventFeed::subscribe`](super::EventFeed::subscribe)).
pub struct Subscription {
    shared: Arc<Shared>,
    batches: broadcast::Receiver<Arc<[TicketEvent]>>,
    filter: Filter,
    /// Every event at or below it was sent (or filtered out).
    cursor: i64,
    /// Events ready to go.
    ready: VecDeque<TicketEvent>,
    /// Read the database up to this seq before following the broadcast again: the history, and
    /// again after falling behind.
    catch_up_to: Option<i64>,
    /// A ticket subscription: check whether the ticket is done before waiting for more.
    check_done: bool,
    /// The ticket was final when last checked, with events still to come: check again after
    /// each of its events.
    final_with_more: bool,
    /// Nothing more will come.
    done: bool,
    /// Failures in a row of the database reads.
    failures: u32,
}

impl Subscription {
    pub(super) fn new(
        shared: Arc<Shared>,
        batches: broadcast::Receiver<Arc<[TicketEvent]>>,
        filter: Filter,
        after: i64,
        through: i64,
    ) -> Self {
        let check_done = filter.ticket.is_some();
        Self {
            shared,
            batches,
            filter,
            // Past the feed's position (a seq from another API process's feed, further on): the
            // broadcast brings what follows it, and the cursor skips what does not.
            cursor: after,
            ready: VecDeque::new(),
            catch_up_to: (through > after).then_some(through),
            check_done,
            final_with_more: false,
            done: false,
            failures: 0,
        }
    }

    /// The next event; `None` once a ticket subscription is done (or the feed stopped).
    /// Database failures are retried with backoff: the subscriber waits, it does not end.
    pub async fn next(&mut self) -> Option<TicketEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            if let Some(target) = self.catch_up_to {
                match self.read_up_to(target).await {
                    Ok(()) => self.failures = 0,
                    Err(error) => self.failed(error).await,
                }
                continue;
            }
            if self.check_done {
                match self.ticket_done().await {
                    Ok(done) => {
                        self.check_done = false;
                        self.done = done;
                    }
                    Err(error) => self.failed(error).await,
                }
                continue;
            }
            match self.batches.recv().await {
                Ok(batch) => self.take(&batch),
                Err(RecvError::Lagged(_)) => {
                    // Fell behind the broadcast: what it missed is in the database.
                    let through = (*self.shared.through.borrow()).unwrap_or(self.cursor);
                    self.catch_up_to = (through > self.cursor).then_some(through);
                }
                Err(RecvError::Closed) => self.done = true,
            }
        }
    }

    /// The events, as a stream.
    pub fn into_stream(self) -> impl Stream<Item = TicketEvent> + Send + 'static {
        futures::stream::unfold(self, |mut subscription| async move {
            subscription.next().await.map(|event| (event, subscription))
        })
    }

    async fn failed(&mut self, error: StoreError) {
        tracing::warn!(%error, "an event subscriber cannot read the events; retrying");
        tokio::time::sleep(super::feed::backoff(self.failures)).await;
        self.failures += 1;
    }

    /// One page of the database's events up to `target`.
    async fn read_up_to(&mut self, target: i64) -> Result<(), StoreError> {
        let page = self
            .shared
            .store
            .events_between(self.filter.ticket, self.cursor, target, PAGE)
            .await?;
        let complete = page.len() < PAGE as usize;
        let last = page.last().map(|e| e.seq);
        self.take(&page);
        self.cursor = if complete { target } else { last.unwrap_or(target) };
        if self.cursor >= target {
            self.catch_up_to = None;
        }
        Ok(())
    }

    /// Takes the events of a page or batch that come after the cursor.
    fn take(&mut self, events: &[TicketEvent]) {
        for event in events {
            if event.seq <= self.cursor {
                continue;
            }
            self.cursor = event.seq;
            if self.filter.ticket.is_some_and(|t| t == event.ticket_id)
                && (self.final_with_more || status_reached(event).is_some_and(TicketStatus::is_final))
            {
                self.check_done = true;
            }
            if self.filter.matches(event) {
                self.ready.push_back(event.clone());
            }
        }
    }

    /// A ticket subscription is done once its ticket is final and no event of it past the
    /// cursor has committed: every event it had when its status was read has been sent.
    async fn ticket_done(&mut self) -> Result<bool, StoreError> {
        let Some(ticket) = self.filter.ticket else {
            return Ok(false);
        };
        let store = &self.shared.store;
        let is_final = store.get(ticket).await?.is_some_and(|t| t.status.is_final());
        if !is_final {
            self.final_with_more = false;
            return Ok(false);
        }
        let more = !store
            .events_between(Some(ticket), self.cursor, i64::MAX, 1)
            .await?
            .is_empty();
        self.final_with_more = more;
        Ok(!more)
    }
}
