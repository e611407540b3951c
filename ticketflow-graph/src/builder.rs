//! Building and validating a graph.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::graph::{Dest, Exit, Graph, NodeEntry, Route, Router};
use crate::{CompileError, END, Node, RetryPolicy, START, State};

/// One declared target of a conditional route: the key the route function returns and the node
/// it leads to. `"draft"` alone means key and node are both `draft`; `("revise", "draft")` draws
/// the edge labelled `revise`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    key: String,
    node: String,
}

impl From<&str> for Target {
    fn from(node: &str) -> Self {
        Self {
            key: node.to_owned(),
            node: node.to_owned(),
        }
    }
}

impl From<(&str, &str)> for Target {
    fn from((key, node): (&str, &str)) -> Self {
        Self {
            key: key.to_owned(),
            node: node.to_owned(),
        }
    }
}

enum PendingExit<S> {
    Edge(String),
    Route(Vec<Target>, Router<S>),
}

/// Collects nodes and edges; [`compile`](Self::compile) checks them and returns a [`Graph`].
///
/// ```
/// use ticketflow_graph::{node_fn, Graph, NodeOutput, END, START};
/// let graph = Graph::<u32>::builder()
///     .node("inc", node_fn(|n: u32, _| async move { Ok(NodeOutput::Continue(n + 1)) }))
///     .edge(START, "inc")
///     .route("inc", ["inc", END], |n: &u32| if *n < 3 { "inc" } else { END })
///     .compile()
///     .expect("valid graph");
/// assert_eq!(graph.node_names().collect::<Vec<_>>(), ["inc"]);
/// ```
pub struct GraphBuilder<S> {
    nodes: Vec<(String, Arc<dyn Node<S>>)>,
    exits: Vec<(String, PendingExit<S>)>,
    retries: Vec<(String, RetryPolicy)>,
    timeouts: Vec<(String, Duration)>,
    step_limit: usize,
    version: Option<String>,
    resumes: Vec<String>,
}

impl<S: State> Default for GraphBuilder<S> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            exits: Vec::new(),
            retries: Vec::new(),
            timeouts: Vec::new(),
            step_limit: 25,
            version: None,
            resumes: Vec::new(),
        }
    }
}

impl<S: State> GraphBuilder<S> {
    /// Adds a node under a unique name.
    pub fn node(mut self, name: &str, node: impl Node<S>) -> Self {
        self.nodes.push((name.to_owned(), Arc::new(node)));
        self
    }

    /// Adds a static edge: after `from` (or [`START`]) comes `to` (or [`END`]).
    pub fn edge(mut self, from: &str, to: &str) -> Self {
        self.exits.push((from.to_owned(), PendingExit::Edge(to.to_owned())));
        self
    }

