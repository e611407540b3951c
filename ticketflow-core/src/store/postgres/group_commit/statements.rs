//! The statements the group-commit writers send: one checkpoint alone, or a batch of
//! checkpoints with the claims and transitions that ride along.

use sqlx::{Row, SqlStr};
use ticketflow_graph::CheckpointError;
use uuid::Uuid;

use super::{CheckpointWrite, Written};
use crate::store::Ticket;
use crate::store::postgres::claims::{CLAIM_PARAMETERS, ClaimColumns, ClaimWrite, claim_ctes, claimed};
use crate::store::postgres::db::Db;
use crate::store::postgres::sql::{Lock, Statements, fragment, statement_of, with_schema};
use crate::store::postgres::tickets::{TRANSITION_PARAMETERS, TransitionColumns, TransitionWrite, transition_ctes};

/// The one-row checkpoint write, locks waiting or not (`{nowait}`).
const SINGLE_WRITE: &str = "\
    WITH fence AS (SELECT lease_epoch FROM {schema}.tickets WHERE id = $12 FOR SHARE{nowait}), \
         allowed AS (SELECT 1 AS ok WHERE $12::uuid IS NULL OR (SELECT lease_epoch FROM fence) = $13), \
         saved AS (INSERT INTO {schema}.workflow_checkpoints (thread_id, step, checkpoint_id, parent_id, \
               completed_node, next_node, state, graph_version, interrupt, metadata, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11 FROM allowed \
             ON CONFLICT (thread_id, step) DO NOTHING RETURNING step), \
         recorded AS (INSERT INTO {schema}.ticket_events (id, ticket_id, event_type, step_name, checkpoint_step, \
               payload, request_id, turn) \
             SELECT $14, $12, $15, $16, saved.step, $17, $18, \
                 COALESCE(NULLIF(split_part($1, '/turn-', 2), '')::int, 1) FROM saved \
             WHERE $15::text IS NOT NULL AND $12::uuid IS NOT NULL) \
    SELECT (SELECT lease_epoch FROM fence) AS epoch, EXISTS (SELECT 1 FROM saved) AS saved";

/// The checkpoint part of a batch's statement (18 parameters): every data-modifying CTE
/// runs whether or not its output is read. Rows are matched back by checkpoint id (unique),
/// which also tells apart two writes of one step in a batch.
const CHECKPOINT_CTES: &str = "\
    input AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::uuid[], $4::uuid[], $5::text[], \
            $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::uuid[], \
            $13::int8[], $14::uuid[], $15::text[], $16::text[], $17::text[], $18::text[]) WITH ORDINALITY \
            AS i(thread_id, step, checkpoint_id, parent_id, completed_node, next_node, state, graph_version, \
                 interrupt, metadata, created_at, fence_ticket, fence_epoch, event_id, event_type, \
                 event_step, event_payload, event_request, ord)), \
    fence AS (SELECT id, lease_epoch FROM {schema}.tickets WHERE id = ANY($12::uuid[]) \
        ORDER BY id FOR SHARE{nowait}), \
    allowed AS (SELECT i.* FROM input i LEFT JOIN fence f ON f.id = i.fence_ticket \
        WHERE i.fence_ticket IS NULL OR f.lease_epoch = i.fence_epoch), \
    saved AS (INSERT INTO {schema}.workflow_checkpoints (thread_id, step, checkpoint_id, parent_id, \
            completed_node, next_node, state, graph_version, interrupt, metadata, created_at) \
        SELECT thread_id, step, checkpoint_id, parent_id, completed_node, next_node, state::json, \
            graph_version, interrupt::jsonb, metadata::jsonb, created_at FROM allowed ORDER BY thread_id, step, ord \
        ON CONFLICT (thread_id, step) DO NOTHING RETURNING checkpoint_id), \
    recorded AS (INSERT INTO {schema}.ticket_events (id, ticket_id, event_type, step_name, checkpoint_step, \
            payload, request_id, turn) \
        SELECT a.event_id, a.fence_ticket, a.event_type, a.event_step, a.step, a.event_payload::jsonb, \
            a.event_request, COALESCE(NULLIF(split_part(a.thread_id, '/turn-', 2), '')::int, 1) \
        FROM allowed a JOIN saved s USING (checkpoint_id) \
        WHERE a.event_type IS NOT NULL AND a.fence_ticket IS NOT NULL)";

