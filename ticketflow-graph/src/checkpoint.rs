//! The checkpoint record and the trait that stores it.

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// A snapshot of a run, taken after a node completed (or when the run started or paused).
///
/// Checkpoints of one thread form a chain through `parent_id`; `step` numbers them, and no two
/// checkpoints of a thread share a step. A store that records "step X completed" beside the
/// checkpoint (an event table, say) can do it in the same transaction from `completed_node`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The durable run this checkpoint belongs to.
    pub thread_id: Arc<str>,
    /// This checkpoint's own id (UUIDv7, so ids sort by creation time).
    pub id: Uuid,
    /// The checkpoint this one follows, if any.
    pub parent_id: Option<Uuid>,
    /// Position in the thread: 0 for the first run's input, then one per completed node or pause.
    pub step: u64,
    /// The node whose completion this checkpoint records; `None` for an input or pause checkpoint.
    pub completed_node: Option<Arc<str>>,
    /// The node to run next; `None` when the run has finished.
    pub next_node: Option<Arc<str>>,
    /// The state after `completed_node`, as JSON.
    pub state: Box<RawValue>,
    /// The version of the graph that wrote this checkpoint; runs refuse another version's.
    pub graph_version: Arc<str>,
    /// Set when the run paused: the payload the interrupting node gave.
    pub interrupt: Option<serde_json::Value>,
    /// Free-form metadata given to the runner (`Null` when none).
    pub metadata: serde_json::Value,
    /// When the checkpoint was taken.
    pub created_at: DateTime<Utc>,
}

impl Checkpoint {
    /// True when the run this checkpoint belongs to has reached END.
    pub fn is_finished(&self) -> bool {
        self.next_node.is_none()
    }

    /// Deserializes the state.
    pub fn state<S: serde::de::DeserializeOwned>(&self) -> Result<S, serde_json::Error> {
        serde_json::from_str(self.state.get())
    }
}

/// Why a checkpoint could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A checkpoint with this thread and step already exists: another run got there first, and
    /// the run that tried to write this one must stop.
    #[error("thread `{thread_id}` already has a checkpoint at step {step}")]
    Conflict {
        /// The thread.
        thread_id: String,
        /// The step that was already taken.
        step: u64,
    },
    /// The store refused the write because the run no longer holds the right to write (a lease
    /// that expired and was taken over, for example).
    #[error("checkpoint write fenced off: {0}")]
    Fenced(String),
    /// The store failed.
    #[error("checkpoint store failed: {0}")]
    Storage(#[source] Box<dyn StdError + Send + Sync>),
}

impl CheckpointError {
    /// Wraps a store's own error.
    pub fn storage(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Storage(error.into())
    }

    /// True when the write lost to another run ([`Conflict`](Self::Conflict) or
    /// [`Fenced`](Self::Fenced)), as opposed to a store failure worth retrying.
    pub fn is_superseded(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::Fenced(_))
    }
}

/// Durable storage for checkpoints.
///
/// Implementations must pass [`testing::conformance`](crate::testing) (behind the `testing`
/// feature): among other things, `put` must refuse a second checkpoint for the same
/// `(thread_id, step)` with [`CheckpointError::Conflict`], atomically, even under concurrency.
#[async_trait]
pub trait Checkpointer: Send + Sync {
    /// Stores a checkpoint; it must be durable when this returns `Ok`.
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError>;

    /// The thread's checkpoint with the highest step, if any.
    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError>;

    /// Up to `limit` of the thread's checkpoints, newest first.
    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError>;

    /// Removes all of a thread's checkpoints; returns how many there were.
    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError>;

    /// Keeps the thread's newest `keep_last` checkpoints (at least one) and removes the rest;
    /// returns how many were removed.
    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError>;
}

#[async_trait]
impl<C: Checkpointer + ?Sized> Checkpointer for Arc<C> {
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        (**self).put(checkpoint).await
    }
    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        (**self).latest(thread_id).await
    }
    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError> {
        (**self).history(thread_id, limit).await
    }
    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError> {
        (**self).delete_thread(thread_id).await
    }
    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError> {
        (**self).prune(thread_id, keep_last).await
    }
}
