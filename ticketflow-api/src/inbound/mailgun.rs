//! Mailgun routes (store and notify / forward): `sender`/`from`, `recipient`, `subject`,
//! `body-plain`, `stripped-text`, `body-html`, `Message-Id`, `In-Reply-To`, `References`,
//! `message-headers` and `attachment-1..N` files, urlencoded or multipart. The signature is
//! checked before this runs (see `auth`).

use ticketflow_core::email::{
    EmailError, InboundEmail, automatic_reason, display_name, message_ids, normalize_address,
};

use super::fields::Fields;

/// Reads Mailgun's form.
pub(super) fn parse(fields: &Fields) -> Result<InboundEmail, EmailError> {
    let from_field = fields
        .get("from")
        .or_else(|| fields.get("sender"))
        .ok_or_else(|| EmailError::missing("from"))?;
    let from = normalize_address(from_field, "from")?;
    let to = fields
        .get("recipient")
        .or_else(|| fields.get("To"))
        .unwrap_or_default()
        .split(',')
        .filter_map(|t| normalize_address(t, "recipient").ok())
        .collect();
    let headers: Vec<(String, String)> = match fields.get("message-headers") {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| EmailError::malformed("message-headers", format!("is not a JSON list of pairs: {e}")))?,
        None => Vec::new(),
    };
    Ok(InboundEmail {
        provider: "mailgun".into(),
        automatic: automatic_reason(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())), &from),
        from_name: display_name(from_field),
        from,
        to,
        subject: fields.get("subject").unwrap_or_default().to_owned(),
        text: fields.get("body-plain").unwrap_or_default().to_owned(),
        stripped_text: fields.get("stripped-text").map(str::to_owned),
        html: fields.get("body-html").map(str::to_owned),
        message_id: fields.get("Message-Id").map(str::to_owned),
        in_reply_to: fields
            .get("In-Reply-To")
            .and_then(|v| message_ids(v).into_iter().next()),
        references: fields.get("References").map(message_ids).unwrap_or_default(),
        attachments: fields.files.iter().map(|(_, a)| a.clone()).collect(),
    })
}
