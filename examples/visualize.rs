//! Draws the support workflow: ASCII and Mermaid to the console, and an image (PNG by
//! default) where Graphviz's `dot` is installed. The seed's
//! `python -m src.workflow.visualize workflow_graph.png`, in Rust:
//!
//! ```text
//! cargo run -p examples --example visualize -- workflow_graph.png
//! ```

use std::path::PathBuf;

use ticketflow_core::Workflow;

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "workflow_graph.png".into()));
    let workflow = Workflow::offline()?;
    let graph = workflow.graph();
    println!("{}", graph.to_ascii());
    println!("Mermaid:\n\n{}", graph.to_mermaid());
    match graph.render_image(&path) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            println!("Graphviz `dot` is not installed: no image written (apt-get install graphviz)")
        }
        Err(err) => anyhow::bail!("rendering {} failed: {err}", path.display()),
    }
    Ok(())
}
