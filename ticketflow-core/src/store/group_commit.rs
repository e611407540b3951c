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
//!
//! Runs' completions ride along: a ticket's final transition to `completed` joins the queue
//! too, and commits in the same statement as whatever checkpoints are waiting, instead of
//! costing a transaction of its own.

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

/// A run's completion: its ticket moves to `completed` with the result, if it is still at
/// `version`, and gets its `status_change` event, in the same transaction.
pub(crate) struct Completion {
    pub ticket_id: Uuid,
    pub version: i64,
    pub result: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

/// What became of a completion.
pub(crate) enum Completed {
    /// Committed.
    Done,
    /// Not applied: no ticket at that version.
    Refused,
    /// Not attempted (alone in its batch, or the batch failed): the caller writes it on its
    /// own, with the statement that tells every error apart.
    Alone(Completion),
    /// The writer stopped (its runtime shut down) before answering: it may or may not have
    /// committed.
    Lost,
}

type Reply = oneshot::Sender<Result<Written, CheckpointError>>;

/// One queued write and where its answer goes.
// Nearly every write is a checkpoint: boxing it to even out the sizes would cost each one an
// allocation, to save bytes on the few completions.
#[allow(clippy::large_enum_variant)]
enum Queued {
    Checkpoint(CheckpointWrite, Reply),
    Completion(Completion, oneshot::Sender<Completed>),
}

impl Queued {
    /// About how many bytes this write adds to the statement sent.
    fn wire_size(&self) -> usize {
        match self {
            Queued::Checkpoint(write, _) => write.wire_size(),
            Queued::Completion(completion, _) => {
                completion.result.as_ref().map_or(0, |r| r.to_string().len())
                    + completion.request_id.as_deref().map_or(0, str::len)
                    + 100
            }
        }
    }

    /// True when the caller stopped waiting (its run was cancelled): nothing to write for it.
    fn abandoned(&self) -> bool {
        match self {
            Queued::Checkpoint(_, reply) => reply.is_closed(),
            Queued::Completion(_, reply) => reply.is_closed(),
        }
    }
}

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
    /// For writes alone: callers wait for locks, and there may be many at once.
    pool: PgPool,
    /// For the writers' batches: one connection per writer.
    writer_pool: PgPool,
    writers: usize,
    limits: Limits,
    /// Started on first use, in the runtime of the first writer, so that building a store
    /// needs no runtime.
    queue: OnceLock<mpsc::Sender<Queued>>,
}

impl GroupCommit {
    /// `writers` tasks, each writing batches within `limits` per transaction on a connection
    /// of `writer_pool`; writes alone use `pool`.
    pub fn new(pool: PgPool, writer_pool: PgPool, writers: usize, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                writer_pool,
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
        if let Err(mpsc::error::SendError(Queued::Checkpoint(write, _))) =
            queue.send(Queued::Checkpoint(write, reply)).await
        {
            // The writers are gone: their runtime shut down while this store lives on in
            // another. Write alone rather than fail.
            return write_one(&self.inner.pool, write).await;
        }
        answer
            .await
            .map_err(|_| CheckpointError::storage("the checkpoint writer stopped before answering"))?
    }

    /// Commits a run's completion with whatever checkpoints are queued; returns once it
    /// committed, or hands it back to be written alone.
    pub async fn complete(&self, completion: Completion) -> Completed {
        if self.inner.limits.rows == 1 {
            return Completed::Alone(completion);
        }
        let queue = self.inner.queue.get_or_init(|| self.start());
        let (reply, answer) = oneshot::channel();
        match queue.send(Queued::Completion(completion, reply)).await {
            // The writers are gone (see `write`): write alone.
            Err(mpsc::error::SendError(Queued::Completion(completion, _))) => Completed::Alone(completion),
            Err(mpsc::error::SendError(Queued::Checkpoint(..))) => Completed::Lost,
            Ok(()) => answer.await.unwrap_or(Completed::Lost),
        }
    }

