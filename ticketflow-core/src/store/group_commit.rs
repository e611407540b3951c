//! Group commit of checkpoint writes in PostgreSQL: the checkpoints of concurrent runs are
//! written together, many runs' steps in one statement and one transaction, each row still
//! fenced by its own ticket's lease epoch.
//!
//! Why: a checkpoint after every step is most of a ticket's transactions, and on a small
//! machine a transaction's fixed cost (a round trip, parse and plan, the commit and its WAL
//! flush) outweighs the row it writes. A run still waits for its checkpoint to commit before
//! its next step, so durability is unchanged; only the commit is shared.
//!
//! Batching is natural, not timed: a writer takes whatever is queued when it becomes free, so
//! a lone run never waits for company, and batches grow with the load.

use std::sync::{Arc, OnceLock};

use sqlx::Row;
use sqlx::postgres::PgPool;
use ticketflow_graph::{Checkpoint, CheckpointError};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::{Fence, NewEvent};

/// One checkpoint to write: the fence its run holds, and the `step_complete` event that
/// commits with it.
pub(crate) struct CheckpointWrite {
    pub checkpoint: Checkpoint,
    pub fence: Option<Fence>,
    pub event: Option<NewEvent>,
}

/// What became of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Committed.
    Saved,
    /// Refused: the ticket is at another lease epoch (`None`: gone), so the run holding
    /// `fence` lost its lease.
    Fenced { fence: Fence, epoch: Option<i64> },
    /// Refused: the thread already has a checkpoint at this step.
    Taken,
}

type Reply = oneshot::Sender<Result<Written, CheckpointError>>;
type Queued = (CheckpointWrite, Reply);

impl CheckpointWrite {
    /// About how many bytes this write adds to the statement sent.
    fn wire_size(&self) -> usize {
        let checkpoint = &self.checkpoint;
        let text = |s: Option<&str>| s.map_or(0, str::len);
        let event = self.event.as_ref().map_or(0, |e| {
            e.payload.to_string().len() + text(e.step_name.as_deref()) + text(e.request_id.as_deref()) + 16
        });
        // Ids, step, timestamps, array element headers: about 200 bytes.
        checkpoint.state.get().len()
            + checkpoint.metadata.to_string().len()
            + checkpoint.interrupt.as_ref().map_or(0, |i| i.to_string().len())
            + checkpoint.thread_id.len()
            + checkpoint.graph_version.len()
            + text(checkpoint.completed_node.as_deref())
            + text(checkpoint.next_node.as_deref())
            + event
            + 200
    }
}

/// How big one batch may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Checkpoints.
    pub rows: usize,
    /// Bytes of statement, about (a write larger than this still goes, alone).
    pub bytes: usize,
}

/// The queue in front of the writer tasks. Cheap to clone; the writers stop when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("writers", &self.inner.writers)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: PgPool,
    writers: usize,
    limits: Limits,
    /// Started on first use, in the runtime of the first writer, so that building a store
    /// needs no runtime.
    queue: OnceLock<mpsc::Sender<Queued>>,
}

impl GroupCommit {
    /// `writers` tasks, each writing batches within `limits` per transaction.
    pub fn new(pool: PgPool, writers: usize, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                writers: writers.max(1),
                limits: Limits {
                    rows: limits.rows.max(1),
                    bytes: limits.bytes,
                },
                queue: OnceLock::new(),
            }),
        }
    }

    /// Writes one checkpoint, sharing the transaction with whatever else is queued; returns
    /// once it committed (or was refused).
    pub async fn write(&self, write: CheckpointWrite) -> Result<Written, CheckpointError> {
        if self.inner.limits.rows == 1 {
            return write_one(&self.inner.pool, write).await;
        }
        let queue = self.inner.queue.get_or_init(|| self.start());
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError((write, _))) = queue.send((write, reply)).await {
            // The writers are gone: their runtime shut down while this store lives on in
            // another. Write alone rather than fail.
            return write_one(&self.inner.pool, write).await;
        }
        answer
            .await
            .map_err(|_| CheckpointError::storage("the checkpoint writer stopped before answering"))?
    }

    fn start(&self) -> mpsc::Sender<Queued> {
        let (sender, receiver) = mpsc::channel(self.inner.limits.rows * self.inner.writers * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..self.inner.writers {
            tokio::spawn(writer(self.inner.pool.clone(), receiver.clone(), self.inner.limits));
        }
        sender
    }
}

