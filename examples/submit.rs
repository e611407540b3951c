//! Submits sample tickets to a running ticketflow API over HTTP and prints what came back.
//!
//! ```text
//! cargo run -p ticketflow-api                      # in one terminal (embedded mode)
//! cargo run -p examples --example submit           # in another; or pass the API's URL
//! ```

use std::time::Duration;

use serde_json::{Value, json};

const SAMPLES: &[(&str, &str)] = &[
    (
        "Charged twice for my Pro plan",
        "My statement shows two charges of $29 for order #48817. Please fix it.",
    ),
    (
        "App crashes on startup",
        "Since v2.3.1 the Windows desktop app closes right after the splash screen.",
    ),
    (
        "Where is my hub?",
        "I ordered a Northwind Hub (order BX-4410) and tracking hasn't moved in 4 days.",
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    for (subject, body) in SAMPLES {
        let created: Value = client
            .post(format!("{base}/tickets"))
            .json(&json!({ "subject": subject, "body": body, "customer_id": "cust_demo" }))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("is the API running at {base}? ({e})"))?
            .error_for_status()?
            .json()
            .await?;
        let id = created["ticket_id"].as_str().unwrap_or_default().to_owned();
        let ticket = loop {
            let ticket: Value = client.get(format!("{base}/tickets/{id}")).send().await?.json().await?;
            match ticket["status"].as_str() {
                Some("completed" | "failed_permanent") => break ticket,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        println!("=== {subject}  ({id}, {})", ticket["status"]);
        println!("classification: {}", ticket["result"]["classification"]);
        println!(
            "{}\n",
            ticket["result"]["final_response"].as_str().unwrap_or("(no response)")
        );
    }
    Ok(())
}
