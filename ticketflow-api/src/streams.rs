//! Live progress as Server-Sent Events: one ticket's events, or every ticket's, each as
//! `id: <seq>`, `event: <event_type>`, `data: <event JSON>`, resumable from any seq.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use poem::web::sse::Event;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, OpenApi};
use ticketflow_core::live::{EventFeed, Filter};
use ticketflow_core::store::{EventType, Role, Store, StoreError};
use uuid::Uuid;

use crate::auth::{Access, Caller};
use crate::error::{ApiError, body};
use crate::model::{EventKind, EventView, Status};

/// How often an idle stream sends a comment, so that proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The streaming operations.
pub struct StreamsApi {
    pub(crate) store: std::sync::Arc<dyn Store>,
    pub(crate) feed: EventFeed,
    pub(crate) access: Access,
}

#[derive(ApiResponse)]
enum Streamed {
    /// Server-Sent Events: `id` is the event's seq, `event` its type, `data` the event.
    #[oai(status = 200)]
    Events(EventStream<BoxStream<'static, EventView>>),
}

/// Where a stream starts: after `Last-Event-ID` (a reconnecting `EventSource` sends it),
/// else after `after`, else from the beginning.
fn start(last_event_id: Option<String>, after: Option<i64>) -> Result<i64, ApiError> {
    match last_event_id {
        Some(id) => id.trim().parse::<i64>().ok().filter(|seq| *seq >= 0).ok_or_else(|| {
            ApiError::Unprocessable(body(
                "validation_error",
                "`Last-Event-ID` must be the seq of an event (a whole number, 0 or more)",
                Some("Last-Event-ID".into()),
            ))
        }),
        None => Ok(after.unwrap_or(0)),
    }
}

async fn stream(feed: &EventFeed, filter: Filter, after: i64) -> Result<Streamed, ApiError> {
    let subscription = feed.subscribe(filter, after).await?;
    let events = subscription.into_stream().map(EventView::from).boxed();
    Ok(Streamed::Events(
        EventStream::new(events)
            .keep_alive(KEEP_ALIVE)
            .to_event(|event: EventView| {
                let seq = event.seq.to_string();
                let event_type = event.event_type.clone();
                Event::message(event.to_json_string()).id(seq).event_type(event_type)
            }),
    ))
}

#[OpenApi]
impl StreamsApi {
    /// Follow a ticket: its events as Server-Sent Events, history first (or, with
    /// `Last-Event-ID` or `after`, every event after that seq), then each new one as it
    /// commits. Ends once the ticket is completed, failed or escalated and every event it had
    /// is sent; `awaiting_approval` keeps it open. A comment every 15 s keeps it alive.
    ///
    /// Role: viewer.
    #[oai(path = "/tickets/:id/stream", method = "get", operation_id = "stream_ticket_events")]
    async fn stream_ticket(
        &self,
        id: Path<Uuid>,
        /// Resume after this seq (sent by a reconnecting `EventSource`).
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Resume after this seq (when `Last-Event-ID` is absent).
        #[oai(validator(minimum(value = "0")))]
        after: Query<Option<i64>>,
        caller: Caller,
    ) -> Result<Streamed, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let after = start(last_event_id.0, after.0)?;
        self.store.get(id.0).await?.ok_or(StoreError::NotFound(id.0))?;
        stream(&self.feed, Filter::ticket(id.0), after).await
    }

    /// Follow every ticket: all events as Server-Sent Events, with the same resume rule as a
    /// ticket's stream (without `Last-Event-ID` or `after`: from the first event ever).
    /// `event_type` and `status` (events that moved a ticket to that status) filter; each may
    /// repeat. Never ends.
    ///
    /// Role: viewer.
    #[oai(path = "/events/stream", method = "get", operation_id = "stream_events")]
    async fn stream_all(
        &self,
        /// Resume after this seq (sent by a reconnecting `EventSource`).
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Resume after this seq (when `Last-Event-ID` is absent).
        #[oai(validator(minimum(value = "0")))]
        after: Query<Option<i64>>,
        /// Only events of these types.
        event_type: Query<Vec<EventKind>>,
        /// Only the events that moved a ticket to one of these statuses (its `created` and
        /// `status_change` events).
        status: Query<Vec<Status>>,
        caller: Caller,
    ) -> Result<Streamed, ApiError> {
        caller.require(&self.access, Role::Viewer).await?;
        let after = start(last_event_id.0, after.0)?;
        let filter = Filter {
            ticket: None,
            event_types: event_type
                .0
                .into_iter()
                .map(|kind| EventType::from(kind).as_str().to_owned())
                .collect(),
            statuses: status.0.into_iter().map(Into::into).collect(),
        };
        stream(&self.feed, filter, after).await
    }
}
