//! Where statements run: straight on the pool, or, behind a transaction pooler, each in a
//! transaction of its own.
//!
//! sqlx sends a statement in two exchanges (parse, then bind and execute), each ending in a
//! sync. Outside a transaction a transaction pooler may hand the second to another server
//! connection, which never saw the statement; inside one it keeps the same server.

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

    /// A transaction for several statements.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    pub(super) async fn execute(&self, statement: Statement<'_>) -> Result<PgQueryResult, sqlx::Error> {
        if !self.pooled {
            return statement.execute(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let done = statement.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    pub(super) async fn fetch_optional(&self, statement: Statement<'_>) -> Result<Option<PgRow>, sqlx::Error> {
        if !self.pooled {
            return statement.fetch_optional(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let row = statement.fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub(super) async fn fetch_one(&self, statement: Statement<'_>) -> Result<PgRow, sqlx::Error> {
        if !self.pooled {
            return statement.fetch_one(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let row = statement.fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub(super) async fn fetch_all(&self, statement: Statement<'_>) -> Result<Vec<PgRow>, sqlx::Error> {
        if !self.pooled {
            return statement.fetch_all(&self.pool).await;
        }
        let mut tx = self.pool.begin().await?;
        let rows = statement.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
