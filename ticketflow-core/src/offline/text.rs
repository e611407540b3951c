//! Text normalization and phrase matching shared by the offline engine's parts.

/// Lowercase ASCII: accents folded (`é` -> `e`, `ß` -> `ss`), every whitespace a space.
pub(crate) fn fold(text: &str) -> String {
    // Whitespace first: deunicode drops control characters such as tabs and newlines, which
    // would glue the words on either side together.
    let spaced: String = text.chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect();
    deunicode::deunicode(&spaced).to_lowercase()
}

/// Lowercases, folds accents (`é` -> `e`, `ß` -> `ss`) and squeezes whitespace, so that one
/// phrase list serves sloppy and non-English text alike.
pub(crate) fn normalize(text: &str) -> String {
    let folded = fold(text);
    let mut out = String::with_capacity(folded.len() + 2);
    out.push(' ');
    let mut space = true;
    for c in folded.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
                space = true;
            }
        } else {
            out.push(c);
            space = false;
        }
    }
    if !space {
        out.push(' ');
    }
    out
}

/// Counts the places `phrase` starts at a word boundary in normalized `text`. Phrases match as
/// prefixes of words ("refund" matches "refunds" and "refunded"); a phrase ending in a space
/// must match whole words.
pub(crate) fn count(text: &str, phrase: &str) -> usize {
    text.match_indices(phrase)
        .filter(|(at, _)| text[..*at].chars().next_back().is_none_or(|c| !c.is_alphanumeric()))
        .count()
}

/// True when `phrase` occurs at a word boundary.
pub(crate) fn has(text: &str, phrase: &str) -> bool {
    count(text, phrase) > 0
}

/// A phrase list with weights, summed over the matches in a text.
pub(crate) fn score(text: &str, phrases: &[(&str, f32)]) -> f32 {
    phrases
        .iter()
        .map(|(phrase, weight)| weight * count(text, phrase).min(3) as f32)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_accents_and_space() {
        assert_eq!(
            normalize("  Problème\tde  SYNCHRONISATION "),
            " probleme de synchronisation "
        );
        assert_eq!(normalize("Straße"), " strasse ");
    }

    #[test]
    fn matches_at_word_starts_only() {
        let text = normalize("Refunds? I want my refund. Rapid API");
        assert_eq!(count(&text, "refund"), 2);
        assert!(has(&text, "api"));
        assert!(!has(&text, "pid"));
        assert!(!has(&normalize("rapid"), "api"));
    }
}
