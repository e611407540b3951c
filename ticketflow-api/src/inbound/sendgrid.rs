//! SendGrid Inbound Parse: a multipart form with `from`, `to`, `subject`, `text`, `html`, the
//! raw `headers`, and `attachment1..N` files — or, with "POST the raw, full MIME message", the
//! whole message in `email`.

use ticketflow_core::email::{
    EmailError, InboundEmail, automatic_reason, display_name, normalize_address, parse_rfc5322, thread_headers,
};

use super::fields::Fields;

/// Reads SendGrid's form.
pub(super) fn parse(fields: &Fields) -> Result<InboundEmail, EmailError> {
    if let Some(raw) = fields.get("email") {
        return parse_rfc5322(raw.as_bytes(), "sendgrid");
    }
    let headers = fields.get("headers").unwrap_or_default();
    let (message_id, in_reply_to, references) = thread_headers(headers);
    let from_field = fields.get("from").ok_or_else(|| EmailError::missing("from"))?;
    let from = normalize_address(from_field, "from")?;
    let to = fields
        .get("to")
        .unwrap_or_default()
        .split(',')
        .filter_map(|t| normalize_address(t, "to").ok())
        .collect();
    let header_pairs: Vec<(&str, &str)> = headers.lines().filter_map(|line| line.split_once(':')).collect();
    Ok(InboundEmail {
        provider: "sendgrid".into(),
        automatic: automatic_reason(header_pairs, &from),
        from_name: display_name(from_field),
        from,
        to,
        subject: fields.get("subject").unwrap_or_default().to_owned(),
        text: fields
            .get("text")
            .map(str::to_owned)
            .or_else(|| fields.get("html").map(mail_parser::decoders::html::html_to_text))
            .unwrap_or_default(),
        stripped_text: None,
        html: fields.get("html").map(str::to_owned),
        message_id,
        in_reply_to,
        references,
        attachments: fields.files.iter().map(|(_, a)| a.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_and_its_headers_are_read() {
        let fields = Fields::of(&[
            ("from", "\"Jane Doe\" <Jane@Example.com>"),
            ("to", "support@help.example.com"),
            ("subject", "Order"),
            ("text", "Where is ORD-1?"),
            (
                "headers",
                "Message-ID: <sg1@example.com>\nIn-Reply-To: <t1@ticketflow>\nReferences: <t0@ticketflow> <t1@ticketflow>\n",
            ),
        ]);
        let email = parse(&fields).unwrap();
        assert_eq!(email.from, "jane@example.com");
        assert_eq!(email.from_name.as_deref(), Some("Jane Doe"));
        assert_eq!(email.message_id.as_deref(), Some("<sg1@example.com>"));
        assert_eq!(email.in_reply_to.as_deref(), Some("<t1@ticketflow>"));
        assert_eq!(email.references.len(), 2);
        assert_eq!(parse(&Fields::of(&[("subject", "x")])).unwrap_err().field, "from");
    }
}
