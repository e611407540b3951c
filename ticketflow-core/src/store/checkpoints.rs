//! The checkpoint aggregate: each ticket's workflow checkpoints, fenced by its lease.

use std::sync::Arc;

use ticketflow_graph::Checkpointer;

use super::Fence;

/// Workflow checkpoints over the store's database.
pub trait CheckpointStore: Send + Sync {
    /// A checkpointer for the workflow of one ticket. Each checkpoint that records a completed
    /// node also writes that node's `step_complete` event ([`StepCompleted`](super::StepCompleted)),
    /// in the same transaction. With a fence, a write is refused unless the ticket still
    /// carries the fence's lease epoch.
    fn checkpointer(&self, fence: Option<Fence>) -> Arc<dyn Checkpointer>;
}
