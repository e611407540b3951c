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
//! A ticket's claim and its final transition ride along: they join the queue too, and commit
//! in the same statement as whatever checkpoints are waiting, instead of costing a transaction
//! each. Their conditions, effects and events are the same SQL text as the statements they
//! use alone (`CLAIMABLE`, `CLAIM_SET`, `CLAIM_PAYLOAD`, `TRANSITION_SET`, `TRANSITION_ENQUEUE`),
//! over arrays here, with locks that fail at once instead of waiting.

mod statements;

use std::sync::{Arc, OnceLock};

use ticketflow_graph::{Checkpoint, CheckpointError};
use tokio::sync::{Mutex, mpsc, oneshot};

pub(super) use self::statements::BatchSql;
use self::statements::{BatchError, write_batch, write_one, write_single};
use super::claims::ClaimWrite;
use super::db::Db;
use super::sql::{Lock, Statements};
use super::tickets::TransitionWrite;
use crate::store::{Fence, NewEvent, StoreError, Ticket};

/// One checkpoint to write: the fence its run holds, and the `step_complete` event that
/// commits with it.
pub(super) struct CheckpointWrite {
    pub checkpoint: Checkpoint,
    pub fence: Option<Fence>,
    pub event: Option<NewEvent>,
}

/// What became of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Committed.
    Saved,
    /// Refused: the ticket is at another lease epoch (`None`: gone), so the run holding
    /// `fence` lost its lease.
    Fenced { fence: Fence, epoch: Option<i64> },
    /// Refused: the thread already has a checkpoint at this step.
    Taken,
}

/// A ticket write that can share a transaction with the checkpoints.
pub(super) enum Job {
    /// A run's final transition.
    Transition(TransitionWrite),
    /// A claim.
    Claim(ClaimWrite),
}

/// What became of a job.
pub(super) enum Answer {
    /// The transition committed.
    Moved,
    /// The claim committed: the ticket as claimed, and whether it was taken over from an
    /// expired lease.
    Claimed(Box<Ticket>, bool),
    /// Not applied: no ticket at the expected version (a transition), or none that can be
    /// claimed (a claim).
    Refused,
    /// Not attempted (alone in its batch, or the batch failed): the caller writes it on its
    /// own, with the statement that tells every error apart.
    Alone(Job),
    /// The writer stopped (its runtime shut down) before answering: it may or may not have
    /// committed.
    Lost,
}

type Reply = oneshot::Sender<Result<Written, CheckpointError>>;

/// One queued write and where its answer goes.
// Most writes are checkpoints: boxing them to even out the sizes would cost each one an
// allocation, to save bytes on the claims and transitions.
#[allow(clippy::large_enum_variant)]
enum Queued {
    Checkpoint(CheckpointWrite, Reply),
    Job(Job, oneshot::Sender<Answer>),
}

impl Queued {
    /// About how many bytes this write adds to the statement sent.
    fn wire_size(&self) -> usize {
        match self {
            Queued::Checkpoint(write, _) => write.wire_size(),
            Queued::Job(Job::Transition(write), _) => {
                let change = &write.change;
                change.result.as_ref().map_or(0, |r| r.to_string().len())
                    + change.request_id.as_deref().map_or(0, str::len)
                    + change
                        .events
                        .iter()
                        .map(|e| e.payload.to_string().len() + 50)
                        .sum::<usize>()
                    + 150
            }
            Queued::Job(Job::Claim(claim), _) => claim.worker_id.len() + 100,
        }
    }

