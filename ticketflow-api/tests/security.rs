//! API keys, rate limiting, CORS, and secrets kept out of logs, errors, /health and /metrics —
//! against the real binary.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::{client, free_port, spawn_api, spawn_logging, temp_sqlite};
use ticketflow_core::testing::{FakeLlm, Reply};

fn api_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ticketflow-api"))
}

fn ticket(subject: &str) -> Value {
    json!({ "subject": subject, "body": "Where is my order ORD-1234?", "customer_id": "cust_sec" })
}

#[tokio::test]
async fn api_keys_guard_the_ticket_routes_only() {
    let api = spawn_api(&[("DATABASE_URL", temp_sqlite()), ("API_KEYS", "key-one, key-two".into())]).await;
    let c = client();
    let base = &api.base;
    let post = |auth: Option<&str>| {
        let request = c.post(format!("{base}/tickets")).json(&ticket("keys"));
        match auth {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    let missing = post(None).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(
        post(Some("key-on")).send().await.unwrap().status().as_u16(),
        401,
        "a prefix is not a key"
    );
    assert_eq!(post(Some("key-two")).send().await.unwrap().status().as_u16(), 201);
    assert_eq!(
        c.get(format!("{base}/tickets")).send().await.unwrap().status().as_u16(),
        401
    );
    assert_eq!(
        c.get(format!("{base}/tickets"))
            .bearer_auth("key-one")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    for open in ["/health", "/metrics", "/docs", "/openapi.json"] {
        assert_eq!(
            c.get(format!("{base}{open}")).send().await.unwrap().status().as_u16(),
            200,
            "{open} stays open"
        );
    }
    let spec: Value = c
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes declared");
    assert!(
        schemes.values().any(|s| s["type"] == "http" && s["scheme"] == "bearer"),
        "{schemes:?}"
    );
    assert!(
        spec["paths"]["/tickets"]["post"]["security"].is_array(),
        "create_ticket declares its security"
    );
    assert!(
        spec["paths"]["/health"]["get"]["security"].is_null(),
        "health needs none"
    );
}

#[tokio::test]
async fn ticket_creation_is_rate_limited_per_client() {
    let api = spawn_api(&[
        ("DATABASE_URL", temp_sqlite()),
        ("RATE_LIMIT_PER_MINUTE", "2".into()),
        ("API_KEYS", "alice,bob".into()),
    ])
    .await;
    let c = client();
    let create = |key: &'static str, subject: &'static str| {
        c.post(format!("{}/tickets", api.base))
            .bearer_auth(key)
            .json(&ticket(subject))
            .send()
    };
    assert_eq!(create("alice", "a1").await.unwrap().status().as_u16(), 201);
    assert_eq!(create("alice", "a2").await.unwrap().status().as_u16(), 201);
    let limited = create("alice", "a3").await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(limited.json::<Value>().await.unwrap()["error"], "rate_limited");
    assert_eq!(
        create("bob", "b1").await.unwrap().status().as_u16(),
        201,
        "another key has its own budget"
    );
    assert_eq!(
        c.get(format!("{}/tickets", api.base))
            .bearer_auth("alice")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200,
        "only creation is limited"
    );
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let api = spawn_api(&[
        ("DATABASE_URL", temp_sqlite()),
        ("CORS_ORIGINS", "https://app.example".into()),
    ])
    .await;
    let c = client();
    let preflight = |origin: &'static str| {
        c.request(reqwest::Method::OPTIONS, format!("{}/tickets", api.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    let denied = preflight("https://evil.example").await.unwrap();
    assert!(denied.headers().get("access-control-allow-origin").is_none());
    // Error responses carry the CORS headers too, or a browser could not read them.
    let missing = c
        .get(format!("{}/tickets/{}", api.base, uuid::Uuid::new_v4()))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.headers()["access-control-allow-origin"], "https://app.example");
    assert!(missing.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn secrets_never_reach_logs_errors_health_or_metrics() {
    const DB_PASSWORD: &str = "Db-Pa55word-xyz";
    const LLM_KEY: &str = "sk-llm-secret-4242";
    const API_KEY: &str = "api-secret-9999";
    let log = std::env::temp_dir().join(format!("tf_test_{}.log", uuid::Uuid::new_v4().simple()));

    // A database that refuses the connection: start-up fails, naming the setting, not the password.
    let output = std::process::Command::new(api_binary())
        .arg("migrate")
        .env(
            "DATABASE_URL",
            format!("postgres://ticketflow:{DB_PASSWORD}@127.0.0.1:1/ticketflow"),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("DATABASE_URL"), "{printed}");
    assert!(!printed.contains(DB_PASSWORD), "the password leaked: {printed}");

    // A running API whose LLM rejects the key.
    let fake = FakeLlm::start().await;
    fake.script("classify", [Reply::Status(401, None)]);
    let port = free_port();
    let api = spawn_logging(
        api_binary(),
        &[
            ("DATABASE_URL", temp_sqlite()),
            ("BIND_ADDR", format!("127.0.0.1:{port}")),
            ("API_KEYS", API_KEY.into()),
            ("OPENAI_API_KEY", LLM_KEY.into()),
            ("OPENAI_BASE_URL", fake.base_url.clone()),
            ("RUST_LOG", "debug".into()),
        ],
        port,
        Some(&log),
    )
    .await;
    let c = client();
    let created: Value = c
        .post(format!("{}/tickets", api.base))
        .bearer_auth(API_KEY)
        .json(&ticket("secrets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["ticket_id"].as_str().unwrap().to_owned();
    let mut seen = String::new();
    for _ in 0..100 {
        let ticket = c
            .get(format!("{}/tickets/{id}", api.base))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if ticket.contains("failed_permanent") {
            seen.push_str(&ticket);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen.contains("credentials"),
        "the ticket failed on the rejected key: {seen}"
    );
    for path in [format!("/tickets/{id}/events"), "/health".into(), "/metrics".into()] {
        seen.push_str(
            &c.get(format!("{}{path}", api.base))
                .bearer_auth(API_KEY)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    seen.push_str(
        &c.get(format!("{}/tickets", api.base))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    drop(api);
    seen.push_str(&std::fs::read_to_string(&log).unwrap());
    assert!(seen.contains("\"level\""), "the log was captured");
    for secret in [LLM_KEY, API_KEY, DB_PASSWORD] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
}
