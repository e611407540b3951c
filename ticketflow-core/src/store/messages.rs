//! The conversation aggregate: every message of a ticket, inbound and outbound, and the
//! workflow turns that answer them.
//!
//! A ticket's first message is its subject and body. A reply that threads onto a ticket is
//! appended under the rule of the ticket's status ([`Arrival`]); a turn answers the inbound
//! messages it names, and a turn that finishes while newer messages wait starts the next one
//! ([`MessageStore::continue_conversation`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{StoreError, Ticket, TicketStatus};

/// Which way a message went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer.
    #[default]
    Inbound,
    /// To the customer: a turn's reply or a person's.
    Outbound,
}

impl Direction {
    /// Both directions.
    pub const ALL: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

stored_as_text!(Direction, UnknownDirection, "message direction");

/// Where a message is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// An inbound message, stored.
    Received,
    /// An outbound message on a channel that delivers nothing (`api`): kept, not sent.
    Recorded,
    /// Waiting to be delivered.
    Queued,
    /// Delivered to the mail provider.
    Sent,
    /// Given up on.
    Failed,
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [MessageStatus; 5] = [
        MessageStatus::Received,
        MessageStatus::Recorded,
        MessageStatus::Queued,
        MessageStatus::Sent,
        MessageStatus::Failed,
    ];

    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Recorded => "recorded",
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
        }
    }
}

stored_as_text!(MessageStatus, UnknownMessageStatus, "message status");

/// A file that came with an e-mail: recorded, not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attachment {
    /// Its file name, when it had one.
    pub name: Option<String>,
    /// Its MIME type.
    pub content_type: String,
    /// Its size in bytes, decoded.
    pub size: u64,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationMessage {
    /// Its position in the store (ascending in arrival order).
    pub id: i64,
    /// The ticket.
    pub ticket_id: Uuid,
    /// The turn that answers it (inbound) or wrote it (outbound).
    pub turn: i32,
    /// Inbound or outbound.
    pub direction: Direction,
    /// `api`, `email`, ...
    pub channel: String,
    /// The sender's address (inbound: lower-cased).
    pub from_address: Option<String>,
    /// The recipient.
    pub to_address: Option<String>,
    /// The subject.
    pub subject: String,
    /// The whole text, quoted history included.
    pub text: String,
    /// The text the workflow reads: without quoted history.
    pub reply_text: String,
    /// The HTML part, when there was one.
    pub html: Option<String>,
    /// The RFC 5322 Message-ID, with its angle brackets (unique).
    pub message_id: String,
    /// The Message-ID it answers.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first.
    pub references: Vec<String>,
    /// The mail provider it came through (`sendgrid`, `mailgun`, `postmark`, `generic`, `raw`).
    pub provider: Option<String>,
    /// Its delivery status.
    pub status: MessageStatus,
    /// The files that came with it.
    pub attachments: Vec<Attachment>,
    /// What else was learnt of it (sender name, automatic-mail headers).
    pub metadata: serde_json::Value,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Delivery attempts begun (outbound e-mail).
    pub attempts: i32,
    /// Why the last delivery attempt failed, while it waits to be retried or after it failed.
    pub last_error: Option<String>,
}

impl ConversationMessage {
    /// Why it is automatic mail (a bounce, an out-of-office reply, a list), when it is: such
    /// mail is kept on the conversation and never answered.
    pub fn automatic(&self) -> Option<&str> {
        automatic_in(&self.metadata)
    }

    /// True when its text must not be shown (a password reset link: whoever reads it could
    /// take over the account).
    pub fn is_secret(&self) -> bool {
        self.metadata.get("kind").and_then(serde_json::Value::as_str) == Some(PASSWORD_RESET)
    }
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewMessage {
    /// Inbound unless said otherwise.
    pub direction: Direction,
    /// `api`, `email`, ...
    pub channel: String,
    /// The sender's address.
    pub from_address: Option<String>,
    /// The recipient.
    pub to_address: Option<String>,
    /// The subject.
    pub subject: String,
    /// The whole text.
    pub text: String,
    /// The text without quoted history.
    pub reply_text: String,
    /// The HTML part.
    pub html: Option<String>,
    /// The Message-ID, with its angle brackets.
    pub message_id: String,
    /// The Message-ID it answers.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs.
    pub references: Vec<String>,
    /// The provider.
    pub provider: Option<String>,
    /// `None`: `received` for inbound, `recorded` for outbound.
    pub status: Option<MessageStatus>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Anything else (`Null` for none).
    pub metadata: serde_json::Value,
}

/// The `automatic` reason in a message's metadata.
fn automatic_in(metadata: &serde_json::Value) -> Option<&str> {
    metadata.get("automatic").and_then(serde_json::Value::as_str)
}

impl NewMessage {
    /// Why it is automatic mail, when it is (see [`ConversationMessage::automatic`]).
    pub fn automatic(&self) -> Option<&str> {
        automatic_in(&self.metadata)
    }

