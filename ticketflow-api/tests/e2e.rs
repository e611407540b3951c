//! End to end: the real binaries on free ports, driven over HTTP, in both modes.

use std::time::Duration;

use serde_json::{Value, json};
use support::{
    client, free_port, fresh_postgres, get_json, spawn, spawn_api, temp_sqlite, wait_for_status, worker_binary,
};
use ticketflow_core::testing::{FakeLlm, Reply};

mod support;

async fn create(client: &reqwest::Client, base: &str, body: Value, request_id: &str) -> (u16, Value, String) {
    let response = client
        .post(format!("{base}/tickets"))
        .header("x-request-id", request_id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let echoed = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    (status, response.json().await.unwrap(), echoed)
}

async fn events(client: &reqwest::Client, base: &str, id: &str) -> Vec<Value> {
    serde_json::from_value(get_json(client, &format!("{base}/tickets/{id}/events")).await).unwrap()
}

fn step_names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event_type"] == "step_complete")
        .map(|e| e["step_name"].as_str().unwrap().to_owned())
        .collect()
}

fn ticket_body(subject: &str) -> Value {
    json!({ "subject": subject, "body": "My card was charged twice for order ORD-55812.", "customer_id": "cust_e2e" })
}

#[tokio::test]
async fn embedded_mode_serves_the_whole_lifecycle() {
    let api = spawn_api(&[("DATABASE_URL", temp_sqlite())]).await;
    let base = api.base.clone();
    let client = client();

    // Create, and a duplicate gets the same id.
    let (status, created, echoed) = create(&client, &base, ticket_body("Charged twice"), "e2e-req-1").await;
    assert_eq!(status, 201);
    assert_eq!(created["status"], "pending");
    assert_eq!(echoed, "e2e-req-1", "the caller's request id is kept");
    let id = created["ticket_id"].as_str().unwrap().to_owned();
    let (status, duplicate, _) = create(&client, &base, ticket_body("Charged twice"), "e2e-req-2").await;
    assert_eq!(status, 201);
    assert_eq!(duplicate["ticket_id"], created["ticket_id"]);

    // Poll to completed; six steps in order; the request id reached the events.
    let ticket = wait_for_status(&client, &base, &id, "completed").await;
    assert_eq!(ticket["result"]["classification"], "billing");
    assert_eq!(ticket["result"]["entities"]["order_id"], "ORD-55812");
    assert!(
        ticket["result"]["final_response"]
            .as_str()
            .unwrap()
            .contains("ORD-55812")
    );
    assert_eq!(ticket["result"]["engine"]["classify"]["engine"], "offline");
    let all = events(&client, &base, &id).await;
    assert_eq!(
        step_names(&all),
        ["classify", "extract", "research", "draft", "review", "finalize"]
    );
    assert!(
        all.iter()
            .filter(|e| e["event_type"] == "step_complete")
            .all(|e| e["request_id"] == "e2e-req-1")
    );
    assert_eq!(all.first().unwrap()["event_type"], "created");

    // Lists and filters.
    let list: Value = client
        .get(format!("{base}/tickets?status=completed&page_size=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["page_size"], 5);

    // Errors: one JSON shape, the right status, the field named, the request id stamped.
    let cases: Vec<(reqwest::RequestBuilder, u16, Option<&str>)> = vec![
        (
            client
                .post(format!("{base}/tickets"))
                .json(&json!({ "subject": "", "body": "b", "customer_id": "c" })),
            422,
            Some("subject"),
        ),
        (
            client
                .post(format!("{base}/tickets"))
                .json(&json!({ "subject": "s", "body": "b" })),
            422,
            Some("customer_id"),
        ),
        (
            client
                .post(format!("{base}/tickets"))
                .json(&json!({ "subject": "s", "body": "nul \u{0} here", "customer_id": "c" })),
            422,
            Some("body"),
        ),
        (
            client
                .post(format!("{base}/tickets"))
                .header("content-type", "application/json")
                .body("{not json"),
            422,
            None,
        ),
        (client.post(format!("{base}/tickets")).body("subject=x"), 415, None),
        (
            client
                .post(format!("{base}/tickets"))
                .header("content-type", "application/json")
                .body(vec![b'x'; 100_000]),
            413,
            None,
        ),
        (client.get(format!("{base}/tickets/not-a-uuid")), 400, Some("id")),
        (
            client.get(format!("{base}/tickets/{}", uuid::Uuid::new_v4())),
            404,
            None,
        ),
        (
            client.get(format!("{base}/tickets/{}/events", uuid::Uuid::new_v4())),
            404,
            None,
        ),
        (
            client.get(format!("{base}/tickets?page_size=1000")),
            422,
            Some("page_size"),
        ),
        (client.post(format!("{base}/tickets/{id}/retry")), 409, None),
    ];
    for (request, want, field) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert!(
            response.headers().contains_key("x-request-id"),
            "errors carry X-Request-ID too"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, want, "{body}");
        assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{body}");
        }
    }

    // Same Idempotency-Key, other content: 409.
    let keyed = |subject: &str| {
        client
            .post(format!("{base}/tickets"))
            .header("idempotency-key", "k-1")
            .json(&ticket_body(subject))
    };
    assert_eq!(keyed("first").send().await.unwrap().status().as_u16(), 201);
    assert_eq!(keyed("first").send().await.unwrap().status().as_u16(), 201);
    assert_eq!(keyed("second").send().await.unwrap().status().as_u16(), 409);

    // Health, metrics, the OpenAPI document and its UI.
    let health: Value = client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        json!({ "status": "healthy", "database": "healthy", "queue": "healthy" })
    );
    // The processed counter is bumped just after the ticket's final write: poll briefly.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("tickets_processed_total{status=\"completed\"}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.contains("tickets_created_total"));
    assert!(metrics.contains("tickets_processed_total{status=\"completed\"}"));
    assert!(
        metrics.contains("route=\"create_ticket\""),
        "route templates label the latency histogram"
    );
    assert!(!metrics.contains(&id), "no raw paths in labels");
    let spec: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/tickets",
        "/tickets/{id}",
        "/tickets/{id}/events",
        "/tickets/{id}/retry",
        "/health",
    ] {
        assert!(spec["paths"][path].is_object(), "spec documents {path}");
    }
    let responses = &spec["paths"]["/tickets"]["post"]["responses"];
    for status in ["201", "400", "404", "409", "413", "415", "422", "503"] {
        assert!(responses[status].is_object(), "create_ticket declares {status}");
    }
    let docs = client.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.unwrap().to_lowercase().contains("swagger"));

    // What only the HTTP server sees: a declared body over the limit is refused before it is
    // read (and the connection closed), huge headers are ignored or refused, never a 5xx.
    let too_large = client
        .post(format!("{base}/tickets"))
        .header("content-type", "application/json")
        .body(vec![b'{'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status().as_u16(), 413);
    assert_eq!(too_large.json::<Value>().await.unwrap()["error"], "payload_too_large");
    for size in [200_000, 2_000_000] {
        let huge = client
            .get(format!("{base}/tickets"))
            .header("x-padding", "p".repeat(size))
            .send()
            .await;
        if let Ok(response) = huge {
            assert!(!response.status().is_server_error(), "{size}: {}", response.status());
        }
    }
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    assert!(api.terminate().success(), "SIGTERM shuts the API down cleanly");
}

