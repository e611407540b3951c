//! Order ids, found by form and by context, never invented.
//!
//! Three kinds of evidence, strongest first:
//! 1. the form `ORD-12345` (or `ord_12345`, `ORD12345`) anywhere;
//! 2. a token with at least three digits shortly after a word for "order" (in English, Spanish,
//!    Portuguese, French, German or Italian), with nothing but filler words between
//!    (`order #12345`, `Order No: 70042`, `commande n° 77120`, `Bestell-Nr. 53318`);
//! 3. a `#` right before a token of four or more digits (`(#40019)`), unless a word like
//!    "ticket" or "invoice" says it is something else.
//!
//! The id is returned as written, without the `#` or the word "order". Numbers that merely look
//! like ids (amounts, dates, versions, serials, invoice numbers, error codes) have none of this
//! evidence and are left alone.

use std::sync::LazyLock;

use regex::Regex;

static ORD_FORM: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a literal pattern, checked by the tests
    Regex::new(r"(?i)\bORD[-_]?\d{3,}\b").expect("valid regex")
});
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*").expect("valid regex")
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"^\d{4}-\d{1,2}-\d{1,2}$").expect("valid regex")
});

/// Words that announce an order id.
const ORDER_WORDS: &[&str] = &[
    "order",
    "orders",
    "orden",
    "pedido",
    "encomenda",
    "commande",
    "bestellung",
    "bestellnummer",
    "bestell",
    "bestellnr",
    "ordine",
    "transaction",
    "purchase",
    "sub",
];

/// Words that may stand between an order word and the id.
const FILLER: &[&str] = &[
    "number",
    "no",
    "nr",
    "num",
    "numero",
    "n",
    "o",
    "id",
    "ref",
    "reference",
    "de",
    "del",
    "di",
    "da",
    "do",
    "my",
    "our",
    "the",
    "was",
    "is",
    "es",
    "ist",
    "est",
    "hub",
    "sensor",
    "kit",
    "kits",
    "meines",
    "sensor-kits",
    "nummer",
    "deg",
    "ndeg",
];

/// Words that say the number after them is something other than an order.
const NOT_ORDER: &[&str] = &[
    "invoice", "inv", "serial", "sn", "ticket", "case", "issue", "error", "code", "version", "v", "firmware", "phone",
    "tel", "card", "ending", "zip", "postal", "model", "build", "factura", "facture", "rechnung", "fattura",
];

fn words_before(text: &str, end: usize, max: usize) -> Vec<String> {
    let start = text[..end].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
    let folded = super::text::fold(&text[start..end]);
    let mut words: Vec<String> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let keep = words.len().saturating_sub(max);
    words.drain(..keep);
    words
}

fn digits(token: &str) -> usize {
    token.chars().filter(char::is_ascii_digit).count()
}

/// Evidence from an order word: one within the four words before the token, with only filler
/// after it.
fn after_order_word(text: &str, start: usize) -> bool {
    let words = words_before(text, start, 4);
    for (i, word) in words.iter().enumerate().rev() {
        if ORDER_WORDS.contains(&word.as_str()) {
            return words[i + 1..].iter().all(|w| FILLER.contains(&w.as_str()));
        }
        if NOT_ORDER.contains(&word.as_str()) || !FILLER.contains(&word.as_str()) {
            return false;
        }
    }
    false
}

fn after_hash(text: &str, start: usize, token: &str) -> bool {
    if !text[..start].ends_with('#') || digits(token) < 4 {
        return false;
    }
    let words = words_before(text, start - 1, 1);
    words.last().is_none_or(|w| !NOT_ORDER.contains(&w.as_str()))
}

/// The order id in `text`, if there is evidence for one.
pub(crate) fn find(text: &str) -> Option<String> {
    if let Some(m) = ORD_FORM.find(text) {
        return Some(m.as_str().to_owned());
    }
    let mut by_hash = None;
    for m in TOKEN.find_iter(text) {
        let token = m.as_str();
        if digits(token) < 3 || DATE.is_match(token) {
            continue;
        }
        if after_order_word(text, m.start()) {
            return Some(token.to_owned());
        }
        if by_hash.is_none() && after_hash(text, m.start(), token) {
            by_hash = Some(token.to_owned());
        }
    }
    by_hash
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn finds_the_common_forms_as_written() {
        for (text, id) in [
            ("I was charged twice, #12345", "12345"),
            ("Order ORD-55812 is missing", "ORD-55812"),
            ("Hi, my order ord_12345 has not arrived yet.", "ord_12345"),
            ("ORD12345 please", "ORD12345"),
            ("about order 100234 please", "100234"),
            ("my order A7731 never came", "A7731"),
            ("Order BX-4410. Why?", "BX-4410"),
            ("order 55-1209 was cancelled", "55-1209"),
            ("el número de pedido 48213 aparece dos veces", "48213"),
            ("commande n° 77120", "77120"),
            ("Bestell-Nr. 53318 fehlt", "53318"),
            ("Bestellnummer meines Sensor-Kits: 88017", "88017"),
            ("Ordine del Hub: 7204", "7204"),
            ("Order-ID: 5530-221. Thanks", "5530-221"),
            ("Order No: 70042.", "70042"),
            ("Order history for our Hub (#40019) is empty", "40019"),
        ] {
            assert_eq!(find(text).as_deref(), Some(id), "{text}");
        }
    }

    #[test]
    fn invents_nothing() {
        for text in [
            "I paid $49.99 on 2024-03-15, card ending 4242",
            "Since v2.3.1 the app shows error 502 and code 0x80070005",
            "Invoice INV-2291 is wrong",
            "serial SN-88123-X stopped working",
            "call me at 555-0143-221",
            "ticket #48811 was closed",
            "I tried 3 times in 2024",
            "I ordered 2 kits last week",
        ] {
            assert_eq!(find(text), None, "{text}");
        }
    }
}
