//! Quoted history: what a reply repeats of earlier mail, cut before the workflow reads it.

/// `text` up to where the quoted history starts: an attribution line (`On … wrote:`), an
/// Outlook header block (`-----Original Message-----`, or `From:` followed by `Sent:`), a
/// separator line of underscores, or the first of the trailing `>` lines. Text with nothing
/// of its own left is kept whole.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut cut = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        let attribution = (trimmed.starts_with("On ") && (trimmed.ends_with("wrote:") || next.ends_with("wrote:")))
            || (trimmed.starts_with("Le ") && trimmed.ends_with("a écrit :"))
            || (trimmed.starts_with("Am ") && trimmed.ends_with("schrieb:"));
        let outlook = trimmed.starts_with("-----Original Message-----")
            || (trimmed.starts_with("From:") && lines[i + 1..].iter().take(4).any(|l| l.trim().starts_with("Sent:")))
            || (trimmed.len() >= 20 && trimmed.chars().all(|c| c == '_'));
        if attribution || outlook {
            cut = i;
            break;
        }
        if trimmed.starts_with('>')
            && lines[i..]
                .iter()
                .all(|l| l.trim().is_empty() || l.trim().starts_with('>'))
        {
            cut = i;
            break;
        }
    }
    let own = lines[..cut].join("\n").trim().to_owned();
    if own.is_empty() { text.trim().to_owned() } else { own }
}

#[cfg(test)]
mod tests {
    use super::strip_quoted;

    #[test]
    fn attribution_and_quotes_are_cut() {
        let reply = "Thanks, and is it shipped yet?\n\nOn Mon, 1 Dec 2026 at 10:00, Support <s@x.com> wrote:\n> Your order...\n> more";
        assert_eq!(strip_quoted(reply), "Thanks, and is it shipped yet?");
        assert_eq!(strip_quoted("Hi\n> quoted\n> more\n"), "Hi");
        assert_eq!(
            strip_quoted("Reply\n-----Original Message-----\nFrom: a\nSent: b\nold"),
            "Reply"
        );
        assert_eq!(
            strip_quoted("Reply\n\nFrom: Support\nSent: Monday\nTo: me\nold"),
            "Reply"
        );
    }

    #[test]
    fn a_message_of_its_own_is_kept() {
        assert_eq!(
            strip_quoted("Just a question.\nSecond line."),
            "Just a question.\nSecond line."
        );
        assert_eq!(strip_quoted("> only a quote"), "> only a quote");
        assert_eq!(
            strip_quoted("I think > 3 items\nare missing"),
            "I think > 3 items\nare missing"
        );
    }
}