    /// The status stored.
    pub fn status(&self) -> MessageStatus {
        self.status.unwrap_or(match self.direction {
            Direction::Inbound => MessageStatus::Received,
            Direction::Outbound => MessageStatus::Recorded,
        })
    }

    /// The metadata stored: `{}` when none was given.
    pub fn metadata_or_default(&self) -> serde_json::Value {
        if self.metadata.is_null() {
            serde_json::json!({})
        } else {
            self.metadata.clone()
        }
    }

    /// The first message of a ticket created over the API: its subject and body, from its
    /// customer, under a Message-ID made from the ticket's id.
    pub fn first_of(ticket_id: Uuid, customer_id: &str, channel: &str, subject: &str, body: &str) -> Self {
        Self {
            channel: channel.to_owned(),
            from_address: Some(customer_id.to_owned()),
            subject: subject.to_owned(),
            text: body.to_owned(),
            reply_text: body.to_owned(),
            message_id: format!("<{ticket_id}@ticketflow>"),
            ..Self::default()
        }
    }

    /// The reply of `ticket`'s turn `turn`, under a Message-ID made from both (so a run that
    /// records it again records nothing): queued for delivery on an e-mail ticket, recorded on
    /// any other.
    pub fn reply_of(ticket: &Ticket, turn: i32, text: &str) -> Self {
        Self {
            direction: Direction::Outbound,
            channel: ticket.channel.clone(),
            to_address: Some(ticket.customer_id.clone()),
            subject: reply_subject(&ticket.subject),
            text: text.to_owned(),
            reply_text: text.to_owned(),
            message_id: format!("<{}.turn-{turn}@ticketflow>", ticket.id),
            // Only e-mail is delivered; any other channel's reply is kept for its own client.
            status: Some(if ticket.channel == EMAIL_CHANNEL {
                MessageStatus::Queued
            } else {
                MessageStatus::Recorded
            }),
            ..Self::default()
        }
    }
}

impl NewMessage {
    /// The e-mail that carries password reset `reset_id`'s link (`mail`: the effect's `to`,
    /// `subject` and `text`), queued for delivery under a Message-ID made from the reset.
    pub fn password_reset(reset_id: &str, mail: &serde_json::Value) -> Self {
        let field = |name: &str| mail.get(name).and_then(serde_json::Value::as_str).unwrap_or_default();
        Self {
            direction: Direction::Outbound,
            channel: EMAIL_CHANNEL.into(),
            to_address: Some(field("to").to_owned()),
            subject: field("subject").to_owned(),
            text: field("text").to_owned(),
            reply_text: field("text").to_owned(),
            message_id: format!("<{reset_id}@ticketflow>"),
            status: Some(MessageStatus::Queued),
            metadata: serde_json::json!({
                "kind": PASSWORD_RESET,
                "reset_id": reset_id,
                super::AUTO_SUBMITTED: true,
            }),
            ..Self::default()
        }
    }
}

impl NewMessage {
    /// A person's reply on `ticket` (`POST /tickets/{id}/messages`): queued on an e-mail
    /// ticket, recorded on any other. Its Message-ID is made from `idempotency_key` when given
    /// (the same key again is the same message), else fresh.
    pub fn staff_reply(ticket: &Ticket, text: &str, idempotency_key: Option<&str>) -> Self {
        use sha2::Digest as _;
        let tag = match idempotency_key {
            Some(key) => hex::encode(&sha2::Sha256::digest(key.as_bytes())[..16]),
            None => Uuid::now_v7().simple().to_string(),
        };
        Self {
            message_id: format!("<{}.staff-{tag}@ticketflow>", ticket.id),
            metadata: serde_json::json!({ "by": "staff" }),
            ..Self::reply_of(ticket, ticket.turn, text)
        }
    }

    /// This outbound message threaded onto `conversation` (the messages of the turns it
    /// answers): In-Reply-To the latest inbound message a person wrote, References the
    /// messages of the thread the customer has seen (theirs, but automatic mail; ours queued
    /// or sent, but reset links), oldest first.
    pub fn threaded_on(mut self, conversation: &[ConversationMessage]) -> Self {
        let mut written = conversation.iter().filter(|m| match m.direction {
            Direction::Inbound => m.automatic().is_none(),
            Direction::Outbound => !m.is_secret() && matches!(m.status, MessageStatus::Queued | MessageStatus::Sent),
        });
        self.references = written.clone().map(|m| m.message_id.clone()).collect();
        self.in_reply_to = written
            .rfind(|m| m.direction == Direction::Inbound)
            .map(|m| m.message_id.clone());
        self
    }

