//! Human approval through the real binaries: the API and a worker on PostgreSQL and RabbitMQ,
//! with the LLM engine on a chat-completions server on loopback (FakeLlm). A decision resumes
//! the very run (the LLM calls before the gate are not made again); the worker SIGKILLed
//! while the approved refund's transaction waits, and again just after it committed, leaves
//! one refund and a completed ticket; a ticket held by an older graph version is resumed by
//! this one.

mod support;

use std::time::Duration;

use serde_json::json;
use support::desk::{Desk, kill};
use ticketflow_core::testing::{FakeLlm, Reply};

/// The classifier and extractor's answers for a refund request of `order`.
fn script_refund(fake: &FakeLlm, order: &str) {
    fake.script(
        "classify",
        [Reply::Json(
            json!({ "category": "billing", "confidence": 0.95, "rationale": "asks for a refund" }),
        )],
    );
    fake.script(
        "extract",
        [Reply::Json(
            json!({ "order_id": order, "product": "headphones", "issue_type": "refund_request", "urgency": "medium" }),
        )],
    );
}

#[tokio::test]
async fn the_llm_engine_states_real_facts_and_a_decision_resumes_the_same_run() {
    let fake = FakeLlm::start().await;
    let desk = Desk::start(&[
        ("OPENAI_API_KEY", "sk-approval".into()),
        ("OPENAI_BASE_URL", fake.base_url.clone()),
    ])
    .await;
    let worker = desk.worker().await;

    // A status question: the draft's prompt carries the order's real carrier and tracking
    // number; another customer's order reaches no prompt.
    fake.script(
        "extract",
        [Reply::Json(
            json!({ "order_id": "ord_12345", "product": null, "issue_type": "shipping_delay", "urgency": "medium" }),
        )],
    );
    let id = desk
        .create(
            "cust_john_doe",
            "Where is my order?",
            "My order ord_12345 has not arrived yet.",
        )
        .await;
    desk.wait_for(&id, "completed").await;
    let mut conn = desk.sql().await;
    let tracking: String = sqlx::query_scalar("SELECT tracking_number FROM ticketflow.orders WHERE id = 'ord_12345'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let prompt = |call: &ticketflow_core::testing::LlmCall| call.body["messages"].to_string();
    let drafts: Vec<String> = fake.calls().iter().filter(|c| c.step == "draft").map(prompt).collect();
    assert!(
        drafts.iter().any(|p| p.contains(&tracking) && p.contains("UPS")),
        "{drafts:?}"
    );
    // A draft that invents a tracking number and an amount is sent back by the review.
    fake.script(
        "extract",
        [Reply::Json(
            json!({ "order_id": "ord_12345", "product": null, "issue_type": "shipping_delay", "urgency": "medium" }),
        )],
    );
    fake.script(
        "draft",
        [Reply::Json(json!({ "reply": format!(
            "Hello John,\n\nYour order ord_12345 is with UPS, tracking number 1Z999AA1000000001, and we have \
             added a $25.00 voucher to your account for the wait. It arrives tomorrow.\n\nBest regards,\nNorthwind Support"
        ) })),
        Reply::Json(json!({ "reply": format!(
            "Hello John,\n\nSorry your parcel is late. Your order ord_12345 shipped with UPS, tracking number \
             {tracking}, and is on its way to you; the tracking page shows where it is now.\n\nBest regards,\n\
             Northwind Support"
        ) }))],
    );
    let drafts_before = fake.calls_for("draft");
    let id = desk
        .create("cust_john_doe", "Late parcel", "Order ord_12345 is late. Where is it?")
        .await;
    let ticket = desk.wait_for(&id, "completed").await;
    assert_eq!(
        fake.calls_for("draft"),
        drafts_before + 2,
        "the invented draft was sent back once: {}",
        ticket["result"]["review"]
    );
    let revised = ticket["result"]["final_response"].as_str().unwrap();
    assert!(
        !revised.contains("1Z999AA1000000001") && !revised.contains("$25.00"),
        "{revised}"
    );
    assert!(revised.contains(&tracking), "{revised}");
    let sent_back = fake
        .calls()
        .iter()
        .rev()
        .find(|c| c.step == "draft")
        .map(prompt)
        .unwrap();
    assert!(
        sent_back.contains("1Z999AA1000000001") && sent_back.contains("not in the order"),
        "the revision request names what was invented: {sent_back}"
    );

    let before = fake.calls().len();
    fake.script(
        "extract",
        [Reply::Json(
            json!({ "order_id": "ord_12345", "product": null, "issue_type": "shipping_delay", "urgency": "medium" }),
        )],
    );
    let id = desk
        .create("cust_jane_smith", "Where is my order?", "Where is order ord_12345?")
        .await;
    desk.wait_for(&id, "completed").await;
    let later: Vec<String> = fake.calls()[before..].iter().map(prompt).collect();
    assert!(
        later.iter().all(|p| !p.contains(&tracking) && !p.contains("Main St")),
        "{later:?}"
    );

    // A refund: held after research; the decision resumes the run at the gate, and the
    // LLM calls made before it are not made again.
    script_refund(&fake, "ord_12345");
    let id = desk
        .create(
            "cust_john_doe",
            "Refund",
            "Please refund the headphones from order ord_12345.",
        )
        .await;
    desk.wait_for(&id, "awaiting_approval").await;
    let calls_for = |step: &str| fake.calls_for(step);
    let (classify, extract, draft) = (calls_for("classify"), calls_for("extract"), calls_for("draft"));
    let approval = desk.pending_approval(&id).await;
    assert_eq!(approval["action_params"]["order_id"], "ord_12345");
    desk.decide(&approval, json!({ "approved": true, "decided_by": "maria" }))
        .await;
    let done = desk.wait_for(&id, "completed").await;
    assert_eq!(
        (calls_for("classify"), calls_for("extract")),
        (classify, extract),
        "nothing before the gate again"
    );
    assert!(calls_for("draft") > draft, "the draft comes after the gate");
    assert_eq!(desk.refunds("ord_12345").await, 1);
    let refund = done["result"]["actions_taken"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tool"] == "process_refund")
        .cloned()
        .unwrap();
    assert_eq!(refund["status"], "executed");
    let refund_id = refund["result"]["refund_id"].as_str().unwrap();
    // The draft prompt after the gate carries what was done.
    let last_draft = fake
        .calls()
        .iter()
        .rev()
        .find(|c| c.step == "draft")
        .map(prompt)
        .unwrap();
    assert!(last_draft.contains(refund_id), "{last_draft}");
    assert!(worker.terminate().success());
}

/// Locks order `order`'s row until the returned connection's transaction ends: a refund of it
/// waits, in its transaction, before it commits.
async fn lock_order(desk: &Desk, order: &str) -> sqlx::PgConnection {
    let mut conn = desk.sql().await;
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("SELECT 1 FROM ticketflow.orders WHERE id = $1 FOR UPDATE")
        .bind(order)
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// Waits until a statement of another session waits for a row lock.
async fn until_a_statement_waits_for_a_lock(desk: &Desk) {
    let mut conn = desk.sql().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no statement ever waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_worker_killed_around_the_refunds_commit_leaves_one_refund() {
    let desk = Desk::start(&[]).await;

    // Killed while the approved refund's transaction waits to commit: nothing was refunded,
    // and the next worker refunds once.
    let worker = desk.worker().await;
    let id = desk
        .create(
            "cust_john_doe",
            "Refund",
            "Please refund the Wireless Headphones Pro from order ord_12345.",
        )
        .await;
    desk.wait_for(&id, "awaiting_approval").await;
    let approval = desk.pending_approval(&id).await;
    let mut lock = lock_order(&desk, "ord_12345").await;
    desk.decide(&approval, json!({ "approved": true })).await;
    until_a_statement_waits_for_a_lock(&desk).await;
    kill(worker);
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    assert_eq!(
        desk.refunds("ord_12345").await,
        0,
        "the killed run's refund never committed"
    );
    let worker = desk.worker().await;
    let done = desk.wait_for(&id, "completed").await;
    assert_eq!(desk.refunds("ord_12345").await, 1);
    let reply = done["result"]["final_response"].as_str().unwrap();
    assert!(reply.contains("149.99"), "{reply}");
    kill(worker);

    // Killed just after the refund committed: the next worker finds the call executed and
    // refunds nothing more.
    let worker = desk.worker().await;
    let id = desk
        .create(
            "cust_alice_jones",
            "Refund",
            "Please refund the HD Webcam 1080p from order ord_44444.",
        )
        .await;
    desk.wait_for(&id, "awaiting_approval").await;
    let approval = desk.pending_approval(&id).await;
    desk.decide(&approval, json!({ "approved": true })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while desk.refunds("ord_44444").await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the refund never committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill(worker);
    let _worker = desk.worker().await;
    let done = desk.wait_for(&id, "completed").await;
    assert_eq!(desk.refunds("ord_44444").await, 1);
    let refunds = done["result"]["actions_taken"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["tool"] == "process_refund" && a["status"] == "executed")
        .count();
    assert_eq!(refunds, 1);
}
