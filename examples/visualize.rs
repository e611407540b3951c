//! Draws the support workflow as both binaries run it (with the tools, so with the gate, act
//! and the reply gate): ASCII and Mermaid to the console, and an image (PNG by default) where
//! Graphviz's `dot` is installed. The seed's `python -m src.workflow.visualize
//! workflow_graph.png`, in Rust:
//!
//! ```text
//! cargo run -p examples --example visualize -- workflow_graph.png
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use ticketflow_core::settings::Settings;
use ticketflow_core::store::{SqliteStore, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "workflow_graph.png".into()));
    // The tools need a store to be built; drawing reads nothing from it.
    let scratch = std::env::temp_dir().join(format!("ticketflow-visualize-{}.db", std::process::id()));
    let store = SqliteStore::connect(&format!("sqlite://{}", scratch.display())).await?;
    store.migrate().await?;
    let workflow = Settings::default().workflow(Some(Arc::new(store)))?;
    let graph = workflow.graph();
    println!("{}", graph.to_ascii());
    println!("Mermaid:\n\n{}", graph.to_mermaid());
    let drawn = graph.render_image(&path);
    for file in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{file}", scratch.display()));
    }
    match drawn {
        Ok(()) => println!("wrote {}", path.display()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            println!("Graphviz `dot` is not installed: no image written (apt-get install graphviz)")
        }
        Err(err) => anyhow::bail!("rendering {} failed: {err}", path.display()),
    }
    Ok(())
}
