//! `GET /tickets` search and filters over HTTP, in-process, on SQLite and on PostgreSQL: words
//! found in subject, body, customer and reply; hostile query strings get a 200 or a 422 with
//! the JSON error shape, never a 500; filters and sort are read and checked.

mod support;

use serde_json::Value;
use support::app::TestApp;

/// `text` percent-encoded for a query string.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search_desk(database_url: String) {
    let api = TestApp::start(&[("DATABASE_URL", &database_url)]).await;
    let refund = api
        .create(
            "cust_john_doe",
            "Refund please",
            "My headphones arrived broken, order ORD-12345.",
        )
        .await;
    let other = api
        .create("cust_jane_smith", "Login", "I cannot sign in to my account.")
        .await;
    api.wait_for_status(&refund, "completed").await;
    api.wait_for_status(&other, "completed").await;
    let list = |query: String| {
        let api = &api;
        async move { api.get(&format!("/tickets?{query}")).await }
    };
    let found = |answer: &Value| -> Vec<String> {
        answer["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let headphones = list(format!("q={}", encoded("broken headphones"))).await;
    assert_eq!(headphones.status, 200, "{}", headphones.text);
    assert_eq!(found(&headphones.json), vec![refund.clone()]);
    assert_eq!(headphones.json["total"], 1);
    // The reply is searched too: the completed ticket's answer is about signing in.
    let reply = api.get(&format!("/tickets/{other}")).await.json;
    let word = reply["result"]["final_response"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .find(|w| w.len() > 7 && !"I cannot sign in to my account Login".contains(*w))
        .expect("a long word in the reply")
        .to_owned();
    assert_eq!(
        found(&list(format!("q={}", encoded(&word))).await.json),
        vec![other.clone()],
        "{word}"
    );
    assert_eq!(
        found(&list("channel=api&sort=created_asc".into()).await.json),
        [refund.clone(), other.clone()]
    );
    let later = list(format!("created_after={}", encoded("2999-01-01T00:00:00Z"))).await;
    assert_eq!((later.status, later.json["total"].as_i64()), (200, Some(0)));

    for hostile in [
        "\"",
        "'",
        "*",
        "OR",
        "NEAR(a b)",
        "subject:refund",
        "-refund",
        "refund*",
        "(((",
        "\\",
        "a\"b'c",
        "'; DROP TABLE tickets; --",
        "\u{202e}refund",
        "%s%n",
        "ORD-12345",
    ] {
        let answer = list(format!("q={}", encoded(hostile))).await;
        assert_eq!(answer.status, 200, "{hostile:?}: {}", answer.text);
    }
    for (bad, why) in [
        ("q=".to_owned(), "empty"),
        (format!("q={}", encoded(&"x".repeat(10_000))), "10 KB"),
        ("q=a%00b".to_owned(), "NUL"),
        ("q=%20%20".to_owned(), "blank"),
        ("sort=sideways".to_owned(), "unknown sort"),
        ("created_after=yesterday".to_owned(), "not a time"),
        (format!("channel={}", "c".repeat(51)), "long channel"),
    ] {
        let answer = list(bad.clone()).await;
        assert!(
            matches!(answer.status, 400 | 422),
            "{why}: {} {}",
            answer.status,
            answer.text
        );
        assert!(answer.json["error"].is_string(), "{why}: {}", answer.text);
    }
}

#[tokio::test]
async fn search_and_filters_on_sqlite() {
    search_desk(ticketflow_core::testing::database::fresh_sqlite_url()).await;
}

#[tokio::test]
async fn search_and_filters_on_postgres() {
    search_desk(support::fresh_postgres().await).await;
}
