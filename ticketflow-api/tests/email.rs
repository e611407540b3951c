//! E-mail in, in-process on SQLite (and PostgreSQL for threading and turns), offline engine:
//! each provider's payload (fixtures from the providers' documented formats) becomes a
//! ticket with its metadata and attachments; basic auth, Mailgun signatures and replays;
//! duplicates; threading by In-Reply-To, by References only and by plus-address; a forged
//! sender; a reopened ticket's second turn; the status rules; bad input; a database that is
//! down.

mod support;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use poem::http::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use support::app::{Answer, TestApp};

const TOKEN: &str = "s3cret-token";
const MAILGUN_KEY: &str = "key-mailgun-test";
const DOMAIN: &str = "help.northwind.test";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/email/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn desk(database_url: Option<String>) -> TestApp {
    let url = database_url.unwrap_or_else(ticketflow_core::testing::database::fresh_sqlite_url);
    let api = TestApp::start(&[
        ("DATABASE_URL", &url),
        ("EMAIL_WEBHOOK_TOKEN", TOKEN),
        ("MAILGUN_WEBHOOK_SIGNING_KEY", MAILGUN_KEY),
        ("EMAIL_DOMAIN", DOMAIN),
    ])
    .await;
    api.store.load_demo_data(chrono::Utc::now()).await.unwrap();
    api
}

fn basic(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("inbound:{password}"))
    )
}

async fn post(api: &TestApp, provider: &str, content_type: &str, body: Vec<u8>, auth: Option<&str>) -> Answer {
    let auth = auth.map(basic);
    let mut headers = vec![("content-type", content_type)];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    api.request(
        Method::POST,
        &format!("/webhooks/email/inbound/{provider}"),
        &headers,
        Some(body),
    )
    .await
}

async fn raw(api: &TestApp, message: &str) -> Answer {
    post(api, "raw", "message/rfc822", message.as_bytes().to_vec(), Some(TOKEN)).await
}

/// A reply of `from` to Message-ID `answers` (In-Reply-To and References, or References only).
fn reply(from: &str, id: &str, answers: &str, in_reply_to: bool, text: &str) -> String {
    let threading = if in_reply_to {
        format!("In-Reply-To: {answers}\r\nReferences: {answers}\r\n")
    } else {
        format!("References: <older@example.com> {answers}\r\n")
    };
    format!(
        "From: {from}\r\nTo: support@{DOMAIN}\r\nSubject: Re: earlier\r\nMessage-ID: {id}\r\n{threading}\r\n\
         {text}\r\n\r\nOn Mon, 30 Nov 2026, Northwind Support <support@{DOMAIN}> wrote:\r\n> Our earlier answer.\r\n"
    )
}

