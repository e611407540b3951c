//! `ticketflow-api`: the HTTP front of ticketflow.
//!
//! Today it carries the `migrate` subcommand; the HTTP server (`serve`) is being built.

use clap::{Parser, Subcommand};
use ticketflow_core::store;

/// ticketflow API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// postgres://… or sqlite://… (default: a SQLite file in the working directory).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://ticketflow.db", global = true)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Applies the database migrations (PostgreSQL or SQLite, from DATABASE_URL) and exits.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate => {
            let store = store::connect(&cli.database_url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
            store
                .migrate()
                .await
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
            println!("migrations applied");
        }
    }
    Ok(())
}
