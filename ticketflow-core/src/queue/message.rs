//! The message format: a JSON body naming the ticket, headers carrying the trace.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// "Work on this ticket." The database holds everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketMessage {
    /// The ticket.
    pub ticket_id: Uuid,
    /// The request that caused it (header `x-request-id`).
    #[serde(skip)]
    pub request_id: Option<String>,
    /// W3C trace context (header `traceparent`).
    #[serde(skip)]
    pub traceparent: Option<String>,
    /// Failed attempts so far (header `x-attempt`).
    #[serde(skip)]
    pub attempt: u32,
}

/// A message that could not be decoded (it goes to the dead-letter queue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed message ({bytes} bytes): {reason}")]
pub struct MalformedMessage {
    /// Why.
    pub reason: String,
    /// Its size.
    pub bytes: usize,
}

/// Bodies larger than this are refused without parsing.
pub const MAX_BODY: usize = 64 * 1024;

impl TicketMessage {
    /// A message for `ticket_id` with no trace headers.
    pub fn new(ticket_id: Uuid) -> Self {
        Self {
            ticket_id,
            request_id: None,
            traceparent: None,
            attempt: 0,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a body (headers are filled in by the queue).
    pub fn decode(body: &[u8]) -> Result<Self, MalformedMessage> {
        let malformed = |reason: String| MalformedMessage {
            reason,
            bytes: body.len(),
        };
        if body.len() > MAX_BODY {
            return Err(malformed(format!("larger than {MAX_BODY} bytes")));
        }
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))
    }
}
