//! Group commit on PostgreSQL: checkpoints queued while the writer is busy commit together,
//! and one of them that the database refuses, or that is fenced off, fails alone.

mod support;

use std::time::Duration;

use sqlx::{Connection, Row};
use ticketflow_core::store::{PgOptions, PgStore, TicketStore};
use ticketflow_graph::{CheckpointError, Checkpointer};

#[tokio::test]
async fn writes_queued_behind_a_busy_writer_commit_together_and_fail_alone() {
    let url = support::fresh_postgres_database().await;
    let options = PgOptions {
        checkpoint_writers: 1,
        ..PgOptions::default()
    };
    let store = PgStore::connect(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    // Run 9 is stale: its ticket was taken over.
    let runs = support::claimed_runs(&store, 10, 9).await;

    // Hold ticket 0's row: the one writer blocks on its fence check with run 0's checkpoint.
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
            checkpoint.state = serde_json::value::RawValue::from_string(r#"{"text":"a\u0000b"}"#.into()).unwrap();
        }
        tokio::spawn(async move { checkpointer.put(checkpoint).await })
    };
    let first = put(0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rest: Vec<_> = (1..10).map(put).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let committed = || async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT count(*) FROM ticketflow.workflow_checkpoints")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get::<i64, _>(0)
    };
    assert_eq!(committed().await, 0, "everything waits behind the busy writer");
    lock.commit().await.unwrap();

    first.await.unwrap().unwrap();
    let mut outcomes = Vec::new();
    for handle in rest {
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
    assert_eq!(committed().await, 8, "runs 0-7");

    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let events: i64 = sqlx::query("SELECT count(*) FROM ticketflow.ticket_events WHERE event_type = 'step_complete'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 8, "one step_complete per committed checkpoint");
}
