//! Outbound webhooks against a loopback receiver whose signature check is the Standard
//! Webhooks reference implementation: an outage, failures, a redirect, a slow and a huge
//! answer, then every event delivered once per (event, endpoint); a receiver that never
//! answers; the deliveries API; start-up errors.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use support::webhooks::{Receiver, SECRET};
use support::{client, get_json, spawn_api, temp_sqlite, wait_for_status};

mod support;

async fn create(http: &reqwest::Client, base: &str, body: Value) -> String {
    let response = http.post(format!("{base}/tickets")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn env(receiver_urls: &str, retry_hours: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", temp_sqlite()),
        ("WEBHOOK_URLS", receiver_urls.to_owned()),
        ("WEBHOOK_SECRET", SECRET.to_owned()),
        ("WEBHOOK_RETRY_SECONDS", "0.5".into()),
        ("WEBHOOK_MAX_RETRY_SECONDS", "2".into()),
        ("WEBHOOK_TIMEOUT_SECONDS", "1".into()),
        ("WEBHOOK_RETRY_HOURS", retry_hours.to_owned()),
    ]
}

#[tokio::test]
async fn every_event_reaches_a_receiver_that_was_down_then_failing_signed_and_once_per_endpoint() {
    let mut receiver = Receiver::new();
    let api = spawn_api(&env(&receiver.url(), "24")).await;
    let http = client();

    // While the receiver is down: two tickets complete, and a refund waits for a person who
    // approves it.
    let plain = create(
        &http,
        &api.base,
        json!({ "customer_id": "cust_hook", "subject": "Opening hours", "body": "When are you open on Sundays?" }),
    )
    .await;
    let second = create(
        &http,
        &api.base,
        json!({ "customer_id": "cust_hook", "subject": "Shipping", "body": "Do you ship to Canada?" }),
    )
    .await;
    let refund = create(
        &http,
        &api.base,
        json!({ "customer_id": "cust_john_doe", "subject": "Refund please",
                "body": "The Wireless Headphones Pro from order ord_12345 broke. Refund them, please." }),
    )
    .await;
    wait_for_status(&http, &api.base, &plain, "completed").await;
    wait_for_status(&http, &api.base, &second, "completed").await;
    wait_for_status(&http, &api.base, &refund, "awaiting_approval").await;
    let approvals = get_json(&http, &format!("{}/approvals?ticket_id={refund}", api.base)).await;
    let approval = approvals["approvals"][0]["id"].as_str().unwrap().to_owned();
    let decided = http
        .post(format!("{}/approvals/{approval}/decide", api.base))
        .json(&json!({ "approved": true, "decided_by": "maria" }))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    wait_for_status(&http, &api.base, &refund, "completed").await;

    // Five events so far, each a pending delivery with failed attempts.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let pending = get_json(&http, &format!("{}/webhooks/deliveries?status=pending", api.base)).await;
    assert_eq!(pending["total"], 5, "{pending}");
    assert!(
        pending["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["attempts"].as_i64().unwrap() >= 2
                && d["last_error"].is_string()
                && d["next_attempt_at"].is_string()),
        "{pending}"
    );

    // Back, but answering 500 twice, then a redirect, then too slowly, then a 10 MB 200.
    receiver.start(&["500", "500", "302", "slow", "big"]).await;
    let accepted = receiver.wait_for_accepted(5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let requests = receiver.requests();
    assert!(
        requests.iter().all(|r| r["verified"] == true),
        "the reference implementation verified every request"
    );
    assert_eq!(
        requests.len(),
        accepted.len() + 4,
        "nothing after an acceptance: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| r["path"] == "/hooks"),
        "the redirect was not followed"
    );

    // One webhook-id per event, kept across its attempts.
    let ids: BTreeSet<&str> = accepted.iter().map(|r| r["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 5, "{accepted:?}");
    let all_ids: BTreeSet<&str> = requests.iter().map(|r| r["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(all_ids, ids, "the failed attempts carried the same ids");
    let mut types: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for request in &accepted {
        let body = &request["body"];
        types
            .entry(body["type"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["data"].clone());
        assert!(body["timestamp"].is_string());
    }
    assert_eq!(types["ticket.completed"].len(), 3);
    assert!(
        types["ticket.completed"]
            .iter()
            .all(|d| d["status"] == "completed" && d["result"]["final_response"].is_string())
    );
    assert_eq!(types["ticket.awaiting_approval"].len(), 1);
    assert_eq!(types["ticket.awaiting_approval"][0]["id"], refund.as_str());
    assert_eq!(
        types["ticket.awaiting_approval"][0]["status"], "awaiting_approval",
        "the ticket as that event left it"
    );
    let decision = &types["approval.decided"][0];
    assert_eq!(decision["approval_id"], approval.as_str());
    assert_eq!(decision["approved"], true);
    assert_eq!(decision["decided_by"], "maria");
    assert_eq!(decision["ticket"]["id"], refund.as_str());

    // The deliveries API: all delivered, filters, retry rules.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let delivered = loop {
        let page = get_json(&http, &format!("{}/webhooks/deliveries?status=delivered", api.base)).await;
        if page["total"] == 5 || tokio::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivered["total"], 5, "{delivered}");
    let listed: BTreeSet<&str> = delivered["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    let of_refund = get_json(&http, &format!("{}/webhooks/deliveries?ticket_id={refund}", api.base)).await;
    assert_eq!(of_refund["total"], 3);
    let decisions = get_json(
        &http,
        &format!("{}/webhooks/deliveries?event_type=approval.decided", api.base),
    )
    .await;
    assert_eq!(decisions["total"], 1);
    let one = decisions["deliveries"][0]["id"].as_i64().unwrap();
    let again = http
        .post(format!("{}/webhooks/deliveries/{one}/retry", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "a delivered webhook is not sent again");
    let unknown = http
        .post(format!("{}/webhooks/deliveries/999999/retry", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "not_found");
    let bad = http
        .get(format!("{}/webhooks/deliveries?event_type=ticket.nope", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn a_receiver_that_never_answers_fails_the_delivery_after_the_window_and_a_person_can_retry() {
    // Nothing listens on this port; the retry window is two seconds.
    let nobody = format!("http://127.0.0.1:{}/gone", support::free_port());
    let api = spawn_api(&env(&nobody, "0.0006")).await;
    let http = client();
    let id = create(
        &http,
        &api.base,
        json!({ "customer_id": "cust_hook", "subject": "Opening hours", "body": "When are you open on Sundays?" }),
    )
    .await;
    wait_for_status(&http, &api.base, &id, "completed").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let page = get_json(&http, &format!("{}/webhooks/deliveries?status=failed", api.base)).await;
        if page["total"] == 1 {
            break page["deliveries"][0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "never failed: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(failed["event_type"], "ticket.completed");
    assert!(
        failed["last_error"].as_str().unwrap().contains("cannot reach"),
        "{failed}"
    );
    assert!(failed["next_attempt_at"].is_null());
    let attempts = failed["attempts"].as_i64().unwrap();

    let retried = http
        .post(format!("{}/webhooks/deliveries/{}/retry", api.base, failed["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 202);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["status"], "pending");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = get_json(&http, &format!("{}/webhooks/deliveries?status=failed", api.base)).await;
        if page["total"] == 1 && page["deliveries"][0]["attempts"].as_i64().unwrap() > attempts {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retry was never attempted: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn bad_webhook_settings_stop_the_start_with_the_setting_named() {
    for (urls, secret, named) in [
        ("ftp://example.com/hook", SECRET, "WEBHOOK_URLS"),
        ("http://127.0.0.1:9/hook,not a url", SECRET, "WEBHOOK_URLS"),
        ("http://127.0.0.1:9/hook", "", "WEBHOOK_SECRET"),
        ("http://127.0.0.1:9/hook", "whsec_not-base64!", "WEBHOOK_SECRET"),
    ] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ticketflow-api"));
        command
            .env("DATABASE_URL", temp_sqlite())
            .env("BIND_ADDR", format!("127.0.0.1:{}", support::free_port()))
            .env("WEBHOOK_URLS", urls)
            .env_remove("RABBITMQ_URL");
        if secret.is_empty() {
            command.env_remove("WEBHOOK_SECRET");
        } else {
            command.env("WEBHOOK_SECRET", secret);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{urls} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{urls}: {stderr}");
        assert!(
            !stderr.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "the secret is never printed"
        );
    }
}

#[tokio::test]
async fn a_worker_on_postgres_delivers_the_webhooks_of_the_tickets_it_processes() {
    let mut receiver = Receiver::new();
    receiver.start(&[]).await;
    let database_url = support::fresh_postgres().await;
    let rabbitmq_url =
        std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let shared = vec![
        ("DATABASE_URL", database_url),
        ("RABBITMQ_URL", rabbitmq_url),
        ("QUEUE_NAME", format!("tf_test_{}", uuid::Uuid::new_v4().simple())),
    ];
    let api = spawn_api(&shared).await;
    let port = support::free_port();
    let mut worker_env = shared.clone();
    worker_env.extend([
        ("WORKER_BIND_ADDR", format!("127.0.0.1:{port}")),
        ("WEBHOOK_URLS", receiver.url()),
        ("WEBHOOK_SECRET", SECRET.to_owned()),
    ]);
    let _worker = support::spawn(&support::worker_binary(), &worker_env, port).await;
    let http = client();
    let id = create(
        &http,
        &api.base,
        json!({ "customer_id": "cust_hook", "subject": "Opening hours", "body": "When are you open on Sundays?" }),
    )
    .await;
    wait_for_status(&http, &api.base, &id, "completed").await;
    let accepted = receiver.wait_for_accepted(1).await;
    assert_eq!(accepted[0]["verified"], true);
    assert_eq!(accepted[0]["body"]["type"], "ticket.completed");
    assert_eq!(accepted[0]["body"]["data"]["id"], id.as_str());
    let listed = get_json(&http, &format!("{}/webhooks/deliveries?ticket_id={id}", api.base)).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["deliveries"][0]["webhook_id"], accepted[0]["webhook_id"]);
}
