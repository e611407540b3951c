//! A turn's reply as the message that carries it: threaded onto the conversation, and held
//! back — kept, not sent — where sending it could feed a mail loop.

use chrono::{Duration, Utc};

use crate::store::{AUTO_SUBMITTED, Direction, NewMessage, Store, StoreError, Ticket};

/// The reply of `ticket`'s current turn, `text`. On a channel that delivers (e-mail) it is
/// queued, threaded, and marked as automatic mail — unless the only mail it would answer is
/// automatic mail itself, or `max_per_hour` automatic replies already went to the customer's
/// address within the hour: then it is withheld (kept as `recorded`, the reason in its
/// metadata).
pub(crate) async fn turn_reply(
    store: &dyn Store,
    ticket: &Ticket,
    text: &str,
    max_per_hour: u32,
) -> Result<NewMessage, StoreError> {
    let message = NewMessage::reply_of(ticket, ticket.turn, text);
    if !message.is_queued() {
        return Ok(message);
    }
    let mut conversation = store.messages(ticket.id).await?;
    conversation.retain(|m| m.turn <= ticket.turn);
    let mut message = NewMessage {
        metadata: serde_json::json!({ AUTO_SUBMITTED: true }),
        ..message
    }
    .threaded_on(&conversation);
    let inbound = || conversation.iter().filter(|m| m.direction == Direction::Inbound);
    if inbound().all(|m| m.automatic().is_some())
        && let Some(reason) = inbound().next_back().and_then(|m| m.automatic())
    {
        message.withhold(format!("it would answer automatic mail ({reason})"));
        return Ok(message);
    }
    let sent = store
        .automatic_replies_to(&ticket.customer_id, Utc::now() - Duration::hours(1))
        .await?;
    if sent >= max_per_hour {
        tracing::warn!(ticket_id = %ticket.id, sent, "automatic replies to this address are over the hourly limit");
        message.withhold(format!(
            "{sent} automatic replies went to this address within the hour (EMAIL_MAX_REPLIES_PER_HOUR is \
             {max_per_hour})"
        ));
    }
    Ok(message)
}