    /// True when it waits for delivery.
    pub fn is_queued(&self) -> bool {
        self.status() == MessageStatus::Queued
    }

    /// Keeps it on the conversation without sending it (`recorded`), saying why in its
    /// metadata's `withheld`.
    pub fn withhold(&mut self, why: String) {
        self.status = Some(MessageStatus::Recorded);
        let mut metadata = self.metadata_or_default();
        metadata["withheld"] = serde_json::Value::String(why);
        self.metadata = metadata;
    }
}

/// What a person's reply did (see [`MessageStore::reply_by_staff`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StaffReplied {
    /// The ticket, as it is after the reply.
    pub ticket: Ticket,
    /// The message, as stored.
    pub message: ConversationMessage,
    /// True when the reply completed an `escalated` ticket.
    pub completed: bool,
    /// True when the same Message-ID was stored before: nothing was added or sent again.
    pub duplicate: bool,
}

/// The channel whose replies are delivered, as e-mail.
pub const EMAIL_CHANNEL: &str = "email";

/// The metadata `kind` of a message carrying a password reset link: its text is a secret
/// and is never shown (see [`ConversationMessage::is_secret`]).
pub const PASSWORD_RESET: &str = "password_reset";

/// `Re: <subject>`, without piling up `Re:`s.
pub fn reply_subject(subject: &str) -> String {
    let trimmed = subject.trim_start();
    // `get`: the first three bytes of a subject that does not start in ASCII are no `Re:`.
    if trimmed.get(..3).is_some_and(|start| start.eq_ignore_ascii_case("re:")) {
        trimmed.to_owned()
    } else {
        format!("Re: {trimmed}")
    }
}

/// What an inbound message did to its ticket, by the ticket's status when it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// It started a new ticket.
    Created,
    /// The ticket was `completed`: it is `pending` again and a new turn answers.
    Reopened,
    /// The ticket was `failed_permanent`: it is retried, in a new turn that sees the message.
    Retried,
    /// Appended: the run in progress finishes, then the next turn answers (`pending`,
    /// `processing`); or the person deciding sees it first (`awaiting_approval`); or the person
    /// it was handed to reads it (`escalated`).
    Appended,
    /// The same Message-ID was stored before: nothing was added.
    Duplicate,
    /// Automatic mail (a bounce, an out-of-office reply, a list): kept on the conversation,
    /// never answered, and no turn reads it.
    Automatic,
}

impl Arrival {
    /// What a message threaded onto a ticket in `status` does.
    pub fn on(status: TicketStatus) -> Arrival {
        match status {
            TicketStatus::Completed => Arrival::Reopened,
            TicketStatus::FailedPermanent => Arrival::Retried,
            TicketStatus::Pending
            | TicketStatus::Processing
            | TicketStatus::AwaitingApproval
            | TicketStatus::Escalated => Arrival::Appended,
        }
    }

    /// What `message` does to a ticket in `status`: automatic mail never reopens or retries
    /// a ticket, whatever its status.
    pub fn of(status: TicketStatus, message: &NewMessage) -> Arrival {
        if message.automatic().is_some() {
            Arrival::Automatic
        } else {
            Arrival::on(status)
        }
    }

    /// The turn a message arriving this way belongs to on a ticket at turn `current`: the
    /// next, which answers it; automatic mail, which nothing answers, the current one.
    pub fn turn(self, current: i32) -> i32 {
        if self == Arrival::Automatic {
            current
        } else {
            current + 1
        }
    }

    /// True when the ticket runs again at once, in a new turn.
    pub fn starts_turn(self) -> bool {
        matches!(self, Arrival::Reopened | Arrival::Retried)
    }
}

/// An inbound message stored (or found stored before).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The ticket, as it is after the message.
    pub ticket: Ticket,
    /// The message.
    pub message_id: String,
    /// What it did.
    pub arrival: Arrival,
}

/// What the message with `message_id` answers, when it was stored before: its ticket as it
/// is now, and [`Arrival::Duplicate`].
pub async fn already_received<S>(store: &S, message_id: &str) -> Result<Option<Received>, StoreError>
where
    S: MessageStore + super::TicketStore + ?Sized,
{
    let Some(stored) = store.message(message_id).await? else {
        return Ok(None);
    };
    let ticket = store
        .get(stored.ticket_id)
        .await?
        .ok_or(StoreError::NotFound(stored.ticket_id))?;
    Ok(Some(Received {
        ticket,
        message_id: stored.message_id,
        arrival: Arrival::Duplicate,
    }))
}

