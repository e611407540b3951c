//! E-mail out: a stored outbound message as the mail that carries it — threading headers,
//! the Reply-To plus-address, a text and an HTML part — with nothing from a ticket able to
//! reach a header unchecked.

use super::{EmailError, display_name, normalize_address};
use crate::store::{AUTO_SUBMITTED, ConversationMessage};

/// The most References a reply carries: the conversation's first message and the latest 19.
const MAX_REFERENCES: usize = 20;

/// The longest subject sent, in characters.
const MAX_SUBJECT_CHARS: usize = 250;

/// Who ticketflow's mail comes from (`EMAIL_FROM`) and the domain of its plus-addresses
/// (`EMAIL_DOMAIN`, else the sender's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The sender's display name, when `EMAIL_FROM` has one.
    pub name: Option<String>,
    /// The sender's address, bare.
    pub address: String,
    /// The domain replies come back to.
    pub domain: String,
}

impl Sender {
    /// A sender from `EMAIL_FROM` (`Support <support@example.com>` or a bare address) and
    /// `EMAIL_DOMAIN`.
    pub fn parse(from: &str, domain: Option<&str>) -> Result<Self, EmailError> {
        let address = normalize_address(from, "EMAIL_FROM")?;
        let name = display_name(from).map(|n| header_text(&n, 100));
        let domain = match domain.map(str::trim).filter(|d| !d.is_empty()) {
            Some(domain) => domain.to_ascii_lowercase(),
            None => address.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default(),
        };
        let hostname = domain.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !hostname {
            return Err(EmailError::invalid(
                "EMAIL_DOMAIN",
                format!("{domain:?} is not a domain name"),
            ));
        }
        Ok(Self { name, address, domain })
    }

    /// The address whose replies thread onto `ticket`: `local+<ticket id>@domain`.
    pub fn plus_address(&self, ticket: uuid::Uuid) -> String {
        let local = self.address.split('@').next().unwrap_or("support");
        let local = local.split('+').next().unwrap_or(local);
        format!("{local}+{ticket}@{}", self.domain)
    }
}

/// An e-mail ready for a transport: every header value checked, the HTML part escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The sender's display name.
    pub from_name: Option<String>,
    /// The sender's address.
    pub from: String,
    /// The recipient's address.
    pub to: String,
    /// Where replies go: the ticket's plus-address.
    pub reply_to: String,
    /// The subject: one line, no control characters.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part: the text, escaped.
    pub html: String,
    /// The Message-ID, with its angle brackets: the same on every attempt.
    pub message_id: String,
    /// The Message-ID it answers.
    pub in_reply_to: Option<String>,
    /// The thread, oldest first.
    pub references: Vec<String>,
    /// True for mail no person wrote (a workflow reply, a reset link): it goes out with
    /// `Auto-Submitted: auto-replied`, so that well-behaved auto-responders stay quiet.
    pub auto_submitted: bool,
}

impl OutgoingEmail {
    /// The mail that delivers `message`, from `sender`. An error names what cannot be sent
    /// (no recipient, a recipient that is not an address): retrying will not help.
    pub fn compose(message: &ConversationMessage, sender: &Sender) -> Result<Self, EmailError> {
        let to = message
            .to_address
            .as_deref()
            .ok_or_else(|| EmailError::invalid("to", "the message has no recipient"))?;
        let to = normalize_address(to, "to")?;
        let auto_submitted = message
            .metadata
            .get(AUTO_SUBMITTED)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let mut references: Vec<String> = message.references.iter().filter_map(|r| message_id(r)).collect();
        if references.len() > MAX_REFERENCES {
            references.drain(1..references.len() - (MAX_REFERENCES - 1));
        }
        let subject = header_text(&message.subject, MAX_SUBJECT_CHARS);
        Ok(Self {
            from_name: sender.name.clone(),
            from: sender.address.clone(),
            to,
            reply_to: sender.plus_address(message.ticket_id),
            subject: if subject.is_empty() {
                "(no subject)".into()
            } else {
                subject
            },
            text: message.text.clone(),
            html: html_of(&message.text),
            message_id: message_id(&message.message_id)
                .ok_or_else(|| EmailError::invalid("message_id", "is not a Message-ID"))?,
            in_reply_to: message.in_reply_to.as_deref().and_then(message_id),
            references,
            auto_submitted,
        })
    }

