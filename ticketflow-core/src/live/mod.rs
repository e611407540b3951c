//! Live progress: every ticket event as it commits, in seq order, to any number of
//! subscribers, resumable from any seq ([`EventFeed`]). The API's Server-Sent Events streams
//! are built on it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ticketflow_core::live::{EventFeed, Filter};
//! use ticketflow_core::store::{SqliteStore, Store};
//!
//! # async fn follow(ticket: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::connect("sqlite://tickets.db").await?);
//! let feed = EventFeed::new(store);
//! // The ticket's whole history, then its new events until it is done.
//! let mut events = feed.subscribe(Filter::ticket(ticket), 0).await?;
//! while let Some(event) = events.next().await {
//!     println!("{} {}", event.seq, event.event_type);
//! }
//! # Ok(()) }
//! ```

mod feed;
mod frontier;
mod subscription;

pub use feed::{EventFeed, FeedOptions};
pub use frontier::Frontier;
pub use subscription::{Filter, Subscription};
