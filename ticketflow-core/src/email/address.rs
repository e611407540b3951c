//! E-mail addresses as ticketflow compares them: bare, lower-cased, checked.

use uuid::Uuid;

use super::EmailError;

/// The longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS_CHARS: usize = 254;

/// `address` bare (a `Name <addr>` form loses its name) and lower-cased; `field` names it in
/// the error when it is not an address.
pub fn normalize_address(address: &str, field: &'static str) -> Result<String, EmailError> {
    let trimmed = address.trim();
    let bare = match (trimmed.rfind('<'), trimmed.rfind('>')) {
        (Some(open), Some(close)) if open < close => &trimmed[open + 1..close],
        _ => trimmed,
    };
    let bare = bare.trim().to_lowercase();
    let invalid = |why: &str| EmailError::invalid(field, format!("is not an e-mail address ({why})"));
    if bare.chars().count() > MAX_ADDRESS_CHARS {
        return Err(invalid("too long"));
    }
    if bare
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
    {
        return Err(invalid("it holds spaces or separators"));
    }
    match bare.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !local.contains('@') => Ok(bare),
        _ => Err(invalid("no local part and domain")),
    }
}

/// The display name of a `Name <addr>` field, unquoted, if it has one.
pub fn display_name(field: &str) -> Option<String> {
    let (name, _) = field.split_once('<')?;
    let name = name.trim().trim_matches('"').trim();
    (!name.is_empty() && !name.contains('@')).then(|| name.to_owned())
}

/// The ticket a plus-address names: `support+<ticket id>@<domain>`, when `domain` (if
/// configured) is the address's domain.
pub fn plus_addressed_ticket(address: &str, domain: Option<&str>) -> Option<Uuid> {
    let (local, at) = address.rsplit_once('@')?;
    if domain.is_some_and(|d| !d.eq_ignore_ascii_case(at)) {
        return None;
    }
    let (_, tag) = local.split_once('+')?;
    Uuid::parse_str(tag).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_bare_and_lower_cased() {
        assert_eq!(
            normalize_address("Jane Doe <Jane@Example.COM>", "from").unwrap(),
            "jane@example.com"
        );
        assert_eq!(normalize_address(" a@b.c ", "from").unwrap(), "a@b.c");
        for bad in ["", "jane", "@example.com", "jane@", "a b@c.d", "a@b@c"] {
            assert!(normalize_address(bad, "from").is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_unquoted() {
        assert_eq!(display_name("\"Jane Doe\" <jane@x.y>").as_deref(), Some("Jane Doe"));
        assert_eq!(display_name("jane@x.y"), None);
        assert_eq!(display_name("<jane@x.y>"), None);
    }

    #[test]
    fn plus_addresses_name_tickets_on_the_domain() {
        let id = Uuid::now_v7();
        let to = format!("support+{id}@help.example.com");
        assert_eq!(plus_addressed_ticket(&to, Some("HELP.example.com")), Some(id));
        assert_eq!(plus_addressed_ticket(&to, None), Some(id));
        assert_eq!(plus_addressed_ticket(&to, Some("other.com")), None);
        assert_eq!(plus_addressed_ticket("support@help.example.com", None), None);
        assert_eq!(plus_addressed_ticket("support+nope@help.example.com", None), None);
    }
}
