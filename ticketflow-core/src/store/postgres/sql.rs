//! The statements, with the schema written into every table name: behind a transaction
//! pooler there is no `search_path` to rely on. Each aggregate's file keeps its own texts;
//! they are made once per store, here.
//!
//! A text names tables as `{schema}.tickets`. A piece of SQL that two statements share (the
//! claim and the transition, alone and in a group-commit batch) numbers its parameters from
//! `$1` and is renumbered where it is spliced in, and writes `{nowait}` where its row locks
//! either wait (a statement alone: only its caller waits) or fail at once (a batch: every
//! caller in it would wait).

use std::sync::LazyLock;

use regex::Regex;
use sqlx::SqlStr;

use super::approvals::ApprovalSql;
use super::checkpoints::CheckpointSql;
use super::claims::ClaimSql;
use super::commerce::CommerceSql;
use super::deliveries::DeliverySql;
use super::feed::FeedSql;
use super::group_commit::BatchSql;
use super::messages::MessageSql;
use super::outbox::OutboxSql;
use super::people::PeopleSql;
use super::tickets::TicketSql;
use super::tool_calls::ToolCallSql;
use super::webhooks::WebhookSql;

/// Whether a statement's row locks wait for a row someone else has locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// Wait (a statement on its own: only its caller waits).
    Wait,
    /// Fail at once (a batch: every caller in it and behind it would wait).
    NoWait,
}

/// Every statement of a store.
#[derive(Debug)]
pub(super) struct Statements {
    pub tickets: TicketSql,
    pub claims: ClaimSql,
    pub outbox: OutboxSql,
    pub checkpoints: CheckpointSql,
    pub commerce: CommerceSql,
    pub tool_calls: ToolCallSql,
    pub approvals: ApprovalSql,
    pub messages: MessageSql,
    pub deliveries: DeliverySql,
    pub feed: FeedSql,
    pub webhooks: WebhookSql,
    pub people: PeopleSql,
    pub batch: BatchSql,
    /// Reads each table, so that a store whose schema is missing or unreachable is unhealthy.
    pub ping: SqlStr,
}

impl Statements {
    pub(super) fn new(schema: &str) -> Self {
        Self {
            tickets: TicketSql::new(schema),
            claims: ClaimSql::new(schema),
            outbox: OutboxSql::new(schema),
            checkpoints: CheckpointSql::new(schema),
            commerce: CommerceSql::new(schema),
            tool_calls: ToolCallSql::new(schema),
            approvals: ApprovalSql::new(schema),
            messages: MessageSql::new(schema),
            deliveries: DeliverySql::new(schema),
            feed: FeedSql::new(schema),
            webhooks: WebhookSql::new(schema),
            people: PeopleSql::new(schema),
            batch: BatchSql::new(schema),
            ping: statement(
                schema,
                "SELECT (SELECT 1 FROM {schema}.tickets LIMIT 1), (SELECT 1 FROM {schema}.ticket_events LIMIT 1), \
                        (SELECT 1 FROM {schema}.workflow_checkpoints LIMIT 1), (SELECT 1 FROM {schema}.outbox LIMIT 1), \
                        (SELECT 1 FROM {schema}.tool_calls LIMIT 1), (SELECT 1 FROM {schema}.orders LIMIT 1), \
                        (SELECT 1 FROM {schema}.approval_requests LIMIT 1), \
                        (SELECT 1 FROM {schema}.ticket_messages LIMIT 1)",
            ),
        }
    }
}

/// `text` with the schema written in, ready to run.
pub(super) fn statement(schema: &str, text: &str) -> SqlStr {
    sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(with_schema(schema, text)))
}

/// `text` with the schema written in.
pub(super) fn with_schema(schema: &str, text: &str) -> String {
    text.replace("{schema}", schema)
}

/// A shared piece of SQL spliced into a statement: the schema written in, its parameters
/// numbered from `$first`, its locks waiting or not.
pub(super) fn fragment(schema: &str, text: &str, first: usize, lock: Lock) -> String {
    static PARAMETER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\$(\d+)").unwrap_or_else(|e| unreachable!("{e}")));
    let text = with_schema(schema, text).replace(
        "{nowait}",
        match lock {
            Lock::Wait => "",
            Lock::NoWait => " NOWAIT",
        },
    );
    PARAMETER
        .replace_all(&text, |captures: &regex::Captures<'_>| {
            let n: usize = captures[1].parse().unwrap_or(0);
            format!("${}", n + first - 1)
        })
        .into_owned()
}

/// A whole statement made of `text` (as [`fragment`]) for the store's `schema`.
pub(super) fn statement_of(text: String) -> SqlStr {
    sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_renumbered_qualified_and_locked() {
        let text = "SELECT $1, $2::uuid[], $10 FROM {schema}.tickets FOR SHARE{nowait}";
        assert_eq!(
            fragment("tf", text, 1, Lock::Wait),
            "SELECT $1, $2::uuid[], $10 FROM tf.tickets FOR SHARE"
        );
        assert_eq!(
            fragment("tf", text, 19, Lock::NoWait),
            "SELECT $19, $20::uuid[], $28 FROM tf.tickets FOR SHARE NOWAIT"
        );
    }
}
