//! The live feed under concurrent writers on PostgreSQL: transactions that take seqs in one
//! order and commit in another, some rolling back, while one subscriber follows every event.
//! Every committed event arrives, once, in seq order.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use ticketflow_core::live::{EventFeed, Filter};
use ticketflow_core::store::{NewTicket, PgOptions, PgStore, Store};
use ticketflow_core::testing::database::fresh_postgres_url;

async fn pause(micros: u64) {
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_event_arrives_once_in_seq_order_whatever_the_commit_order() {
    let url = fresh_postgres_url().await;
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let (ticket, _) = store
        .create(NewTicket {
            customer_id: "c".into(),
            subject: "feed".into(),
            body: "feed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let feed = EventFeed::new(store.clone());
    let mut subscription = feed.subscribe(Filter::default(), 0).await.unwrap();

    let writers: Vec<_> = (0..12u64)
        .map(|w| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                for i in 0..40u64 {
                    let mut tx = conn.begin().await.unwrap();
                    // Some take their transaction id long before their seq.
                    if (w + i) % 3 == 0 {
                        sqlx::query("SELECT pg_current_xact_id()")
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    pause((w * 7 + i * 13) % 3000).await;
                    sqlx::query(
                        "INSERT INTO ticketflow.ticket_events (id, ticket_id, event_type, payload) \
                         VALUES ($1, $2, 'retry', '{}')",
                    )
                    .bind(uuid::Uuid::new_v4())
                    .bind(ticket.id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    pause((w * 11 + i * 5) % 4000).await;
                    if (w + i) % 7 == 0 {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let committed: Vec<i64> = store.events(ticket.id).await.unwrap().iter().map(|e| e.seq).collect();
    let mut seen = Vec::new();
    while seen.len() < committed.len() {
        match tokio::time::timeout(Duration::from_secs(10), subscription.next()).await {
            Ok(Some(event)) => seen.push(event.seq),
            _ => break,
        }
    }
    let missing: Vec<i64> = committed.iter().copied().filter(|s| !seen.contains(s)).collect();
    assert!(missing.is_empty(), "missed {missing:?} of {}", committed.len());
    assert_eq!(seen, committed, "every committed event, once, in seq order");
}
