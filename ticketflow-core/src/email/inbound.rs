//! One e-mail as it arrived, whatever the provider, and what the store keeps of it.

use sha2::{Digest, Sha256};

use crate::store::{Attachment, LIMITS, NewMessage, NewTicket};

/// Recipients kept of one message (the rest are read for a plus-address, then dropped).
pub const MAX_RECIPIENTS: usize = 50;

/// Longest subject kept, in characters (the ticket's own limit).
const MAX_SUBJECT_CHARS: usize = 500;

/// Thread references kept, the most recent.
const MAX_REFERENCES: usize = 100;

/// Longest Message-ID accepted (a header line's limit).
const MAX_MESSAGE_ID_CHARS: usize = 998;

/// A payload that cannot be read as an e-mail, naming the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct EmailError {
    /// The field or MIME part at fault (`from`, `headers`, `content-type`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
    /// True when the payload itself cannot be parsed (400); false when it parsed but a field
    /// is missing or invalid (422).
    pub malformed: bool,
}

impl EmailError {
    /// A field present but not valid (422).
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            malformed: false,
        }
    }

    /// A field that is missing (422).
    pub fn missing(field: impl Into<String>) -> Self {
        Self::invalid(field, "is missing")
    }

    /// A payload that cannot be parsed (400).
    pub fn malformed(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            malformed: true,
            ..Self::invalid(field, message)
        }
    }
}

/// An e-mail as it arrived. Build it with the provider's fields, then
/// [`sanitized`](Self::sanitized) before it is stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InboundEmail {
    /// `sendgrid`, `mailgun`, `postmark`, `generic` or `raw`.
    pub provider: String,
    /// The sender, bare and lower-cased (see [`normalize_address`](super::normalize_address)).
    pub from: String,
    /// The sender's display name.
    pub from_name: Option<String>,
    /// The recipients, bare and lower-cased.
    pub to: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The text (an HTML-only message's HTML as text).
    pub text: String,
    /// The text without quoted history, when the provider stripped it (Mailgun's
    /// `stripped-text`); otherwise [`strip_quoted`](super::strip_quoted) does.
    pub stripped_text: Option<String>,
    /// The HTML part.
    pub html: Option<String>,
    /// The RFC 5322 Message-ID, with or without angle brackets.
    pub message_id: Option<String>,
    /// The Message-ID it answers.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first.
    pub references: Vec<String>,
    /// The files it carried.
    pub attachments: Vec<Attachment>,
    /// Why it is automatic mail (a bounce, an out-of-office reply, a list), when it is.
    pub automatic: Option<String>,
}

/// The Message-IDs in a header value (`<a@b> <c@d>`, or bare ids separated by spaces or
/// commas), each with its angle brackets.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    if value.contains('<') {
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else { break };
            let id = rest[open + 1..open + close].trim();
            if !id.is_empty() {
                ids.push(format!("<{id}>"));
            }
            rest = &rest[open + close + 1..];
        }
    } else {
        ids.extend(
            value
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|id| !id.is_empty())
                .map(|id| format!("<{id}>")),
        );
    }
    ids
}

/// `id` with its angle brackets, if it is a usable Message-ID.
fn bracketed(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.chars().count() <= MAX_MESSAGE_ID_CHARS && !id.chars().any(char::is_whitespace))
        .then(|| format!("<{id}>"))
}

fn clean(text: &str) -> String {
    text.replace('\0', "")
}

