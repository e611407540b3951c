//! Queues: a wake-up call for workers, never the source of truth (the database is). Two
//! implementations behind one trait: RabbitMQ (lapin, feature `rabbitmq`) for the distributed
//! mode, and an in-process channel for the embedded mode.

mod in_process;
mod message;
mod queue_type;
#[cfg(feature = "rabbitmq")]
mod rabbit;

use async_trait::async_trait;

pub use in_process::InProcessQueue;
pub use message::{MalformedMessage, TicketMessage};
pub use queue_type::QueueType;
#[cfg(feature = "rabbitmq")]
pub use rabbit::{RabbitOptions, RabbitQueue};

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker is unreachable or the connection broke; retry later.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (a negative publisher confirm).
    #[error("the broker did not confirm the message: {0}")]
    NotConfirmed(String),
}

/// Publishes ticket messages and hands out subscriptions.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Publishes a message; `Ok` only once the broker confirmed it (persisted).
    async fn publish(&self, message: &TicketMessage) -> Result<(), QueueError>;

    /// Starts consuming. The subscription ends (returns `None`) when the connection breaks;
    /// callers subscribe again.
    async fn subscribe(&self, prefetch: u16) -> Result<Box<dyn Subscription>, QueueError>;

    /// Checks that the queue is reachable.
    async fn check(&self) -> Result<(), QueueError>;

    /// Messages waiting, and messages dead-lettered, when the queue can tell.
    async fn depth(&self) -> Result<QueueDepth, QueueError>;
}

/// Message counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready in the main queue.
    pub ready: u64,
    /// In the dead-letter queue.
    pub dead: u64,
}

/// A stream of deliveries.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` when the subscription ended.
    async fn next(&mut self) -> Option<Delivery>;
}

/// How a delivery is settled.
#[async_trait]
pub trait Settle: Send + Sync {
    /// Done with it.
    async fn ack(&self) -> Result<(), QueueError>;
    /// Send it to the dead-letter queue.
    async fn dead_letter(&self) -> Result<(), QueueError>;
}

/// One message received.
pub struct Delivery {
    /// The decoded message, or why it could not be decoded.
    pub message: Result<TicketMessage, MalformedMessage>,
    /// How to settle it.
    pub settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}
