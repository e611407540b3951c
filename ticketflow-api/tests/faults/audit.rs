//! The checks every scenario ends with, read from the database (the source of truth), and the
//! scenario's row of the report.

use std::time::Duration;

use uuid::Uuid;

use crate::cluster::{Cluster, output_dir};

/// The LLM-backed steps, each asked once per ticket on a clean run with the fake model.
pub const LLM_STEPS: [&str; 4] = ["classify", "extract", "draft", "review"];

/// What became of a scenario's tickets.
#[derive(Debug, Default)]
pub struct Audit {
    /// Tickets the API accepted.
    pub submitted: usize,
    pub completed: usize,
    pub failed: usize,
    /// Accepted but absent from the database.
    pub lost: usize,
    /// Still pending or processing.
    pub stuck: usize,
    /// Extra `step_complete` events: a step of a ticket committed more than once.
    pub steps_twice: usize,
    /// Tickets whose `completed` transition was recorded more than once.
    pub completed_twice: usize,
    /// Completed tickets whose steps are not exactly the six, in order.
    pub wrong_path: usize,
    /// For each LLM step: calls beyond one per accepted ticket.
    pub extra_llm_calls: Vec<(&'static str, usize)>,
}

impl Audit {
    /// Audits `accepted` (the ids the API answered with).
    pub async fn of(cluster: &Cluster, accepted: &[Uuid]) -> Self {
        let mut ids = accepted.to_vec();
        ids.sort();
        ids.dedup();
        let db = &cluster.db;
        let statuses: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM tickets WHERE id = ANY($1) GROUP BY status")
                .bind(&ids)
                .fetch_all(db)
                .await
                .expect("count statuses");
        let count = |wanted: &[&str]| -> usize {
            statuses
                .iter()
                .filter(|(s, _)| wanted.contains(&s.as_str()))
                .map(|(_, n)| *n as usize)
                .sum()
        };
        let present: usize = statuses.iter().map(|(_, n)| *n as usize).sum();
        let steps_twice: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(n - 1), 0)::int8 FROM (SELECT count(*) AS n FROM ticket_events \
             WHERE event_type = 'step_complete' AND ticket_id = ANY($1) GROUP BY ticket_id, step_name) s WHERE n > 1",
        )
        .bind(&ids)
        .fetch_one(db)
        .await
        .expect("count repeated steps");
        let completed_twice: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT ticket_id FROM ticket_events WHERE event_type = 'status_change' \
             AND payload->>'to' = 'completed' AND ticket_id = ANY($1) GROUP BY ticket_id HAVING count(*) > 1) s",
        )
        .bind(&ids)
        .fetch_one(db)
        .await
        .expect("count repeated completions");
        let paths: Vec<(Uuid, Vec<String>)> = sqlx::query_as(
            "SELECT t.id, COALESCE(array_agg(e.step_name ORDER BY e.seq) FILTER (WHERE e.seq IS NOT NULL), '{}') \
             FROM tickets t LEFT JOIN ticket_events e ON e.ticket_id = t.id AND e.event_type = 'step_complete' \
             WHERE t.id = ANY($1) AND t.status = 'completed' GROUP BY t.id",
        )
        .bind(&ids)
        .fetch_all(db)
        .await
        .expect("read step paths");
        let wrong_path = paths
            .iter()
            .filter(|(_, steps)| steps.as_slice() != ticketflow_core::steps::names::ALL)
            .count();
        let extra_llm_calls = LLM_STEPS
            .iter()
            .map(|step| (*step, cluster.llm.calls_for(step).saturating_sub(ids.len())))
            .collect();
        Self {
            submitted: ids.len(),
            completed: count(&["completed"]),
            failed: count(&["failed_permanent"]),
            lost: ids.len() - present,
            stuck: count(&["pending", "processing"]),
            steps_twice: steps_twice as usize,
            completed_twice: completed_twice as usize,
            wrong_path,
            extra_llm_calls,
        }
    }

    /// The most extra calls any one LLM step got.
    pub fn max_extra_llm_calls(&self) -> usize {
        self.extra_llm_calls.iter().map(|(_, n)| *n).max().unwrap_or(0)
    }

    /// The invariants every scenario keeps; `failed` is what the scenario expects.
    pub fn assert_sound(&self, failed: usize) {
        assert_eq!(self.lost, 0, "{self:?}");
        assert_eq!(self.stuck, 0, "{self:?}");
        assert_eq!(self.steps_twice, 0, "{self:?}");
        assert_eq!(self.completed_twice, 0, "{self:?}");
        assert_eq!(self.wrong_path, 0, "{self:?}");
        assert_eq!(self.failed, failed, "{self:?}");
        assert_eq!(self.completed + self.failed, self.submitted, "{self:?}");
    }

    /// Writes the scenario's row of RELIABILITY.md's table to `target/reliability/<name>.row`;
    /// `allowed` says how many extra LLM calls per step the scenario tolerates, and why.
    pub fn report(&self, scenario: &str, fault: &str, recovery: Option<Duration>, allowed: &str) {
        let recovery = recovery.map_or_else(|| "–".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        let row = format!(
            "| {scenario} | {fault} | {} | {} | {} | {} | {} | {} | {allowed} | {recovery} |\n",
            self.submitted,
            self.completed,
            self.failed,
            self.lost + self.stuck,
            self.steps_twice,
            self.max_extra_llm_calls(),
        );
        let file = output_dir().join(format!("{}.row", scenario.replace(|c: char| !c.is_alphanumeric(), "_")));
        std::fs::write(&file, row).expect("write the report row");
    }
}
