//! Text normalization and phrase matching shared by the offline engine's parts.

use aho_corasick::AhoCorasick;

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

/// A phrase list compiled into one automaton: a text is scanned once for all the phrases,
/// instead of setting up a substring searcher per phrase and text.
///
/// Phrases match as prefixes of words ("refund" matches "refunds" and "refunded"); a phrase
/// ending in a space must match whole words. Texts are [`normalize`]d first.
pub(crate) struct PhraseSet {
    automaton: AhoCorasick,
    /// Per distinct phrase, the sum of its weights in the list.
    weights: Vec<f32>,
}

impl PhraseSet {
    /// Weighted phrases.
    pub(crate) fn weighted(list: &[(&str, f32)]) -> Self {
        let mut phrases: Vec<&str> = Vec::new();
        let mut weights: Vec<f32> = Vec::new();
        for &(phrase, weight) in list {
            match phrases.iter().position(|p| *p == phrase) {
                Some(i) => weights[i] += weight,
                None => {
                    phrases.push(phrase);
                    weights.push(weight);
                }
            }
        }
        let automaton = AhoCorasick::new(&phrases).expect("a few hundred short phrases fit the automaton's limits");
        Self { automaton, weights }
    }

    /// Phrases of equal weight.
    pub(crate) fn new(list: &[&str]) -> Self {
        Self::weighted(&list.iter().map(|p| (*p, 1.0)).collect::<Vec<_>>())
    }

    /// How often each distinct phrase occurs at a word start in normalized `text`, counted as
    /// `str::match_indices` does (left to right, no two matches of one phrase overlapping)
    /// and then kept only at word starts.
    fn counts(&self, text: &str) -> Vec<usize> {
        let mut counts = vec![0; self.weights.len()];
        // Overlapping search reports every occurrence of every phrase, by end position; all
        // occurrences of one phrase have its length, so for each phrase that is also start
        // order, and skipping those that overlap the last one taken gives match_indices's.
        let mut taken_until = vec![0; self.weights.len()];
        for found in self.automaton.find_overlapping_iter(text) {
            let phrase = found.pattern().as_usize();
            if found.start() < taken_until[phrase] {
                continue;
            }
            taken_until[phrase] = found.end();
            if at_word_start(text, found.start()) {
                counts[phrase] += 1;
            }
        }
        counts
    }

    /// The weighted sum of the matches, each phrase counting at most three times.
    pub(crate) fn score(&self, text: &str) -> f32 {
        self.counts(text)
            .iter()
            .zip(&self.weights)
            .map(|(&count, weight)| weight * count.min(3) as f32)
            .sum()
    }

    /// True when any phrase occurs at a word start.
    pub(crate) fn any(&self, text: &str) -> bool {
        self.counts(text).iter().any(|&count| count > 0)
    }
}

fn at_word_start(text: &str, at: usize) -> bool {
    text[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric())
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
        let set = PhraseSet::new(&["refund", "api", "pid"]);
        assert_eq!(set.counts(&text), [2, 1, 0]);
        assert!(!PhraseSet::new(&["api"]).any(&normalize("rapid")));
        assert!(
            !PhraseSet::new(&["refund "]).any(&text),
            "a trailing space asks for whole words"
        );
    }

    #[test]
    fn weights_add_up_and_each_phrase_counts_at_most_three_times() {
        let set = PhraseSet::weighted(&[("a", 1.0), ("b", 2.0), ("a", 0.5)]);
        assert_eq!(set.score(&normalize("a a a a b")), 1.5 * 3.0 + 2.0);
    }

    /// The phrase-by-phrase count the automaton replaced, kept as the reference.
    fn reference_count(text: &str, phrase: &str) -> usize {
        text.match_indices(phrase)
            .filter(|(at, _)| at_word_start(text, *at))
            .count()
    }

    /// Every text over a small alphabet up to length 7 (spaces, letters that repeat, a
    /// two-byte character), against phrases that overlap themselves and each other.
    #[test]
    fn counts_agree_with_match_indices_on_every_small_text() {
        let phrases = ["a", "aa", "a a", "ab", "aba", "ba ", "é", "a é", "b"];
        let set = PhraseSet::new(&phrases);
        let alphabet = ['a', 'b', ' ', 'é'];
        let mut texts = vec![String::new()];
        let mut checked = 0;
        for _ in 0..7 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            for text in &texts {
                let expected: Vec<usize> = phrases.iter().map(|p| reference_count(text, p)).collect();
                assert_eq!(set.counts(text), expected, "text {text:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 4 + 16 + 64 + 256 + 1024 + 4096 + 16384);
    }
}