/// Takes what is queued (up to the limits), writes it in one transaction, answers each
/// caller, repeats. Several writers share the queue, so one gathers while another commits.
async fn writer(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Queued>>>, limits: Limits) {
    let mut batch: Vec<Queued> = Vec::with_capacity(limits.rows);
    // A write that would have made the batch too big opens the next one.
    let mut carried: Option<Queued> = None;
    // Sizes are estimated only when there is a byte limit (over TLS): the estimate serializes
    // metadata and event payloads once more than the statement does.
    let size_of = |queued: &Queued| {
        if limits.bytes == usize::MAX {
            0
        } else {
            queued.0.wire_size()
        }
    };
    loop {
        let mut bytes = 0;
        // The queue's lock is held only while gathering, never across a write.
        let mut queue = match carried.take() {
            Some(queued) => {
                bytes += size_of(&queued);
                batch.push(queued);
                // With a write in hand, never wait for the lock: its holder may be waiting
                // for writes that will not come until this one is answered.
                queue.try_lock().ok()
            }
            None => {
                let mut queue = queue.lock().await;
                let Some(queued) = queue.recv().await else {
                    return; // every sender is gone
                };
                bytes += size_of(&queued);
                batch.push(queued);
                Some(queue)
            }
        };
        while let Some(receiver) = queue.as_mut()
            && batch.len() < limits.rows
        {
            let Ok(queued) = receiver.try_recv() else { break };
            let size = size_of(&queued);
            if bytes + size > limits.bytes {
                carried = Some(queued);
                break;
            }
            bytes += size;
            batch.push(queued);
        }
        drop(queue);
        // A caller that stopped waiting (its run was cancelled) is not written for.
        batch.retain(|(_, reply)| !reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let (writes, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        metrics::histogram!("checkpoint_batch_size").record(writes.len() as f64);
        let outcome = match writes.as_slice() {
            [one] => write_single(&pool, one, Lock::NoWait)
                .await
                .map(|written| vec![written]),
            _ => write_batch(&pool, &writes).await,
        };
        match outcome {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            // The database refused the statement — bad data in one row, a ticket row locked by
            // someone else (the writer never waits for a lock), a deadlock: write each alone,
            // waiting for locks if need be, each in a task of its own, so that a row's problem
            // stays its own and this writer goes on serving the others.
            Err(sqlx::Error::Database(_)) => {
                for (write, reply) in writes.into_iter().zip(replies) {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        let _ = reply.send(write_one(&pool, write).await);
                    });
                }
            }
            // An outage: every caller gets it.
            Err(error) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(CheckpointError::storage(error.clone())));
                }
            }
        }
    }
}

/// Whether a write waits for a ticket row someone else has locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Wait (a write on its own: only its caller waits).
    Wait,
    /// Fail at once (a writer's batch: every caller in it and behind it would wait).
    NoWait,
}

/// Writes one checkpoint in a transaction of its own, waiting for its ticket's row if need be.
async fn write_one(pool: &PgPool, write: CheckpointWrite) -> Result<Written, CheckpointError> {
    write_single(pool, &write, Lock::Wait)
        .await
        .map_err(CheckpointError::storage)
}

/// The one-row write statement, with `$lock` after `FOR SHARE` (`""` or `" NOWAIT"`): a
/// literal either way, so the statement cache keeps both.
macro_rules! single_write_sql {
    ($lock:literal) => {
        concat!(
            "WITH fence AS (SELECT lease_epoch FROM tickets WHERE id = $12 FOR SHARE",
            $lock,
            "), \
              allowed AS (SELECT 1 AS ok WHERE $12::uuid IS NULL OR (SELECT lease_epoch FROM fence) = $13), \
              saved AS (INSERT INTO workflow_checkpoints (thread_id, step, checkpoint_id, parent_id, \
                    completed_node, next_node, state, graph_version, interrupt, metadata, created_at) \
                  SELECT $1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11 FROM allowed \
                  ON CONFLICT (thread_id, step) DO NOTHING RETURNING step), \
              recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, step_name, checkpoint_step, \
                    payload, request_id) \
                  SELECT $14, $12, $15, $16, saved.step, $17, $18 FROM saved \
                  WHERE $15::text IS NOT NULL AND $12::uuid IS NOT NULL) \
         SELECT (SELECT lease_epoch FROM fence) AS epoch, EXISTS (SELECT 1 FROM saved) AS saved"
        )
    };
}

