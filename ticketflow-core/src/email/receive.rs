//! Threading: which conversation an inbound e-mail belongs to, if any.

use super::{InboundEmail, plus_addressed_ticket};
use crate::store::{Arrival, Received, Store, StoreError, Ticket, already_received, messages::received_event};

/// Stores `email` (already [`sanitized`](InboundEmail::sanitized)) on the conversation it
/// answers, or as a new ticket.
///
/// It answers a ticket when its In-Reply-To or References name any Message-ID of the ticket's
/// conversation (inbound or outbound), or when a recipient is the ticket's plus-address
/// (`support+<ticket id>@<domain>`, `domain` when configured) — and only when the sender is
/// that ticket's customer (addresses compared case-insensitively). Anything else starts a new
/// ticket: a forged From on a known thread never reaches someone else's conversation. The
/// same Message-ID again adds nothing.
pub async fn receive(store: &dyn Store, email: &InboundEmail, domain: Option<&str>) -> Result<Received, StoreError> {
    let message_id = email.id();
    if let Some(earlier) = already_received(store, &message_id).await? {
        return Ok(earlier);
    }
    if let Some(ticket) = thread_of(store, email, domain).await? {
        return store.append_inbound(ticket.id, email.message()).await;
    }
    let new = email.new_ticket();
    let event = new
        .first_message
        .as_ref()
        .map(|first| received_event(first, Arrival::Created, 1));
    let (ticket, created) = store.create(new).await?;
    let arrival = if created { Arrival::Created } else { Arrival::Duplicate };
    if created && let Some(event) = event {
        store.append_event(ticket.id, event).await?;
    }
    Ok(Received {
        ticket,
        message_id,
        arrival,
    })
}

/// The ticket `email` answers: the most recent conversation its thread ids name, then its
/// plus-addresses, whose customer is the sender.
async fn thread_of(
    store: &dyn Store,
    email: &InboundEmail,
    domain: Option<&str>,
) -> Result<Option<Ticket>, StoreError> {
    let by_reference = store.threads_of(&email.thread_ids()).await?;
    let by_address = email.to.iter().filter_map(|to| plus_addressed_ticket(to, domain));
    let mut seen = Vec::new();
    for id in by_reference.into_iter().chain(by_address) {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        if let Some(ticket) = store.get(id).await?
            && ticket.customer_id.eq_ignore_ascii_case(&email.from)
        {
            return Ok(Some(ticket));
        }
    }
    Ok(None)
}