/// How many parameters [`CHECKPOINT_CTES`] takes.
const CHECKPOINT_PARAMETERS: usize = 18;

/// What a batch of checkpoints answers, one row per checkpoint in order.
const CHECKPOINT_ROWS: &str = "\
    SELECT 0 AS kind, i.ord, f.lease_epoch AS epoch, s.checkpoint_id IS NOT NULL AS saved, \
        NULL::json AS ticket, NULL::text AS from_status \
    FROM input i LEFT JOIN fence f ON f.id = i.fence_ticket LEFT JOIN saved s USING (checkpoint_id)";

/// The writers' statements.
#[derive(Debug)]
pub(in crate::store::postgres) struct BatchSql {
    single_wait: SqlStr,
    single_nowait: SqlStr,
    /// A batch of checkpoints.
    checkpoints: SqlStr,
    /// A batch of checkpoints with transitions and claims (either list may be empty). Rows come
    /// back by kind: 0 checkpoints, 1 transitions, 2 claims.
    ///
    /// Every CTE reads the statement's one snapshot, so when a batch holds both a checkpoint
    /// of a run whose lease expired and another worker's claim of that ticket, the checkpoint
    /// passes its fence (the epoch before the claim) and commits with the claim: as if it had
    /// committed just before it, and the new run, which reads checkpoints after its claim
    /// returns, sees it.
    checkpoints_and_jobs: SqlStr,
}

impl BatchSql {
    pub(in crate::store::postgres) fn new(schema: &str) -> Self {
        let single = |lock| statement_of(fragment(schema, SINGLE_WRITE, 1, lock));
        let transitions_at = CHECKPOINT_PARAMETERS + 1;
        let claims_at = transitions_at + TRANSITION_PARAMETERS;
        debug_assert_eq!(claims_at + CLAIM_PARAMETERS - 1, 37);
        Self {
            single_wait: single(Lock::Wait),
            single_nowait: single(Lock::NoWait),
            checkpoints: statement_of(format!(
                "WITH {} {} ORDER BY i.ord",
                fragment(schema, CHECKPOINT_CTES, 1, Lock::NoWait),
                with_schema(schema, CHECKPOINT_ROWS)
            )),
            checkpoints_and_jobs: statement_of(format!(
                "WITH {}, {}, {} {} \
                 UNION ALL SELECT 1, m.ord, NULL, d.ord IS NOT NULL, NULL, NULL \
                     FROM moving m LEFT JOIN moved d ON d.ord = m.ord \
                 UNION ALL SELECT 2, k.ord, NULL, c.ord IS NOT NULL, c.ticket, c.from_status \
                     FROM claiming k LEFT JOIN claimed c USING (ord) \
                 ORDER BY 1, 2",
                fragment(schema, CHECKPOINT_CTES, 1, Lock::NoWait),
                fragment(schema, &transition_ctes(), transitions_at, Lock::NoWait),
                fragment(schema, &claim_ctes(), claims_at, Lock::NoWait),
                with_schema(schema, CHECKPOINT_ROWS)
            )),
        }
    }
}

/// Writes one checkpoint in a transaction of its own, waiting for its ticket's row if need be.
pub(super) async fn write_one(db: &Db, sql: &Statements, write: CheckpointWrite) -> Result<Written, CheckpointError> {
    write_single(db, sql, &write, Lock::Wait)
        .await
        .map_err(CheckpointError::storage)
}

