//! Group commit on PostgreSQL: a ticket row locked elsewhere holds up only its own run's
//! checkpoint, never the writer and the runs behind it; a checkpoint the database refuses, or
//! one fenced off, fails alone.

mod support;

use std::time::Duration;

use sqlx::{Connection, Row};
use ticketflow_core::store::{PgOptions, PgStore, TicketStore};
use ticketflow_graph::{CheckpointError, Checkpointer};

#[tokio::test]
async fn a_locked_ticket_holds_up_only_its_own_run_and_bad_writes_fail_alone() {
    let url = support::fresh_postgres_database().await;
    let options = PgOptions {
        checkpoint_writers: 1,
        ..PgOptions::default()
    };
    let store = PgStore::connect(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    // Run 9 is stale: its ticket was taken over.
    let runs = support::claimed_runs(&store, 10, 9).await;

    // Hold ticket 0's row, as a long manual transaction would.
    let mut blocker = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut lock = blocker.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM ticketflow.tickets WHERE id = $1 FOR UPDATE")
        .bind(runs[0].0)
        .execute(&mut *lock)
        .await
        .unwrap();
    let put = |i: usize| {
        let (id, fence) = runs[i];
        let checkpointer = store.checkpointer(Some(fence));
        let mut checkpoint = ticketflow_graph::testing::sample_checkpoint(&id.to_string(), 1, None);
        if i == 8 {
            // NUL in `jsonb` metadata: PostgreSQL refuses the row.
            checkpoint.metadata = serde_json::json!({ "note": "a\u{0}b" });
        }
        tokio::spawn(async move { checkpointer.put(checkpoint).await })
    };
    let first = put(0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The one writer is not stuck behind run 0: the others commit (or fail) meanwhile.
    let mut outcomes = Vec::new();
    for handle in (1..10).map(put) {
        outcomes.push(handle.await.unwrap());
    }
    for (i, outcome) in outcomes.iter().enumerate().take(7) {
        assert!(outcome.is_ok(), "run {}: {outcome:?}", i + 1);
    }
    assert!(
        matches!(outcomes[7], Err(CheckpointError::Storage(_))),
        "NUL in JSON: {:?}",
        outcomes[7]
    );
    assert!(
        matches!(outcomes[8], Err(CheckpointError::Fenced(_))),
        "{:?}",
        outcomes[8]
    );
    let committed = || async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT count(*) FROM ticketflow.workflow_checkpoints")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get::<i64, _>(0)
    };
    assert_eq!(committed().await, 7, "runs 1-7, while run 0 waits for its ticket");
    assert!(!first.is_finished(), "run 0 waits for the lock");

    lock.commit().await.unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(committed().await, 8, "runs 0-7");

    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let events: i64 = sqlx::query("SELECT count(*) FROM ticketflow.ticket_events WHERE event_type = 'step_complete'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 8, "one step_complete per committed checkpoint");
}
