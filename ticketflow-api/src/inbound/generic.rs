//! The generic JSON of the seed system: `from`, `to`, `subject`, `text` (or `body`), `html`,
//! `message_id`, `in_reply_to`, `references` and `attachments`.

use serde::Deserialize;
use ticketflow_core::email::{EmailError, InboundEmail, message_ids, normalize_address};
use ticketflow_core::store::Attachment;

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => one.split(',').map(str::to_owned).collect(),
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Deserialize)]
struct Payload {
    from: Option<String>,
    from_name: Option<String>,
    to: Option<OneOrMany>,
    #[serde(default)]
    subject: String,
    text: Option<String>,
    body: Option<String>,
    html: Option<String>,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    references: Option<OneOrMany>,
    #[serde(default)]
    attachments: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    #[serde(alias = "name")]
    filename: Option<String>,
    #[serde(alias = "type")]
    content_type: Option<String>,
    size: Option<u64>,
}

/// Reads the generic JSON.
pub(super) fn parse(body: &[u8]) -> Result<InboundEmail, EmailError> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|e| EmailError::malformed("body", format!("is not the generic JSON: {e}")))?;
    let from_field = payload.from.ok_or_else(|| EmailError::missing("from"))?;
    let from = normalize_address(&from_field, "from")?;
    let text = payload.text.or(payload.body);
    Ok(InboundEmail {
        provider: "generic".into(),
        from,
        from_name: payload.from_name,
        to: payload
            .to
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| normalize_address(t, "to").ok())
            .collect(),
        subject: payload.subject,
        text: match text {
            Some(text) => text,
            None => payload
                .html
                .as_deref()
                .map(mail_parser::decoders::html::html_to_text)
                .unwrap_or_default(),
        },
        stripped_text: None,
        html: payload.html,
        message_id: payload.message_id,
        in_reply_to: payload.in_reply_to,
        references: payload
            .references
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .iter()
            .flat_map(|r| message_ids(r))
            .collect(),
        attachments: payload
            .attachments
            .into_iter()
            .map(|f| Attachment {
                name: f.filename,
                content_type: f.content_type.unwrap_or_else(|| "application/octet-stream".into()),
                size: f.size.unwrap_or(0),
            })
            .collect(),
        automatic: None,
    })
}
