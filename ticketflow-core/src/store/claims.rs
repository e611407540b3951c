//! The claim aggregate: which worker holds a ticket, under which lease.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::{StoreError, Ticket};

/// The right of one processing run to write a ticket's checkpoints: the ticket and the lease
/// epoch the run was granted. A later claim bumps the epoch, and the earlier run's writes lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The lease epoch.
    pub epoch: i64,
}

/// Leases on tickets.
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Claims a ticket for `worker_id` for `lease`: a `pending` ticket, or a `processing` one
    /// whose lease expired (a takeover, counted in `lease_takeovers_total`). Sets `processing`,
    /// bumps the lease epoch (the first claim of a ticket gets epoch 1) and version, and writes
    /// a `status_change` event ([`Claimed`](super::Claimed)), in one transaction. Returns the
    /// ticket and the fence its checkpoint writes must carry; `None` when another live worker
    /// holds it, it is in no state to be processed, or it is `pending` with a delayed retry not
    /// yet due (an early duplicate delivery must not skip the backoff: the scheduled message
    /// will come); [`StoreError::NotFound`] when there is no such ticket.
    async fn claim(&self, id: Uuid, worker_id: &str, lease: Duration) -> Result<Option<(Ticket, Fence)>, StoreError>;

    /// Extends a lease the run still holds; `false` when the fence is stale (the ticket was
    /// taken over or finished), and the run should stop.
    async fn heartbeat(&self, fence: Fence, lease: Duration) -> Result<bool, StoreError>;

    /// Hands a ticket back (`processing` -> `pending`, lease cleared) if the run still holds it,
    /// enqueuing it again after `delay`; used on shutdown and after infrastructure errors, and
    /// never charged to the retry budget. `false` when the fence is stale.
    async fn release(&self, fence: Fence, reason: &str, delay: Duration) -> Result<bool, StoreError>;
}
