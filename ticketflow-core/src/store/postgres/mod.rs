//! The PostgreSQL (and Supabase) store: one file per aggregate, the group-commit queue that
//! lets concurrent runs share transactions, and the connection rules that make it work behind
//! a transaction pooler (every statement names its schema; nothing relies on session state).

mod approvals;
mod checkpoints;
mod claims;
mod commerce;
mod db;
mod deliveries;
mod feed;
mod group_commit;
mod messages;
mod notifier;
mod outbox;
mod people;
mod rows;
mod sql;
mod tickets;
mod tool_calls;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use self::db::Db;
use self::group_commit::{GroupCommit, Limits};
use self::sql::Statements;
use super::{Store, StoreError, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The schema the tables live in (created if missing; default `ticketflow`). A schema of
    /// its own keeps the tables, and `_sqlx_migrations`, out of Supabase's public REST API.
    /// Every statement names it, so no `search_path` is needed.
    pub schema: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection; short, so that an outage answers fast.
    pub acquire_timeout: Duration,
    /// True behind a transaction pooler (Supabase's port 6543, PgBouncer in transaction mode),
    /// which keeps no session state: nothing is prepared by name, nothing is `SET`, no startup
    /// parameter is sent beyond the user and database, and every statement runs in a
    /// transaction of its own so that its parse and its execution reach the same server
    /// connection. Migrations then need [`migration_url`](Self::migration_url).
    pub transaction_pooler: bool,
    /// A direct or session connection for migrations (they take an advisory lock and set
    /// `search_path`); `None`: the main URL, unless it is a transaction pooler.
    pub migration_url: Option<String>,
    /// A direct or session connection for the live feed's LISTEN (`DATABASE_LISTEN_URL`);
    /// `None`: the main URL, unless it is a transaction pooler (then the feed polls).
    pub listen_url: Option<String>,
    /// Group commit: how many checkpoint writes may be in flight at once, each committing
    /// whatever concurrent runs have queued meanwhile in one transaction (see
    /// [`checkpoint_batch`](Self::checkpoint_batch)). Fewer means bigger batches under load,
    /// more means less queueing at low concurrency.
    pub checkpoint_writers: usize,
    /// The most writes (checkpoints, and the claims and transitions that ride along) one
    /// transaction carries; 1 turns group commit off (every write its own transaction).
    /// Either way a run's `put` returns once its checkpoint committed.
    pub checkpoint_batch: usize,
    /// The most bytes (about) one batched statement carries over TLS. The default keeps a
    /// statement inside one TLS record: sqlx leaves Nagle's algorithm on, so a statement
    /// that spans two records waits for the server's delayed ACK. Without TLS there is no
    /// limit.
    pub checkpoint_batch_bytes: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: "ticketflow".into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            transaction_pooler: false,
            migration_url: None,
            listen_url: None,
            checkpoint_writers: 3,
            checkpoint_batch: 64,
            checkpoint_batch_bytes: 15 * 1024,
        }
    }
}

impl PgOptions {
    /// Options for a `DATABASE_URL`: a transaction pooler is recognised by Supabase's port
    /// 6543 or a `pgbouncer=true` marker, which is removed from the URL returned.
    pub fn for_url(url: &str, store: &StoreOptions) -> (String, PgOptions) {
        let mut options = PgOptions {
            schema: store.schema.clone(),
            migration_url: store.migration_url.clone(),
            listen_url: store.listen_url.clone(),
            ..PgOptions::default()
        };
        let mut url = url.to_owned();
        for marker in ["?pgbouncer=true&", "&pgbouncer=true", "?pgbouncer=true"] {
            if let Some(at) = url.find(marker) {
                let keep = if marker.ends_with('&') { "?" } else { "" };
                url.replace_range(at..at + marker.len(), keep);
                options.transaction_pooler = true;
            }
        }
        let authority = url
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split(['/', '?'])
            .next()
            .unwrap_or("");
        if authority.rsplit('@').next().is_some_and(|host| host.ends_with(":6543")) {
            options.transaction_pooler = true;
        }
        (url, options)
    }
}

