//! Human approval over HTTP, in-process, on SQLite and on PostgreSQL with the offline engine:
//! facts from the customer's own orders, a refund held and decided (approved: executed once
//! and stated; rejected: said so), an already refunded order never held, a held reply edited,
//! fifty deciders at once, and the API's answers to bad decisions. The binaries, the LLM
//! engine and crashes are in approval_e2e.rs.

mod support;

use serde_json::{Value, json};
use support::app::TestApp;
use support::fresh_postgres;

/// The embedded app on `database_url` (a fresh SQLite file when `None`) with the demo records.
async fn desk(database_url: Option<String>, env: &[(&str, &str)]) -> TestApp {
    let mut all: Vec<(&str, &str)> = env.to_vec();
    let url;
    if let Some(u) = database_url {
        url = u;
        all.push(("DATABASE_URL", &url));
    }
    let api = TestApp::start(&all).await;
    api.store.load_demo_data(chrono::Utc::now()).await.unwrap();
    api
}

async fn sqlite_desk(env: &[(&str, &str)]) -> TestApp {
    desk(None, env).await
}

async fn postgres_desk(env: &[(&str, &str)]) -> TestApp {
    desk(Some(fresh_postgres().await), env).await
}

async fn events(api: &TestApp, id: &str) -> Vec<Value> {
    serde_json::from_value(api.get(&format!("/tickets/{id}/events")).await.json).unwrap()
}

fn of_type<'a>(events: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == event_type).collect()
}

