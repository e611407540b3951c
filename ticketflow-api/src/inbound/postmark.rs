//! Postmark's inbound JSON: `FromFull`, `ToFull`, `Subject`, `TextBody`, `HtmlBody`,
//! `StrippedTextReply`, `Headers` and `Attachments`. The thread is read from the RFC
//! `Message-ID` in `Headers`, not from Postmark's own `MessageID`.

use base64::Engine as _;
use serde::Deserialize;
use ticketflow_core::email::{EmailError, InboundEmail, automatic_reason, message_ids, normalize_address};
use ticketflow_core::store::Attachment;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Payload {
    from: Option<String>,
    from_name: Option<String>,
    from_full: Option<Address>,
    to: Option<String>,
    #[serde(default)]
    to_full: Vec<Address>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text_body: String,
    html_body: Option<String>,
    stripped_text_reply: Option<String>,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    attachments: Vec<File>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Address {
    email: String,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Header {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct File {
    name: Option<String>,
    content_type: Option<String>,
    content_length: Option<u64>,
    content: Option<String>,
}

/// Reads Postmark's JSON.
pub(super) fn parse(body: &[u8]) -> Result<InboundEmail, EmailError> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|e| EmailError::malformed("body", format!("is not Postmark's JSON: {e}")))?;
    let (from_address, from_name) = match &payload.from_full {
        Some(full) => (full.email.clone(), full.name.clone()),
        None => (
            payload.from.clone().ok_or_else(|| EmailError::missing("From"))?,
            payload.from_name.clone(),
        ),
    };
    let from = normalize_address(&from_address, "From")?;
    let mut to: Vec<String> = payload
        .to_full
        .iter()
        .filter_map(|a| normalize_address(&a.email, "ToFull").ok())
        .collect();
    if to.is_empty() {
        to = payload
            .to
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|t| normalize_address(t, "To").ok())
            .collect();
    }
    let header = |name: &str| {
        payload
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    };
    let attachments = payload
        .attachments
        .iter()
        .map(|file| Attachment {
            name: file.name.clone(),
            content_type: file
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: file.content_length.unwrap_or_else(|| {
                file.content
                    .as_deref()
                    .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
                    .map_or(0, |bytes| bytes.len() as u64)
            }),
        })
        .collect();
    Ok(InboundEmail {
        provider: "postmark".into(),
        automatic: automatic_reason(
            payload.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())),
            &from,
        ),
        from,
        from_name,
        to,
        subject: payload.subject,
        text: if payload.text_body.trim().is_empty() {
            payload
                .html_body
                .as_deref()
                .map(mail_parser::decoders::html::html_to_text)
                .unwrap_or_default()
        } else {
            payload.text_body
        },
        stripped_text: payload.stripped_text_reply,
        html: payload.html_body,
        message_id: header("Message-ID").and_then(|v| message_ids(v).into_iter().next()),
        in_reply_to: header("In-Reply-To").and_then(|v| message_ids(v).into_iter().next()),
        references: header("References").map(message_ids).unwrap_or_default(),
        attachments,
    })
}