/// Tickets, events, checkpoints and outbox in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    db: Db,
    /// Every statement, with the schema written in.
    sql: Arc<Statements>,
    schema: String,
    /// Where migrations run: `None` behind a transaction pooler with no migration URL.
    migration: Option<PgConnectOptions>,
    /// Where LISTEN runs: a session connection (`None` behind a transaction pooler without
    /// `DATABASE_LISTEN_URL`: the feed polls).
    listen: Option<PgConnectOptions>,
    /// Tells the event feeds' listeners that events may have committed (the pools ping it;
    /// kept here so that its task stops with the last clone of the store).
    _notifier: self::notifier::Notifier,
    checkpoints: GroupCommit,
}

/// TLS on a loopback connection protects nothing and costs CPU on both ends, so unless the URL
/// names `sslmode` or a certificate, or `PGSSLMODE` asked for a mode (sqlx reads it), a
/// connection to localhost, a loopback address or a Unix socket goes without it. (A local
/// server that only accepts TLS needs `sslmode=require`.)
fn without_tls_on_loopback(url: &str, options: PgConnectOptions) -> PgConnectOptions {
    let explicit = !matches!(options.get_ssl_mode(), PgSslMode::Prefer)
        || url.split_once('?').is_some_and(|(_, query)| {
            query.split('&').any(|p| {
                [
                    "sslmode=",
                    "ssl-mode=",
                    "sslrootcert=",
                    "ssl-root-cert=",
                    "sslcert=",
                    "ssl-cert=",
                ]
                .iter()
                .any(|key| p.starts_with(key))
            })
        });
    let host = options.get_host();
    let loopback = options.get_socket().is_some()
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback && !explicit {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

fn valid_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Validation {
            field: "DATABASE_SCHEMA",
            message: "must be a lowercase SQL identifier".into(),
        })
    }
}

fn connect_options(url: &str, field: &'static str, options: &PgOptions) -> Result<PgConnectOptions, StoreError> {
    let connect = PgConnectOptions::from_str(url).map_err(|e| StoreError::Validation {
        field,
        message: e.to_string(),
    })?;
    let connect = without_tls_on_loopback(url, connect);
    Ok(if options.transaction_pooler {
        // Nothing a pooler would have to carry from one client to the next.
        connect.statement_cache_capacity(0).extra_float_digits(None)
    } else {
        connect
    })
}

/// A session connection for what a transaction pooler cannot do (migrations, LISTEN): the URL
/// given for it, else the main one unless that is a pooler (then none).
fn session_options(
    url: Option<&str>,
    field: &'static str,
    main: &PgConnectOptions,
    options: &PgOptions,
) -> Result<Option<PgConnectOptions>, StoreError> {
    match url {
        Some(url) => Ok(Some(connect_options(
            url,
            field,
            &PgOptions {
                transaction_pooler: false,
                ..options.clone()
            },
        )?)),
        None if options.transaction_pooler => Ok(None),
        None => Ok(Some(main.clone())),
    }
}