/// One checkpoint, with a statement leaner than the batch's (no arrays, no joins): at low
/// concurrency most batches hold one write. Same guarantees as [`write_batch`].
pub(super) async fn write_single(
    db: &Db,
    sql: &Statements,
    write: &CheckpointWrite,
    lock: Lock,
) -> Result<Written, sqlx::Error> {
    let CheckpointWrite {
        checkpoint,
        fence,
        event,
    } = write;
    let step = i64::try_from(checkpoint.step).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let text = match lock {
        Lock::Wait => sql.batch.single_wait.clone(),
        Lock::NoWait => sql.batch.single_nowait.clone(),
    };
    let row = db
        .fetch_one(
            sqlx::query(text)
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
                .bind(event.as_ref().and_then(|e| e.request_id.as_deref())),
        )
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

/// The parameters of [`CHECKPOINT_CTES`], one array per column: `unnest` turns them back
/// into rows, so a batch of any size is one prepared statement.
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

impl Columns {
    fn of(writes: &[CheckpointWrite]) -> Result<Self, sqlx::Error> {
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
        Ok(c)
    }

    fn bind(self, query: crate::store::postgres::db::Statement<'_>) -> crate::store::postgres::db::Statement<'_> {
        query
            .bind(self.thread_id)
            .bind(self.step)
            .bind(self.checkpoint_id)
            .bind(self.parent_id)
            .bind(self.completed_node)
            .bind(self.next_node)
            .bind(self.state)
            .bind(self.graph_version)
            .bind(self.interrupt)
            .bind(self.metadata)
            .bind(self.created_at)
            .bind(self.fence_ticket)
            .bind(self.fence_epoch)
            .bind(self.event_id)
            .bind(self.event_type)
            .bind(self.event_step)
            .bind(self.event_payload)
            .bind(self.event_request)
    }
}

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
    /// Whether each transition was applied.
    pub moved: Vec<bool>,
    /// Each claim: the ticket as claimed and whether it was a takeover, or `None`.
    pub claimed: Vec<Option<(Ticket, bool)>>,
}

/// Writes `writes`, `transitions` and `claims` in one statement (so one implicit
/// transaction) and says what became of each. The fence check, the checkpoints, their events,
/// the transitions and the claims commit together or not at all. `FOR SHARE` on the fenced
/// tickets, taken in id order, makes a concurrent claim (which bumps the epoch) wait for this
/// write, so a run that took a ticket over always sees the checkpoints the earlier run
/// committed; `NOWAIT` everywhere, so that a row locked elsewhere fails the batch at once
/// instead of holding every caller in it (they are then written one by one).
pub(super) async fn write_batch(
    db: &Db,
    sql: &Statements,
    writes: &[CheckpointWrite],
    transitions: &[TransitionWrite],
    claims: &[ClaimWrite],
) -> Result<Outcomes, BatchError> {
    let columns = Columns::of(writes).map_err(BatchError::Failed)?;
    let jobs = !transitions.is_empty() || !claims.is_empty();
    let query = if jobs {
        let query = columns.bind(sqlx::query(sql.batch.checkpoints_and_jobs.clone()));
        ClaimColumns::of(claims).bind(TransitionColumns::of(transitions).bind(query))
    } else {
        columns.bind(sqlx::query(sql.batch.checkpoints.clone()))
    };
    let rows = db.fetch_all(query).await.map_err(BatchError::Failed)?;
    read_outcomes(writes, transitions.len(), claims.len(), &rows).map_err(BatchError::Unreadable)
}

/// What the rows a committed batch answered say of each write.
fn read_outcomes(
    writes: &[CheckpointWrite],
    transitions: usize,
    claims: usize,
    rows: &[sqlx::postgres::PgRow],
) -> Result<Outcomes, sqlx::Error> {
    if rows.len() != writes.len() + transitions + claims {
        return Err(sqlx::Error::Protocol(format!(
            "a batch of {} checkpoints, {transitions} transitions and {claims} claims answered {} rows",
            writes.len(),
            rows.len()
        )));
    }
    let (checkpoint_rows, rest) = rows.split_at(writes.len());
    let (transition_rows, claim_rows) = rest.split_at(transitions);
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
    for row in transition_rows {
        kind(row, 1)?;
        outcomes.moved.push(row.try_get("saved")?);
    }
    for row in claim_rows {
        kind(row, 2)?;
        outcomes.claimed.push(claimed(row)?);
    }
    Ok(outcomes)
}
