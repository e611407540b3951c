//! A whole RFC 5322 message (MIME parts, charsets, quoted-printable, base64) read with
//! `mail-parser`.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

use super::{EmailError, InboundEmail, automatic_reason, message_ids, normalize_address};
use crate::store::Attachment;

/// The texts of a header that holds Message-IDs.
fn ids_of(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(text) => message_ids(text),
        HeaderValue::TextList(list) => list.iter().flat_map(|t| message_ids(t)).collect(),
        _ => Vec::new(),
    }
}

/// The thread of a message from its raw headers alone (SendGrid's `headers` field):
/// Message-ID, In-Reply-To and References.
pub fn thread_headers(headers: &str) -> (Option<String>, Option<String>, Vec<String>) {
    let raw = format!("{}\r\n\r\n", headers.trim_end());
    match MessageParser::default().parse(raw.as_bytes()) {
        Some(message) => (
            message.message_id().map(|id| format!("<{id}>")),
            ids_of(message.in_reply_to()).into_iter().next(),
            ids_of(message.references()),
        ),
        None => (None, None, Vec::new()),
    }
}

/// Reads a whole message. The text is the first text part (an HTML-only message's HTML as
/// text); every attachment is recorded by name, type and decoded size.
pub fn parse_rfc5322(raw: &[u8], provider: &str) -> Result<InboundEmail, EmailError> {
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| EmailError::malformed("message", "is not an RFC 5322 message: no header could be read"))?;
    if let Some(content_type) = message.root_part().content_type()
        && content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type.attribute("boundary").is_none_or(|b| b.trim().is_empty())
    {
        return Err(EmailError::malformed(
            "content-type",
            "is multipart without a boundary: its parts cannot be told apart",
        ));
    }
    let sender = message
        .from()
        .and_then(|from| from.first())
        .ok_or_else(|| EmailError::missing("from"))?;
    let from = normalize_address(sender.address().unwrap_or_default(), "from")?;
    let mut to = Vec::new();
    for list in message.all_to().chain(message.all_cc()) {
        for addr in list.iter() {
            if let Some(address) = addr.address()
                && let Ok(address) = normalize_address(address, "to")
            {
                to.push(address);
            }
        }
    }
    let html = message
        .html_part(0)
        .filter(|part| part.is_text_html())
        .and_then(|part| part.text_contents())
        .map(str::to_owned);
    let attachments = message
        .attachments()
        .map(|part| Attachment {
            name: part.attachment_name().map(str::to_owned),
            content_type: part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                },
            ),
            size: part.contents().len() as u64,
        })
        .collect();
    let headers: Vec<(&str, &str)> = message.headers_raw().collect();
    Ok(InboundEmail {
        provider: provider.to_owned(),
        automatic: automatic_reason(headers.iter().copied(), &from),
        from_name: sender.name().map(str::to_owned),
        from,
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        stripped_text: None,
        html,
        message_id: message.message_id().map(|id| format!("<{id}>")),
        in_reply_to: ids_of(message.in_reply_to()).into_iter().next(),
        references: ids_of(message.references()),
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_rfc5322;

    #[test]
    fn charsets_encodings_and_attachments_are_read() {
        let raw = "From: =?UTF-8?B?SsO8cmdlbg==?= <Juergen@Example.de>\r\n\
            To: Support <support+1@help.example.com>\r\n\
            Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\n\
            Message-ID: <m1@example.de>\r\n\
            In-Reply-To: <r0@help.example.com>\r\n\
            References: <r-1@help.example.com>\r\n <r0@help.example.com>\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
            --b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            Sch=F6ne Gr=FC=DFe\r\n\
            --b1\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";
        let email = parse_rfc5322(raw.as_bytes(), "raw").unwrap();
        assert_eq!(email.from, "juergen@example.de");
        assert_eq!(email.from_name.as_deref(), Some("Jürgen"));
        assert_eq!(email.subject, "Grüße");
        assert_eq!(email.text.trim(), "Schöne Grüße");
        assert_eq!(email.message_id.as_deref(), Some("<m1@example.de>"));
        assert_eq!(email.in_reply_to.as_deref(), Some("<r0@help.example.com>"));
        assert_eq!(email.references, ["<r-1@help.example.com>", "<r0@help.example.com>"]);
        assert_eq!(email.to, ["support+1@help.example.com"]);
        assert_eq!(email.attachments.len(), 1);
        assert_eq!(email.attachments[0].name.as_deref(), Some("invoice.pdf"));
        assert_eq!(email.attachments[0].content_type, "application/pdf");
        assert_eq!(email.attachments[0].size, 9);
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = "From: a@b.c\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
            <html><body><p>My <b>order</b> is late</p></body></html>\r\n";
        let email = parse_rfc5322(raw.as_bytes(), "raw").unwrap();
        assert!(email.text.contains("My order is late"), "{}", email.text);
        assert!(email.html.is_some_and(|h| h.contains("<b>order</b>")));
    }

    #[test]
    fn unreadable_messages_name_the_part() {
        let no_from = parse_rfc5322(b"Subject: x\r\n\r\nbody", "raw").unwrap_err();
        assert_eq!(no_from.field, "from");
        let bad_from = parse_rfc5322(b"From: not an address\r\nSubject: x\r\n\r\nbody", "raw").unwrap_err();
        assert_eq!(bad_from.field, "from");
        let no_boundary = parse_rfc5322(
            b"From: a@b.c\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nbody",
            "raw",
        )
        .unwrap_err();
        assert_eq!(no_boundary.field, "content-type");
    }
}
