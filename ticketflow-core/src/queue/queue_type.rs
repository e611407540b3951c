//! The kind of RabbitMQ queue to declare.

use serde::{Deserialize, Serialize};

/// Quorum (replicated, the default) or classic (`QUEUE_TYPE`). Redeclaring an existing queue
/// with another type is refused by the broker, so switching needs a new queue name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// `x-queue-type: quorum`.
    #[default]
    Quorum,
    /// `x-queue-type: classic`.
    Classic,
}

impl QueueType {
    /// The `x-queue-type` argument.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}
