//! `compile()` refuses every kind of broken graph with a typed error.

use ticketflow_graph::{CompileError, END, Graph, GraphBuilder, NodeOutput, START, node_fn};

fn pass(name: &str, builder: GraphBuilder<u32>) -> GraphBuilder<u32> {
    builder.node(name, node_fn(|s: u32, _| async move { Ok(NodeOutput::Continue(s)) }))
}

fn err(builder: GraphBuilder<u32>) -> CompileError {
    builder.compile().expect_err("graph should be rejected")
}

#[test]
fn a_valid_graph_compiles() {
    let graph = pass("b", pass("a", Graph::builder()))
        .edge(START, "a")
        .edge("a", "b")
        .edge("b", END)
        .compile()
        .unwrap();
    assert_eq!(graph.node_names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(graph.version().len(), 16, "default version is a 64-bit fingerprint");
}

#[test]
fn duplicate_names_are_rejected() {
    let b = pass("a", pass("a", Graph::builder())).edge(START, "a").edge("a", END);
    assert_eq!(err(b), CompileError::DuplicateNode("a".into()));
}

#[test]
fn reserved_names_are_rejected() {
    assert_eq!(err(pass(END, Graph::builder())), CompileError::ReservedName(END.into()));
    assert_eq!(
        err(pass(START, Graph::builder())),
        CompileError::ReservedName(START.into())
    );
}

#[test]
fn unknown_nodes_are_named() {
    let b = pass("a", Graph::builder()).edge(START, "a").edge("a", "ghost");
    assert!(matches!(err(b), CompileError::UnknownNode { name, .. } if name == "ghost"));
    let b = pass("a", Graph::builder())
        .edge(START, "a")
        .route("a", ["ghost", END], |_| END);
    assert!(matches!(err(b), CompileError::UnknownNode { name, .. } if name == "ghost"));
    let b = pass("a", Graph::builder())
        .edge(START, "a")
        .edge("a", END)
        .retry("ghost", Default::default());
    assert!(
        matches!(err(b), CompileError::UnknownNode { name, context } if name == "ghost" && context.contains("retry"))
    );
}

#[test]
fn a_graph_needs_an_entry() {
    let b = pass("a", Graph::builder()).edge("a", END);
    assert_eq!(err(b), CompileError::NoEntry);
}

#[test]
fn a_node_has_one_way_out() {
    let b = pass("b", pass("a", Graph::builder()))
        .edge(START, "a")
        .edge("a", "b")
        .edge("a", END)
        .edge("b", END);
    assert_eq!(err(b), CompileError::ConflictingEdges("a".into()));
}

#[test]
fn edges_cannot_leave_end_or_enter_start() {
    let b = pass("a", Graph::builder())
        .edge(START, "a")
        .edge("a", END)
        .edge(END, "a");
    assert!(matches!(err(b), CompileError::InvalidEdge { .. }));
    let b = pass("a", Graph::builder()).edge(START, "a").edge("a", START);
    assert!(matches!(err(b), CompileError::InvalidEdge { .. }));
}

#[test]
fn routes_need_targets() {
    let b = pass("a", Graph::builder())
        .edge(START, "a")
        .route("a", Vec::<&str>::new(), |_| END);
    assert_eq!(err(b), CompileError::EmptyRoute("a".into()));
}

#[test]
fn a_node_that_cannot_reach_end_is_rejected() {
    // b has no way out at all.
    let b = pass("b", pass("a", Graph::builder())).edge(START, "a").edge("a", "b");
    assert_eq!(err(b), CompileError::CannotReachEnd("b".into()));
    // b and c only loop between each other.
    let b = pass("c", pass("b", pass("a", Graph::builder())))
        .edge(START, "a")
        .route("a", ["b", END], |_| END)
        .edge("b", "c")
        .edge("c", "b");
    assert!(matches!(err(b), CompileError::CannotReachEnd(n) if n == "b" || n == "c"));
}

#[test]
fn an_unreachable_node_is_rejected() {
    let b = pass("island", pass("a", Graph::builder()))
        .edge(START, "a")
        .edge("a", END)
        .edge("island", END);
    assert_eq!(err(b), CompileError::Unreachable("island".into()));
}

#[test]
fn the_version_follows_the_topology() {
    let linear = |last: &str| {
        pass("b", pass("a", Graph::builder()))
            .edge(START, "a")
            .edge("a", last)
            .edge("b", END)
    };
    let v1 = linear("b").compile().unwrap().version().to_owned();
    let v1_again = linear("b").compile().unwrap().version().to_owned();
    assert_eq!(v1, v1_again, "the fingerprint is deterministic");
    let looped = pass("b", pass("a", Graph::builder()))
        .edge(START, "a")
        .route("a", ["b", "a"], |_| "b")
        .edge("b", END)
        .compile()
        .unwrap();
    assert_ne!(v1, looped.version(), "another topology has another version");
    let named = linear("b").version("v7").compile().unwrap();
    assert_eq!(named.version(), "v7");
}