/// One checkpoint, with a statement leaner than the batch's (no arrays, no joins): at low
/// concurrency most batches hold one write, and this path is ~10 % cheaper for them. Same
/// guarantees as [`write_batch`].
async fn write_single(pool: &PgPool, write: &CheckpointWrite, lock: Lock) -> Result<Written, sqlx::Error> {
    let CheckpointWrite {
        checkpoint,
        fence,
        event,
    } = write;
    let step = i64::try_from(checkpoint.step).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let sql = match lock {
        Lock::Wait => single_write_sql!(""),
        Lock::NoWait => single_write_sql!(" NOWAIT"),
    };
    let row = sqlx::query(sql)
        .bind(&*checkpoint.thread_id)
        .bind(step)
        .bind(checkpoint.id)
        .bind(checkpoint.parent_id)
        .bind(checkpoint.completed_node.as_deref())
        .bind(checkpoint.next_node.as_deref())
        .bind(checkpoint.state.get())
        .bind(&*checkpoint.graph_version)
        .bind(checkpoint.interrupt.as_ref())
        .bind(&checkpoint.metadata)
        .bind(checkpoint.created_at)
        .bind(fence.map(|f| f.ticket_id))
        .bind(fence.map(|f| f.epoch))
        .bind(Uuid::now_v7())
        .bind(event.as_ref().map(|e| e.event_type.as_str()))
        .bind(event.as_ref().and_then(|e| e.step_name.as_deref()))
        .bind(event.as_ref().map(|e| &e.payload))
        .bind(event.as_ref().and_then(|e| e.request_id.as_deref()))
        .fetch_one(pool)
        .await?;
    written(write, &row)
}

/// What the row a write statement returned for `write` says became of it.
fn written(write: &CheckpointWrite, row: &sqlx::postgres::PgRow) -> Result<Written, sqlx::Error> {
    let epoch: Option<i64> = row.try_get("epoch")?;
    Ok(match write.fence {
        Some(fence) if epoch != Some(fence.epoch) => Written::Fenced { fence, epoch },
        _ if row.try_get::<bool, _>("saved")? => Written::Saved,
        _ => Written::Taken,
    })
}

/// The columns of a batch, one array per column: `unnest` turns them back into rows, so a
/// batch of any size is one prepared statement.
#[derive(Default)]
struct Columns {
    thread_id: Vec<String>,
    step: Vec<i64>,
    checkpoint_id: Vec<Uuid>,
    parent_id: Vec<Option<Uuid>>,
    completed_node: Vec<Option<String>>,
    next_node: Vec<Option<String>>,
    state: Vec<String>,
    graph_version: Vec<String>,
    interrupt: Vec<Option<String>>,
    metadata: Vec<String>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
    fence_ticket: Vec<Option<Uuid>>,
    fence_epoch: Vec<Option<i64>>,
    event_id: Vec<Uuid>,
    event_type: Vec<Option<&'static str>>,
    event_step: Vec<Option<String>>,
    event_payload: Vec<Option<String>>,
    event_request: Vec<Option<String>>,
}

