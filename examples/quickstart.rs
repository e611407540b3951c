//! Runs a few sample tickets through the six-step workflow and prints what each step decided.
//! With no `OPENAI_API_KEY` it uses the offline engine: no services, no key, no network. The
//! engine comes from the same settings as the binaries' (`OPENAI_*`, `KB_DIR`, a `--config`
//! file).
//!
//! ```text
//! cargo run -p examples --example quickstart
//! ```

use ticketflow_core::TicketInput;
use ticketflow_core::settings::{Settings, Sources};

const SAMPLES: &[(&str, &str)] = &[
    (
        "Charged twice for my Pro plan",
        "Hello, my card statement shows two charges of $29 on the same day for order #48817. Can you fix it?",
    ),
    (
        "Desktop app crashes on startup",
        "Since updating to v2.3.1 the Windows app closes right after the splash screen. Error 0xc0000005.",
    ),
    (
        "Lost my phone - 2FA",
        "I got a new phone and can't get my authenticator codes anymore, so I'm locked out. Help!",
    ),
    (
        "Where is my hub?",
        "I ordered a Northwind Hub last week (order BX-4410) and the tracking hasn't updated in 4 days.",
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    install_tls();
    let settings = Settings::load(Sources {
        env: std::env::vars().collect(),
        ..Sources::default()
    })?;
    let workflow = settings.workflow(None)?;
    for (i, (subject, body)) in SAMPLES.iter().enumerate() {
        let ticket = TicketInput {
            id: format!("sample-{}", i + 1),
            customer_id: "cust_demo".into(),
            subject: (*subject).into(),
            body: (*body).into(),
        };
        let result = workflow.run(ticket).await?;
        let entities = result.entities.unwrap_or_default();
        println!("=== {subject}");
        println!(
            "classification: {}   order id: {}   product: {}   issue: {}   urgency: {}",
            result.classification.map_or("-", |c| c.as_str()),
            entities.order_id.as_deref().unwrap_or("-"),
            entities.product.as_deref().unwrap_or("-"),
            entities.issue_type.as_deref().unwrap_or("-"),
            entities.urgency.as_str(),
        );
        if let Some(article) = result.research.as_ref().and_then(|r| r.articles.first()) {
            println!("top article:    {} (score {:.2})", article.title, article.score);
        }
        let engines: Vec<String> = result
            .engine
            .iter()
            .map(|(step, e)| format!("{step}={}{}", e.engine, if e.fallback { "(fallback)" } else { "" }))
            .collect();
        println!(
            "review:         {} revision(s)   engines: {}",
            result.revisions,
            engines.join(" ")
        );
        println!("\n{}\n", result.final_response.as_deref().unwrap_or("(no response)"));
    }
    Ok(())
}

/// The LLM client speaks TLS with rustls' ring provider, which must be installed once.
fn install_tls() {
    ticketflow_core::telemetry::install_crypto_provider();
}
