//! The compiled graph: validated topology plus the nodes themselves.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{Checkpointer, GraphBuilder, GraphError, Node, Outcome, RetryPolicy, Runner, START, State};

pub(crate) type Router<S> = Arc<dyn for<'s> Fn(&'s S) -> &'s str + Send + Sync>;

/// Where an edge leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    Node(usize),
    End,
}

impl Dest {
    pub(crate) fn node(self) -> Option<usize> {
        match self {
            Dest::Node(i) => Some(i),
            Dest::End => None,
        }
    }
}

/// One declared target of a route.
pub(crate) struct Route {
    pub(crate) key: String,
    pub(crate) dest: Dest,
}

/// How a node (or START) is left.
pub(crate) enum Exit<S> {
    Edge(Dest),
    Route { routes: Vec<Route>, router: Router<S> },
}

impl<S> Exit<S> {
    pub(crate) fn dests(&self) -> impl Iterator<Item = Dest> + '_ {
        let (single, many) = match self {
            Exit::Edge(dest) => (Some(*dest), None),
            Exit::Route { routes, .. } => (None, Some(routes.iter().map(|r| r.dest))),
        };
        single.into_iter().chain(many.into_iter().flatten())
    }
}

pub(crate) struct NodeEntry<S> {
    pub(crate) name: Arc<str>,
    pub(crate) node: Arc<dyn Node<S>>,
    pub(crate) exit: Exit<S>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) timeout: Option<Duration>,
}

/// A validated graph, ready to run. Cheap to share behind an `Arc`; running it never mutates it.
pub struct Graph<S> {
    pub(crate) nodes: Vec<NodeEntry<S>>,
    pub(crate) entry: Exit<S>,
    pub(crate) step_limit: usize,
    pub(crate) version: Arc<str>,
    /// Older versions whose checkpoints this graph continues.
    pub(crate) resumes: Vec<Arc<str>>,
}

impl<S> fmt::Debug for Graph<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("nodes", &self.nodes.iter().map(|n| &*n.name).collect::<Vec<_>>())
            .field("version", &self.version)
            .field("resumes", &self.resumes)
            .field("step_limit", &self.step_limit)
            .finish()
    }
}

impl<S: State> Graph<S> {
    /// Starts building a graph.
    pub fn builder() -> GraphBuilder<S> {
        GraphBuilder::default()
    }

    /// The node names, in the order they were added.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| &*n.name)
    }

    /// The version recorded in checkpoints.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// True when this graph continues threads checkpointed by `version`: its own, or one
    /// declared with [`GraphBuilder::resumes_from`].
    pub fn continues(&self, version: &str) -> bool {
        *self.version == *version || self.resumes.iter().any(|v| **v == *version)
    }

    /// The most nodes one invocation may run.
    pub fn step_limit(&self) -> usize {
        self.step_limit
    }

    /// A runner with no checkpointer, observer or cancellation; configure it, then invoke.
    pub fn runner(&self) -> Runner<'_, S> {
        Runner::new(self)
    }

    /// A runner that checkpoints every step (durably, before the next node starts) to
    /// `checkpointer`.
    pub fn with_checkpointer(&self, checkpointer: Arc<dyn Checkpointer>) -> Runner<'_, S> {
        self.runner().checkpointer(checkpointer)
    }

    /// Runs the graph from START on `input` without checkpoints.
    pub async fn invoke(&self, thread_id: &str, input: S) -> Result<Outcome<S>, GraphError> {
        self.runner().invoke(thread_id, input).await
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| &*n.name == name)
    }

    pub(crate) fn dest_name(&self, dest: Dest) -> Option<&Arc<str>> {
        dest.node().map(|i| &self.nodes[i].name)
    }

    /// Where the run goes after `from` (a node index, or `None` for START).
    pub(crate) fn next(&self, from: Option<usize>, state: &S) -> Result<Dest, GraphError> {
        let exit = match from {
            Some(i) => &self.nodes[i].exit,
            None => &self.entry,
        };
        match exit {
            Exit::Edge(dest) => Ok(*dest),
            Exit::Route { routes, router } => {
                let key = router(state);
                routes
                    .iter()
                    .find(|r| r.key == key)
                    .map(|r| r.dest)
                    .ok_or_else(|| GraphError::InvalidRoute {
                        from: self.source_name(from).to_owned(),
                        to: key.to_owned(),
                    })
            }
        }
    }

    /// Resolves a node's own routing decision, which must name a declared successor.
    pub(crate) fn goto(&self, from: usize, target: &str) -> Result<Dest, GraphError> {
        self.nodes[from]
            .exit
            .dests()
            .find(|&d| match d {
                Dest::End => target == crate::END,
                Dest::Node(j) => &*self.nodes[j].name == target,
            })
            .ok_or_else(|| GraphError::InvalidRoute {
                from: self.nodes[from].name.to_string(),
                to: target.to_owned(),
            })
    }

    fn source_name(&self, from: Option<usize>) -> &str {
        from.map_or(START, |i| &self.nodes[i].name)
    }
}
