//! Evaluates the offline engine on a labeled ticket set: accuracy per field, a confusion
//! matrix, and order ids found / missed / invented.
//!
//! ```text
//! cargo run -p examples --example eval                                   # the dev set
//! cargo run -p examples --example eval -- ticketflow-core/data/holdout_set.jsonl --verbose
//! ```

use std::collections::BTreeMap;

use examples::report::percent as pct;
use serde::Deserialize;
use ticketflow_core::{Category, OfflineEngine, Urgency};

#[derive(Deserialize)]
struct Labeled {
    id: String,
    subject: String,
    body: String,
    label: Label,
}

#[derive(Deserialize)]
struct Label {
    classification: Category,
    order_id: Option<String>,
    product: Option<String>,
    issue_type: Option<String>,
    urgency: Urgency,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "ticketflow-core/data/dev_set.jsonl".into());
    let verbose = args.any(|a| a == "--verbose");
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
    let rows: Vec<Labeled> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    let (mut class_ok, mut urgency_ok, mut product_ok, mut issue_ok) = (0, 0, 0, 0);
    let (mut with_id, mut id_exact, mut id_missed, mut id_wrong, mut id_invented) = (0, 0, 0, 0, 0);
    let mut confusion: BTreeMap<(Category, Category), usize> = BTreeMap::new();
    for row in &rows {
        let class = OfflineEngine::classify_text(&row.subject, &row.body).category;
        let entities = OfflineEngine::extract_text(&row.subject, &row.body, class);
        *confusion.entry((row.label.classification, class)).or_default() += 1;
        class_ok += usize::from(class == row.label.classification);
        urgency_ok += usize::from(entities.urgency == row.label.urgency);
        product_ok += usize::from(entities.product == row.label.product);
        issue_ok += usize::from(entities.issue_type == row.label.issue_type);
        match (&row.label.order_id, &entities.order_id) {
            (Some(want), Some(got)) if want == got => {
                with_id += 1;
                id_exact += 1
            }
            (Some(_), Some(_)) => {
                with_id += 1;
                id_wrong += 1
            }
            (Some(_), None) => {
                with_id += 1;
                id_missed += 1
            }
            (None, Some(_)) => id_invented += 1,
            (None, None) => {}
        }
        if verbose {
            let mut problems = Vec::new();
            if class != row.label.classification {
                problems.push(format!("class {class} (want {})", row.label.classification));
            }
            if entities.order_id != row.label.order_id {
                problems.push(format!("order {:?} (want {:?})", entities.order_id, row.label.order_id));
            }
            if entities.urgency != row.label.urgency {
                problems.push(format!("urgency {:?} (want {:?})", entities.urgency, row.label.urgency));
            }
            if !problems.is_empty() {
                println!("{} {:?}: {}", row.id, row.subject, problems.join("; "));
            }
        }
    }

    let n = rows.len();
    println!("{path}: {n} tickets");
    println!("classification   {}", pct(class_ok, n));
    println!("urgency          {}", pct(urgency_ok, n));
    println!("product          {}", pct(product_ok, n));
    println!("issue_type       {}", pct(issue_ok, n));
    println!(
        "order_id         exact {} | missed {id_missed} | wrong {id_wrong} | invented {id_invented} (of {} without one)",
        pct(id_exact, with_id),
        n - with_id
    );
    println!("\nconfusion (rows: label, columns: predicted)");
    print!("{:>10}", "");
    for c in Category::ALL {
        print!("{:>10}", c.as_str());
    }
    println!();
    for want in Category::ALL {
        print!("{:>10}", want.as_str());
        for got in Category::ALL {
            print!("{:>10}", confusion.get(&(want, got)).copied().unwrap_or(0));
        }
        println!();
    }
    Ok(())
}
