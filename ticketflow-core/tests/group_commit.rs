//! Group commit on PostgreSQL: a ticket row locked elsewhere holds up only its own run's
//! checkpoint, never the writer and the runs behind it; a checkpoint the database refuses, or
//! one fenced off, fails alone. Claims and completions commit in the same transactions as
//! other runs' checkpoints, with the same guarantees as a statement of their own.

mod support;

use std::time::Duration;

use sqlx::{Connection, Row};
use ticketflow_core::store::{
    CheckpointStore, ClaimStore, Claimed, Moved, PgOptions, PgStore, Store, StoreError, Ticket, TicketStatus,
    TicketStore, Transition,
};
use ticketflow_graph::{CheckpointError, Checkpointer};
use uuid::Uuid;

#[tokio::test]
async fn a_locked_ticket_holds_up_only_its_own_run_and_bad_writes_fail_alone() {
    let (url, store) = one_writer_store().await;
    // Run 9 is stale: its ticket was taken over.
    let runs = support::claimed_runs(&*store, 10, 9).await;

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

#[tokio::test]
async fn claims_and_completions_commit_with_other_runs_checkpoints_and_a_locked_ticket_waits_alone() {
    let (url, store) = one_writer_store().await;
    let runs = support::claimed_runs(&*store, 9, 8).await;
    let mut tickets = Vec::new();
    for (id, _) in &runs {
        tickets.push(store.get(*id).await.unwrap().unwrap());
    }
    let versions: Vec<i64> = tickets.iter().map(|t| t.version).collect();
    let put = |i: usize, step: u64| {
        let (id, fence) = runs[i];
        let checkpointer = store.checkpointer(Some(fence));
        let checkpoint = ticketflow_graph::testing::sample_checkpoint(&id.to_string(), step, None);
        tokio::spawn(async move { checkpointer.put(checkpoint).await })
    };
    let finish = |i: usize, version: i64| {
        let store = store.clone();
        let ticket = Ticket {
            version,
            ..tickets[i].clone()
        };
        let change = Transition {
            request_id: Some(format!("req-{i}")),
            ..Transition::to(TicketStatus::Completed).with_result(serde_json::json!({ "reply": i }))
        };
        tokio::spawn(async move { store.finish(&ticket, change).await })
    };
    let claim = |id: Uuid| {
        let store = store.clone();
        tokio::spawn(async move { store.claim(id, "w3", Duration::from_secs(60)).await })
    };
    // A new ticket, and one whose lease expired (a takeover).
    let fresh = store.create(support::ticket_named("c", "fresh")).await.unwrap().0.id;
    let expired = store.create(support::ticket_named("c", "expired")).await.unwrap().0.id;
    store
        .claim(expired, "w1", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let xmin_of_event = |id, to: &'static str| {
        sqlx::query(
            "SELECT xmin::text FROM ticketflow.ticket_events \
             WHERE ticket_id = $1 AND event_type = 'status_change' AND payload->>'to' = $2 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(id)
        .bind(to)
    };

    // Checkpoints, completions (the last one stale) and claims (claimable, taken over, held
    // by a live worker — run 8's ticket, taken over by w2 —, unknown), all in one batch.
    let (puts, finishes, claims) = in_one_batch(&url, &store, 1, || {
        let puts = [put(1, 1), put(2, 1)];
        let finishes = [
            finish(3, versions[3]),
            finish(4, versions[4]),
            finish(5, versions[5] - 1),
        ];
        let claims = [claim(fresh), claim(expired), claim(runs[8].0), claim(Uuid::now_v7())];
        (puts, finishes, claims)
    })
    .await;
    for handle in puts {
        handle.await.unwrap().unwrap();
    }
    let [third, fourth, stale] = finishes;
    third.await.unwrap().unwrap();
    fourth.await.unwrap().unwrap();
    let refused = stale.await.unwrap();
    assert!(matches!(refused, Err(StoreError::Conflict { .. })), "{refused:?}");
    let [fresh_claim, expired_claim, held_claim, unknown_claim] = claims;
    let (claimed, fence) = fresh_claim.await.unwrap().unwrap().expect("a new ticket is claimable");
    assert_eq!(
        Some(&claimed),
        store.get(fresh).await.unwrap().as_ref(),
        "the claimed ticket as stored"
    );
    assert_eq!(
        (claimed.status, fence.epoch, claimed.lease_epoch),
        (TicketStatus::Processing, 1, 1)
    );
    let (taken, fence) = expired_claim
        .await
        .unwrap()
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!((taken.id, fence.epoch), (expired, 2));
    let takeover = store.events(expired).await.unwrap().pop().unwrap();
    assert_eq!(
        takeover.decode::<Claimed>(),
        Some(Claimed {
            from: TicketStatus::Processing,
            to: TicketStatus::Processing,
            worker_id: "w3".into(),
            lease_epoch: 2,
            takeover: true,
        }),
        "the batched claim writes the payload the claim alone does: {}",
        takeover.payload
    );
    assert!(held_claim.await.unwrap().unwrap().is_none(), "held by a live worker");
    let unknown = unknown_claim.await.unwrap();
    assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");

    // One transaction: the checkpoints of runs 1 and 2, the completions of 3 and 4, the claims.
    let checkpoint_xmin: String =
        sqlx::query("SELECT xmin::text FROM ticketflow.workflow_checkpoints WHERE thread_id = $1")
            .bind(runs[1].0.to_string())
            .fetch_one(&mut admin)
            .await
            .unwrap()
            .get(0);
    for id in [fresh, expired] {
        let xmin: String = xmin_of_event(id, "processing")
            .fetch_one(&mut admin)
            .await
            .unwrap()
            .get(0);
        assert_eq!(xmin, checkpoint_xmin, "the claim committed with run 1's checkpoint");
    }
    for i in [3, 4] {
        let xmin: String = xmin_of_event(runs[i].0, "completed")
            .fetch_one(&mut admin)
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            xmin, checkpoint_xmin,
            "run {i}'s completion committed with run 1's checkpoint"
        );
        let ticket = store.get(runs[i].0).await.unwrap().unwrap();
        assert_eq!(ticket.status, TicketStatus::Completed);
        assert_eq!(ticket.version, versions[i] + 1);
        assert_eq!(ticket.result, Some(serde_json::json!({ "reply": i })));
        assert!(ticket.completed_at.is_some());
        let events = store.events(runs[i].0).await.unwrap();
        let completed = events
            .iter()
            .filter(|e| e.payload["to"] == "completed")
            .collect::<Vec<_>>();
        assert_eq!(completed.len(), 1);
        assert_eq!(
            completed[0].decode::<Moved>(),
            Some(Moved {
                from: TicketStatus::Processing,
                to: TicketStatus::Completed,
                attempt_count: 0,
                actor: None,
            })
        );
        assert_eq!(completed[0].request_id.as_deref(), Some(format!("req-{i}").as_str()));
    }
    let untouched = store.get(runs[5].0).await.unwrap().unwrap();
    assert_eq!(
        (untouched.status, untouched.version),
        (TicketStatus::Processing, versions[5])
    );

    // A completion whose ticket row is locked elsewhere fails its batch (the writer never
    // waits for a row), then waits alone; the completion it shared the batch with goes on.
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut row_lock = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM ticketflow.tickets WHERE id = $1 FOR UPDATE")
        .bind(runs[6].0)
        .execute(&mut *row_lock)
        .await
        .unwrap();
    let (held, free) = in_one_batch(&url, &store, 2, || (finish(6, versions[6]), finish(7, versions[7]))).await;
    free.await.unwrap().unwrap();
    assert_eq!(
        store.get(runs[7].0).await.unwrap().unwrap().status,
        TicketStatus::Completed
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!held.is_finished(), "run 6's completion waits for its ticket");
    row_lock.commit().await.unwrap();
    held.await.unwrap().unwrap();
    assert_eq!(
        store.get(runs[6].0).await.unwrap().unwrap().status,
        TicketStatus::Completed
    );
}

/// A fresh database and a store over it with one checkpoint writer, so that tests can tell
/// what goes in which batch.
async fn one_writer_store() -> (String, std::sync::Arc<PgStore>) {
    let url = support::fresh_postgres_url().await;
    let options = PgOptions {
        checkpoint_writers: 1,
        ..PgOptions::default()
    };
    let store = PgStore::connect(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    (url, std::sync::Arc::new(store))
}

/// Holds the one writer of `store` behind a table lock while `queue` queues writes, so that
/// they all go out together in its next batch; returns what `queue` returned.
async fn in_one_batch<T>(url: &str, store: &PgStore, step: u64, queue: impl FnOnce() -> T) -> T {
    let mut blocker = sqlx::PgConnection::connect(url).await.unwrap();
    let mut lock = blocker.begin().await.unwrap();
    sqlx::query("LOCK TABLE ticketflow.workflow_checkpoints IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let checkpointer = store.checkpointer(None);
    let busy = tokio::spawn(async move {
        let checkpoint = ticketflow_graph::testing::sample_checkpoint("busy", step, None);
        checkpointer.put(checkpoint).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = queue();
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.commit().await.unwrap();
    busy.await.unwrap().unwrap();
    queued
}

/// A writer plans its statements once per connection, often while the tables are nearly
/// empty; a plan that scans `tickets` whole would then cost more with every ticket (and, with
/// no ANALYZE to replace it, for ever). Every batch must reach tickets through an index.
#[tokio::test]
async fn batches_reach_tickets_through_an_index_however_small_the_table_was_when_planned() {
    let (url, store) = one_writer_store().await;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    // One round of checkpoints, claims and completions in a batch, ending with a finished run.
    let round = |i: u64| {
        let (store, url) = (store.clone(), url.clone());
        async move {
            let new = store
                .create(support::ticket_named("c", &format!("next {i}")))
                .await
                .unwrap()
                .0;
            let done = store
                .create(support::ticket_named("c", &format!("done {i}")))
                .await
                .unwrap()
                .0;
            let (claimed, fence) = store
                .claim(done.id, "w1", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            let checkpointer = store.checkpointer(Some(fence));
            let (put, claim, finish) = in_one_batch(&url, &store, i, || {
                let checkpoint = ticketflow_graph::testing::sample_checkpoint(&done.id.to_string(), 1, None);
                let put = tokio::spawn(async move { checkpointer.put(checkpoint).await });
                let s = store.clone();
                let claim = tokio::spawn(async move { s.claim(new.id, "w1", Duration::from_secs(60)).await });
                let s = store.clone();
                let finish =
                    tokio::spawn(async move { s.finish(&claimed, Transition::to(TicketStatus::Completed)).await });
                (put, claim, finish)
            })
            .await;
            put.await.unwrap().unwrap();
            claim.await.unwrap().unwrap().expect("claimed");
            finish.await.unwrap().unwrap();
        }
    };
    // Planned on a table of a few rows...
    round(1).await;
    // ...then used on one of thousands.
    sqlx::query(
        "INSERT INTO ticketflow.tickets (id, customer_id, subject, body, content_hash) \
         SELECT gen_random_uuid(), 'bulk', 's', 'b', gen_random_uuid() FROM generate_series(1, 20000)",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    round(2).await;
    round(3).await;

    // Backends report their table statistics when they exit: close every connection first.
    store.pool().close().await;
    drop((store, admin));
    let database = url.rsplit_once('/').unwrap().1.to_owned();
    let mut observer = sqlx::PgConnection::connect(&support::postgres_admin_url())
        .await
        .unwrap();
    for _ in 0..100 {
        let open: i64 = sqlx::query("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
            .bind(&database)
            .fetch_one(&mut observer)
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut reader = sqlx::PgConnection::connect(&url).await.unwrap();
    let read: i64 = sqlx::query(
        "SELECT COALESCE(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relid = 'ticketflow.tickets'::regclass",
    )
    .fetch_one(&mut reader)
    .await
    .unwrap()
    .get(0);
    assert!(
        read < 20_000,
        "tickets were scanned whole: {read} rows read by sequential scans"
    );
}
