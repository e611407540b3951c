//! E-mail in through the real binaries in distributed mode (PostgreSQL, RabbitMQ, a worker
//! process): a raw message becomes a ticket the worker answers; the customer's reply to that
//! answer reopens it, and a second worker, after the first is SIGKILLed, answers the second
//! turn; the conversation holds both turns' replies.

mod support;

use serde_json::Value;
use support::desk::{Desk, kill};
use support::get_json;

const TOKEN: &str = "e2e-token";

async fn deliver(desk: &Desk, message: &str) -> Value {
    let response = desk
        .http
        .post(format!("{}/webhooks/email/inbound/raw", desk.api.base))
        .basic_auth("inbound", Some(TOKEN))
        .header("content-type", "message/rfc822")
        .body(message.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_email_conversation_runs_two_turns_across_workers_in_distributed_mode() {
    let desk = Desk::start(&[("EMAIL_WEBHOOK_TOKEN", TOKEN.into())]).await;
    let worker = desk.worker().await;
    let first = "From: John Doe <john.doe@email.com>\r\nTo: support@help.example.com\r\nSubject: Headphones\r\n\
        Message-ID: <e2e-1@email.com>\r\n\r\nWhere is my order ORD-12345?\r\n";
    let accepted = deliver(&desk, first).await;
    let id = accepted["ticket_id"].as_str().unwrap().to_owned();
    let done = desk.wait_for(&id, "completed").await;
    assert!(
        done["result"]["final_response"].as_str().unwrap().contains("1Z999AA1"),
        "{done}"
    );
    let messages = get_json(&desk.http, &format!("{}/tickets/{id}/messages", desk.api.base)).await;
    let ours = messages[1]["message_id"].as_str().unwrap().to_owned();
    assert_eq!(messages[1]["direction"], "outbound");

    kill(worker);
    let reply = format!(
        "From: john.doe@email.com\r\nTo: support@help.example.com\r\nSubject: Re: Headphones\r\n\
         Message-ID: <e2e-2@email.com>\r\nIn-Reply-To: {ours}\r\nReferences: <e2e-1@email.com> {ours}\r\n\r\n\
         Thanks. How do I reset my password?\r\n\r\nOn Tue, Northwind Support wrote:\r\n> Your order...\r\n"
    );
    let accepted = deliver(&desk, &reply).await;
    assert_eq!(
        (accepted["arrival"].as_str(), accepted["threaded"].as_bool()),
        (Some("reopened"), Some(true))
    );
    assert_eq!(accepted["ticket_id"], id.as_str());
    let _second = desk.worker().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let finished = loop {
        let ticket = get_json(&desk.http, &format!("{}/tickets/{id}", desk.api.base)).await;
        if ticket["status"] == "completed" && ticket["turn"] == 2 {
            break ticket;
        }
        assert!(tokio::time::Instant::now() < deadline, "no second turn: {ticket}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let second_reply = finished["result"]["final_response"].as_str().unwrap();
    assert!(second_reply.to_lowercase().contains("password"), "{second_reply}");
    let messages = get_json(&desk.http, &format!("{}/tickets/{id}/messages", desk.api.base)).await;
    let all = messages.as_array().unwrap();
    // Turn 2's reset link went out once, as a message of its own, its text not shown.
    let resets: Vec<&serde_json::Value> = all
        .iter()
        .filter(|m| m["metadata"]["kind"] == "password_reset")
        .collect();
    assert_eq!(resets.len(), 1, "{messages}");
    assert_eq!(
        (resets[0]["turn"].as_i64(), resets[0]["to"].as_str()),
        (Some(2), Some("john.doe@email.com"))
    );
    assert!(!resets[0]["text"].as_str().unwrap().contains("token="), "{}", resets[0]);
    let turns: Vec<(String, i64)> = all
        .iter()
        .filter(|m| m["metadata"]["kind"] != "password_reset")
        .map(|m| (m["direction"].as_str().unwrap().to_owned(), m["turn"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        turns,
        [
            ("inbound".to_owned(), 1),
            ("outbound".to_owned(), 1),
            ("inbound".to_owned(), 2),
            ("outbound".to_owned(), 2)
        ]
    );
    // Each turn's steps wrote their events once.
    let events = get_json(&desk.http, &format!("{}/tickets/{id}/events", desk.api.base)).await;
    let finalized = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "step_complete" && e["step_name"] == "finalize")
        .count();
    assert_eq!(finalized, 2);
}
