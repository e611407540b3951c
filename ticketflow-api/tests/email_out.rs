//! E-mail out, in-process on SQLite with the offline engine, against real servers on
//! loopback: aiosmtpd for SMTP (headers, threading ids, both body parts; a reply to the reply
//! threads back; an outage delays delivery and each Message-ID arrives once; a rejected
//! address fails visibly), HTTP servers checking SendGrid's and Mailgun's requests as they
//! document them; automatic mail is never answered, the per-address limit holds, header
//! injection stays out of headers; replies held for approval go after the decision, an
//! escalated ticket gets none, and a person's reply completes it.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use poem::http::{Method, StatusCode};
use poem::{EndpointExt, IntoResponse, handler};
use serde_json::{Value, json};
use support::app::{Answer, TestApp};
use support::smtp::SmtpServer;

const TOKEN: &str = "s3cret-token";
const DOMAIN: &str = "help.northwind.test";
const FROM: &str = "Northwind Support <support@help.northwind.test>";

async fn desk(extra: &[(&str, &str)]) -> TestApp {
    let url = ticketflow_core::testing::database::fresh_sqlite_url();
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("EMAIL_WEBHOOK_TOKEN", TOKEN),
        ("EMAIL_DOMAIN", DOMAIN),
        ("EMAIL_FROM", FROM),
        ("EMAIL_RETRY_SECONDS", "0.5"),
    ];
    env.extend_from_slice(extra);
    let api = TestApp::start(&env).await;
    api.store.load_demo_data(chrono::Utc::now()).await.unwrap();
    api
}

async fn smtp_desk(smtp: &SmtpServer, extra: &[(&str, &str)]) -> TestApp {
    let url = smtp.url();
    let mut env = vec![("EMAIL_PROVIDER", "smtp"), ("SMTP_URL", url.as_str())];
    env.extend_from_slice(extra);
    desk(&env).await
}

/// POSTs a whole RFC 5322 message to the raw inbound webhook.
async fn receive(api: &TestApp, message: &str) -> Answer {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("inbound:{TOKEN}"))
    );
    let answer = api
        .request(
            Method::POST,
            "/webhooks/email/inbound/raw",
            &[("content-type", "message/rfc822"), ("authorization", &auth)],
            Some(message.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer
}

fn mail(from: &str, id: &str, subject: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@{DOMAIN}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\n{extra_headers}\r\n{body}\r\n"
    )
}

async fn messages(api: &TestApp, id: &str) -> Vec<Value> {
    let answer = api.get(&format!("/tickets/{id}/messages")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json.as_array().unwrap().clone()
}

async fn events(api: &TestApp, id: &str, kind: &str) -> Vec<Value> {
    let answer = api.get(&format!("/tickets/{id}/events")).await;
    answer
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == kind)
        .cloned()
        .collect()
}

