//! Where statements run: straight on the pool, or, behind a transaction pooler, each in a
//! transaction of its own.
//!
//! sqlx sends a statement in two exchanges (parse, then bind and execute), each ending in a
//! sync. Outside a transaction a transaction pooler may hand the second to another server
//! connection, which never saw the statement; inside one it keeps the same server. And a
//! statement prepared by name stays on whichever server connection parsed it, where another
//! client's statement of the same name then collides: behind a pooler every statement is
//! unnamed (sqlx's `persistent(false)`).

use sqlx::postgres::{PgArguments, PgPool, PgQueryResult, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};

/// A statement with its parameters bound.
pub(super) type Statement<'q> = Query<'q, Postgres, PgArguments>;

/// The pool, and how to run a statement on it.
#[derive(Debug, Clone)]
pub(super) struct Db {
    pool: PgPool,
    /// Wrap every lone statement in a transaction (see the module's doc).
    pooled: bool,
}

impl Db {
    pub(super) fn new(pool: PgPool, pooled: bool) -> Self {
        Self { pool, pooled }
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether statements may be prepared by name and kept: not behind a pooler. Statements
    /// run on a transaction of [`begin`](Self::begin) must be set to this.
    pub(super) fn persistent(&self) -> bool {
        !self.pooled
    }

    /// A transaction for several statements.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    pub(super) async fn execute(&self, statement: Statement<'_>) -> Result<PgQueryResult, sqlx::Error> {
        let statement = statement.persistent(self.persistent());
        if !self.pooled {
            return statement.execute(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let done = statement.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    pub(super) async fn fetch_optional(&self, statement: Statement<'_>) -> Result<Option<PgRow>, sqlx::Error> {
        let statement = statement.persistent(self.persistent());
        if !self.pooled {
            return statement.fetch_optional(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let row = statement.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub(super) async fn fetch_one(&self, statement: Statement<'_>) -> Result<PgRow, sqlx::Error> {
        let statement = statement.persistent(self.persistent());
        if !self.pooled {
            return statement.fetch_one(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let row = statement.fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub(super) async fn fetch_all(&self, statement: Statement<'_>) -> Result<Vec<PgRow>, sqlx::Error> {
        let statement = statement.persistent(self.persistent());
        if !self.pooled {
            return statement.fetch_all(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let rows = statement.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
