//! How the evaluation examples print their figures.

/// `n` of `d` as a percentage with its counts (`95.3% (61/64)`), or `n/a` when `d` is 0.
pub fn percent(n: usize, d: usize) -> String {
    if d == 0 {
        "n/a".into()
    } else {
        format!("{:.1}% ({n}/{d})", 100.0 * n as f64 / d as f64)
    }
}