/// Waits (40 s at most) until the ticket's outbound message number `index` has `status`.
async fn outbound_with_status(api: &TestApp, id: &str, index: usize, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let outbound: Vec<Value> = messages(api, id)
            .await
            .into_iter()
            .filter(|m| m["direction"] == "outbound")
            .collect();
        if let Some(message) = outbound.get(index)
            && message["status"] == status
        {
            return message.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbound message {index} of {id} never became {status}: {outbound:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ticket_of(answer: &Answer) -> String {
    answer.json["ticket_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn replies_go_out_by_smtp_threaded_and_replies_to_them_thread_back() {
    let smtp = SmtpServer::start().await;
    let api = smtp_desk(&smtp, &[]).await;
    let john = "john.doe@email.com";
    let first = receive(
        &api,
        &mail(
            &format!("John Doe <{john}>"),
            "<j1@email.com>",
            "My headphones",
            "",
            "Where is my order ORD-12345?",
        ),
    )
    .await;
    let id = ticket_of(&first);
    api.wait_for_status(&id, "completed").await;
    let reply = outbound_with_status(&api, &id, 0, "sent").await;
    assert_eq!(reply["provider"], "smtp");
    assert_eq!(reply["attempts"], 1);
    assert!(reply["sent_at"].is_string());
    let delivered = smtp.wait_for(1).await;
    let sent = &delivered[0];
    assert_eq!(sent.rcpt_tos, [john]);
    assert_eq!(sent.mail_from, "support@help.northwind.test");
    assert_eq!(sent.header("Message-ID").as_deref(), reply["message_id"].as_str());
    assert_eq!(sent.header("In-Reply-To").as_deref(), Some("<j1@email.com>"));
    assert_eq!(sent.header("References").as_deref(), Some("<j1@email.com>"));
    assert_eq!(sent.header("Subject").as_deref(), Some("Re: My headphones"));
    assert_eq!(sent.header("Auto-Submitted").as_deref(), Some("auto-replied"));
    assert_eq!(
        sent.header("Reply-To").as_deref(),
        Some(format!("support+{id}@{DOMAIN}").as_str())
    );
    assert!(sent.header("From").unwrap().contains("support@help.northwind.test"));
    let parsed = sent.parsed();
    assert_eq!(
        parsed.body_text(0).unwrap().replace("\r\n", "\n").trim(),
        reply["text"].as_str().unwrap().trim()
    );
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("1Z999AA1"), "{html}");
    assert!(String::from_utf8_lossy(&sent.raw).contains("multipart/alternative"));
    let sent_events = events(&api, &id, "email_sent").await;
    assert_eq!(sent_events.len(), 1);
    assert_eq!(sent_events[0]["payload"]["message_id"], reply["message_id"]);

    // The customer answers our reply: it threads back, and turn 2's reply answers it.
    let answer = receive(
        &api,
        &mail(
            john,
            "<j2@email.com>",
            "Re: My headphones",
            &format!(
                "In-Reply-To: {}\r\nReferences: <j1@email.com> {}\r\n",
                reply["message_id"].as_str().unwrap(),
                reply["message_id"].as_str().unwrap()
            ),
            "Thanks. And how do I reset my password?\r\n\r\nOn Monday, Northwind wrote:\r\n> earlier",
        ),
    )
    .await;
    assert_eq!(ticket_of(&answer), id);
    assert_eq!(answer.json["threaded"], true);
    assert_eq!(answer.json["arrival"], "reopened");
    api.wait_for_status(&id, "completed").await;
    // Turn 2 sent a reset link (a message of its own, its text never shown) and its reply.
    let conversation = messages(&api, &id).await;
    let reset = conversation
        .iter()
        .find(|m| m["metadata"]["kind"] == "password_reset")
        .expect("a reset link was queued");
    assert_eq!(reset["text"], "(a password reset link: not shown)");
    let second = conversation
        .iter()
        .find(|m| m["direction"] == "outbound" && m["turn"] == 2 && m["metadata"]["kind"].is_null())
        .expect("turn 2's reply")
        .clone();
    let delivered = smtp.wait_for(3).await;
    let of = |id: &Value| {
        delivered
            .iter()
            .find(|m| m.header("Message-ID").as_deref() == id.as_str())
            .unwrap_or_else(|| panic!("{id} was not delivered"))
    };
    let link = of(&reset["message_id"]);
    assert_eq!(link.rcpt_tos, [john]);
    assert!(
        link.parsed().body_text(0).unwrap().contains("token="),
        "the customer gets the link"
    );
    assert_eq!(link.header("Auto-Submitted").as_deref(), Some("auto-replied"));
    let kept = api
        .store
        .message(reset["message_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !kept.text.contains("token="),
        "the link is not kept once sent: {}",
        kept.text
    );
    let second_mail = of(&second["message_id"]);
    assert_eq!(second_mail.header("In-Reply-To").as_deref(), Some("<j2@email.com>"));
    let references = second_mail.header("References").unwrap();
    assert!(
        references.starts_with("<j1@email.com>") && references.contains(reply["message_id"].as_str().unwrap()),
        "{references}"
    );
    assert_eq!(second_mail.header("Subject").as_deref(), Some("Re: My headphones"));
    assert_eq!(api.get(&format!("/tickets/{id}")).await.json["turn"], 2);
}

#[tokio::test]
async fn a_mail_server_that_is_down_delays_delivery_and_each_message_arrives_once() {
    let mut smtp = SmtpServer::start().await;
    smtp.stop().await;
    let api = smtp_desk(&smtp, &[("EMAIL_MAX_ATTEMPTS", "100")]).await;
    let answer = receive(
        &api,
        &mail(
            "jane.smith@email.com",
            "<down-1@email.com>",
            "Order",
            "",
            "Where is my order ORD-22222?",
        ),
    )
    .await;
    let id = ticket_of(&answer);
    api.wait_for_status(&id, "completed").await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let waiting = outbound_with_status(&api, &id, 0, "queued").await;
    assert!(waiting["attempts"].as_i64().unwrap() >= 2, "{waiting}");
    assert!(
        waiting["last_error"].as_str().unwrap().contains("mail server"),
        "{waiting}"
    );
    assert!(smtp.received().is_empty());
    smtp.resume().await;
    let sent = outbound_with_status(&api, &id, 0, "sent").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let delivered = smtp.received();
    let ours: Vec<_> = delivered
        .iter()
        .filter(|m| m.header("Message-ID").as_deref() == sent["message_id"].as_str())
        .collect();
    assert_eq!(ours.len(), 1, "one delivery per Message-ID");
    assert_eq!(delivered.len(), 1);
    assert!(sent["last_error"].is_null());
    let sent_events = events(&api, &id, "email_sent").await;
    assert_eq!(sent_events[0]["payload"]["attempts"], sent["attempts"]);
}

#[tokio::test]
async fn a_server_that_stalls_fails_the_attempt_and_the_rest_of_the_mail_goes_out() {
    let smtp = SmtpServer::start().await;
    let api = smtp_desk(&smtp, &[("EMAIL_SEND_TIMEOUT_SECONDS", "1")]).await;
    let slow = ticket_of(
        &receive(
            &api,
            &mail(
                "slow.poke@email.com",
                "<slow-1@email.com>",
                "Hello",
                "",
                "Do you ship to Canada?",
            ),
        )
        .await,
    );
    api.wait_for_status(&slow, "completed").await;
    let fast = ticket_of(
        &receive(
            &api,
            &mail(
                "jane.smith@email.com",
                "<fast-1@email.com>",
                "Order",
                "",
                "Where is my order ORD-22222?",
            ),
        )
        .await,
    );
    outbound_with_status(&api, &fast, 0, "sent").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let waiting = loop {
        let outbound = outbound_with_status(&api, &slow, 0, "queued").await;
        if outbound["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than 1 s"))
        {
            break outbound;
        }
        assert!(tokio::time::Instant::now() < deadline, "{outbound}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(waiting["attempts"].as_i64().unwrap() >= 1);
    assert_eq!(smtp.received().len(), 1, "only Jane's reply arrived");
}

#[tokio::test]
async fn a_rejected_address_fails_visibly_on_the_ticket() {
    let smtp = SmtpServer::start().await;
    let api = smtp_desk(&smtp, &[]).await;
    let answer = receive(
        &api,
        &mail(
            "reject.me@email.com",
            "<rj-1@email.com>",
            "Hello",
            "",
            "Do you ship to Canada?",
        ),
    )
    .await;
    let id = ticket_of(&answer);
    let failed = outbound_with_status(&api, &id, 0, "failed").await;
    assert_eq!(failed["attempts"], 1, "a permanent rejection is not retried");
    assert!(failed["last_error"].as_str().unwrap().contains("550"), "{failed}");
    let failures = events(&api, &id, "email_failed").await;
    assert_eq!(failures.len(), 1);
    assert!(failures[0]["payload"]["error"].as_str().unwrap().contains("550"));
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn automatic_mail_is_never_answered_and_the_hourly_limit_holds() {
    let smtp = SmtpServer::start().await;
    let api = smtp_desk(&smtp, &[("EMAIL_MAX_REPLIES_PER_HOUR", "2")]).await;
    let alice = "alice.jones@email.com";
    let first = receive(
        &api,
        &mail(alice, "<a1@email.com>", "Camera", "", "Where is my order ORD-44444?"),
    )
    .await;
    let id = ticket_of(&first);
    let reply = outbound_with_status(&api, &id, 0, "sent").await;
    let our_id = reply["message_id"].as_str().unwrap().to_owned();

    // An out-of-office reply to our reply: kept on the conversation, no new turn, no answer.
    let ooo = receive(
        &api,
        &mail(
            alice,
            "<ooo-1@email.com>",
            "Automatic reply: Re: Camera",
            &format!("In-Reply-To: {our_id}\r\nAuto-Submitted: auto-replied\r\n"),
            "I am out of the office until Monday.",
        ),
    )
    .await;
    assert_eq!(
        (ticket_of(&ooo).as_str(), ooo.json["arrival"].as_str()),
        (id.as_str(), Some("automatic"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticket = api.get(&format!("/tickets/{id}")).await.json;
    assert_eq!(
        (ticket["status"].as_str(), ticket["turn"].as_i64()),
        (Some("completed"), Some(1))
    );
    let conversation = messages(&api, &id).await;
    assert_eq!(conversation.len(), 3, "{conversation:?}");
    assert!(conversation[2]["metadata"]["automatic"].is_string());

    // List mail and a bounce that thread nowhere: their tickets' replies are withheld.
    for (from, message_id, headers) in [
        (
            "news@shop.example",
            "<list-1@shop.example>",
            "List-Id: <offers.shop.example>\r\nPrecedence: bulk\r\n",
        ),
        (
            "MAILER-DAEMON@mx.example",
            "<bounce-1@mx.example>",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n",
        ),
    ] {
        let body = "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n--b--";
        let body = if headers.contains("multipart") {
            body
        } else {
            "Big offers this week"
        };
        let answer = receive(&api, &mail(from, message_id, "Offers", headers, body)).await;
        let ticket = ticket_of(&answer);
        api.wait_for_status(&ticket, "completed").await;
        let withheld = outbound_with_status(&api, &ticket, 0, "recorded").await;
        assert!(
            withheld["metadata"]["withheld"]
                .as_str()
                .unwrap()
                .contains("automatic mail"),
            "{withheld}"
        );
    }

    // Two automatic replies an hour to one address: the third new ticket's reply is withheld.
    let second = receive(
        &api,
        &mail(alice, "<a2@email.com>", "Bag", "", "Do you sell camera bags?"),
    )
    .await;
    outbound_with_status(&api, &ticket_of(&second), 0, "sent").await;
    let third = receive(&api, &mail(alice, "<a3@email.com>", "Lens", "", "Do you sell lenses?")).await;
    let held = outbound_with_status(&api, &ticket_of(&third), 0, "recorded").await;
    assert!(
        held["metadata"]["withheld"]
            .as_str()
            .unwrap()
            .contains("EMAIL_MAX_REPLIES_PER_HOUR"),
        "{held}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered = smtp.received();
    assert_eq!(
        delivered.len(),
        2,
        "two replies to Alice, nothing to the list or the daemon"
    );
    assert!(delivered.iter().all(|m| m.rcpt_tos == [alice]));
}

#[tokio::test]
async fn header_injection_never_reaches_a_header() {
    let smtp = SmtpServer::start().await;
    let api = smtp_desk(&smtp, &[]).await;
    // JSON carries CR and LF where an e-mail header could not.
    let created = api
        .post_json(
            "/tickets",
            &json!({
                "customer_id": "jane.smith@email.com",
                "channel": "email",
                "subject": "Order question\r\nBcc: evil@attacker.example\r\nX-Injected: yes",
                "body": "Where is my order ORD-22222?\r\nBcc: evil@attacker.example",
            }),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["ticket_id"].as_str().unwrap().to_owned();
    let done = api.wait_for_status(&id, "completed").await;
    assert_eq!(done["channel"], "email", "{done}");
    outbound_with_status(&api, &id, 0, "sent").await;
    let staff = api
        .post_json(
            &format!("/tickets/{id}/messages"),
            &json!({ "text": "Hello\r\nBcc: evil@attacker.example\r\n\r\n<script>alert(1)</script>" }),
            &[],
        )
        .await;
    assert_eq!(staff.status, 200, "{}", staff.text);
    let delivered = smtp.wait_for(2).await;
    for sent in &delivered {
        assert_eq!(sent.rcpt_tos, ["jane.smith@email.com"], "no one else receives it");
        let names = sent.header_names();
        assert!(
            !names
                .iter()
                .any(|n| n.eq_ignore_ascii_case("bcc") || n.eq_ignore_ascii_case("x-injected")),
            "{names:?}"
        );
        let subject = sent.parsed().subject().unwrap_or_default().to_owned();
        assert!(!subject.contains('\r') && !subject.contains('\n'), "{subject:?}");
    }
    let html = delivered[1].parsed().body_html(0).unwrap().into_owned();
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
}

#[tokio::test]
async fn held_replies_go_after_approval_and_a_persons_reply_completes_an_escalated_ticket() {
    let smtp = SmtpServer::start().await;
    let api = smtp_desk(&smtp, &[("REPLY_APPROVAL", "all")]).await;
    let approve = |ticket: String, approved: bool| {
        let api = &api;
        async move {
            let page = api.get(&format!("/approvals?ticket_id={ticket}")).await;
            let approval = page.json["approvals"][0]["id"].as_str().unwrap().to_owned();
            let decided = api
                .post_json(
                    &format!("/approvals/{approval}/decide"),
                    &json!({ "approved": approved, "reason": "checked" }),
                    &[],
                )
                .await;
            assert_eq!(decided.status, 200, "{}", decided.text);
        }
    };
    let held = ticket_of(
        &receive(
            &api,
            &mail(
                "jane.smith@email.com",
                "<h1@email.com>",
                "Order",
                "",
                "Where is my order ORD-22222?",
            ),
        )
        .await,
    );
    api.wait_for_status(&held, "awaiting_approval").await;
    assert!(messages(&api, &held).await.iter().all(|m| m["direction"] == "inbound"));
    approve(held.clone(), true).await;
    api.wait_for_status(&held, "completed").await;
    outbound_with_status(&api, &held, 0, "sent").await;
    assert_eq!(smtp.wait_for(1).await[0].rcpt_tos, ["jane.smith@email.com"]);

    // Rejected: handed to a person, no automatic reply.
    let rejected = ticket_of(
        &receive(
            &api,
            &mail(
                "alice.jones@email.com",
                "<h2@email.com>",
                "Camera",
                "",
                "Where is my order ORD-44444?",
            ),
        )
        .await,
    );
    api.wait_for_status(&rejected, "awaiting_approval").await;
    approve(rejected.clone(), false).await;
    api.wait_for_status(&rejected, "escalated").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        messages(&api, &rejected)
            .await
            .iter()
            .all(|m| m["direction"] == "inbound")
    );
    assert_eq!(smtp.received().len(), 1);

    // A person answers: the reply goes out, threaded, without Auto-Submitted, and completes it.
    let reply = api
        .post_json(
            &format!("/tickets/{rejected}/messages"),
            &json!({ "text": "Hello Alice, your camera left our warehouse two days ago." }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["completed"], true);
    assert_eq!(reply.json["ticket_status"], "completed");
    assert_eq!(reply.json["message"]["status"], "queued");
    assert_eq!(reply.json["message"]["in_reply_to"], "<h2@email.com>");
    let delivered = smtp.wait_for(2).await;
    assert_eq!(delivered[1].header("In-Reply-To").as_deref(), Some("<h2@email.com>"));
    assert_eq!(delivered[1].header("Auto-Submitted"), None);
    assert_eq!(
        api.get(&format!("/tickets/{rejected}")).await.json["status"],
        "completed"
    );

    // The same Idempotency-Key again: the stored reply, nothing sent twice; other text: 409.
    let path = format!("/tickets/{rejected}/messages");
    let body = json!({ "text": "One more thing: the tracking number is 9400111." });
    let first = api.post_json(&path, &body, &[("idempotency-key", "k-1")]).await;
    let again = api.post_json(&path, &body, &[("idempotency-key", "k-1")]).await;
    assert_eq!((first.status, again.status), (200, 200), "{}", again.text);
    assert_eq!(again.json["duplicate"], true);
    assert_eq!(again.json["message"]["message_id"], first.json["message"]["message_id"]);
    let other = api
        .post_json(&path, &json!({ "text": "different" }), &[("idempotency-key", "k-1")])
        .await;
    assert_eq!(other.status, 409, "{}", other.text);
    smtp.wait_for(3).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.received().len(), 3);

    // A ticket of another channel (a chat widget): its replies are kept, never mailed.
    let chat = api
        .post_json(
            "/tickets",
            &json!({ "customer_id": "alice.jones@email.com", "channel": "chat", "subject": "Hi", "body": "Do you ship to Canada?" }),
            &[],
        )
        .await;
    let chat = chat.json["ticket_id"].as_str().unwrap().to_owned();
    api.wait_for_status(&chat, "awaiting_approval").await;
    approve(chat.clone(), true).await;
    api.wait_for_status(&chat, "completed").await;
    let kept = outbound_with_status(&api, &chat, 0, "recorded").await;
    assert_eq!(kept["channel"], "chat");

    // On an `api` ticket a person's reply is recorded, not sent; bad input is a 4xx.
    let api_ticket = api.create("cust_john_doe", "Hello", "Do you ship to Canada?").await;
    let recorded = api
        .post_json(
            &format!("/tickets/{api_ticket}/messages"),
            &json!({ "text": "We do." }),
            &[],
        )
        .await;
    assert_eq!(recorded.json["message"]["status"], "recorded", "{}", recorded.text);
    for bad in [
        json!({ "text": "" }),
        json!({ "text": "   " }),
        json!({}),
        json!({ "text": 5 }),
    ] {
        let answer = api
            .post_json(&format!("/tickets/{api_ticket}/messages"), &bad, &[])
            .await;
        assert!(
            matches!(answer.status, 400 | 422),
            "{bad}: {} {}",
            answer.status,
            answer.text
        );
        assert!(
            answer.json["error"].is_string() || answer.json["detail"].is_string(),
            "{}",
            answer.text
        );
    }
    let unknown = api
        .post_json(
            "/tickets/0190f5d2-0000-7000-8000-000000000000/messages",
            &json!({ "text": "hi" }),
            &[],
        )
        .await;
    assert_eq!(unknown.status, 404);
}

/// A request a loopback provider got: its authorization, its content type, its body.
type Request = (String, String, Vec<u8>);

/// What a loopback provider was sent.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

/// A provider on loopback that fails the first request with `first` and accepts the rest
/// with `then`; it keeps (authorization, content type, body) of each.
async fn provider(first: StatusCode, then: StatusCode) -> (String, Seen) {
    #[handler]
    async fn accept(
        req: &poem::Request,
        body: poem::Body,
        seen: poem::web::Data<&Seen>,
        answers: poem::web::Data<&(StatusCode, StatusCode)>,
    ) -> poem::Response {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let bytes = body.into_vec().await.unwrap_or_default();
        let mut all = seen.0.0.lock().unwrap();
        all.push((header("authorization"), header("content-type"), bytes));
        let status = if all.len() == 1 { answers.0.0 } else { answers.0.1 };
        (status, "{\"id\":\"<x@provider>\",\"message\":\"Queued. Thank you.\"}").into_response()
    }
    let seen = Seen::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let app = poem::Route::new()
        .at("/v3/mail/send", poem::post(accept))
        .at("/v3/:domain/messages", poem::post(accept))
        .data(seen.clone())
        .data((first, then));
    tokio::spawn(poem::Server::new(poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"))).run(app));
    tokio::time::sleep(Duration::from_millis(200)).await;
    (format!("http://127.0.0.1:{port}"), seen)
}

#[tokio::test]
async fn sendgrid_gets_its_documented_request_and_a_5xx_is_retried() {
    let (base, seen) = provider(StatusCode::SERVICE_UNAVAILABLE, StatusCode::ACCEPTED).await;
    let api = desk(&[
        ("EMAIL_PROVIDER", "sendgrid"),
        ("SENDGRID_API_KEY", "SG.test-key"),
        ("SENDGRID_BASE_URL", &base),
    ])
    .await;
    let id = ticket_of(
        &receive(
            &api,
            &mail(
                "john.doe@email.com",
                "<sg1@email.com>",
                "Headphones",
                "",
                "Where is my order ORD-12345?",
            ),
        )
        .await,
    );
    let sent = outbound_with_status(&api, &id, 0, "sent").await;
    assert_eq!(
        (sent["provider"].as_str(), sent["attempts"].as_i64()),
        (Some("sendgrid"), Some(2))
    );
    let requests = seen.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "the 503 was retried once");
    let (auth, content_type, body) = &requests[1];
    assert_eq!(auth, "Bearer SG.test-key");
    assert!(content_type.starts_with("application/json"));
    let body: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["personalizations"][0]["to"][0]["email"], "john.doe@email.com");
    assert_eq!(
        body["from"],
        json!({ "email": "support@help.northwind.test", "name": "Northwind Support" })
    );
    assert_eq!(body["reply_to"]["email"], format!("support+{id}@{DOMAIN}"));
    assert_eq!(body["subject"], "Re: Headphones");
    assert_eq!(body["content"][0]["type"], "text/plain");
    assert_eq!(body["content"][0]["value"], sent["text"]);
    assert_eq!(body["content"][1]["type"], "text/html");
    assert_eq!(body["headers"]["Message-ID"], sent["message_id"]);
    assert_eq!(body["headers"]["In-Reply-To"], "<sg1@email.com>");
    assert_eq!(body["headers"]["References"], "<sg1@email.com>");
    assert_eq!(body["headers"]["Auto-Submitted"], "auto-replied");
    let first: Value = serde_json::from_slice(&requests[0].2).unwrap();
    assert_eq!(
        first["headers"]["Message-ID"], sent["message_id"],
        "the retry keeps its Message-ID"
    );
}

#[tokio::test]
async fn mailgun_gets_its_documented_request_and_a_4xx_fails_the_message() {
    let (base, seen) = provider(StatusCode::OK, StatusCode::BAD_REQUEST).await;
    let api = desk(&[
        ("EMAIL_PROVIDER", "mailgun"),
        ("MAILGUN_API_KEY", "key-test"),
        ("MAILGUN_DOMAIN", "mg.northwind.test"),
        ("MAILGUN_BASE_URL", &base),
    ])
    .await;
    let id = ticket_of(
        &receive(
            &api,
            &mail(
                "john.doe@email.com",
                "<mg1@email.com>",
                "Headphones",
                "",
                "Where is my order ORD-12345?",
            ),
        )
        .await,
    );
    let sent = outbound_with_status(&api, &id, 0, "sent").await;
    assert_eq!(sent["provider"], "mailgun");
    let requests = seen.0.lock().unwrap().clone();
    let (auth, content_type, body) = &requests[0];
    let expected = base64::engine::general_purpose::STANDARD.encode("api:key-test");
    assert_eq!(auth, &format!("Basic {expected}"));
    assert!(
        content_type.starts_with("application/x-www-form-urlencoded"),
        "{content_type}"
    );
    let fields: Vec<(String, String)> = url_pairs(body);
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("to").as_deref(), Some("john.doe@email.com"));
    assert_eq!(
        field("from").as_deref(),
        Some("\"Northwind Support\" <support@help.northwind.test>")
    );
    assert_eq!(field("subject").as_deref(), Some("Re: Headphones"));
    assert_eq!(field("text").as_deref(), sent["text"].as_str());
    assert!(field("html").unwrap().contains("<p>"));
    assert_eq!(field("h:Message-Id").as_deref(), sent["message_id"].as_str());
    assert_eq!(field("h:In-Reply-To").as_deref(), Some("<mg1@email.com>"));
    assert_eq!(field("h:Reply-To"), Some(format!("support+{id}@{DOMAIN}")));
    assert_eq!(field("h:Auto-Submitted").as_deref(), Some("auto-replied"));

    // Mailgun refuses the next one (400): a malformed request is not retried.
    let other = ticket_of(
        &receive(
            &api,
            &mail(
                "jane.smith@email.com",
                "<mg2@email.com>",
                "Order",
                "",
                "Where is my order ORD-22222?",
            ),
        )
        .await,
    );
    let failed = outbound_with_status(&api, &other, 0, "failed").await;
    assert!(failed["last_error"].as_str().unwrap().contains("400"), "{failed}");
    assert_eq!(events(&api, &other, "email_failed").await.len(), 1);
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn url_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}
