//! API keys, rate limiting and CORS, in-process; secrets kept out of logs, errors, /health
//! and /metrics, against the real binary (what it prints is what is tested).

mod support;

use std::path::Path;

use poem::http::Method;
use serde_json::{Value, json};
use support::app::TestApp;
use support::{client, free_port, spawn_logging, temp_sqlite};
use ticketflow_core::testing::{FakeLlm, Reply};

fn api_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ticketflow-api"))
}

fn ticket(subject: &str) -> Value {
    json!({ "subject": subject, "body": "Where is my order ORD-1234?", "customer_id": "cust_sec" })
}

#[tokio::test]
async fn api_keys_guard_the_ticket_routes_only() {
    let api = TestApp::start(&[("API_KEYS", "key-one, key-two")]).await;
    let post = |auth: Option<&'static str>| {
        let header = auth.map(|token| format!("Bearer {token}"));
        let api = &api;
        async move {
            let headers: Vec<(&str, &str)> = header.iter().map(|h| ("authorization", h.as_str())).collect();
            api.post_json("/tickets", &ticket("keys"), &headers).await
        }
    };
    let missing = post(None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json["error"], "unauthorized");
    assert_eq!(post(Some("key-on")).await.status, 401, "a prefix is not a key");
    assert_eq!(post(Some("key-two")).await.status, 201);
    assert_eq!(api.get("/tickets").await.status, 401);
    let listed = api
        .request(Method::GET, "/tickets", &[("authorization", "Bearer key-one")], None)
        .await;
    assert_eq!(listed.status, 200);
    for open in ["/health", "/metrics", "/docs", "/openapi.json"] {
        assert_eq!(api.get(open).await.status, 200, "{open} stays open");
    }
    let spec = api.get("/openapi.json").await.json;
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
    api.stop().await;
}

#[tokio::test]
async fn ticket_creation_is_rate_limited_per_client() {
    let api = TestApp::start(&[("RATE_LIMIT_PER_MINUTE", "2"), ("API_KEYS", "alice,bob")]).await;
    let create = |key: &'static str, subject: &'static str| {
        let api = &api;
        async move {
            let auth = format!("Bearer {key}");
            api.post_json("/tickets", &ticket(subject), &[("authorization", auth.as_str())])
                .await
        }
    };
    assert_eq!(create("alice", "a1").await.status, 201);
    assert_eq!(create("alice", "a2").await.status, 201);
    let limited = create("alice", "a3").await;
    assert_eq!(limited.status, 429);
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(limited.json["error"], "rate_limited");
    assert_eq!(create("bob", "b1").await.status, 201, "another key has its own budget");
    let listed = api
        .request(Method::GET, "/tickets", &[("authorization", "Bearer alice")], None)
        .await;
    assert_eq!(listed.status, 200, "only creation is limited");
    api.stop().await;
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let api = TestApp::start(&[("CORS_ORIGINS", "https://app.example")]).await;
    let preflight = |origin: &'static str| {
        let api = &api;
        async move {
            let headers = [
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ];
            api.request(Method::OPTIONS, "/tickets", &headers, None).await
        }
    };
    let allowed = preflight("https://app.example").await;
    assert_eq!(allowed.headers["access-control-allow-origin"], "https://app.example");
    let denied = preflight("https://evil.example").await;
    assert!(denied.headers.get("access-control-allow-origin").is_none());
    // Error responses carry the CORS headers too, or a browser could not read them.
    let path = format!("/tickets/{}", uuid::Uuid::new_v4());
    let missing = api
        .request(Method::GET, &path, &[("origin", "https://app.example")], None)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.headers["access-control-allow-origin"], "https://app.example");
    assert!(missing.headers.contains_key("x-request-id"));
    api.stop().await;
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
