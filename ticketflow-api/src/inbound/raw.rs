//! `raw`: a whole RFC 5322 message (`message/rfc822`), as any MTA or Amazon SES delivers it.

use ticketflow_core::email::{EmailError, InboundEmail, parse_rfc5322};

/// Reads the message.
pub(super) fn parse(body: &[u8]) -> Result<InboundEmail, EmailError> {
    parse_rfc5322(body, "raw")
}
