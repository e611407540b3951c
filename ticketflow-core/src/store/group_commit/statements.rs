//! The statements the group-commit writers send: one checkpoint alone, or a batch of
//! checkpoints with the claims and completions that ride along.

use sqlx::Row;
use sqlx::postgres::PgPool;
use ticketflow_graph::CheckpointError;
use uuid::Uuid;

use super::{CheckpointWrite, Claim, Completion, Written};
use crate::store::{Ticket, TicketStatus};

/// Whether a write waits for a ticket row someone else has locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// Wait (a write on its own: only its caller waits).
    Wait,
    /// Fail at once (a writer's batch: every caller in it and behind it would wait).
    NoWait,
}

/// Writes one checkpoint in a transaction of its own, waiting for its ticket's row if need be.
pub(super) async fn write_one(pool: &PgPool, write: CheckpointWrite) -> Result<Written, CheckpointError> {
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
pub(super) async fn write_single(pool: &PgPool, write: &CheckpointWrite, lock: Lock) -> Result<Written, sqlx::Error> {
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

/// A batch of checkpoints.
const CHECKPOINTS_SQL: &str = concat!(
    checkpoint_ctes!(),
    " SELECT i.ord, f.lease_epoch AS epoch, s.checkpoint_id IS NOT NULL AS saved \
     FROM input i LEFT JOIN fence f ON f.id = i.fence_ticket LEFT JOIN saved s USING (checkpoint_id) \
     ORDER BY i.ord"
);

/// A batch of checkpoints with claims and completions (either list may be empty). Claims
/// and completions lock their tickets `NOWAIT` like the fence (a row locked elsewhere fails
/// the batch, and everything in it is written alone), and write the `status_change` events
/// that [`TicketStore::claim`] and [`TicketStore::transition`] write. A claimed ticket comes
/// back as JSON, the columns of [`Ticket`].
///
/// Written so that any plan reaches a ticket by its id and an outbox row by its ticket: the
/// writers keep one generic plan per connection, often made while the tables were nearly
/// empty, when scanning `tickets` by status or hashing all of `outbox` looked as cheap — and
/// grows costlier with every ticket. So tickets are locked by `id = ANY(..)` and checked
/// after; the retry check looks up the ticket's own outbox rows (in `outbox_ticket_idx`
/// order; its conditions wrapped in `IS TRUE`, which keeps `outbox_due_idx` out of reach),
/// once per claim; and the writers' connections rule out sequential scans.
///
/// Every CTE reads the statement's one snapshot, so when a batch holds both a checkpoint of a
/// run whose lease expired and another worker's claim of that ticket, the checkpoint passes
/// its fence (the epoch before the claim) and commits with the claim: as if it had committed
/// just before it, and the new run, which reads checkpoints after its claim returns, sees it.
///
/// [`TicketStore::claim`]: crate::store::TicketStore::claim
/// [`TicketStore::transition`]: crate::store::TicketStore::transition
const CHECKPOINTS_AND_JOBS_SQL: &str = concat!(
    checkpoint_ctes!(),
    ", completing AS (SELECT * FROM unnest($19::uuid[], $20::int8[], $21::text[], $22::uuid[], $23::text[]) \
           WITH ORDINALITY AS c(ticket_id, version, result, event_id, request_id, ord)), \
       completing_lock AS (SELECT id, version, status AS from_status FROM tickets WHERE id = ANY($19::uuid[]) \
           ORDER BY id FOR NO KEY UPDATE NOWAIT), \
       completed AS (UPDATE tickets t SET status = 'completed', version = t.version + 1, \
              result = COALESCE(c.result::jsonb, t.result), worker_id = NULL, lease_expires_at = NULL, \
              completed_at = now(), updated_at = now() \
           FROM completing c JOIN completing_lock l ON l.id = c.ticket_id AND l.version = c.version \
           WHERE t.id = c.ticket_id AND t.id = ANY($19::uuid[]) \
           RETURNING c.ord, t.id, c.event_id, c.request_id, l.from_status, t.attempt_count), \
       completed_recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, payload, request_id) \
           SELECT event_id, id, 'status_change', jsonb_build_object('from', from_status, 'to', 'completed', \
               'attempt_count', attempt_count), request_id FROM completed ORDER BY ord), \
       claiming AS (SELECT * FROM unnest($24::uuid[], $25::text[], $26::float8[], $27::uuid[]) \
           WITH ORDINALITY AS k(ticket_id, worker_id, lease, event_id, ord)), \
       claiming_lock AS (SELECT id, status, lease_expires_at FROM tickets WHERE id = ANY($24::uuid[]) \
           ORDER BY id FOR NO KEY UPDATE NOWAIT), \
       claimable AS (SELECT l.id, l.status AS from_status FROM claiming_lock l \
           LEFT JOIN LATERAL (SELECT 1 AS later FROM outbox o WHERE o.ticket_id = l.id \
                   AND (o.sent_at IS NULL AND o.claimed_at IS NULL AND o.available_at > now()) IS TRUE \
                   ORDER BY o.ticket_id, o.id LIMIT 1) retry ON TRUE \
           WHERE (l.status = 'pending' AND retry.later IS NULL) \
              OR (l.status = 'processing' AND (l.lease_expires_at IS NULL OR l.lease_expires_at < now()))), \
       claimed AS (UPDATE tickets t SET status = 'processing', worker_id = k.worker_id, \
              lease_epoch = t.lease_epoch + 1, lease_expires_at = now() + make_interval(secs => k.lease), \
              heartbeat_at = now(), version = t.version + 1, started_at = COALESCE(t.started_at, now()), \
              completed_at = NULL, updated_at = now() \
           FROM claiming k JOIN claimable l ON l.id = k.ticket_id WHERE t.id = k.ticket_id AND t.id = ANY($24::uuid[]) \
           RETURNING k.ord, k.event_id, k.worker_id, t.id, t.lease_epoch, l.from_status, to_json(t) AS ticket), \
       claimed_recorded AS (INSERT INTO ticket_events (id, ticket_id, event_type, payload, request_id) \
           SELECT m.event_id, m.id, 'status_change', jsonb_build_object('from', m.from_status, 'to', 'processing', \
               'worker_id', m.worker_id, 'lease_epoch', m.lease_epoch, 'takeover', m.from_status = 'processing'), \
               (SELECT o.request_id FROM outbox o WHERE o.ticket_id = m.id AND o.request_id IS NOT NULL \
                ORDER BY o.id DESC LIMIT 1) \
           FROM claimed m ORDER BY m.ord)",
    " SELECT 0 AS kind, i.ord, f.lease_epoch AS epoch, s.checkpoint_id IS NOT NULL AS saved, \
         NULL::json AS ticket, NULL::text AS from_status \
       FROM input i LEFT JOIN fence f ON f.id = i.fence_ticket LEFT JOIN saved s USING (checkpoint_id) \
     UNION ALL SELECT 1, c.ord, NULL, EXISTS (SELECT 1 FROM completed m WHERE m.ord = c.ord), NULL, NULL \
       FROM completing c \
     UNION ALL SELECT 2, k.ord, NULL, m.ord IS NOT NULL, m.ticket, m.from_status \
       FROM claiming k LEFT JOIN claimed m USING (ord) \
     ORDER BY 1, 2"
);

/// Why a batch has no outcomes.
pub(super) enum BatchError {
    /// The statement failed: nothing was written.
    Failed(sqlx::Error),
    /// The statement committed, but its answer could not be read: what it wrote is unknown.
    Unreadable(sqlx::Error),
}

/// What a batch says of each write, in the order given.
#[derive(Default)]
pub(super) struct Outcomes {
    /// Each checkpoint.
    pub written: Vec<Written>,
    /// Whether each completion was applied.
    pub completed: Vec<bool>,
    /// Each claim: the ticket as claimed and whether it was a takeover, or `None`.
    pub claimed: Vec<Option<(Ticket, bool)>>,
}

/// Writes `writes`, `completions` and `claims` in one statement (so one implicit
/// transaction) and says what became of each. The fence check, the checkpoints, their events,
/// the completions and the claims commit together or not at all. `FOR SHARE` on the fenced
/// tickets, taken in id order, makes a concurrent claim (which bumps the epoch) wait for this
/// write, so a run that took a ticket over always sees the checkpoints the earlier run
/// committed; `NOWAIT`, so that a row locked elsewhere fails the batch at once instead of
/// holding every caller in it (they are then written one by one).
pub(super) async fn write_batch(
    pool: &PgPool,
    writes: &[CheckpointWrite],
    completions: &[Completion],
    claims: &[Claim],
) -> Result<Outcomes, BatchError> {
    let mut c = Columns::default();
    for CheckpointWrite {
        checkpoint,
        fence,
        event,
    } in writes
    {
        let json = |v: &serde_json::Value| v.to_string();
        c.thread_id.push(checkpoint.thread_id.to_string());
        let step = i64::try_from(checkpoint.step).map_err(|e| BatchError::Failed(sqlx::Error::Encode(Box::new(e))))?;
        c.step.push(step);
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
    let jobs = !completions.is_empty() || !claims.is_empty();
    let query = sqlx::query(if jobs {
        CHECKPOINTS_AND_JOBS_SQL
    } else {
        CHECKPOINTS_SQL
    })
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
    let query = if jobs {
        query
            .bind(completions.iter().map(|c| c.ticket_id).collect::<Vec<_>>())
            .bind(completions.iter().map(|c| c.version).collect::<Vec<_>>())
            .bind(
                completions
                    .iter()
                    .map(|c| c.result.as_ref().map(ToString::to_string))
                    .collect::<Vec<_>>(),
            )
            .bind(completions.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
            .bind(completions.iter().map(|c| c.request_id.as_deref()).collect::<Vec<_>>())
            .bind(claims.iter().map(|c| c.ticket_id).collect::<Vec<_>>())
            .bind(claims.iter().map(|c| c.worker_id.as_str()).collect::<Vec<_>>())
            .bind(claims.iter().map(|c| c.lease.as_secs_f64()).collect::<Vec<_>>())
            .bind(claims.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    } else {
        query
    };
    let rows = query.fetch_all(pool).await.map_err(BatchError::Failed)?;
    read_outcomes(writes, completions.len(), claims.len(), &rows).map_err(BatchError::Unreadable)
}

/// What the rows a committed batch answered say of each write.
fn read_outcomes(
    writes: &[CheckpointWrite],
    completions: usize,
    claims: usize,
    rows: &[sqlx::postgres::PgRow],
) -> Result<Outcomes, sqlx::Error> {
    if rows.len() != writes.len() + completions + claims {
        return Err(sqlx::Error::Protocol(format!(
            "a batch of {} checkpoints, {completions} completions and {claims} claims answered {} rows",
            writes.len(),
            rows.len()
        )));
    }
    let (checkpoint_rows, rest) = rows.split_at(writes.len());
    let (completion_rows, claim_rows) = rest.split_at(completions);
    // Rows come back ordered by kind: 0 checkpoints, 1 completions, 2 claims.
    let kind = |row: &sqlx::postgres::PgRow, expected: i32| match row.try_get::<i32, _>("kind")? {
        found if found == expected => Ok(()),
        found => Err(sqlx::Error::Protocol(format!(
            "a batch answered kind {found} for kind {expected}"
        ))),
    };
    let mut outcomes = Outcomes::default();
    for (write, row) in writes.iter().zip(checkpoint_rows) {
        outcomes.written.push(written(write, row)?);
    }
    for row in completion_rows {
        kind(row, 1)?;
        outcomes.completed.push(row.try_get("saved")?);
    }
    for row in claim_rows {
        kind(row, 2)?;
        let claimed = match row.try_get::<Option<serde_json::Value>, _>("ticket")? {
            Some(ticket) => {
                let ticket: Ticket = serde_json::from_value(ticket).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                let from: String = row.try_get("from_status")?;
                Some((ticket, from == TicketStatus::Processing.as_str()))
            }
            None => None,
        };
        outcomes.claimed.push(claimed);
    }
    Ok(outcomes)
}