fn truncated(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl InboundEmail {
    /// Every text without NUL, the subject cut to 500 characters on one line, the recipients
    /// and references capped, Message-IDs in angle brackets (a message that has none gets one
    /// made from its content, so a provider's retry is still recognised).
    pub fn sanitized(mut self) -> Self {
        self.from = clean(&self.from);
        self.from_name = self.from_name.map(|n| clean(&n)).filter(|n| !n.trim().is_empty());
        self.to.retain(|t| !t.contains('\0'));
        self.to.truncate(MAX_RECIPIENTS);
        let subject = clean(&self.subject).split_whitespace().collect::<Vec<_>>().join(" ");
        self.subject = truncated(&subject, MAX_SUBJECT_CHARS);
        self.text = clean(&self.text);
        self.stripped_text = self.stripped_text.map(|t| clean(&t));
        self.html = self.html.map(|h| clean(&h)).filter(|h| !h.trim().is_empty());
        self.in_reply_to = self.in_reply_to.as_deref().and_then(bracketed);
        let mut references: Vec<String> = self.references.iter().filter_map(|r| bracketed(r)).collect();
        if references.len() > MAX_REFERENCES {
            references.drain(..references.len() - MAX_REFERENCES);
        }
        self.references = references;
        self.message_id = self.message_id.as_deref().and_then(bracketed).or_else(|| {
            let digest = Sha256::digest(format!("{}\n{}\n{}", self.from, self.subject, self.text));
            Some(format!("<{}@generated.ticketflow>", hex::encode(&digest[..16])))
        });
        for attachment in &mut self.attachments {
            attachment.name = attachment.name.as_deref().map(clean);
            attachment.content_type = clean(&attachment.content_type);
        }
        self.automatic = self.automatic.map(|a| clean(&a));
        self
    }

    /// The Message-ID stored (after [`sanitized`](Self::sanitized)).
    pub fn id(&self) -> String {
        self.message_id.clone().unwrap_or_default()
    }

    /// The text the workflow reads: without quoted history.
    pub fn reply_text(&self) -> String {
        match &self.stripped_text {
            Some(stripped) if !stripped.trim().is_empty() => stripped.trim().to_owned(),
            _ => super::strip_quoted(&self.text),
        }
    }

    /// Every Message-ID this message says it answers: In-Reply-To first, then the references
    /// newest first.
    pub fn thread_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.in_reply_to.iter().cloned().collect();
        ids.extend(
            self.references
                .iter()
                .rev()
                .filter(|r| !ids.contains(r))
                .cloned()
                .collect::<Vec<_>>(),
        );
        ids
    }

    /// The message as stored.
    pub fn message(&self) -> NewMessage {
        NewMessage {
            channel: "email".into(),
            from_address: Some(self.from.clone()),
            to_address: (!self.to.is_empty()).then(|| self.to.iter().take(10).cloned().collect::<Vec<_>>().join(", ")),
            subject: self.subject.clone(),
            text: self.text.clone(),
            reply_text: self.reply_text(),
            html: self.html.clone(),
            message_id: self.id(),
            in_reply_to: self.in_reply_to.clone(),
            references: self.references.clone(),
            provider: Some(self.provider.clone()),
            attachments: self.attachments.clone(),
            metadata: serde_json::json!({
                "from_name": self.from_name,
                "automatic": self.automatic,
            }),
            ..NewMessage::default()
        }
    }

    /// The ticket a new conversation starts: the sender as the customer, the seed's metadata,
    /// the Message-ID as its identity (a provider's retry finds the same ticket).
    pub fn new_ticket(&self) -> NewTicket {
        let body_limit = LIMITS[2].1;
        let text = self.reply_text();
        let body = if text.trim().is_empty() {
            "(no text)".to_owned()
        } else {
            truncated(&text, body_limit)
        };
        let subject = if self.subject.trim().is_empty() {
            "(no subject)".to_owned()
        } else {
            self.subject.clone()
        };
        let id = self.id();
        let key = if id.chars().count() <= 255 {
            id.clone()
        } else {
            hex::encode(Sha256::digest(id.as_bytes()))
        };
        NewTicket {
            customer_id: self.from.clone(),
            subject,
            body,
            channel: "email".into(),
            metadata: serde_json::json!({
                "message_id": id,
                "from_email": self.from,
                "from_name": self.from_name,
                "to_email": self.to.first(),
                "in_reply_to": self.in_reply_to,
                "attachments": self.attachments,
                "provider": self.provider,
            }),
            idempotency_key: Some(key),
            first_message: Some(self.message()),
            ..NewTicket::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_read_with_or_without_brackets() {
        assert_eq!(message_ids("<a@b> <c@d>"), ["<a@b>", "<c@d>"]);
        assert_eq!(message_ids("a@b, c@d"), ["<a@b>", "<c@d>"]);
        assert!(message_ids("").is_empty());
    }

    #[test]
    fn sanitizing_drops_nul_and_caps_what_is_unbounded() {
        let email = InboundEmail {
            from: "a@b.c".into(),
            subject: format!("Hi\0 {}", "x".repeat(2000)),
            text: "body\0".into(),
            to: vec!["t@x.y".into(); 10_000],
            references: (0..500).map(|i| format!("<{i}@x>")).collect(),
            ..InboundEmail::default()
        }
        .sanitized();
        assert!(!email.subject.contains('\0') && email.subject.chars().count() == 500);
        assert_eq!(email.text, "body");
        assert_eq!(email.to.len(), MAX_RECIPIENTS);
        assert_eq!(email.references.len(), 100);
        assert_eq!(email.references.last().map(String::as_str), Some("<499@x>"));
        // No Message-ID: one made from the content, the same for a retry.
        assert!(email.id().ends_with("@generated.ticketflow>"));
        assert_eq!(email.clone().sanitized().id(), email.id());
    }
}
