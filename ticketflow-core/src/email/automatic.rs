//! Automatic mail: bounces, out-of-office replies, lists — mail no one should answer
//! automatically (RFC 3834).

/// Why a message with these headers (name, value) from `from` is automatic mail, if it is.
pub fn automatic_reason<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>, from: &str) -> Option<String> {
    let local = from.split('@').next().unwrap_or_default();
    if local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster") {
        return Some(format!("sent by {local}"));
    }
    for (name, value) in headers {
        let value = value.trim().to_ascii_lowercase();
        let reason = match name.trim().to_ascii_lowercase().as_str() {
            "auto-submitted" if value != "no" => Some(format!("Auto-Submitted: {value}")),
            "precedence" if matches!(value.as_str(), "bulk" | "junk" | "list") => Some(format!("Precedence: {value}")),
            "list-id" => Some("List-Id".to_owned()),
            "x-autoreply" | "x-autorespond" => Some(name.to_owned()),
            "content-type" if value.starts_with("multipart/report") => Some("a delivery report".to_owned()),
            _ => None,
        };
        if reason.is_some() {
            return reason;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::automatic_reason;

    #[test]
    fn automatic_mail_is_told_apart() {
        assert!(automatic_reason([("Auto-Submitted", "auto-replied")], "a@b.c").is_some());
        assert!(automatic_reason([("Auto-Submitted", "no")], "a@b.c").is_none());
        assert!(automatic_reason([("Precedence", "bulk")], "a@b.c").is_some());
        assert!(automatic_reason([("List-Id", "<x>")], "a@b.c").is_some());
        assert!(
            automatic_reason(
                [("Content-Type", "multipart/report; report-type=delivery-status")],
                "a@b.c"
            )
            .is_some()
        );
        assert!(automatic_reason(std::iter::empty(), "MAILER-DAEMON@b.c").is_some());
        assert!(automatic_reason([("Subject", "hi")], "jane@b.c").is_none());
    }
}