    /// True when the caller stopped waiting (its run was cancelled): nothing to write for it.
    fn abandoned(&self) -> bool {
        match self {
            Queued::Checkpoint(_, reply) => reply.is_closed(),
            Queued::Job(_, reply) => reply.is_closed(),
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
pub(super) struct Limits {
    /// Writes: checkpoints, claims and transitions.
    pub rows: usize,
    /// Bytes of statement, about (a write larger than this still goes, alone).
    pub bytes: usize,
}

/// The queue in front of the writer tasks. Cheap to clone; the writers stop when the last
/// clone is dropped.
#[derive(Clone)]
pub(super) struct GroupCommit {
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
    db: Db,
    /// For the writers' batches: one connection per writer.
    writer_db: Db,
    sql: Arc<Statements>,
    writers: usize,
    limits: Limits,
    /// Started on first use, in the runtime of the first writer, so that building a store
    /// needs no runtime.
    queue: OnceLock<mpsc::Sender<Queued>>,
}

impl GroupCommit {
    /// `writers` tasks, each writing batches within `limits` per transaction on a connection
    /// of `writer_db`; writes alone use `db`.
    pub fn new(db: Db, writer_db: Db, sql: Arc<Statements>, writers: usize, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                writer_db,
                sql,
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
            return write_one(&self.inner.db, &self.inner.sql, write).await;
        }
        let queue = self.inner.queue.get_or_init(|| self.start());
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(Queued::Checkpoint(write, _))) =
            queue.send(Queued::Checkpoint(write, reply)).await
        {
            // The writers are gone: their runtime shut down while this store lives on in
            // another. Write alone rather than fail.
            return write_one(&self.inner.db, &self.inner.sql, write).await;
        }
        answer
            .await
            .map_err(|_| CheckpointError::storage("the checkpoint writer stopped before answering"))?
    }

    /// Commits a claim or a transition with whatever checkpoints are queued; returns once it
    /// committed, or hands it back to be written alone.
    pub async fn ride_along(&self, job: Job) -> Answer {
        if self.inner.limits.rows == 1 {
            return Answer::Alone(job);
        }
        let queue = self.inner.queue.get_or_init(|| self.start());
        let (reply, answer) = oneshot::channel();
        match queue.send(Queued::Job(job, reply)).await {
            // The writers are gone (see `write`): write alone.
            Err(mpsc::error::SendError(Queued::Job(job, _))) => Answer::Alone(job),
            Err(mpsc::error::SendError(Queued::Checkpoint(..))) => Answer::Lost,
            Ok(()) => answer.await.unwrap_or(Answer::Lost),
        }
    }

    fn start(&self) -> mpsc::Sender<Queued> {
        let (sender, receiver) = mpsc::channel(self.inner.limits.rows * self.inner.writers * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..self.inner.writers {
            tokio::spawn(writer(self.inner.clone(), receiver.clone()));
        }
        sender
    }
}

/// Takes what is queued (up to the limits), writes it in one transaction, answers each
/// caller, repeats. Several writers share the queue, so one gathers while another commits.
async fn writer(inner: Arc<Inner>, queue: Arc<Mutex<mpsc::Receiver<Queued>>>) {
    let limits = inner.limits;
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
        let mut writes = Vec::new();
        let mut replies = Vec::new();
        let mut transitions = Vec::new();
        let mut claims = Vec::new();
        // Answers to the jobs, transitions' first, in the order the statement reports them.
        let (mut transition_answers, mut claim_answers) = (Vec::new(), Vec::new());
        for queued in batch.drain(..) {
            match queued {
                Queued::Checkpoint(write, reply) => {
                    writes.push(write);
                    replies.push(reply);
                }
                Queued::Job(Job::Transition(transition), answer) => {
                    transitions.push(transition);
                    transition_answers.push(answer);
                }
                Queued::Job(Job::Claim(claim), answer) => {
                    claims.push(claim);
                    claim_answers.push(answer);
                }
            }
        }
        // A job with nothing to share a transaction with goes back to its caller, whose own
        // statement is leaner than a batch.
        if writes.is_empty() && transitions.len() + claims.len() == 1 {
            hand_back(transitions, transition_answers, claims, claim_answers);
            continue;
        }
        let outcome = match (writes.as_slice(), transitions.is_empty() && claims.is_empty()) {
            ([one], true) => write_single(&inner.writer_db, &inner.sql, one, Lock::NoWait)
                .await
                .map(|written| statements::Outcomes {
                    written: vec![written],
                    ..Default::default()
                })
                .map_err(BatchError::Failed),
            _ => write_batch(&inner.writer_db, &inner.sql, &writes, &transitions, &claims).await,
        };
        match outcome {
            Ok(outcomes) => {
                for (reply, written) in replies.into_iter().zip(outcomes.written) {
                    let _ = reply.send(Ok(written));
                }
                for (answer, done) in transition_answers.into_iter().zip(outcomes.moved) {
                    let _ = answer.send(if done { Answer::Moved } else { Answer::Refused });
                }
                for (answer, claimed) in claim_answers.into_iter().zip(outcomes.claimed) {
                    let _ = answer.send(match claimed {
                        Some((ticket, takeover)) => Answer::Claimed(Box::new(ticket), takeover),
                        None => Answer::Refused,
                    });
                }
            }
            // The database refused the statement — bad data in one row, a ticket row locked by
            // someone else (the writer never waits for a lock), a deadlock: write each alone,
            // waiting for locks if need be, each in a task of its own, so that a row's problem
            // stays its own and this writer goes on serving the others.
            Err(BatchError::Failed(sqlx::Error::Database(_))) => {
                for (write, reply) in writes.into_iter().zip(replies) {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        let _ = reply.send(write_one(&inner.db, &inner.sql, write).await);
                    });
                }
                hand_back(transitions, transition_answers, claims, claim_answers);
            }
            // Committed, but the answer could not be read (a bug): what each write became is
            // unknown, so no caller is told "not written" — a run whose checkpoint errs resumes
            // from what the database holds, and a job is reported lost.
            Err(BatchError::Unreadable(error)) => {
                tracing::error!(%error, "a committed checkpoint batch answered unreadably");
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(CheckpointError::storage(error.clone())));
                }
                for answer in transition_answers.into_iter().chain(claim_answers) {
                    let _ = answer.send(Answer::Lost);
                }
            }
            // An outage: every checkpoint's caller gets it; jobs are tried alone, and meet the
            // outage themselves.
            Err(BatchError::Failed(error)) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(CheckpointError::storage(error.clone())));
                }
                hand_back(transitions, transition_answers, claims, claim_answers);
            }
        }
    }
}

/// Gives jobs back to their callers, to be written alone.
fn hand_back(
    transitions: Vec<TransitionWrite>,
    transition_answers: Vec<oneshot::Sender<Answer>>,
    claims: Vec<ClaimWrite>,
    claim_answers: Vec<oneshot::Sender<Answer>>,
) {
    let jobs = transitions
        .into_iter()
        .map(Job::Transition)
        .zip(transition_answers)
        .chain(claims.into_iter().map(Job::Claim).zip(claim_answers));
    for (job, answer) in jobs {
        let _ = answer.send(Answer::Alone(job));
    }
}

/// The checkpoint writer stopped (its runtime shut down) before saying what became of a write
/// it took: it may or may not have committed.
pub(super) fn writer_lost() -> StoreError {
    StoreError::Unavailable("the checkpoint writer stopped before answering".into())
}