/// Writes `writes` in one statement (so one implicit transaction) and says, in order, what
/// became of each. The fence check, the checkpoints and their events commit together or not at
/// all. `FOR SHARE` on the fenced tickets, taken in id order, makes a concurrent claim (which
/// bumps the epoch) wait for this write, so a run that took a ticket over always sees the
/// checkpoints the earlier run committed; `NOWAIT`, so that a row locked elsewhere fails the
/// batch at once instead of holding every caller in it (they are then written one by one).
async fn write_batch(pool: &PgPool, writes: &[CheckpointWrite]) -> Result<Vec<Written>, sqlx::Error> {
    let mut c = Columns::default();
    for CheckpointWrite {
        checkpoint,
        fence,
        event,
    } in writes
    {
        let json = |v: &serde_json::Value| v.to_string();
        c.thread_id.push(checkpoint.thread_id.to_string());
        c.step
            .push(i64::try_from(checkpoint.step).map_err(|e| sqlx::Error::Encode(Box::new(e)))?);
        c.checkpoint_id.push(checkpoint.id);
        c.parent_id.push(checkpoint.parent_id);
        c.completed_node
            .push(checkpoint.completed_node.as_deref().map(str::to_owned));
        c.next_node.push(checkpoint.next_node.as_deref().map(str::to_owned));
        c.state.push(checkpoint.state.get().to_owned());
        c.graph_version.push(checkpoint.graph_version.to_string());
        c.interrupt.push(checkpoint.interrupt.as_ref().map(json));
        c.metadata.push(json(&checkpoint.metadata));
        c.created_at.push(checkpoint.created_at);
        c.fence_ticket.push(fence.map(|f| f.ticket_id));
        c.fence_epoch.push(fence.map(|f| f.epoch));
        c.event_id.push(Uuid::now_v7());
        c.event_type.push(event.as_ref().map(|e| e.event_type.as_str()));
        c.event_step.push(event.as_ref().and_then(|e| e.step_name.clone()));
        c.event_payload.push(event.as_ref().map(|e| json(&e.payload)));
        c.event_request.push(event.as_ref().and_then(|e| e.request_id.clone()));
    }
    // Every data-modifying CTE runs whether or not its output is read. Rows are matched back
    // by checkpoint id (unique), which also tells apart two writes of one step in a batch.
    let rows = sqlx::query(
        "WITH input AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::uuid[], $4::uuid[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::uuid[], \
                 $13::int8[], $14::uuid[], $15::text[], $16::text[], $17::text[], $18::text[]) WITH ORDINALITY \
                 AS i(thread_id, step, checkpoint_id, parent_id, completed_node, next_node, state, graph_version, \
                      interrupt, metadata, created_at, fence_ticket, fence_epoch, event_id, event_type, \
                      event_step, event_payload, event_request, ord)), \
              fence AS (SELECT id, lease_epoch FROM tickets WHERE id = ANY($12::uuid[]) \
                 ORDER BY id FOR SHARE NOWAIT), \
              allowed AS (SELECT i.* FROM input i LEFT JOIN fence f ON f.id = i.fence_ticket \
                 WHERE i.fence_ticket IS NULL OR f.lease_epoch = i.fence_epoch), \
              saved AS (INSERT INTO workflow_checkpoints (thread_id, step, checkpoint_id, parent_id, \
                    completed_node, next_node, state, graph_version, interrupt, metadata, created_at) \
                 SELECT thread_id, step, checkpoint_id, parent_id, completed_node, next_node, state::json, \
                    graph_version, interrupt::jsonb, metadata::jsonb, created_at FROM allowed ORDER BY thread_id, step, ord \
                 ON CONFLICT (thread_id, step) DO NOTHING RETURNING checkpoint_id), \
              recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, step_name, checkpoint_step, \
                    payload, request_id) \
                 SELECT a.event_id, a.fence_ticket, a.event_type, a.event_step, a.step, a.event_payload::jsonb, \
                    a.event_request FROM allowed a JOIN saved s USING (checkpoint_id) \
                 WHERE a.event_type IS NOT NULL AND a.fence_ticket IS NOT NULL) \
         SELECT i.ord, f.lease_epoch AS epoch, s.checkpoint_id IS NOT NULL AS saved \
         FROM input i LEFT JOIN fence f ON f.id = i.fence_ticket LEFT JOIN saved s USING (checkpoint_id) \
         ORDER BY i.ord",
    )
    .bind(c.thread_id)
    .bind(c.step)
    .bind(c.checkpoint_id)
    .bind(c.parent_id)
    .bind(c.completed_node)
    .bind(c.next_node)
    .bind(c.state)
    .bind(c.graph_version)
    .bind(c.interrupt)
    .bind(c.metadata)
    .bind(c.created_at)
    .bind(c.fence_ticket)
    .bind(c.fence_epoch)
    .bind(c.event_id)
    .bind(c.event_type)
    .bind(c.event_step)
    .bind(c.event_payload)
    .bind(c.event_request)
    .fetch_all(pool)
    .await?;
    if rows.len() != writes.len() {
        return Err(sqlx::Error::Protocol(format!(
            "a batch of {} checkpoints answered {} rows",
            writes.len(),
            rows.len()
        )));
    }
    writes
        .iter()
        .zip(&rows)
        .map(|(write, row)| written(write, row))
        .collect()
}