/// The answer to a message whose insert found its Message-ID taken: the earlier message's.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) async fn duplicate_of<S>(store: &S, message_id: &str) -> Result<Received, StoreError>
where
    S: MessageStore + super::TicketStore + ?Sized,
{
    already_received(store, message_id)
        .await?
        .ok_or_else(|| StoreError::Conflict {
            id: Uuid::nil(),
            message: format!("message {message_id} vanished while being stored"),
        })
}

/// Tickets' conversations.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// A ticket's messages, oldest first; `NotFound` for an unknown ticket.
    async fn messages(&self, ticket_id: Uuid) -> Result<Vec<ConversationMessage>, StoreError>;

    /// The message with this Message-ID, if one is stored.
    async fn message(&self, message_id: &str) -> Result<Option<ConversationMessage>, StoreError>;

    /// The tickets whose conversations hold any of these Message-IDs, the most recent message
    /// first.
    async fn threads_of(&self, message_ids: &[String]) -> Result<Vec<Uuid>, StoreError>;

    /// Appends an inbound message to a ticket's conversation and applies [`Arrival::on`] the
    /// ticket's status as it is when the message commits: a new turn (`pending`, turn one
    /// higher, a fresh retry budget, queued) for a completed or failed ticket; the message
    /// waits for the next turn otherwise. Writes an `email_received` event (and the
    /// `status_change`), all in one transaction. A Message-ID stored before adds nothing
    /// ([`Arrival::Duplicate`]). `NotFound` for an unknown ticket.
    async fn append_inbound(&self, ticket_id: Uuid, message: NewMessage) -> Result<Received, StoreError>;

    /// Records a turn's reply, once: a Message-ID stored before adds nothing.
    async fn record_reply(&self, ticket_id: Uuid, turn: i32, message: NewMessage) -> Result<(), StoreError>;

    /// After turn `answered` of a completed ticket: when inbound messages arrived that no turn
    /// has answered, starts the next turn (as [`append_inbound`](Self::append_inbound) does
    /// for a completed ticket). True when it did.
    async fn continue_conversation(&self, ticket_id: Uuid, answered: i32) -> Result<bool, StoreError>;

    /// Stores a person's reply on `ticket_id`'s conversation, in its current turn, and
    /// completes the ticket when it was `escalated` (all in one transaction; its
    /// `status_change` event records `request_id` and `actor`, who replied: a person's e-mail,
    /// `key:<name>`, `api-key-<n>`, `None` when anonymous). A Message-ID stored before adds
    /// nothing and answers the stored message (`duplicate`); with other text,
    /// `IdempotencyConflict`. `NotFound` for an unknown ticket.
    async fn reply_by_staff(
        &self,
        ticket_id: Uuid,
        message: NewMessage,
        request_id: Option<String>,
        actor: Option<String>,
    ) -> Result<StaffReplied, StoreError>;

    /// Remembers a webhook token; false when `provider` sent it before (a replay). Tokens
    /// older than `keep` are forgotten (a provider's signatures expire sooner).
    async fn remember_token(&self, provider: &str, token: &str, keep: std::time::Duration) -> Result<bool, StoreError>;
}

/// The change that starts turn `turn` of `ticket`: `pending` with a fresh retry budget,
/// queued at once, with `events` and a `turn_started` event. (The store raises the ticket's
/// turn in the same transaction.)
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn next_turn(turn: i32, events: Vec<super::NewEvent>) -> super::Transition {
    let mut change = super::Transition::to(TicketStatus::Pending).enqueue_after(std::time::Duration::ZERO);
    change.reset_attempts = true;
    change.events = events;
    change.events.push(super::NewEvent::of(&super::TurnStarted { turn }));
    change
}

/// The `email_received` event of `message`, arriving as `arrival`, answered in turn `turn`.
pub(crate) fn received_event(message: &NewMessage, arrival: Arrival, turn: i32) -> super::NewEvent {
    super::NewEvent::of(&super::EmailReceived {
        message_id: message.message_id.clone(),
        from: message.from_address.clone(),
        arrival,
        turn,
    })
}

#[cfg(test)]
mod tests {
    use super::reply_subject;

    #[test]
    fn reply_subjects_do_not_pile_up_and_take_any_text() {
        assert_eq!(reply_subject("Order"), "Re: Order");
        assert_eq!(reply_subject("  RE: Order"), "RE: Order");
        assert_eq!(reply_subject("Ă×y"), "Re: Ă×y");
        assert_eq!(reply_subject("\u{e7d49}ñ"), "Re: \u{e7d49}ñ");
        assert_eq!(reply_subject("Re"), "Re: Re");
        assert_eq!(reply_subject(""), "Re: ");
    }
}
