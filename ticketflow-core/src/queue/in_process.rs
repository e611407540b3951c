//! The embedded mode's queue: a tokio channel shared by the in-process workers. It keeps
//! nothing across restarts, and needs not: the outbox and the sweeper re-enqueue from the
//! database.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};

use super::{Delivery, Queue, QueueDepth, QueueError, Settle, Subscription, TicketMessage};

/// An unbounded in-process queue; clones share it.
#[derive(Debug, Clone)]
pub struct InProcessQueue {
    sender: mpsc::UnboundedSender<TicketMessage>,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<TicketMessage>>>,
}

impl Default for InProcessQueue {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
        }
    }
}

impl InProcessQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }
}

struct InProcessSettle {
    message: TicketMessage,
}

#[async_trait]
impl Settle for InProcessSettle {
    async fn ack(&self) -> Result<(), QueueError> {
        Ok(())
    }
    async fn dead_letter(&self) -> Result<(), QueueError> {
        tracing::error!(ticket_id = %self.message.ticket_id, "message dead-lettered (in-process queue: dropped)");
        Ok(())
    }
}

struct InProcessSubscription {
    queue: InProcessQueue,
}

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        let message = self.queue.receiver.lock().await.recv().await?;
        Some(Delivery {
            message: Ok(message.clone()),
            settle: Box::new(InProcessSettle { message }),
        })
    }
}

#[async_trait]
impl Queue for InProcessQueue {
    async fn publish(&self, message: &TicketMessage) -> Result<(), QueueError> {
        self.sender
            .send(message.clone())
            .map_err(|_| QueueError::Unavailable("the in-process queue is closed".into()))
    }

    async fn subscribe(&self, _prefetch: u16) -> Result<Box<dyn Subscription>, QueueError> {
        Ok(Box::new(InProcessSubscription { queue: self.clone() }))
    }

    async fn check(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        Ok(QueueDepth {
            ready: self.receiver.try_lock().map_or(0, |r| r.len() as u64),
            dead: 0,
        })
    }
}
