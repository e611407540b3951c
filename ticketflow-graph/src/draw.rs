//! Drawings of a compiled graph: ASCII for terminals, Mermaid for Markdown, DOT for Graphviz.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::process::Command;

use crate::graph::{Dest, Exit};
use crate::{END, Graph, START, State};

/// One edge as drawn: source, target, and the route key for conditional edges.
struct DrawnEdge<'a> {
    from: &'a str,
    to: &'a str,
    label: Option<&'a str>,
}

impl<S: State> Graph<S> {
    fn drawn_edges(&self) -> Vec<DrawnEdge<'_>> {
        let name = |dest: Dest| match dest {
            Dest::End => END,
            Dest::Node(i) => &*self.nodes[i].name,
        };
        let exits = std::iter::once((START, &self.entry)).chain(self.nodes.iter().map(|n| (&*n.name, &n.exit)));
        let mut edges = Vec::new();
        for (from, exit) in exits {
            match exit {
                Exit::Edge(dest) => edges.push(DrawnEdge {
                    from,
                    to: name(*dest),
                    label: None,
                }),
                Exit::Route { routes, .. } => edges.extend(routes.iter().map(|r| DrawnEdge {
                    from,
                    to: name(r.dest),
                    label: Some(r.key.as_str()),
                })),
            }
        }
        edges
    }

    /// A plain-text drawing: each node in a box, in the order the nodes were added, with its
    /// way out beneath it. Conditional edges are dotted (`:`) and labelled with their key.
    ///
    /// ```
    /// # use ticketflow_graph::{node_fn, Graph, NodeOutput, END, START};
    /// # let graph = Graph::<u8>::builder()
    /// #     .node("a", node_fn(|s: u8, _| async move { Ok(NodeOutput::Continue(s)) }))
    /// #     .edge(START, "a").edge("a", END).compile().unwrap();
    /// assert!(graph.to_ascii().contains("| a |"));
    /// ```
    pub fn to_ascii(&self) -> String {
        let edges = self.drawn_edges();
        let mut out = String::new();
        let draw_box = |out: &mut String, name: &str| {
            let bar = "-".repeat(name.len() + 2);
            let _ = writeln!(out, "+{bar}+\n| {name} |\n+{bar}+");
        };
        let names = std::iter::once(START).chain(self.node_names());
        for from in names {
            draw_box(&mut out, from);
            for edge in edges.iter().filter(|e| e.from == from) {
                match edge.label {
                    None => {
                        let _ = writeln!(out, "    |\n    +--> {}", edge.to);
                    }
                    Some(label) => {
                        let _ = writeln!(out, "    :\n    +..[{label}]..> {}", edge.to);
                    }
                }
            }
            out.push('\n');
        }
        draw_box(&mut out, END);
        out
    }

    /// A Mermaid flowchart; conditional edges are dotted and labelled with their key.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        let _ = writeln!(out, "    {START}([START])");
        for name in self.node_names() {
            let _ = writeln!(out, "    {name}[{name}]");
        }
        let _ = writeln!(out, "    {END}([END])");
        for edge in self.drawn_edges() {
            let _ = match edge.label {
                None => writeln!(out, "    {} --> {}", edge.from, edge.to),
                Some(label) => writeln!(out, "    {} -.->|{label}| {}", edge.from, edge.to),
            };
        }
        out
    }

    /// A Graphviz DOT digraph; conditional edges are dashed and labelled with their key.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph workflow {\n    rankdir=TB;\n    node [shape=box, style=rounded];\n");
        let _ = writeln!(out, "    \"{START}\" [label=\"START\", shape=oval];");
        let _ = writeln!(out, "    \"{END}\" [label=\"END\", shape=oval];");
        for name in self.node_names() {
            let _ = writeln!(out, "    \"{name}\";");
        }
        for edge in self.drawn_edges() {
            let _ = match edge.label {
                None => writeln!(out, "    \"{}\" -> \"{}\";", edge.from, edge.to),
                Some(label) => writeln!(
                    out,
                    "    \"{}\" -> \"{}\" [style=dashed, label=\"{label}\"];",
                    edge.from, edge.to
                ),
            };
        }
        out.push_str("}\n");
        out
    }

    /// Renders the DOT drawing to an image with Graphviz's `dot` program; the format comes from
    /// the file's extension (`png`, `svg`, `pdf`, ...). Fails with `NotFound` where `dot` is not
    /// installed.
    pub fn render_image(&self, path: &Path) -> io::Result<()> {
        let format = path.extension().and_then(|e| e.to_str()).unwrap_or("png");
        let mut child = Command::new("dot")
            .arg(format!("-T{format}"))
            .arg("-o")
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            io::Write::write_all(&mut stdin, self.to_dot().as_bytes())?;
        }
        let status = child.wait()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("dot exited with {status}")))
        }
    }
}