    fn start(&self) -> mpsc::Sender<Queued> {
        let (sender, receiver) = mpsc::channel(self.inner.limits.rows * self.inner.writers * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..self.inner.writers {
            tokio::spawn(writer(
                self.inner.pool.clone(),
                self.inner.writer_pool.clone(),
                receiver.clone(),
                self.inner.limits,
            ));
        }
        sender
    }
}

/// Takes what is queued (up to the limits), writes it in one transaction, answers each
/// caller, repeats. Several writers share the queue, so one gathers while another commits.
async fn writer(pool: PgPool, writer_pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Queued>>>, limits: Limits) {
    let mut batch: Vec<Queued> = Vec::with_capacity(limits.rows);
    // A write that would have made the batch too big opens the next one.
    let mut carried: Option<Queued> = None;
    // Sizes are estimated only when there is a byte limit (over TLS): the estimate serializes
    // metadata and event payloads once more than the statement does.
    let size_of = |queued: &Queued| {
        if limits.bytes == usize::MAX {
            0
        } else {
            queued.wire_size()
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
        batch.retain(|queued| !queued.abandoned());
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("checkpoint_batch_size").record(batch.len() as f64);
        let (mut writes, mut replies, mut completions, mut answers) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for queued in batch.drain(..) {
            match queued {
                Queued::Checkpoint(write, reply) => {
                    writes.push(write);
                    replies.push(reply);
                }
                Queued::Completion(completion, answer) => {
                    completions.push(completion);
                    answers.push(answer);
                }
            }
        }
        // A completion with nothing to share a transaction with goes back to its caller,
        // whose own statement is leaner than a batch.
        if writes.is_empty() && completions.len() == 1 {
            for (completion, answer) in completions.into_iter().zip(answers) {
                let _ = answer.send(Completed::Alone(completion));
            }
            continue;
        }
        let outcome = match (writes.as_slice(), completions.is_empty()) {
            ([one], true) => write_single(&writer_pool, one, Lock::NoWait)
                .await
                .map(|written| (vec![written], Vec::new())),
            _ => write_batch(&writer_pool, &writes, &completions).await,
        };
        match outcome {
            Ok((written, completed)) => {
                for (reply, outcome) in replies.into_iter().zip(written) {
                    let _ = reply.send(Ok(outcome));
                }
                for (answer, done) in answers.into_iter().zip(completed) {
                    let _ = answer.send(if done { Completed::Done } else { Completed::Refused });
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
                for (completion, answer) in completions.into_iter().zip(answers) {
                    let _ = answer.send(Completed::Alone(completion));
                }
            }
            // An outage: every checkpoint's caller gets it; completions are tried alone, and
            // meet the outage themselves.
            Err(error) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(CheckpointError::storage(error.clone())));
                }
                for (completion, answer) in completions.into_iter().zip(answers) {
                    let _ = answer.send(Completed::Alone(completion));
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

/// The checkpoint part of a batch's statement: every data-modifying CTE runs whether or not
/// its output is read. Rows are matched back by checkpoint id (unique), which also tells apart
/// two writes of one step in a batch.
macro_rules! checkpoint_ctes {
    () => {
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
                 WHERE a.event_type IS NOT NULL AND a.fence_ticket IS NOT NULL)"
    };
}

/// What the statement says of each checkpoint, in order.
macro_rules! checkpoint_outcomes {
    () => {
        " SELECT false AS completion, i.ord, f.lease_epoch AS epoch, s.checkpoint_id IS NOT NULL AS saved \
         FROM input i LEFT JOIN fence f ON f.id = i.fence_ticket LEFT JOIN saved s USING (checkpoint_id)"
    };
}

/// A batch of checkpoints.
const CHECKPOINTS_SQL: &str = concat!(checkpoint_ctes!(), checkpoint_outcomes!(), " ORDER BY i.ord");

/// A batch of checkpoints and completions. A completion locks its ticket `NOWAIT` like the
/// fence (a row locked elsewhere fails the batch, and everything in it is written alone), and
/// its `status_change` event is the one [`TicketStore::transition`] writes.
///
/// [`TicketStore::transition`]: super::TicketStore::transition
const CHECKPOINTS_AND_COMPLETIONS_SQL: &str = concat!(
    checkpoint_ctes!(),
    ", completing AS (SELECT * FROM unnest($19::uuid[], $20::int8[], $21::text[], $22::uuid[], $23::text[]) \
           WITH ORDINALITY AS c(ticket_id, version, result, event_id, request_id, ord)), \
       completing_lock AS (SELECT t.id, t.status AS from_status FROM tickets t \
           JOIN completing c ON c.ticket_id = t.id AND c.version = t.version ORDER BY t.id FOR UPDATE OF t NOWAIT), \
       completed AS (UPDATE tickets t SET status = 'completed', version = t.version + 1, \
              result = COALESCE(c.result::jsonb, t.result), worker_id = NULL, lease_expires_at = NULL, \
              completed_at = now(), updated_at = now() \
           FROM completing c JOIN completing_lock l ON l.id = c.ticket_id WHERE t.id = c.ticket_id \
           RETURNING c.ord, t.id, c.event_id, c.request_id, l.from_status, t.attempt_count), \
       completed_recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, payload, request_id) \
           SELECT event_id, id, 'status_change', jsonb_build_object('from', from_status, 'to', 'completed', \
               'attempt_count', attempt_count), request_id FROM completed ORDER BY ord)",
    checkpoint_outcomes!(),
    " UNION ALL SELECT true, c.ord, NULL::int8, EXISTS (SELECT 1 FROM completed m WHERE m.ord = c.ord) \
       FROM completing c ORDER BY 1, 2"
);

/// Writes `writes` and `completions` in one statement (so one implicit transaction) and says,
/// in order, what became of each checkpoint, and whether each completion was applied. The
/// fence check, the checkpoints, their events and the completions commit together or not at
/// all. `FOR SHARE` on the fenced tickets, taken in id order, makes a concurrent claim (which
/// bumps the epoch) wait for this write, so a run that took a ticket over always sees the
/// checkpoints the earlier run committed; `NOWAIT`, so that a row locked elsewhere fails the
/// batch at once instead of holding every caller in it (they are then written one by one).
async fn write_batch(
    pool: &PgPool,
    writes: &[CheckpointWrite],
    completions: &[Completion],
) -> Result<(Vec<Written>, Vec<bool>), sqlx::Error> {
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
    let sql = if completions.is_empty() {
        CHECKPOINTS_SQL
    } else {
        CHECKPOINTS_AND_COMPLETIONS_SQL
    };
    let mut query = sqlx::query(sql)
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
        .bind(c.event_request);
    if !completions.is_empty() {
        query = query
            .bind(completions.iter().map(|c| c.ticket_id).collect::<Vec<_>>())
            .bind(completions.iter().map(|c| c.version).collect::<Vec<_>>())
            .bind(
                completions
                    .iter()
                    .map(|c| c.result.as_ref().map(ToString::to_string))
                    .collect::<Vec<_>>(),
            )
            .bind(completions.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
            .bind(completions.iter().map(|c| c.request_id.as_deref()).collect::<Vec<_>>());
    }
    let rows = query.fetch_all(pool).await?;
    if rows.len() != writes.len() + completions.len() {
        return Err(sqlx::Error::Protocol(format!(
            "a batch of {} checkpoints and {} completions answered {} rows",
            writes.len(),
            completions.len(),
            rows.len()
        )));
    }
    let (checkpoint_rows, completion_rows) = rows.split_at(writes.len());
    let written = writes
        .iter()
        .zip(checkpoint_rows)
        .map(|(write, row)| written(write, row))
        .collect::<Result<Vec<_>, _>>()?;
    let completed = completion_rows
        .iter()
        .map(|row| match row.try_get::<bool, _>("completion")? {
            true => row.try_get::<bool, _>("saved"),
            false => Err(sqlx::Error::Protocol(
                "a completion's row answered for a checkpoint".into(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((written, completed))
}
