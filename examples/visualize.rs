//! Draws both support workflows as the binaries run them (with the tools, so with the gate,
//! act and the reply gate): the pipeline and the agent, ASCII and Mermaid to the console, and
//! images (PNG by default; the agent's beside it with `-agent` in its name) where Graphviz's
//! `dot` is installed. The seed's `python -m src.workflow.visualize workflow_graph.png`, in
//! Rust:
//!
//! ```text
//! cargo run -p examples --example visualize -- workflow_graph.png   # and workflow_graph-agent.png
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use ticketflow_core::WorkflowKind;
use ticketflow_core::settings::Settings;
use ticketflow_core::store::{SqliteStore, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "workflow_graph.png".into()));
    // The tools need a store to be built; drawing reads nothing from it.
    let scratch = std::env::temp_dir().join(format!("ticketflow-visualize-{}.db", std::process::id()));
    let store = SqliteStore::connect(&format!("sqlite://{}", scratch.display())).await?;
    store.migrate().await?;
    let store: Arc<dyn Store> = Arc::new(store);
    let mut drawn = Vec::new();
    for kind in [WorkflowKind::Pipeline, WorkflowKind::Agent] {
        let settings = Settings {
            workflow: kind,
            ..Settings::default()
        };
        let workflow = settings.workflow(Some(store.clone()))?;
        let graph = workflow.graph();
        println!("The {kind} ({}):\n\n{}", graph.version(), graph.to_ascii());
        println!("Mermaid:\n\n{}", graph.to_mermaid());
        let image = match kind {
            WorkflowKind::Pipeline => path.clone(),
            WorkflowKind::Agent => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let extension = path
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_default();
                path.with_file_name(format!("{stem}-agent{extension}"))
            }
        };
        drawn.push((graph.render_image(&image), image));
    }
    for file in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{file}", scratch.display()));
    }
    for (outcome, image) in drawn {
        match outcome {
            Ok(()) => println!("wrote {}", image.display()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                println!("Graphviz `dot` is not installed: no image written (apt-get install graphviz)");
                break;
            }
            Err(err) => anyhow::bail!("rendering {} failed: {err}", image.display()),
        }
    }
    Ok(())
}
