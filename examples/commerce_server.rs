//! Serves ticketflow's commerce contract with the demo records, in memory: a reference for a
//! company's own order service, and a stand-in to point `COMMERCE_API_URL` at.
//!
//! ```text
//! cargo run -p examples --example commerce_server               # on 127.0.0.1:8090
//! COMMERCE_API_URL=http://127.0.0.1:8090 cargo run -p ticketflow-api
//! curl -s localhost:8090/orders/ord_12345
//! ```

use examples::commerce::CommerceServer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8090".into());
    let token = std::env::var("COMMERCE_API_TOKEN").ok();
    let mut server = CommerceServer::start(&addr, token.as_deref()).await?;
    println!("commerce reference server on {} (the demo records)", server.base_url);
    server.wait().await;
    Ok(())
}
