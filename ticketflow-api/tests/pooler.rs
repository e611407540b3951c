//! Behind a transaction pooler (a real PgBouncer in transaction mode, as Supabase's port 6543):
//! the API and a worker serve the whole contract, migrations go over the direct URL, and a
//! store that cannot reach its tables is unhealthy rather than "healthy" and broken.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{PgBouncer, client, free_port, fresh_postgres, get_json, spawn, wait_for_status, worker_binary};

fn api_binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_ticketflow-api"))
}

#[tokio::test]
async fn the_api_and_a_worker_work_through_pgbouncer_in_transaction_mode() {
    let bouncer = PgBouncer::start().await;
    let direct = fresh_postgres().await;
    let pooled = bouncer.url_for(&direct);
    let rabbitmq_url =
        std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let (api_port, worker_port) = (free_port(), free_port());
    let shared = [
        ("DATABASE_URL", pooled.clone()),
        ("DATABASE_MIGRATION_URL", direct.clone()),
        ("RABBITMQ_URL", rabbitmq_url),
        ("QUEUE_NAME", format!("tf_test_{}", uuid::Uuid::new_v4().simple())),
    ];
    let mut api_env = shared.to_vec();
    api_env.push(("BIND_ADDR", format!("127.0.0.1:{api_port}")));
    let api = spawn(api_binary(), &api_env, api_port).await;
    let mut worker_env = shared.to_vec();
    worker_env.push(("WORKER_BIND_ADDR", format!("127.0.0.1:{worker_port}")));
    let worker = spawn(&worker_binary(), &worker_env, worker_port).await;

    let http = client();
    let health = get_json(&http, &format!("{}/health", api.base)).await;
    assert_eq!(health["status"], "healthy", "{health}");
    // Concurrent clients, so that the pooler hands statements to different server
    // connections.
    let creates = (0..20).map(|i| {
        let (http, base) = (http.clone(), api.base.clone());
        async move {
            let response = http
                .post(format!("{base}/tickets"))
                .json(&json!({
                    "subject": format!("Charged twice ({i})"),
                    "body": format!("Two charges for order ORD-{} this week.", 55000 + i),
                    "customer_id": format!("cust_{}", i % 3),
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["ticket_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    });
    let ids = futures::future::join_all(creates).await;
    for id in &ids {
        let ticket = wait_for_status(&http, &api.base, id, "completed").await;
        assert!(
            ticket["result"]["final_response"]
                .as_str()
                .is_some_and(|r| !r.is_empty())
        );
        let events: Vec<Value> =
            serde_json::from_value(get_json(&http, &format!("{}/tickets/{id}/events", api.base)).await).unwrap();
        let steps = events.iter().filter(|e| e["event_type"] == "step_complete").count();
        assert_eq!(steps, 6, "one step_complete per step for {id}");
    }
    let page = get_json(&http, &format!("{}/tickets?status=completed&page_size=100", api.base)).await;
    assert_eq!(page["total"], 20);
    assert!(worker.terminate().success());
    assert!(api.terminate().success());
}

#[tokio::test]
async fn migrations_need_a_direct_url_behind_a_pooler() {
    let bouncer = PgBouncer::start().await;
    let direct = fresh_postgres().await;
    let output = std::process::Command::new(api_binary())
        .arg("migrate")
        .env("DATABASE_URL", bouncer.url_for(&direct))
        .env_remove("DATABASE_MIGRATION_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_MIGRATION_URL"), "{stderr}");
}

#[tokio::test]
async fn a_store_that_cannot_read_its_tables_is_unhealthy() {
    let bouncer = PgBouncer::start().await;
    // A database without the migrations: connections work, the tables are not there.
    let direct = fresh_postgres().await;
    let port = free_port();
    let env = [
        ("DATABASE_URL", bouncer.url_for(&direct)),
        ("AUTO_MIGRATE", "false".into()),
        ("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
    ];
    let mut command = std::process::Command::new(api_binary());
    command
        .env_remove("RABBITMQ_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (key, value) in &env {
        command.env(key, value);
    }
    let mut api = command.spawn().unwrap();
    let http = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(response) = http.get(format!("http://127.0.0.1:{port}/health")).send().await {
            break (response.status().as_u16(), response.json::<Value>().await.unwrap());
        }
        assert!(tokio::time::Instant::now() < deadline, "the API did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = api.kill();
    let _ = api.wait();
    assert_eq!(answer.0, 503, "{:?}", answer.1);
    assert_eq!(answer.1["database"], "unhealthy");
}

#[tokio::test]
async fn streams_follow_tickets_behind_the_pooler_by_polling_or_by_a_listen_url() {
    let bouncer = PgBouncer::start().await;
    let direct = fresh_postgres().await;
    let rabbitmq_url =
        std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let shared = [
        ("DATABASE_URL", bouncer.url_for(&direct)),
        ("DATABASE_MIGRATION_URL", direct.clone()),
        ("RABBITMQ_URL", rabbitmq_url),
        ("QUEUE_NAME", format!("tf_test_{}", uuid::Uuid::new_v4().simple())),
    ];
    // One API polls (the pooler keeps no LISTEN); the other listens on a direct connection.
    let (polling_port, listening_port, worker_port) = (free_port(), free_port(), free_port());
    let mut polling_env = shared.to_vec();
    polling_env.push(("BIND_ADDR", format!("127.0.0.1:{polling_port}")));
    let polling = spawn(api_binary(), &polling_env, polling_port).await;
    let mut listening_env = shared.to_vec();
    listening_env.push(("BIND_ADDR", format!("127.0.0.1:{listening_port}")));
    listening_env.push(("DATABASE_LISTEN_URL", direct.clone()));
    let listening = spawn(api_binary(), &listening_env, listening_port).await;

    let http = client();
    let response = http
        .post(format!("{}/tickets", polling.base))
        .json(&json!({ "subject": "Streamed through the pooler", "body": "Where is order ORD-55812?", "customer_id": "cust_pool" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut streams = Vec::new();
    for api in [&polling, &listening] {
        streams.push(support::sse::Sse::open(&format!("{}/tickets/{id}/stream", api.base), None).await);
    }
    let mut worker_env = shared.to_vec();
    worker_env.push(("WORKER_BIND_ADDR", format!("127.0.0.1:{worker_port}")));
    let _worker = spawn(&worker_binary(), &worker_env, worker_port).await;
    let mut seen = Vec::new();
    for stream in &mut streams {
        let frames = stream.rest().await;
        let steps = frames.iter().filter(|f| f.event == "step_complete").count();
        assert_eq!(steps, 6, "{frames:?}");
        seen.push(frames.iter().map(|f| f.id).collect::<Vec<_>>());
    }
    assert_eq!(seen[0], seen[1], "both APIs streamed the same events");
}