impl PgStore {
    /// Connects (lazily: the pool opens connections on first use, so the API can start while
    /// the database is down and report it in /health).
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        valid_schema(&options.schema)?;
        let connect = connect_options(url, "DATABASE_URL", &options)?;
        let migration = session_options(
            options.migration_url.as_deref(),
            "DATABASE_MIGRATION_URL",
            &connect,
            &options,
        )?;
        let listen = session_options(options.listen_url.as_deref(), "DATABASE_LISTEN_URL", &connect, &options)?;
        // Without TLS a batch of any size goes out in one write (see `checkpoint_batch_bytes`).
        let batch_bytes = match connect.get_ssl_mode() {
            PgSslMode::Disable => usize::MAX,
            _ => options.checkpoint_batch_bytes,
        };
        let notifier = self::notifier::Notifier::start(connect.clone(), self::feed::channel(&options.schema));
        let ping = notifier.ping.clone();
        // No JIT: these are short statements, for which compiling costs 100-200 ms each time
        // a plan's estimate crosses `jit_above_cost` — as a trigger's plan on a writer
        // connection (below) always did. Behind a transaction pooler nothing can be set.
        let connect = if options.transaction_pooler {
            connect
        } else {
            connect.options([("jit", "off")])
        };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_release(move |_, _| {
                ping.notify_one();
                Box::pin(async { Ok(true) })
            })
            .connect_lazy_with(connect.clone());
        // The checkpoint writers get connections of their own, one each, where prepared
        // statements always run their generic plan: a batch's arrays change length with
        // every call, which makes PostgreSQL plan a batch with claims or transitions afresh
        // each time when left to choose. A generic plan is made once per connection, though,
        // and one made while `tickets` was nearly empty scans it whole, for ever after (until
        // an ANALYZE, which may never come): every table these statements touch is reached
        // through an index, so sequential scans are ruled out on these connections (a scan
        // that has no index, as a trigger's of a tiny table, is then "disabled" and costed
        // 10^10 — which is why JIT must be off). Behind a transaction pooler nothing is
        // prepared, and nothing is set.
        let writer_connect = if options.transaction_pooler {
            connect
        } else {
            connect.options([("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")])
        };
        let writer_pool = PgPoolOptions::new()
            .max_connections(u32::try_from(options.checkpoint_writers.max(1)).unwrap_or(u32::MAX))
            .acquire_timeout(options.acquire_timeout)
            .after_release({
                let ping = notifier.ping.clone();
                move |_, _| {
                    ping.notify_one();
                    Box::pin(async { Ok(true) })
                }
            })
            .connect_lazy_with(writer_connect);
        let sql = Arc::new(Statements::new(&options.schema));
        let db = Db::new(pool, options.transaction_pooler);
        Ok(Self {
            checkpoints: GroupCommit::new(
                db.clone(),
                Db::new(writer_pool, options.transaction_pooler),
                sql.clone(),
                options.checkpoint_writers,
                Limits {
                    rows: options.checkpoint_batch,
                    bytes: batch_bytes,
                },
            ),
            db,
            sql,
            schema: options.schema,
            migration,
            listen,
            _notifier: notifier,
        })
    }

    /// The connection pool, for callers that need their own queries (name the schema in them:
    /// the connections have no `search_path` of ticketflow's).
    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.pool()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        use sqlx::Connection;
        let Some(options) = &self.migration else {
            return Err(StoreError::Validation {
                field: "DATABASE_MIGRATION_URL",
                message: "DATABASE_URL is a transaction pooler, which cannot run migrations (they take an \
                          advisory lock and set search_path): set DATABASE_MIGRATION_URL to a direct or \
                          session-pooler connection"
                    .into(),
            });
        };
        // One session connection: the schema must exist before the migrator creates its table
        // in it, and `search_path` puts the migrations' unqualified names there.
        let mut conn = sqlx::PgConnection::connect_with(options).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}",
            schema = self.schema
        )))
        .execute(&mut conn)
        .await?;
        MIGRATOR.run_direct(None, &mut conn, false).await?;
        conn.close().await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.execute(sqlx::query(self.sql.ping.clone())).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> PgSslMode {
        let options = PgConnectOptions::from_str(url).unwrap();
        without_tls_on_loopback(url, options).get_ssl_mode()
    }

    #[test]
    fn loopback_goes_without_tls_unless_sslmode_is_given() {
        assert!(matches!(mode("postgres://u@127.0.0.1:5432/db"), PgSslMode::Disable));
        assert!(matches!(mode("postgres://u@localhost/db"), PgSslMode::Disable));
        assert!(matches!(mode("postgres://u@[::1]/db"), PgSslMode::Disable));
        assert!(matches!(mode("postgres://u@127.0.0.2/db"), PgSslMode::Disable));
        assert!(!matches!(
            mode("postgres://u@127.0.0.1/db?sslrootcert=ca.pem"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u@127.0.0.1/db?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(!matches!(mode("postgres://u@db.example.com/db"), PgSslMode::Disable));
    }

    #[test]
    fn transaction_poolers_are_recognised() {
        let store = StoreOptions::default();
        let (url, o) = PgOptions::for_url("postgres://u:p@h:5432/db", &store);
        assert!(!o.transaction_pooler);
        assert_eq!(url, "postgres://u:p@h:5432/db");
        let (url, o) = PgOptions::for_url(
            "postgres://u:p@pooler.supabase.com:6543/postgres?sslmode=require",
            &store,
        );
        assert!(o.transaction_pooler);
        assert_eq!(url, "postgres://u:p@pooler.supabase.com:6543/postgres?sslmode=require");
        let (url, o) = PgOptions::for_url("postgres://u:p@h:5432/db?pgbouncer=true&sslmode=require", &store);
        assert!(o.transaction_pooler);
        assert_eq!(url, "postgres://u:p@h:5432/db?sslmode=require");
        let (url, o) = PgOptions::for_url("postgres://u:p@h/db?sslmode=require&pgbouncer=true", &store);
        assert!(o.transaction_pooler);
        assert_eq!(url, "postgres://u:p@h/db?sslmode=require");
    }
}