    /// The References header's value: the ids separated by spaces.
    pub fn references_header(&self) -> Option<String> {
        (!self.references.is_empty()).then(|| self.references.join(" "))
    }

    /// The From header's value: `"Name" <address>` or the bare address.
    pub fn from_header(&self) -> String {
        match &self.from_name {
            Some(name) => format!("\"{}\" <{}>", name.replace(['"', '\\'], ""), self.from),
            None => self.from.clone(),
        }
    }
}

/// `text` as one header line: control characters (CR and LF among them) become spaces, runs
/// of spaces one, and at most `max` characters are kept.
pub fn header_text(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max));
    let mut space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !line.is_empty();
            continue;
        }
        let room = max.saturating_sub(line.chars().count());
        if room < usize::from(space) + 1 {
            break;
        }
        if space {
            line.push(' ');
            space = false;
        }
        line.push(c);
    }
    line
}

/// `id` when it is a Message-ID a header can carry (`<left@right>`: printable ASCII, no
/// spaces or brackets inside, at most 250 characters).
pub fn message_id(id: &str) -> Option<String> {
    let id = id.trim();
    let inner = id.strip_prefix('<')?.strip_suffix('>')?;
    let valid = !inner.is_empty()
        && id.len() <= 250
        && inner.contains('@')
        && inner
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'));
    valid.then(|| id.to_owned())
}

/// The HTML part of `text`: each paragraph escaped, its lines kept.
pub fn html_of(text: &str) -> String {
    let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        html.push_str("<p>");
        for (i, line) in paragraph.lines().enumerate() {
            if i > 0 {
                html.push_str("<br>\n");
            }
            escape_into(&mut html, line);
        }
        html.push_str("</p>\n");
    }
    html.push_str("</body></html>\n");
    html
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_one_clean_line() {
        assert_eq!(header_text("Re: hi\r\nBcc: evil@x.com", 250), "Re: hi Bcc: evil@x.com");
        assert_eq!(header_text("  a\u{0}\u{7f}b\tc  ", 250), "a b c");
        assert_eq!(header_text("abcdef", 3), "abc");
        assert_eq!(header_text("ab cd", 3), "ab");
    }

    #[test]
    fn message_ids_must_be_one_token() {
        assert_eq!(message_id(" <a@b> ").as_deref(), Some("<a@b>"));
        assert!(message_id("<a@b>\r\nBcc: x@y").is_none());
        assert!(message_id("<a b@c>").is_none());
        assert!(message_id("a@b").is_none());
        assert!(message_id("<ab>").is_none());
    }

    #[test]
    fn html_escapes_the_text() {
        let html = html_of("Hi <b>Jane</b> & \"co\"\nline two\n\nnext");
        assert!(html.contains("<p>Hi &lt;b&gt;Jane&lt;/b&gt; &amp; &quot;co&quot;<br>\nline two</p>"));
        assert!(html.contains("<p>next</p>"));
    }

    #[test]
    fn replies_come_back_to_the_tickets_plus_address() {
        let sender = Sender::parse("Acme Support <Support@Acme.test>", None).unwrap();
        assert_eq!(sender.name.as_deref(), Some("Acme Support"));
        let ticket = uuid::Uuid::nil();
        assert_eq!(sender.plus_address(ticket), format!("support+{ticket}@acme.test"));
        let other = Sender::parse("help+x@a.test", Some("Mail.Acme.test")).unwrap();
        assert_eq!(other.plus_address(ticket), format!("help+{ticket}@mail.acme.test"));
        assert!(Sender::parse("help@a.test", Some("evil.test\r\nBcc: x@y")).is_err());
        assert!(Sender::parse("help@a.test", Some("a..test")).is_err());
    }
}