/// A multipart/form-data body of `texts` and `files` (field, file name, type, content).
fn multipart(texts: &[(&str, &str)], files: &[(&str, &str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "xYzZY";
    let mut body = Vec::new();
    for (name, value) in texts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (name, file, content_type, content) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn urlencode(pairs: &[(&str, String)]) -> Vec<u8> {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".into(),
                other => format!("%{other:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Mailgun's signature fields for `token` at `timestamp`, signed with `key`.
fn mailgun_signature(key: &str, timestamp: i64, token: &str) -> Vec<(&'static str, String)> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    vec![
        ("timestamp", timestamp.to_string()),
        ("token", token.to_owned()),
        ("signature", hex::encode(mac.finalize().into_bytes())),
    ]
}

fn mailgun_form(token: &str, timestamp: i64, key: &str, message_id: &str) -> Vec<u8> {
    let mut pairs = vec![
        ("sender", "bob.wilson@email.com".to_owned()),
        ("from", "Bob Wilson <Bob.Wilson@email.com>".to_owned()),
        ("recipient", format!("support@{DOMAIN}")),
        ("subject", "Order status".to_owned()),
        (
            "body-plain",
            "Has ORD-33333 shipped?\n\nOn Sun, someone wrote:\n> old".to_owned(),
        ),
        ("stripped-text", "Has ORD-33333 shipped?".to_owned()),
        ("body-html", "<p>Has ORD-33333 shipped?</p>".to_owned()),
        ("Message-Id", message_id.to_owned()),
        (
            "message-headers",
            json!([["Message-Id", message_id], ["X-Mailgun-Spf", "Pass"]]).to_string(),
        ),
    ];
    pairs.extend(mailgun_signature(key, timestamp, token));
    urlencode(&pairs)
}

async fn messages(api: &TestApp, id: &str) -> Vec<Value> {
    let answer = api.get(&format!("/tickets/{id}/messages")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    serde_json::from_value(answer.json).unwrap()
}

fn id_of(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json["ticket_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_providers_payload_becomes_an_email_ticket() {
    let api = desk(None).await;

    let answer = raw(&api, std::str::from_utf8(&fixture("raw.eml")).unwrap()).await;
    assert_eq!(answer.json["threaded"], false, "{}", answer.json);
    assert_eq!(answer.json["arrival"], "created");
    assert_eq!(answer.json["message_id"], "<raw-1@example.com>");
    let id = id_of(&answer);
    let ticket = api.get(&format!("/tickets/{id}")).await.json;
    assert_eq!(ticket["channel"], "email");
    assert_eq!(ticket["customer_id"], "john.doe@example.com");
    assert_eq!(ticket["subject"], "Café order");
    assert_eq!(ticket["metadata"]["message_id"], "<raw-1@example.com>");
    assert_eq!(ticket["metadata"]["from_email"], "john.doe@example.com");
    assert_eq!(ticket["metadata"]["from_name"], "John Doe");
    assert_eq!(ticket["metadata"]["to_email"], format!("support@{DOMAIN}"));
    assert_eq!(ticket["metadata"]["attachments"][0]["name"], "screenshot.png");
    assert_eq!(ticket["metadata"]["attachments"][0]["size"], 8);
    let stored = messages(&api, &id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["provider"], "raw");
    assert!(stored[0]["text"].as_str().unwrap().contains("for the café"));
    assert!(stored[0]["html"].as_str().unwrap().contains("<p>"));

    let answer = post(
        &api,
        "postmark",
        "application/json",
        fixture("postmark.json"),
        Some(TOKEN),
    )
    .await;
    let id = id_of(&answer);
    // The RFC Message-ID from the headers, not Postmark's own id.
    assert_eq!(answer.json["message_id"], "<CAE6f0Q1pmaj+pm@mail.example.com>");
    let ticket = api.get(&format!("/tickets/{id}")).await.json;
    assert_eq!(ticket["customer_id"], "sarah.johnson@example.com");
    assert_eq!(ticket["metadata"]["from_name"], "Sarah Johnson");
    assert_eq!(ticket["metadata"]["attachments"][0]["content_type"], "text/plain");

    let answer = post(
        &api,
        "generic",
        "application/json",
        fixture("generic.json"),
        Some(TOKEN),
    )
    .await;
    let id = id_of(&answer);
    let ticket = api.get(&format!("/tickets/{id}")).await.json;
    assert_eq!(ticket["customer_id"], "mike.wilson@example.com");
    assert_eq!(ticket["body"], "Does the mechanical keyboard work with a Mac?");
    assert_eq!(ticket["metadata"]["attachments"][0]["name"], "photo.jpg");

    let headers =
        "Received: from mx.example.com\nMessage-ID: <sg-1@example.com>\nFrom: Alice <alice.jones@email.com>\n";
    let (content_type, body) = multipart(
        &[
            ("headers", headers),
            ("from", "Alice Jones <Alice.Jones@email.com>"),
            ("to", &format!("support@{DOMAIN}")),
            ("subject", "Webcam"),
            ("text", "My order ORD-44444: where is it?"),
            ("html", "<p>My order ORD-44444: where is it?</p>"),
            (
                "charsets",
                r#"{"to":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}"#,
            ),
            ("attachments", "1"),
        ],
        &[("attachment1", "label.pdf", "application/pdf", b"%PDF-1.4 test")],
    );
    let answer = post(&api, "sendgrid", &content_type, body, Some(TOKEN)).await;
    assert_eq!(answer.json["message_id"], "<sg-1@example.com>");
    let id = id_of(&answer);
    let ticket = api.get(&format!("/tickets/{id}")).await.json;
    assert_eq!(ticket["customer_id"], "alice.jones@email.com");
    assert_eq!(ticket["metadata"]["attachments"][0]["name"], "label.pdf");
    assert_eq!(ticket["metadata"]["attachments"][0]["size"], 13);

    let now = chrono::Utc::now().timestamp();
    let answer = post(
        &api,
        "mailgun",
        "application/x-www-form-urlencoded",
        mailgun_form("tok-a", now, MAILGUN_KEY, "<mg-1@email.com>"),
        None,
    )
    .await;
    let id = id_of(&answer);
    let ticket = api.get(&format!("/tickets/{id}")).await.json;
    assert_eq!(ticket["customer_id"], "bob.wilson@email.com");
    // Mailgun's stripped text is what the workflow reads; the whole text is kept.
    assert_eq!(ticket["body"], "Has ORD-33333 shipped?");
    let stored = messages(&api, &id).await;
    assert!(stored[0]["text"].as_str().unwrap().contains("> old"));

    // Every one of them is answered by the workflow.
    let page = api.get("/tickets?page_size=100").await.json;
    for ticket in page["tickets"].as_array().unwrap() {
        api.wait_for_status(ticket["id"].as_str().unwrap(), "completed").await;
    }
    api.stop().await;
}

#[tokio::test]
async fn webhooks_are_authenticated_and_replays_refused() {
    let api = desk(None).await;
    let message = reply("a@example.com", "<auth-1@example.com>", "<none@x>", true, "hello");
    let body = message.as_bytes().to_vec();
    for (auth, why) in [(None, "no credentials"), (Some("wrong"), "a wrong token")] {
        let answer = post(&api, "raw", "message/rfc822", body.clone(), auth).await;
        assert_eq!(answer.status, 401, "{why}: {}", answer.text);
        assert_eq!(answer.json["error"], "unauthorized");
    }
    let answer = api
        .request(
            Method::POST,
            "/webhooks/email/inbound/generic",
            &[
                ("authorization", "Bearer s3cret-token"),
                ("content-type", "application/json"),
            ],
            Some(fixture("generic.json")),
        )
        .await;
    assert_eq!(answer.status, 401);

    let now = chrono::Utc::now().timestamp();
    let form = |token: &str, at: i64, key: &str| mailgun_form(token, at, key, &format!("<mg-{token}@email.com>"));
    let urlencoded = "application/x-www-form-urlencoded";
    for (body, why) in [
        (form("t-wrong-key", now, "another key"), "a signature by another key"),
        (
            form("t-old", now - 6 * 60, MAILGUN_KEY),
            "a signature older than 5 minutes",
        ),
        (urlencode(&[("from", "x@y.z".into())]), "no signature at all"),
    ] {
        let answer = post(&api, "mailgun", urlencoded, body, None).await;
        assert_eq!(answer.status, 401, "{why}: {}", answer.text);
    }
    let first = post(&api, "mailgun", urlencoded, form("t-once", now, MAILGUN_KEY), None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let replayed = post(&api, "mailgun", urlencoded, form("t-once", now, MAILGUN_KEY), None).await;
    assert_eq!(replayed.status, 401, "{}", replayed.text);
    assert!(replayed.json["message"].as_str().unwrap().contains("replay"));
    api.stop().await;

    // A provider whose secret is unset answers 503, so the provider keeps the mail.
    let open = TestApp::start(&[]).await;
    for provider in ["raw", "sendgrid", "postmark", "generic", "mailgun"] {
        let answer = post(&open, provider, "message/rfc822", body.clone(), Some(TOKEN)).await;
        assert_eq!(answer.status, 503, "{provider}: {}", answer.text);
        assert_eq!(answer.json["error"], "email_not_configured");
    }
    let unknown = post(&open, "carrier-pigeon", "message/rfc822", body, Some(TOKEN)).await;
    assert_eq!(unknown.status, 404);
    let get = open.get("/webhooks/email/inbound/raw").await;
    assert_eq!(get.status, 405, "{}", get.text);
    assert_eq!(get.headers["allow"], "POST");
    open.stop().await;
}

/// Threading on `database_url`: In-Reply-To naming the ticket's reply, References only,
/// plus-address; another sender on the same thread gets a ticket of their own; duplicates add
/// nothing; a reopened ticket's second turn answers the new question, and a message that
/// arrives while a refund waits for a person is answered after the decision.
async fn threading_and_turns(database_url: Option<String>) {
    let api = desk(database_url).await;
    let john = "john.doe@email.com";
    let first = format!(
        "From: John Doe <{john}>\r\nTo: support@{DOMAIN}\r\nSubject: My headphones\r\nMessage-ID: <j1@email.com>\r\n\r\n\
         Where is my order ORD-12345?\r\n"
    );
    let id = id_of(&raw(&api, &first).await);
    let done = api.wait_for_status(&id, "completed").await;
    let first_reply = done["result"]["final_response"].as_str().unwrap().to_owned();
    assert!(
        first_reply.contains("1Z999AA1"),
        "the first turn states the tracking number: {first_reply}"
    );
    let conversation = messages(&api, &id).await;
    assert_eq!(conversation.len(), 2, "{conversation:?}");
    assert_eq!(conversation[1]["direction"], "outbound");
    assert_eq!(conversation[1]["turn"], 1);
    assert_eq!(conversation[1]["subject"], "Re: My headphones");
    assert_eq!(conversation[1]["text"], first_reply);
    let our_reply_id = conversation[1]["message_id"].as_str().unwrap().to_owned();

    // The same message again: the same answer, nothing added.
    let again = raw(&api, &first).await;
    assert_eq!(
        (again.json["arrival"].as_str(), again.json["threaded"].as_bool()),
        (Some("duplicate"), Some(false))
    );
    assert_eq!(id_of(&again), id);
    assert_eq!(messages(&api, &id).await.len(), 2);

    // A reply to our reply, from John (his address in other case): the ticket reopens and a
    // second turn answers the new question.
    let second = reply(
        "John.Doe@EMAIL.com",
        "<j2@email.com>",
        &our_reply_id,
        true,
        "Thanks! Also, my keyboard from order ORD-11111 is broken: I want a refund for order ORD-11111.",
    );
    let answer = raw(&api, &second).await;
    assert_eq!(id_of(&answer), id);
    assert_eq!(
        (answer.json["arrival"].as_str(), answer.json["threaded"].as_bool()),
        (Some("reopened"), Some(true))
    );
    let held = api.wait_for_status(&id, "awaiting_approval").await;
    assert_eq!(held["turn"], 2);
    let redelivered = raw(&api, &second).await;
    assert_eq!(redelivered.json["arrival"], "duplicate");

    // While the refund waits: a third message (References only) is appended; no turn before the decision.
    let third = reply(
        john,
        "<j3@email.com>",
        "<j2@email.com>",
        false,
        "Also, do you sell laptop stands?",
    );
    let answer = raw(&api, &third).await;
    assert_eq!(
        (answer.json["arrival"].as_str(), answer.json["status"].as_str()),
        (Some("appended"), Some("awaiting_approval"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        api.get(&format!("/tickets/{id}")).await.json["status"],
        "awaiting_approval"
    );
    let approvals = api.get(&format!("/approvals?ticket_id={id}")).await.json;
    assert_eq!(
        approvals["approvals"][0]["action_params"]["order_id"], "ord_11111",
        "{approvals}"
    );
    let approval = approvals["approvals"][0]["id"].as_str().unwrap().to_owned();
    let decided = api
        .post_json(
            &format!("/approvals/{approval}/decide"),
            &json!({ "approved": true }),
            &[],
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.text);

    // Turn 2 answers the refund, then turn 3 the appended question.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let finished = loop {
        let ticket = api.get(&format!("/tickets/{id}")).await.json;
        if ticket["status"] == "completed" && ticket["turn"] == 3 {
            break ticket;
        }
        assert!(tokio::time::Instant::now() < deadline, "no third turn: {ticket}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let conversation = messages(&api, &id).await;
    let outbound: Vec<&Value> = conversation.iter().filter(|m| m["direction"] == "outbound").collect();
    assert_eq!(outbound.len(), 3, "{conversation:#?}");
    let turns: Vec<i64> = outbound.iter().map(|m| m["turn"].as_i64().unwrap()).collect();
    assert_eq!(turns, [1, 2, 3]);
    let refund_reply = outbound[1]["text"].as_str().unwrap();
    assert!(refund_reply.to_lowercase().contains("refund"), "{refund_reply}");
    assert_ne!(refund_reply, first_reply);
    assert_eq!(api.store.refunds("ord_11111").await.unwrap().len(), 1);
    let stand_reply = finished["result"]["final_response"].as_str().unwrap();
    assert_ne!(stand_reply, refund_reply);
    // The inbound reply keeps its quoted history; the workflow read it without.
    let second_stored = conversation
        .iter()
        .find(|m| m["message_id"] == "<j2@email.com>")
        .unwrap();
    assert!(
        second_stored["text"]
            .as_str()
            .unwrap()
            .contains("> Our earlier answer.")
    );
    assert!(!second_stored["reply_text"].as_str().unwrap().contains("earlier answer"));
    let events: Vec<Value> = serde_json::from_value(api.get(&format!("/tickets/{id}/events")).await.json).unwrap();
    assert_eq!(events.iter().filter(|e| e["event_type"] == "email_received").count(), 3);

    // Plus-addressing alone threads John's mail; the same thread from another address does not.
    let plus = format!(
        "From: {john}\r\nTo: Support <support+{id}@{DOMAIN}>\r\nSubject: one more\r\nMessage-ID: <j4@email.com>\r\n\r\nHello again\r\n"
    );
    let answer = raw(&api, &plus).await;
    assert_eq!(
        (id_of(&answer), answer.json["threaded"].as_bool()),
        (id.clone(), Some(true))
    );
    let forged = reply(
        "mallory@evil.example",
        "<m1@evil.example>",
        &our_reply_id,
        true,
        "Send me John's order",
    );
    let answer = raw(&api, &forged).await;
    assert_ne!(id_of(&answer), id, "a forged sender never joins John's conversation");
    assert_eq!(answer.json["threaded"], false);
    let forged_plus = plus.replace(john, "mallory@evil.example").replace("<j4@", "<m2@");
    let answer = raw(&api, &forged_plus).await;
    assert_ne!(id_of(&answer), id);
    api.stop().await;
}

#[tokio::test]
async fn replies_thread_reopen_and_run_a_new_turn_on_sqlite() {
    threading_and_turns(None).await;
}

#[tokio::test]
async fn replies_thread_reopen_and_run_a_new_turn_on_postgres() {
    threading_and_turns(Some(support::fresh_postgres().await)).await;
}

#[tokio::test]
async fn bad_mail_is_a_client_error_that_names_the_part() {
    let api = TestApp::start(&[("EMAIL_WEBHOOK_TOKEN", TOKEN), ("EMAIL_MAX_BYTES", "1048576")]).await;
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "raw",
            "message/rfc822",
            b"Subject: hi\r\n\r\nno sender".to_vec(),
            422,
            "from",
        ),
        (
            "raw",
            "message/rfc822",
            b"From: not-an-address\r\n\r\nbody".to_vec(),
            422,
            "from",
        ),
        (
            "raw",
            "message/rfc822",
            b"From: a@b.c\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nbody".to_vec(),
            400,
            "content-type",
        ),
        ("raw", "message/rfc822", Vec::new(), 400, "message"),
        ("generic", "application/json", b"{not json".to_vec(), 400, "body"),
        (
            "generic",
            "application/json",
            br#"{"subject":"no sender"}"#.to_vec(),
            422,
            "from",
        ),
        (
            "postmark",
            "application/json",
            br#"{"Subject":"x"}"#.to_vec(),
            422,
            "From",
        ),
        ("sendgrid", "text/plain", b"hello".to_vec(), 400, "content-type"),
        ("sendgrid", "multipart/form-data", b"--x\r\n".to_vec(), 400, "multipart"),
    ];
    for (provider, content_type, body, status, field) in cases {
        let answer = post(&api, provider, content_type, body, Some(TOKEN)).await;
        assert_eq!(answer.status, status, "{provider} {field}: {}", answer.text);
        assert_eq!(answer.json["field"], field, "{}", answer.text);
    }
    // Over EMAIL_MAX_BYTES: 413, even though the API's own limit is far smaller per route.
    let big = format!("From: a@b.c\r\nSubject: big\r\n\r\n{}", "x".repeat(2 * 1024 * 1024));
    assert_eq!(raw(&api, &big).await.status, 413);
    let fits = format!(
        "From: a@b.c\r\nSubject: fits\r\nMessage-ID: <fits@b.c>\r\n\r\n{}",
        "y".repeat(200 * 1024)
    );
    assert_eq!(raw(&api, &fits).await.status, 200);

    // Hostile but readable: a header folded across 100 KB, 10,000 recipients, NUL and invalid
    // UTF-8 — stored sanitised, never a 500.
    let folded = format!(
        "Subject: {}\r\n",
        (0..5000).map(|i| format!("word{i}")).collect::<Vec<_>>().join("\r\n ")
    );
    let recipients = format!(
        "To: {}\r\n",
        (0..10_000)
            .map(|i| format!("r{i}@x.example"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut hostile =
        format!("From: h@x.example\r\nMessage-ID: <hostile@x>\r\n{folded}{recipients}\r\nnul \0 here ").into_bytes();
    hostile.extend_from_slice(&[0xff, 0xfe, b'!']);
    let answer = post(&api, "raw", "message/rfc822", hostile, Some(TOKEN)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let id = id_of(&answer);
    let ticket = api.get(&format!("/tickets/{id}")).await.json;
    assert_eq!(ticket["subject"].as_str().unwrap().chars().count(), 500);
    assert!(!ticket["body"].as_str().unwrap().contains('\0'));
    let generic_nul =
        json!({ "from": "n@x.example", "subject": "nul\u{0}", "text": "a\u{0}b", "message_id": "<nul@x>" });
    let answer = post(
        &api,
        "generic",
        "application/json",
        generic_nul.to_string().into_bytes(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    api.stop().await;
}

#[tokio::test]
async fn a_database_that_is_down_is_a_503_so_the_provider_retries() {
    use sqlx::Connection;
    let url = support::fresh_postgres().await;
    let api = TestApp::start(&[("DATABASE_URL", &url), ("EMAIL_WEBHOOK_TOKEN", TOKEN)]).await;
    let message = "From: a@example.com\r\nSubject: hi\r\nMessage-ID: <down@example.com>\r\n\r\nHello\r\n";
    let (server, name) = url.rsplit_once('/').unwrap();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE \"{name}\" WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .unwrap();
    let answer = raw(&api, message).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["error"], "database_unavailable");
    api.stop().await;
}
