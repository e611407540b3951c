//! The forms customers write an order id in (`ord_12345`, `ORD-12345`, `order #12345`,
//! `#12345`, `12345`), and the ids they may mean.

/// The order ids `reference` may mean, most literal first: the reference as written, without
/// a leading "order", "no." or `#`, and, when it is a number or `ord` and a number, the
/// `ord_<number>` form. Nothing for an empty or over-long reference.
pub fn order_id_candidates(reference: &str) -> Vec<String> {
    let written = reference.trim();
    if written.is_empty() || written.chars().count() > 64 {
        return Vec::new();
    }
    let mut core = written;
    for prefix in ["order", "Order", "ORDER"] {
        if let Some(rest) = core.strip_prefix(prefix)
            && rest.starts_with([' ', '#', ':'])
        {
            core = rest;
        }
    }
    let core = core
        .trim_start_matches([' ', ':', '#'])
        .trim_start_matches("no.")
        .trim_start_matches("No.")
        .trim_start_matches([' ', '#']);
    let mut candidates = vec![written.to_owned()];
    let mut push = |candidate: String| {
        if !candidate.is_empty() && !candidates.contains(&candidate) {
            candidates.push(candidate);
        }
    };
    push(core.to_owned());
    let digits = if core.chars().all(|c| c.is_ascii_digit()) {
        Some(core)
    } else {
        let lower = core.to_ascii_lowercase();
        lower
            .strip_prefix("ord")
            .map(|rest| rest.trim_start_matches(['_', '-', ' ']))
            .filter(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
            .map(|rest| &core[core.len() - rest.len()..])
    };
    if let Some(digits) = digits.filter(|d| !d.is_empty()) {
        push(format!("ord_{digits}"));
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_customers_write_finds_the_order() {
        for written in [
            "ord_12345",
            "ORD-12345",
            "order #12345",
            "Order 12345",
            "#12345",
            "12345",
            "ord12345",
            " ORD_12345 ",
        ] {
            assert!(
                order_id_candidates(written)
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case("ord_12345")),
                "{written}: {:?}",
                order_id_candidates(written)
            );
        }
        assert_eq!(order_id_candidates("A7731"), ["A7731"]);
        assert!(order_id_candidates("").is_empty());
        assert!(order_id_candidates(&"1".repeat(65)).is_empty());
        assert_eq!(order_id_candidates("%' OR 1=1 --"), ["%' OR 1=1 --"]);
    }
}