/// The one pending approval of ticket `id`.
async fn pending_approval(api: &TestApp, id: &str) -> Value {
    let page = api.get(&format!("/approvals?ticket_id={id}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json["total"], 1, "{}", page.json);
    page.json["approvals"][0].clone()
}

async fn decide(api: &TestApp, approval: &str, body: Value) -> support::app::Answer {
    api.post_json(&format!("/approvals/{approval}/decide"), &body, &[])
        .await
}

/// The refunds ticketflow made of `order`.
async fn refunds_of(api: &TestApp, order: &str) -> usize {
    api.store.refunds(order).await.unwrap().len()
}

fn actions(ticket: &Value) -> Vec<Value> {
    ticket["result"]["actions_taken"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The action of `tool` in the ticket's `actions_taken`.
fn action(ticket: &Value, tool: &str) -> Value {
    actions(ticket)
        .into_iter()
        .find(|a| a["tool"] == tool)
        .unwrap_or_else(|| panic!("no {tool} in {}", ticket["result"]["actions_taken"]))
}

const REFUND_BODY: &str = "The headphones from order ord_12345 stopped working. I want a refund for the Wireless \
     Headphones Pro, please.";

async fn status_questions_are_answered_with_the_customers_own_order(api: TestApp) {
    let order = api.store.order("ord_12345").await.unwrap().unwrap();
    let tracking = order.tracking_number.clone().unwrap();
    let id = api
        .create(
            "cust_john_doe",
            "Where is my order?",
            "Hi, my order ord_12345 has not arrived yet. Can you check the tracking?",
        )
        .await;
    let ticket = api.wait_for_status(&id, "completed").await;
    let reply = ticket["result"]["final_response"].as_str().unwrap();
    assert!(reply.contains("UPS") && reply.contains(&tracking), "{reply}");
    assert!(reply.contains("ord_12345"), "{reply}");
    let tools: Vec<&str> = ticket["result"]["actions_taken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["check_order_status", "get_customer_history"]);
    let all = events(&api, &id).await;
    assert_eq!(of_type(&all, "step_complete").len(), 6, "no action: the six steps only");
    assert_eq!(of_type(&all, "tool_call").len(), 2);

    // Jane asks about John's order: nothing of it reaches her.
    let other = api.store.order("ord_12345").await.unwrap().unwrap();
    let id = api
        .create(
            "cust_jane_smith",
            "Where is my order?",
            "Where is order ord_12345? It should have arrived.",
        )
        .await;
    let ticket = api.wait_for_status(&id, "completed").await;
    let reply = ticket["result"]["final_response"].as_str().unwrap();
    for secret in [
        other.tracking_number.as_deref().unwrap(),
        "UPS",
        "Main St",
        "195.98",
        "Headphones",
    ] {
        assert!(!reply.contains(secret), "{secret} leaked into: {reply}");
    }
    assert!(reply.contains("could not find an order"), "{reply}");
    api.stop().await;
}

#[tokio::test]
async fn status_questions_are_answered_with_the_customers_own_order_on_sqlite() {
    status_questions_are_answered_with_the_customers_own_order(sqlite_desk(&[]).await).await;
}

#[tokio::test]
async fn status_questions_are_answered_with_the_customers_own_order_on_postgres() {
    status_questions_are_answered_with_the_customers_own_order(postgres_desk(&[]).await).await;
}

async fn a_refund_waits_for_a_person_and_runs_once_approved(api: TestApp) {
    let id = api.create("cust_john_doe", "Refund please", REFUND_BODY).await;
    let held = api.wait_for_status(&id, "awaiting_approval").await;
    assert!(held["result"].is_null(), "no result while held: {held}");
    let approval = pending_approval(&api, &id).await;
    assert_eq!(approval["action_type"], "process_refund");
    assert_eq!(approval["action_params"]["order_id"], "ord_12345");
    assert_eq!(
        approval["action_params"]["amount"], 149.99,
        "the named item's price, never more"
    );
    assert_eq!(approval["ticket"]["customer_id"], "cust_john_doe");
    assert_eq!(approval["status"], "pending");
    assert_eq!(
        refunds_of(&api, "ord_12345").await,
        0,
        "nothing happens before the decision"
    );
    let stats = api.get("/dashboard/stats").await.json;
    assert_eq!(
        (
            stats["awaiting_approval_tickets"].as_i64(),
            stats["pending_approvals"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let before: Vec<String> = of_type(&events(&api, &id).await, "step_complete")
        .iter()
        .map(|e| e["step_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(before, ["classify", "extract", "research"]);

    let approval_id = approval["id"].as_str().unwrap();
    let decided = decide(
        &api,
        approval_id,
        json!({ "approved": true, "reason": "faulty unit", "decided_by": "maria" }),
    )
    .await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    assert_eq!(decided.json["status"], "approved");
    assert_eq!(decided.json["resumed"], true);
    assert_eq!(decided.json["ticket_id"], id.as_str());
    let done = api.wait_for_status(&id, "completed").await;
    assert_eq!(refunds_of(&api, "ord_12345").await, 1);
    let refund = action(&done, "process_refund");
    assert_eq!(refund["status"], "executed");
    assert_eq!(refund["approval_id"], approval_id);
    let refund_id = refund["result"]["refund_id"].as_str().unwrap();
    let reply = done["result"]["final_response"].as_str().unwrap();
    assert!(reply.contains(refund_id) && reply.contains("149.99"), "{reply}");
    let all = events(&api, &id).await;
    let steps: Vec<&str> = of_type(&all, "step_complete")
        .iter()
        .map(|e| e["step_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "classify", "extract", "research", "gate", "act", "draft", "review", "finalize"
        ],
        "nothing before the gate ran again"
    );
    let decided_events = of_type(&all, "approval_decided");
    assert_eq!(decided_events.len(), 1);
    assert_eq!(decided_events[0]["payload"]["decided_by"], "maria");
    assert_eq!(of_type(&all, "approval_requested").len(), 1);
    let read = api.get(&format!("/approvals/{approval_id}")).await.json;
    assert_eq!(
        (read["status"].as_str(), read["decided_by"].as_str()),
        (Some("approved"), Some("maria"))
    );
    // Deciding again is a conflict, and nothing runs twice.
    let again = decide(&api, approval_id, json!({ "approved": true })).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(refunds_of(&api, "ord_12345").await, 1);
    api.stop().await;
}

#[tokio::test]
async fn a_refund_waits_for_a_person_and_runs_once_approved_on_sqlite() {
    a_refund_waits_for_a_person_and_runs_once_approved(sqlite_desk(&[]).await).await;
}

#[tokio::test]
async fn a_refund_waits_for_a_person_and_runs_once_approved_on_postgres() {
    a_refund_waits_for_a_person_and_runs_once_approved(postgres_desk(&[]).await).await;
}

#[tokio::test]
async fn a_rejected_refund_never_runs_and_the_reply_says_so() {
    let api = sqlite_desk(&[]).await;
    let id = api.create("cust_john_doe", "Refund please", REFUND_BODY).await;
    api.wait_for_status(&id, "awaiting_approval").await;
    let approval = pending_approval(&api, &id).await;
    let decided = decide(
        &api,
        approval["id"].as_str().unwrap(),
        json!({ "approved": false, "reason": "the warranty covers a repair instead" }),
    )
    .await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    assert_eq!(decided.json["status"], "rejected");
    let done = api.wait_for_status(&id, "completed").await;
    assert_eq!(refunds_of(&api, "ord_12345").await, 0);
    let refund = action(&done, "process_refund");
    assert_eq!(refund["status"], "rejected");
    assert_eq!(refund["result"]["reason"], "the warranty covers a repair instead");
    let reply = done["result"]["final_response"].as_str().unwrap().to_lowercase();
    assert!(reply.contains("reviewed") && reply.contains("not approved"), "{reply}");
    assert!(
        !reply.contains("warranty covers"),
        "the reviewer's note stays with the desk: {reply}"
    );
    assert!(
        !reply.contains("i have refunded") && !reply.contains("has been refunded"),
        "{reply}"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_refund_of_an_order_refunded_already_is_never_held() {
    let api = sqlite_desk(&[]).await;
    let id = api
        .create(
            "cust_charlie_brown",
            "Refund",
            "Please refund my order ord_99999, the headphones were faulty.",
        )
        .await;
    let done = api.wait_for_status(&id, "completed").await;
    let refund = action(&done, "process_refund");
    assert_eq!(refund["status"], "failed", "refused by its checks: {refund}");
    assert!(refund["approval_id"].is_null());
    let page = api.get(&format!("/approvals?status=all&ticket_id={id}")).await.json;
    assert_eq!(page["total"], 0);
    let reply = done["result"]["final_response"].as_str().unwrap();
    assert!(!reply.contains("I have refunded"), "{reply}");
    assert_eq!(refunds_of(&api, "ord_99999").await, 0);
    api.stop().await;
}

#[tokio::test]
async fn every_reply_can_wait_for_a_person_who_may_edit_it() {
    let api = sqlite_desk(&[("REPLY_APPROVAL", "all")]).await;
    let id = api
        .create(
            "cust_john_doe",
            "Where is my order?",
            "My order ord_12345 has not arrived. Can you check the tracking?",
        )
        .await;
    api.wait_for_status(&id, "awaiting_approval").await;
    let approval = pending_approval(&api, &id).await;
    assert_eq!(approval["action_type"], "send_reply");
    let draft = approval["action_params"]["response"].as_str().unwrap();
    assert!(draft.contains("ord_12345"), "{draft}");
    let approval_id = approval["id"].as_str().unwrap();
    let edited = "Hello John, your parcel is with UPS and arrives this week. Maria from Support";
    let decided = decide(
        &api,
        approval_id,
        json!({ "approved": true, "edited_response": edited }),
    )
    .await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    let done = api.wait_for_status(&id, "completed").await;
    assert_eq!(done["result"]["final_response"], edited);
    assert_eq!(action(&done, "send_reply")["status"], "executed");
    let read = api.get(&format!("/approvals/{approval_id}")).await.json;
    assert_eq!(read["edited_response"], edited);

    // A rejected reply goes to a person: the ticket ends escalated, with no reply.
    let id = api
        .create("cust_jane_smith", "Monitor", "When does my order ord_22222 ship?")
        .await;
    api.wait_for_status(&id, "awaiting_approval").await;
    let approval = pending_approval(&api, &id).await;
    let decided = decide(
        &api,
        approval["id"].as_str().unwrap(),
        json!({ "approved": false, "reason": "I will call her" }),
    )
    .await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    let escalated = api.wait_for_status(&id, "escalated").await;
    assert!(escalated["result"]["final_response"].is_null());
    api.stop().await;
}

async fn of_fifty_concurrent_decisions_one_wins(api: TestApp) {
    let id = api.create("cust_john_doe", "Refund please", REFUND_BODY).await;
    api.wait_for_status(&id, "awaiting_approval").await;
    let approval = pending_approval(&api, &id).await;
    let path = format!("/approvals/{}/decide", approval["id"].as_str().unwrap());
    let api = std::sync::Arc::new(api);
    let deciders = (0..50).map(|i| {
        let api = api.clone();
        let path = path.clone();
        async move {
            api.post_json(
                &path,
                &json!({ "approved": true, "decided_by": format!("person {i}") }),
                &[],
            )
            .await
        }
    });
    let answers = futures::future::join_all(deciders).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 49, "{statuses:?}");
    for loser in answers.iter().filter(|a| a.status == 409) {
        assert_eq!(loser.json["error"], "conflict", "{}", loser.text);
    }
    api.wait_for_status(&id, "completed").await;
    assert_eq!(refunds_of(&api, "ord_12345").await, 1);
    if let Ok(api) = std::sync::Arc::try_unwrap(api) {
        api.stop().await;
    }
}

#[tokio::test]
async fn of_fifty_concurrent_decisions_one_wins_on_sqlite() {
    of_fifty_concurrent_decisions_one_wins(sqlite_desk(&[]).await).await;
}

#[tokio::test]
async fn of_fifty_concurrent_decisions_one_wins_on_postgres() {
    of_fifty_concurrent_decisions_one_wins(postgres_desk(&[]).await).await;
}

#[tokio::test]
async fn bad_decisions_get_a_clear_error() {
    let api = sqlite_desk(&[]).await;
    let id = api.create("cust_john_doe", "Refund please", REFUND_BODY).await;
    api.wait_for_status(&id, "awaiting_approval").await;
    let approval = pending_approval(&api, &id).await;
    let approval_id = approval["id"].as_str().unwrap();
    let path = format!("/approvals/{approval_id}/decide");

    let unknown = decide(
        &api,
        "0190f5d2-0000-7000-8000-000000000000",
        json!({ "approved": true }),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.json["error"].as_str()),
        (404, Some("not_found")),
        "{}",
        unknown.text
    );
    assert_eq!(
        api.get("/approvals/0190f5d2-0000-7000-8000-000000000000").await.status,
        404
    );
    let malformed = decide(&api, "not-a-uuid", json!({ "approved": true })).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert_eq!(api.get("/approvals/not-a-uuid").await.status, 400);

    let cases = [
        (json!({ "reason": "no decision" }), "approved"),
        (json!({ "approved": "yes" }), "approved"),
        (json!({ "approved": true, "reason": "x".repeat(100_000) }), "reason"),
        (
            json!({ "approved": true, "edited_response": "a new reply" }),
            "edited_response",
        ),
        (json!({ "approved": true, "decided_by": "x".repeat(201) }), "decided_by"),
    ];
    for (body, field) in cases {
        let answer = api.post_json(&path, &body, &[]).await;
        assert_eq!(answer.status, 422, "{field}: {}", answer.text);
        assert_eq!(answer.json["field"], field, "{}", answer.text);
    }
    for query in [
        "status=maybe",
        "page_size=0",
        "page_size=101",
        "ticket_id=nope",
        "page=0",
    ] {
        let answer = api.get(&format!("/approvals?{query}")).await;
        assert_eq!(answer.status, 422, "{query}: {}", answer.text);
    }
    assert_eq!(api.get("/approvals?status=all").await.json["total"], 1);
    assert_eq!(api.get("/approvals?status=approved").await.json["total"], 0);
    // Nothing was decided by any of that.
    assert_eq!(pending_approval(&api, &id).await["status"], "pending");
    api.stop().await;
}

#[tokio::test]
async fn with_api_keys_the_key_decides_not_the_body() {
    let api = sqlite_desk(&[("API_KEYS", "first-key,second-key")]).await;
    let auth = [("authorization", "Bearer second-key")];
    let answer = api
        .post_json(
            "/tickets",
            &json!({ "customer_id": "cust_john_doe", "subject": "Refund please", "body": REFUND_BODY }),
            &auth,
        )
        .await;
    let id = answer.json["ticket_id"].as_str().unwrap().to_owned();
    let approval = loop {
        let page = api
            .request(
                poem::http::Method::GET,
                &format!("/approvals?ticket_id={id}"),
                &auth,
                None,
            )
            .await;
        if page.json["total"] == 1 {
            break page.json["approvals"][0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let path = format!("/approvals/{}/decide", approval["id"].as_str().unwrap());
    let anonymous = api.post_json(&path, &json!({ "approved": true }), &[]).await;
    assert_eq!(anonymous.status, 401);
    let decided = api
        .post_json(&path, &json!({ "approved": true, "decided_by": "the CEO" }), &auth)
        .await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    let read = api
        .request(
            poem::http::Method::GET,
            &format!("/approvals/{}", approval["id"].as_str().unwrap()),
            &auth,
            None,
        )
        .await;
    assert_eq!(read.json["decided_by"], "api-key-2");
    api.stop().await;
}

#[tokio::test]
async fn a_ticket_held_by_the_previous_graph_version_is_resumed_by_this_one() {
    use sqlx::Connection;
    let database_url = fresh_postgres().await;
    let api = desk(Some(database_url.clone()), &[]).await;
    let id = api.create("cust_john_doe", "Refund please", REFUND_BODY).await;
    api.wait_for_status(&id, "awaiting_approval").await;
    // The run was paused by a worker of the version before this one: its checkpoints say so.
    let mut conn = sqlx::PgConnection::connect(&database_url).await.unwrap();
    let rewritten =
        sqlx::query("UPDATE ticketflow.workflow_checkpoints SET graph_version = 'support-v1' WHERE thread_id = $1")
            .bind(&id)
            .execute(&mut conn)
            .await
            .unwrap()
            .rows_affected();
    assert!(rewritten >= 4, "classify, extract, research and the pause: {rewritten}");
    let approval = pending_approval(&api, &id).await;
    let decided = decide(&api, approval["id"].as_str().unwrap(), json!({ "approved": true })).await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    let done = api.wait_for_status(&id, "completed").await;
    assert_eq!(refunds_of(&api, "ord_12345").await, 1);
    let all = api.get(&format!("/approvals?status=all&ticket_id={id}")).await.json;
    assert_eq!(all["total"], 1, "the approval was neither lost nor proposed again");
    assert_eq!(action(&done, "process_refund")["status"], "executed");
    let steps: Vec<String> = of_type(&events(&api, &id).await, "step_complete")
        .iter()
        .map(|e| e["step_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps.iter().filter(|s| *s == "research").count(), 1);
    api.stop().await;
}

#[tokio::test]
async fn a_ticket_that_asks_for_a_person_ends_escalated_without_a_reply() {
    let api = sqlite_desk(&[]).await;
    let id = api
        .create(
            "cust_john_doe",
            "This is the third time",
            "My order ord_12345 is still not here. I want to speak to a human, not a bot.",
        )
        .await;
    let ticket = api.wait_for_status(&id, "escalated").await;
    assert!(
        ticket["result"]["final_response"].is_null(),
        "no automatic reply: {ticket}"
    );
    let escalation = action(&ticket, "escalate_to_human");
    assert_eq!(escalation["status"], "executed");
    let escalation_id = escalation["result"]["escalation_id"].as_str().unwrap();
    assert_eq!(ticket["result"]["handoff"]["escalation_id"], escalation_id);
    let listed = api.get("/tickets?status=escalated").await.json;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["tickets"][0]["id"], id.as_str());
    assert_eq!(api.get("/dashboard/stats").await.json["escalated_tickets"], 1);
    let steps: Vec<String> = of_type(&events(&api, &id).await, "step_complete")
        .iter()
        .map(|e| e["step_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["classify", "extract", "research", "gate", "act", "finalize"]);
    api.stop().await;
}

#[tokio::test]
async fn with_the_llm_engine_a_decision_resumes_at_the_gate_in_the_embedded_mode() {
    use ticketflow_core::testing::{FakeLlm, Reply};
    let fake = FakeLlm::start().await;
    fake.script(
        "classify",
        [Reply::Json(
            json!({ "category": "billing", "confidence": 0.95, "rationale": "asks for a refund" }),
        )],
    );
    fake.script(
        "extract",
        [Reply::Json(
            json!({ "order_id": "ord_12345", "product": "headphones", "issue_type": "refund_request", "urgency": "medium" }),
        )],
    );
    let api = sqlite_desk(&[("OPENAI_API_KEY", "sk-embedded"), ("OPENAI_BASE_URL", &fake.base_url)]).await;
    let id = api.create("cust_john_doe", "Refund please", REFUND_BODY).await;
    api.wait_for_status(&id, "awaiting_approval").await;
    let before = (
        fake.calls_for("classify"),
        fake.calls_for("extract"),
        fake.calls_for("draft"),
    );
    assert_eq!(before, (1, 1, 0), "the draft waits for the decision");
    let approval = pending_approval(&api, &id).await;
    assert_eq!(approval["action_params"]["amount"], 149.99);
    let decided = decide(&api, approval["id"].as_str().unwrap(), json!({ "approved": true })).await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    let done = api.wait_for_status(&id, "completed").await;
    assert_eq!(
        (fake.calls_for("classify"), fake.calls_for("extract")),
        (1, 1),
        "nothing before the gate again"
    );
    assert!(fake.calls_for("draft") >= 1);
    assert_eq!(done["result"]["engine"]["draft"]["engine"], "openai");
    assert_eq!(refunds_of(&api, "ord_12345").await, 1);
    api.stop().await;
}
