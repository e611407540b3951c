//! Live progress over Server-Sent Events, against the real binaries: the embedded default,
//! and PostgreSQL with RabbitMQ and a real worker (LISTEN/NOTIFY).

use std::time::Duration;

use serde_json::{Value, json};
use support::sse::{Frame, Sse};
use support::{client, fresh_postgres, get_json, spawn, spawn_api, temp_sqlite, wait_for_status, worker_binary};

#[allow(dead_code)]
#[path = "faults/services.rs"]
mod services;
mod support;

async fn create(client: &reqwest::Client, base: &str, subject: &str) -> String {
    let response = client
        .post(format!("{base}/tickets"))
        .json(&json!({ "subject": subject, "body": "Where is my order ORD-55812?", "customer_id": "cust_stream" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn events(client: &reqwest::Client, base: &str, id: &str) -> Vec<Value> {
    serde_json::from_value(get_json(client, &format!("{base}/tickets/{id}/events")).await).unwrap()
}

fn ids(frames: &[Frame]) -> Vec<i64> {
    frames.iter().map(|f| f.id).collect()
}

fn steps(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.event == "step_complete")
        .map(|f| f.data["step_name"].as_str().unwrap().to_owned())
        .collect()
}

/// Frames are events: `id` is the seq, `event` the type, `data` the event with its seq.
fn assert_well_formed(frames: &[Frame]) {
    for frame in frames {
        assert_eq!(frame.data["seq"], frame.id, "{frame:?}");
        assert_eq!(frame.data["event_type"], frame.event.as_str(), "{frame:?}");
    }
    assert!(
        ids(frames).windows(2).all(|w| w[0] < w[1]),
        "in seq order, none twice: {:?}",
        ids(frames)
    );
}

const SIX: [&str; 6] = ["classify", "extract", "research", "draft", "review", "finalize"];

#[tokio::test]
async fn a_ticket_stream_sends_its_history_resumes_after_any_seq_and_ends_when_done() {
    let api = spawn_api(&[("DATABASE_URL", temp_sqlite())]).await;
    let client = client();
    let id = create(&client, &api.base, "Where is my order").await;

    let url = format!("{}/tickets/{id}/stream", api.base);
    let mut stream = Sse::open(&url, None).await;
    let frames = stream.rest().await;
    assert_well_formed(&frames);
    assert_eq!(frames[0].event, "created");
    assert_eq!(steps(&frames), SIX);
    let finished = frames.iter().rev().find(|f| f.event == "status_change").unwrap();
    assert_eq!(
        finished.data["payload"]["to"], "completed",
        "it ended once the ticket was done"
    );
    let stored: Vec<i64> = events(&client, &api.base, &id)
        .await
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(ids(&frames), stored, "the stream is the ticket's events, every one");

    // Resuming after any seq gives exactly what follows it, by header or by query.
    for cut in [0, 2, frames.len() - 1] {
        let resumed = Sse::open(&url, Some(frames[cut].id)).await.rest().await;
        assert_eq!(ids(&resumed), ids(&frames[cut + 1..]));
        let by_query = Sse::open(&format!("{url}?after={}", frames[cut].id), None)
            .await
            .rest()
            .await;
        assert_eq!(ids(&by_query), ids(&frames[cut + 1..]));
    }

    // An unknown ticket is a 404 and a bad Last-Event-ID a 422, both JSON.
    let missing = client
        .get(format!("{}/tickets/{}/stream", api.base, uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "not_found");
    for bad in ["abc", "-1", "1e3"] {
        let answer = client.get(&url).header("last-event-id", bad).send().await.unwrap();
        assert_eq!(answer.status(), 422, "{bad}");
        assert_eq!(answer.json::<Value>().await.unwrap()["field"], "Last-Event-ID");
    }
    let answer = client.get(format!("{url}?after=-5")).send().await.unwrap();
    assert_eq!(answer.status(), 422);
}

#[tokio::test]
async fn the_events_stream_filters_by_type_and_status_and_follows_new_tickets() {
    let api = spawn_api(&[("DATABASE_URL", temp_sqlite())]).await;
    let client = client();
    let first = create(&client, &api.base, "First").await;
    let second = create(&client, &api.base, "Second").await;
    wait_for_status(&client, &api.base, &first, "completed").await;
    wait_for_status(&client, &api.base, &second, "completed").await;

    let mut stepped = Sse::open(&format!("{}/events/stream?event_type=step_complete", api.base), None).await;
    let mut frames = Vec::new();
    for _ in 0..12 {
        frames.push(stepped.next().await.unwrap());
    }
    assert_well_formed(&frames);
    assert!(frames.iter().all(|f| f.event == "step_complete"));
    assert!(
        stepped.next_within(Duration::from_millis(500)).await.is_err(),
        "two tickets, six steps each, and nothing else"
    );

    let mut completed = Sse::open(&format!("{}/events/stream?status=completed", api.base), None).await;
    let done = [completed.next().await.unwrap(), completed.next().await.unwrap()];
    assert!(
        done.iter()
            .all(|f| f.event == "status_change" && f.data["payload"]["to"] == "completed")
    );
    let mut tickets: Vec<&str> = done.iter().map(|f| f.data["ticket_id"].as_str().unwrap()).collect();
    tickets.sort();
    let mut want = vec![first.as_str(), second.as_str()];
    want.sort();
    assert_eq!(tickets, want);

    // From the newest seq on: a new ticket's events arrive live, history skipped.
    let newest = events(&client, &api.base, &second).await.last().unwrap()["seq"]
        .as_i64()
        .unwrap()
        .max(done[1].id);
    let mut live = Sse::open(&format!("{}/events/stream", api.base), Some(newest)).await;
    let third = create(&client, &api.base, "Third").await;
    let mut seen = Vec::new();
    while seen
        .last()
        .is_none_or(|f: &Frame| f.data["payload"]["to"] != "completed")
    {
        seen.push(live.next().await.unwrap());
    }
    assert_well_formed(&seen);
    assert!(
        seen.iter().all(|f| f.data["ticket_id"] == third.as_str()),
        "only what came after"
    );
    assert_eq!(seen[0].event, "created");
    assert_eq!(steps(&seen), SIX);

    let unknown = client
        .get(format!("{}/events/stream?event_type=nope", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);
}

/// The API and a worker on PostgreSQL and RabbitMQ: the API learns of the worker's events by
/// LISTEN/NOTIFY.
struct Distributed {
    database_url: String,
    api: support::Running,
    shared: Vec<(&'static str, String)>,
}

impl Distributed {
    async fn start() -> Self {
        let database_url = fresh_postgres().await;
        let rabbitmq_url =
            std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let shared = vec![
            ("DATABASE_URL", database_url.clone()),
            ("RABBITMQ_URL", rabbitmq_url),
            ("QUEUE_NAME", format!("tf_test_{}", uuid::Uuid::new_v4().simple())),
        ];
        let api = spawn_api(&shared).await;
        Self {
            database_url,
            api,
            shared,
        }
    }

    async fn worker(&self) -> support::Running {
        let port = support::free_port();
        let mut env = self.shared.clone();
        env.push(("WORKER_BIND_ADDR", format!("127.0.0.1:{port}")));
        spawn(&worker_binary(), &env, port).await
    }
}

#[tokio::test]
async fn a_stream_follows_a_real_worker_and_resumes_after_a_disconnect() {
    let desk = Distributed::start().await;
    let client = client();
    // No worker yet: the ticket waits, and the streams are open before any step runs.
    let id = create(&client, &desk.api.base, "Followed").await;
    let url = format!("{}/tickets/{id}/stream", desk.api.base);
    let mut follower = Sse::open(&url, None).await;
    let mut leaver = Sse::open(&url, None).await;
    let created = follower.next().await.unwrap();
    assert_eq!(created.event, "created");
    assert_eq!(leaver.next().await.unwrap().id, created.id);
    assert!(
        follower.next_within(Duration::from_millis(300)).await.is_err(),
        "nothing more until a worker takes it"
    );

    let _worker = desk.worker().await;
    // One client leaves after the second step arrives live; the other stays to the end.
    let mut before = vec![created.clone()];
    while steps(&before).len() < 2 {
        before.push(leaver.next().await.unwrap());
    }
    drop(leaver);
    let mut all = vec![created];
    all.extend(follower.rest().await);
    assert_well_formed(&all);
    assert_eq!(steps(&all), SIX, "every step, in order");

    let rejoined = Sse::open(&url, Some(before.last().unwrap().id)).await.rest().await;
    let mut joined = before.clone();
    joined.extend(rejoined);
    assert_well_formed(&joined);
    assert_eq!(ids(&joined), ids(&all), "the rest arrived, none twice");
    let stored: Vec<i64> = events(&client, &desk.api.base, &id)
        .await
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(ids(&all), stored);
}

async fn newest_seq(sql: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM ticketflow.ticket_events")
        .fetch_one(sql)
        .await
        .unwrap()
}

async fn insert_event(sql: &mut sqlx::PgConnection, ticket: uuid::Uuid, label: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO ticketflow.ticket_events (id, ticket_id, event_type, payload) \
         VALUES ($1, $2, 'retry', jsonb_build_object('label', $3::text)) RETURNING seq",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(ticket)
    .bind(label)
    .fetch_one(sql)
    .await
    .unwrap()
}

#[tokio::test]
async fn events_committed_out_of_seq_order_are_streamed_in_seq_order_once() {
    use sqlx::Connection;
    let desk = Distributed::start().await;
    let client = client();
    let ticket: uuid::Uuid = create(&client, &desk.api.base, "Out of order").await.parse().unwrap();
    let mut sql = sqlx::PgConnection::connect(&desk.database_url).await.unwrap();
    let start = newest_seq(&mut sql).await;
    let mut stream = Sse::open(
        &format!("{}/events/stream?event_type=retry", desk.api.base),
        Some(start),
    )
    .await;

    // The earlier transaction takes the lower seq and commits last.
    let mut early = sqlx::PgConnection::connect(&desk.database_url).await.unwrap();
    let mut late = sqlx::PgConnection::connect(&desk.database_url).await.unwrap();
    let mut early_tx = early.begin().await.unwrap();
    let low = insert_event(&mut early_tx, ticket, "early").await;
    let mut late_tx = late.begin().await.unwrap();
    let high = insert_event(&mut late_tx, ticket, "late").await;
    assert!(low < high);
    late_tx.commit().await.unwrap();
    assert!(
        stream.next_within(Duration::from_millis(800)).await.is_err(),
        "the higher seq is held back while the lower one may still commit"
    );
    early_tx.commit().await.unwrap();
    let first = stream.next().await.unwrap();
    let second = stream.next().await.unwrap();
    assert_eq!((first.id, second.id), (low, high));
    assert_eq!(first.data["payload"]["label"], "early");
    assert!(
        stream.next_within(Duration::from_millis(500)).await.is_err(),
        "each once"
    );

    // A transaction that rolls back leaves a gap the stream passes once it is over.
    let mut rolled = early.begin().await.unwrap();
    let gap = insert_event(&mut rolled, ticket, "rolled back").await;
    let after_gap = insert_event(&mut sql, ticket, "after the gap").await;
    rolled.rollback().await.unwrap();
    let next = stream.next().await.unwrap();
    assert!(gap < after_gap);
    assert_eq!(next.id, after_gap);
}

#[tokio::test]
async fn serial_a_stream_resumes_by_itself_after_postgres_restarts() {
    let desk = Distributed::start().await;
    let client = client();
    let first = create(&client, &desk.api.base, "Before the restart").await;
    let mut stream = Sse::open(&format!("{}/events/stream?event_type=created", desk.api.base), None).await;
    let before = stream.next().await.unwrap();
    assert_eq!(before.data["ticket_id"], first.as_str());

    services::stop_postgres();
    tokio::time::sleep(Duration::from_secs(2)).await;
    services::start_postgres();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let second = loop {
        let answer = client
            .post(format!("{}/tickets", desk.api.base))
            .json(&json!({ "subject": "After the restart", "body": "Hello again", "customer_id": "cust_stream" }))
            .send()
            .await;
        if let Ok(answer) = answer
            && answer.status() == 201
        {
            break answer.json::<Value>().await.unwrap()["ticket_id"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "the API never recovered");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let after = stream.next_within(Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(
        after.data["ticket_id"],
        second.as_str(),
        "the same stream, after the restart"
    );
    assert!(after.id > before.id);
    assert!(
        stream.next_within(Duration::from_millis(500)).await.is_err(),
        "nothing repeated"
    );
}
