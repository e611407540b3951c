//! Searching and ordering ticket lists: what a search's words are, and the orders a list
//! comes in. Each backend turns them into its own full-text query (PostgreSQL's
//! `websearch_to_tsquery`, SQLite's FTS5 with each word quoted).

use serde::{Deserialize, Serialize};

/// The longest search text accepted, in characters.
pub const MAX_SEARCH_CHARS: usize = 500;

/// The order of a ticket list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListSort {
    /// Newest first (the default).
    #[default]
    CreatedDesc,
    /// Oldest first.
    CreatedAsc,
    /// Most recently changed first.
    UpdatedDesc,
    /// Least recently changed first.
    UpdatedAsc,
}

impl ListSort {
    /// Every order.
    pub const ALL: [ListSort; 4] = [
        ListSort::CreatedDesc,
        ListSort::CreatedAsc,
        ListSort::UpdatedDesc,
        ListSort::UpdatedAsc,
    ];

    /// Its name (`created_desc`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ListSort::CreatedDesc => "created_desc",
            ListSort::CreatedAsc => "created_asc",
            ListSort::UpdatedDesc => "updated_desc",
            ListSort::UpdatedAsc => "updated_asc",
        }
    }

    /// The `ORDER BY` clause (a constant: nothing of a request reaches it).
    pub fn order_by(self) -> &'static str {
        match self {
            ListSort::CreatedDesc => " ORDER BY created_at DESC, id",
            ListSort::CreatedAsc => " ORDER BY created_at, id",
            ListSort::UpdatedDesc => " ORDER BY updated_at DESC, id",
            ListSort::UpdatedAsc => " ORDER BY updated_at, id",
        }
    }
}

/// The words of a search: its whitespace-separated pieces that hold a letter or a digit
/// (punctuation alone finds nothing anywhere), each as an FTS5 string — quoted, inner quotes
/// doubled — so no operator, column filter or syntax of FTS5's reaches the query. A ticket
/// matches when it holds every word.
pub fn search_words(q: &str) -> Vec<String> {
    q.split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_quoted_and_operators_are_words() {
        assert_eq!(search_words("refund  ORD-55812"), ["\"refund\"", "\"ORD-55812\""]);
        assert_eq!(
            search_words("a\"b OR NEAR(x) *"),
            ["\"a\"\"b\"", "\"OR\"", "\"NEAR(x)\""]
        );
        assert!(search_words(" \" * - ").is_empty());
    }
}