#[tokio::test]
async fn a_failed_ticket_is_retried_over_http_and_completes() {
    let fake = FakeLlm::start().await;
    fake.script("classify", [Reply::Status(401, None)]);
    let api = spawn_api(&[
        ("DATABASE_URL", temp_sqlite()),
        ("OPENAI_API_KEY", "sk-e2e".into()),
        ("OPENAI_BASE_URL", fake.base_url.clone()),
    ])
    .await;
    let client = client();
    let (_, created, _) = create(&client, &api.base, ticket_body("Rejected key"), "e2e-fail").await;
    let id = created["ticket_id"].as_str().unwrap().to_owned();
    let failed = wait_for_status(&client, &api.base, &id, "failed_permanent").await;
    assert!(failed["result"]["error"].as_str().unwrap().contains("credentials"));
    let retried = client
        .post(format!("{}/tickets/{id}/retry", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status().as_u16(), 202);
    let done = wait_for_status(&client, &api.base, &id, "completed").await;
    assert_eq!(done["result"]["engine"]["classify"]["engine"], "openai");
    let kinds: Vec<String> = events(&client, &api.base, &id)
        .await
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"error".to_owned()) && kinds.contains(&"retry".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn distributed_mode_with_postgres_rabbitmq_and_a_worker() {
    let database_url = fresh_postgres().await;
    let rabbitmq_url =
        std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let queue_name = format!("tf_test_{}", uuid::Uuid::new_v4().simple());
    let api_port = free_port();
    let worker_port = free_port();
    let shared = [
        ("DATABASE_URL", database_url.clone()),
        ("RABBITMQ_URL", rabbitmq_url.clone()),
        ("QUEUE_NAME", queue_name.clone()),
    ];
    let mut api_env = shared.to_vec();
    api_env.push(("BIND_ADDR", format!("127.0.0.1:{api_port}")));
    let api = spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_ticketflow-api")),
        &api_env,
        api_port,
    )
    .await;
    let mut worker_env = shared.to_vec();
    worker_env.push(("WORKER_BIND_ADDR", format!("127.0.0.1:{worker_port}")));
    worker_env.push(("PREFETCH_COUNT", "4".into()));
    let worker = spawn(&worker_binary(), &worker_env, worker_port).await;

    let client = client();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, created, _) = create(
            &client,
            &api.base,
            ticket_body(&format!("distributed {i}")),
            &format!("dist-{i}"),
        )
        .await;
        assert_eq!(status, 201);
        ids.push(created["ticket_id"].as_str().unwrap().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        wait_for_status(&client, &api.base, id, "completed").await;
        let all = events(&client, &api.base, id).await;
        assert_eq!(
            step_names(&all),
            ["classify", "extract", "research", "draft", "review", "finalize"]
        );
        let want = format!("dist-{i}");
        assert!(
            all.iter()
                .filter(|e| e["event_type"] == "step_complete")
                .all(|e| e["request_id"] == want.as_str()),
            "the request id crossed the outbox and RabbitMQ into the worker's events"
        );
    }
    let worker_metrics = client
        .get(format!("{}/metrics", worker.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        worker_metrics.contains("tickets_processed_total{status=\"completed\"} 3"),
        "{worker_metrics}"
    );
    assert!(worker_metrics.contains("workflow_step_duration_seconds"));
    let health: Value = client
        .get(format!("{}/health", worker.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    assert!(worker.terminate().success());
    assert!(api.terminate().success());
}
