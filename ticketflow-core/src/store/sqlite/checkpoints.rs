//! Workflow checkpoints in SQLite.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use sqlx::FromRow;
use ticketflow_graph::{Checkpoint, CheckpointError, Checkpointer};

use super::rows::{CHECKPOINT_COLUMNS, CheckpointRow};
use super::tickets::insert_event;
use super::{SqliteStore, timestamp};
use crate::store::{CheckpointStore, Fence, step_complete_event};

impl CheckpointStore for SqliteStore {
    fn checkpointer(&self, fence: Option<Fence>) -> Arc<dyn Checkpointer> {
        Arc::new(SqliteCheckpointer {
            store: self.clone(),
            fence,
            last_put: Mutex::new(Some(Instant::now())),
        })
    }
}

/// Checkpoints in `workflow_checkpoints`; see [`CheckpointStore::checkpointer`].
struct SqliteCheckpointer {
    store: SqliteStore,
    fence: Option<Fence>,
    /// When the previous checkpoint of this run was written, or the checkpointer made (as
    /// the run starts): a step's duration is the time since (node time plus the write).
    last_put: Mutex<Option<Instant>>,
}

fn storage(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CheckpointError {
    CheckpointError::storage(error)
}

fn checkpoints(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<Checkpoint>, CheckpointError> {
    rows.iter()
        .map(|row| CheckpointRow::from_row(row).map_err(storage)?.try_into())
        .collect()
}

#[async_trait]
impl Checkpointer for SqliteCheckpointer {
    async fn put(&self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        let step = i64::try_from(checkpoint.step).map_err(storage)?;
        let mut tx = self.store.begin().await.map_err(storage)?;
        if let Some(fence) = self.fence {
            // BEGIN IMMEDIATE holds the write lock: no claim can change the epoch meanwhile.
            let epoch: Option<i64> = sqlx::query_scalar("SELECT lease_epoch FROM tickets WHERE id = ?")
                .bind(fence.ticket_id.hyphenated())
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
            if epoch != Some(fence.epoch) {
                return Err(CheckpointError::Fenced(format!(
                    "ticket {} is at lease epoch {epoch:?}, this run holds {}",
                    fence.ticket_id, fence.epoch
                )));
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO workflow_checkpoints (thread_id, step, checkpoint_id, parent_id, completed_node, next_node, \
             state, graph_version, interrupt, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (thread_id, step) DO NOTHING",
        )
        .bind(&*checkpoint.thread_id)
        .bind(step)
        .bind(checkpoint.id.hyphenated())
        .bind(checkpoint.parent_id.map(|p| p.hyphenated()))
        .bind(checkpoint.completed_node.as_deref())
        .bind(checkpoint.next_node.as_deref())
        .bind(checkpoint.state.get())
        .bind(&*checkpoint.graph_version)
        .bind(checkpoint.interrupt.as_ref().map(ToString::to_string))
        .bind(checkpoint.metadata.to_string())
        .bind(timestamp(checkpoint.created_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if inserted.rows_affected() == 0 {
            return Err(CheckpointError::Conflict {
                thread_id: checkpoint.thread_id.to_string(),
                step: checkpoint.step,
            });
        }
        if let (Some(fence), Some(node)) = (self.fence, &checkpoint.completed_node) {
            let duration = self
                .last_put
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|t| t.elapsed());
            let event = step_complete_event(&checkpoint, node, duration);
            insert_event(
                &mut tx,
                fence.ticket_id,
                &event,
                Some((crate::store::turn_of_thread(&checkpoint.thread_id), step)),
            )
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        *self.last_put.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE thread_id = ? ORDER BY step DESC LIMIT 1"
        )))
        .bind(thread_id)
        .fetch_optional(&self.store.read)
        .await
        .map_err(storage)?;
        Ok(checkpoints(row.as_slice())?.pop())
    }

    async fn history(&self, thread_id: &str, limit: usize) -> Result<Vec<Checkpoint>, CheckpointError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE thread_id = ? ORDER BY step DESC LIMIT ?"
        )))
        .bind(thread_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.store.read)
        .await
        .map_err(storage)?;
        checkpoints(&rows)
    }

    async fn delete_thread(&self, thread_id: &str) -> Result<u64, CheckpointError> {
        let mut tx = self.store.begin().await.map_err(storage)?;
        let done = sqlx::query("DELETE FROM workflow_checkpoints WHERE thread_id = ?")
            .bind(thread_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(done.rows_affected())
    }

    async fn prune(&self, thread_id: &str, keep_last: usize) -> Result<u64, CheckpointError> {
        let keep = i64::try_from(keep_last.max(1)).unwrap_or(i64::MAX);
        let mut tx = self.store.begin().await.map_err(storage)?;
        let done = sqlx::query(
            "DELETE FROM workflow_checkpoints WHERE thread_id = ?1 AND step < ( \
                 SELECT step FROM workflow_checkpoints WHERE thread_id = ?1 ORDER BY step DESC LIMIT 1 OFFSET ?2 - 1)",
        )
        .bind(thread_id)
        .bind(keep)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(done.rows_affected())
    }
}
