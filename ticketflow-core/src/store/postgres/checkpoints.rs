//! Workflow checkpoints in PostgreSQL. Writes go through the group-commit queue; reads go
//! straight to the pool.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use sqlx::{FromRow, SqlStr};
use ticketflow_graph::{Checkpoint, CheckpointError, Checkpointer};

use super::PgStore;
use super::db::Db;
use super::group_commit::{CheckpointWrite, GroupCommit, Written};
use super::rows::{CHECKPOINT_COLUMNS, CheckpointRow};
use super::sql::{Statements, statement};
use crate::store::{CheckpointStore, Fence, step_complete_event};

/// The checkpoint reads and deletes (the writes are the group commit's).
#[derive(Debug)]
pub(super) struct CheckpointSql {
    latest: SqlStr,
    history: SqlStr,
    delete_thread: SqlStr,
    prune: SqlStr,
}

impl CheckpointSql {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            latest: statement(
                schema,
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM {{schema}}.workflow_checkpoints WHERE thread_id = $1 \
                     ORDER BY step DESC LIMIT 1"
                ),
            ),
            history: statement(
                schema,
                &format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM {{schema}}.workflow_checkpoints WHERE thread_id = $1 \
                     ORDER BY step DESC LIMIT $2"
                ),
            ),
            delete_thread: statement(schema, "DELETE FROM {schema}.workflow_checkpoints WHERE thread_id = $1"),
            prune: statement(
                schema,
                "DELETE FROM {schema}.workflow_checkpoints WHERE thread_id = $1 AND step < ( \
                     SELECT step FROM {schema}.workflow_checkpoints WHERE thread_id = $1 \
                     ORDER BY step DESC OFFSET $2 - 1 LIMIT 1)",
            ),
        }
    }
}

impl CheckpointStore for PgStore {
    fn checkpointer(&self, fence: Option<Fence>) -> Arc<dyn Checkpointer> {
        Arc::new(PgCheckpointer {
            db: self.db.clone(),
            sql: self.sql.clone(),
            writer: self.checkpoints.clone(),
            fence,
            last_put: Mutex::new(Some(Instant::now())),
        })
    }
}

/// Checkpoints in `workflow_checkpoints`; see [`CheckpointStore::checkpointer`].
struct PgCheckpointer {
    db: Db,
    sql: Arc<Statements>,
    writer: GroupCommit,
    fence: Option<Fence>,
    /// When the previous checkpoint of this run was written, or the checkpointer made (as
    /// the run starts): a step's duration is the time since (node time plus the write).
    last_put: Mutex<Option<Instant>>,
}

fn storage(error: sqlx::Error) -> CheckpointError {
    CheckpointError::storage(error)
}

fn checkpoints(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Checkpoint>, CheckpointError> {
    rows.iter()
        .map(|row| CheckpointRow::from_row(row).map_err(storage)?.try_into())
        .collect()
}

#[async_trait]
impl Checkpointer for PgCheckpointer {
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        // Refused here, alone, rather than failing a whole batch later.
        i64::try_from(checkpoint.step).map_err(CheckpointError::storage)?;
        let event = match (self.fence, &checkpoint.completed_node) {
            (Some(_), Some(node)) => {
                let duration = self
                    .last_put
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .map(|t| t.elapsed());
                Some(step_complete_event(&checkpoint, node, duration))
            }
            _ => None,
        };
        let (thread_id, step) = (checkpoint.thread_id.clone(), checkpoint.step);
        let write = CheckpointWrite {
            checkpoint,
            fence: self.fence,
            event,
        };
        match self.writer.write(write).await? {
            Written::Saved => {
                *self.last_put.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                Ok(())
            }
            Written::Fenced { fence, epoch } => Err(CheckpointError::Fenced(format!(
                "ticket {} is at lease epoch {epoch:?}, this run holds {}",
                fence.ticket_id, fence.epoch
            ))),
            Written::Taken => Err(CheckpointError::Conflict {
                thread_id: thread_id.to_string(),
                step,
            }),
        }
    }

    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.checkpoints.latest.clone()).bind(thread_id))
            .await
            .map_err(storage)?;
        Ok(checkpoints(row.as_slice())?.pop())
    }

    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError> {
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.checkpoints.history.clone())
                    .bind(thread_id)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
            )
            .await
            .map_err(storage)?;
        checkpoints(&rows)
    }

    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError> {
        let done = self
            .db
            .execute(sqlx::query(self.sql.checkpoints.delete_thread.clone()).bind(thread_id))
            .await
            .map_err(storage)?;
        Ok(done.rows_affected())
    }

    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError> {
        let keep = i64::try_from(keep_last.max(1)).unwrap_or(i64::MAX);
        let done = self
            .db
            .execute(
                sqlx::query(self.sql.checkpoints.prune.clone())
                    .bind(thread_id)
                    .bind(keep),
            )
            .await
            .map_err(storage)?;
        Ok(done.rows_affected())
    }
}
