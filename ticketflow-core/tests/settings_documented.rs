//! Every setting is documented where users look, and nothing documented is missing: README's
//! configuration table and `.env.example` name exactly the settings `Settings` has.

use std::collections::BTreeSet;

use ticketflow_core::settings::catalog;

fn settings() -> BTreeSet<String> {
    catalog().iter().map(|s| s.env.clone()).collect()
}

#[test]
fn the_readme_table_lists_every_setting() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("| setting | default |")
        .expect("README has the settings table");
    let table: BTreeSet<String> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| line.split('`').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(table, settings());
}

#[test]
fn env_example_lists_every_setting() {
    let example = include_str!("../../.env.example");
    let listed: BTreeSet<String> = example
        .lines()
        .map(|line| line.trim_start_matches('#').trim())
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .filter(|name| name != "TICKETFLOW_CONFIG")
        .collect();
    assert_eq!(listed, settings());
}