    /// Adds a conditional edge: after `from`, `router` looks at the state and returns the key
    /// of one of `targets`. Declaring the targets lets `compile` validate them and lets the
    /// drawings show them.
    pub fn route<T, F>(mut self, from: &str, targets: impl IntoIterator<Item = T>, router: F) -> Self
    where
        T: Into<Target>,
        F: for<'s> Fn(&'s S) -> &'s str + Send + Sync + 'static,
    {
        let targets = targets.into_iter().map(Into::into).collect();
        self.exits
            .push((from.to_owned(), PendingExit::Route(targets, Arc::new(router))));
        self
    }

    /// Gives `node` a retry policy (nodes have none by default).
    pub fn retry(mut self, node: &str, policy: RetryPolicy) -> Self {
        self.retries.push((node.to_owned(), policy));
        self
    }

    /// Bounds each attempt of `node` to `timeout`; a timeout is a [`NodeError::Timeout`]
    /// (retried if the node's policy says so).
    ///
    /// [`NodeError::Timeout`]: crate::NodeError::Timeout
    pub fn timeout(mut self, node: &str, timeout: Duration) -> Self {
        self.timeouts.push((node.to_owned(), timeout));
        self
    }

    /// The most nodes one invocation may run (default 25, as LangGraph's recursion limit).
    pub fn step_limit(mut self, limit: usize) -> Self {
        self.step_limit = limit;
        self
    }

    /// Names this graph's version, recorded in every checkpoint. By default the version is a
    /// fingerprint of the topology, so that changing the graph changes it.
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// Lets this graph continue threads checkpointed by an older `version` of it: a paused
    /// run (a ticket waiting for a person) or an unfinished one picks up where it stopped
    /// after an upgrade, instead of failing with [`GraphError::VersionMismatch`]. Declare it
    /// only when this version's state reads the old one's (new fields have defaults) and the
    /// old version's node names still mean the same here; a checkpoint whose next node this
    /// graph lacks is still refused.
    ///
    /// [`GraphError::VersionMismatch`]: crate::GraphError::VersionMismatch
    pub fn resumes_from(mut self, version: &str) -> Self {
        self.resumes.push(version.to_owned());
        self
    }

    /// Validates the graph.
    pub fn compile(self) -> Result<Graph<S>, CompileError> {
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, (name, _)) in self.nodes.iter().enumerate() {
            if name == START || name == END {
                return Err(CompileError::ReservedName(name.clone()));
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(CompileError::DuplicateNode(name.clone()));
            }
        }
        let resolve = |name: &str, context: &dyn Fn() -> String| -> Result<Dest, CompileError> {
            if name == END {
                return Ok(Dest::End);
            }
            index
                .get(name)
                .map(|&i| Dest::Node(i))
                .ok_or_else(|| CompileError::UnknownNode {
                    name: name.to_owned(),
                    context: context(),
                })
        };

        // START's exit lives at index `n` of `exits`, after the nodes'.
        let n = self.nodes.len();
        let mut exits: Vec<Option<Exit<S>>> = (0..=n).map(|_| None).collect();
        for (from, pending) in self.exits {
            if from == END {
                let to = match &pending {
                    PendingExit::Edge(to) => to.clone(),
                    PendingExit::Route(targets, _) => targets.first().map(|t| t.node.clone()).unwrap_or_default(),
                };
                return Err(CompileError::InvalidEdge { from, to });
            }
            let slot = if from == START {
                n
            } else {
                resolve(&from, &|| format!("an edge from `{from}`"))?;
                index[&from]
            };
            let exit = match pending {
                PendingExit::Edge(to) => {
                    if to == START {
                        return Err(CompileError::InvalidEdge { from, to });
                    }
                    Exit::Edge(resolve(&to, &|| format!("the edge `{from}` -> `{to}`"))?)
                }
                PendingExit::Route(targets, router) => {
                    if targets.is_empty() {
                        return Err(CompileError::EmptyRoute(from));
                    }
                    let mut routes = Vec::with_capacity(targets.len());
                    for target in targets {
                        if target.node == START {
                            return Err(CompileError::InvalidEdge { from, to: target.node });
                        }
                        let dest = resolve(&target.node, &|| format!("the route from `{from}`"))?;
                        routes.push(Route { key: target.key, dest });
                    }
                    Exit::Route { routes, router }
                }
            };
            if exits[slot].replace(exit).is_some() {
                return Err(CompileError::ConflictingEdges(from));
            }
        }
        let Some(entry) = exits[n].take() else {
            return Err(CompileError::NoEntry);
        };

        let mut entries = Vec::with_capacity(n);
        for (i, (name, node)) in self.nodes.into_iter().enumerate() {
            let exit = exits[i]
                .take()
                .ok_or_else(|| CompileError::CannotReachEnd(name.clone()))?;
            entries.push(NodeEntry {
                name: name.into(),
                node,
                exit,
                retry: None,
                timeout: None,
            });
        }
        for (name, policy) in self.retries {
            let i = *index.get(name.as_str()).ok_or_else(|| CompileError::UnknownNode {
                context: "a retry policy".into(),
                name: name.clone(),
            })?;
            entries[i].retry = Some(policy);
        }
        for (name, timeout) in self.timeouts {
            let i = *index.get(name.as_str()).ok_or_else(|| CompileError::UnknownNode {
                context: "a timeout".into(),
                name: name.clone(),
            })?;
            entries[i].timeout = Some(timeout);
        }

        check_reachability(&entries, &entry)?;
        let version = self.version.unwrap_or_else(|| fingerprint(&entries, &entry));
        Ok(Graph {
            nodes: entries,
            entry,
            step_limit: self.step_limit,
            version: version.into(),
            resumes: self.resumes.into_iter().map(Into::into).collect(),
        })
    }
}

/// Every node must be reachable from START and must be able to reach END.
fn check_reachability<S>(nodes: &[NodeEntry<S>], entry: &Exit<S>) -> Result<(), CompileError> {
    let n = nodes.len();
    let mut forward = vec![false; n];
    let mut queue: VecDeque<usize> = entry.dests().filter_map(Dest::node).collect();
    while let Some(i) = queue.pop_front() {
        if !std::mem::replace(&mut forward[i], true) {
            queue.extend(nodes[i].exit.dests().filter_map(Dest::node));
        }
    }
    if let Some(i) = forward.iter().position(|reached| !reached) {
        return Err(CompileError::Unreachable(nodes[i].name.to_string()));
    }

    // Walk edges backwards from END: a node reaches END if it has an edge to END or to a node
    // that does.
    let mut reaches_end = vec![false; n];
    let mut changed = true;
    while changed {
        changed = false;
        for (i, node) in nodes.iter().enumerate() {
            if !reaches_end[i]
                && node.exit.dests().any(|d| match d {
                    Dest::End => true,
                    Dest::Node(j) => reaches_end[j],
                })
            {
                reaches_end[i] = true;
                changed = true;
            }
        }
    }
    match reaches_end.iter().position(|reached| !reached) {
        Some(i) => Err(CompileError::CannotReachEnd(nodes[i].name.to_string())),
        None => Ok(()),
    }
}

/// A stable 64-bit FNV-1a hash of the topology, as hex. Stable across builds and platforms
/// (unlike `std`'s hasher), which matters because it is stored in checkpoints.
fn fingerprint<S>(nodes: &[NodeEntry<S>], entry: &Exit<S>) -> String {
    let mut text = String::new();
    let mut describe = |from: &str, exit: &Exit<S>| {
        text.push_str(from);
        for dest in exit.dests() {
            text.push_str("->");
            text.push_str(match dest {
                Dest::End => END,
                Dest::Node(j) => &nodes[j].name,
            });
        }
        text.push(';');
    };
    describe(START, entry);
    for node in nodes {
        describe(&node.name, &node.exit);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
