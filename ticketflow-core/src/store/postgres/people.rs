//! People, named keys, sessions and the audit trail in PostgreSQL (migration 0012). Every
//! write is one statement (a person disabled and their sessions ended are one statement's
//! CTEs), so none needs a transaction of its own behind a transaction pooler beyond the one
//! [`Db`](super::db::Db) gives it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row, SqlStr};
use uuid::Uuid;

use super::PgStore;
use super::sql::statement;
use crate::store::people::{
    MAX_IDLE, email_taken, key_taken, no_such_person, normalized_email, touch_after, valid_audit, valid_name,
    valid_user,
};
use crate::store::{
    ApiKey, AuditEntry, AuditPage, NewApiKey, NewAuditEntry, NewSession, NewUser, PeopleStore, Role, Session,
    StoreError, User,
};

const USER_COLUMNS: &str = "id, email, name, role, created_at, disabled_at";
const KEY_COLUMNS: &str = "id, name, prefix, role, created_at, expires_at, revoked_at";
const AUDIT_COLUMNS: &str = "id, at, actor, action, target, detail";

#[derive(FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    role: Role,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            role: r.role,
            created_at: r.created_at,
            disabled_at: r.disabled_at,
        }
    }
}

#[derive(FromRow)]
struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    role: Role,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> Self {
        ApiKey {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            role: r.role,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// A session joined with its person.
#[derive(FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    csrf_token: String,
    session_created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            user: r.user.into(),
            csrf_token: r.csrf_token,
            created_at: r.session_created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(FromRow)]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: Option<String>,
    detail: serde_json::Value,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: r.detail,
        }
    }
}

fn user_of(row: Option<sqlx::postgres::PgRow>) -> Result<Option<User>, StoreError> {
    Ok(row.map(|r| UserRow::from_row(&r).map(User::from)).transpose()?)
}

fn key_of(row: Option<sqlx::postgres::PgRow>) -> Result<Option<ApiKey>, StoreError> {
    Ok(row.map(|r| KeyRow::from_row(&r).map(ApiKey::from)).transpose()?)
}

/// The people statements.
#[derive(Debug)]
pub(super) struct PeopleSql {
    has_people: SqlStr,
    add_user: SqlStr,
    users: SqlStr,
    user_by_email: SqlStr,
    user: SqlStr,
    set_role: SqlStr,
    disable: SqlStr,
    set_password: SqlStr,
    add_key: SqlStr,
    key_name_taken: SqlStr,
    keys: SqlStr,
    key_by_prefix: SqlStr,
    revoke: SqlStr,
    start_session: SqlStr,
    session: SqlStr,
    end_session: SqlStr,
    audit: SqlStr,
    audit_page: SqlStr,
    audit_count: SqlStr,
}

impl PeopleSql {
    pub(super) fn new(schema: &str) -> Self {
        // `$1` a person's id; the person updated, their sessions ended in the same statement.
        let ending_sessions = |update: &str| {
            statement(
                schema,
                &format!(
                    "WITH changed AS ({update} WHERE id = $1 RETURNING {USER_COLUMNS}), \
                          ended AS (DELETE FROM {{schema}}.sessions WHERE user_id IN (SELECT id FROM changed)) \
                     SELECT {USER_COLUMNS} FROM changed"
                ),
            )
        };
        Self {
            has_people: statement(
                schema,
                "SELECT EXISTS (SELECT 1 FROM {schema}.users) OR EXISTS (SELECT 1 FROM {schema}.api_keys)",
            ),
            add_user: statement(
                schema,
                &format!(
                    "INSERT INTO {{schema}}.users (id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (email) DO NOTHING RETURNING {USER_COLUMNS}"
                ),
            ),
            users: statement(
                schema,
                &format!("SELECT {USER_COLUMNS} FROM {{schema}}.users ORDER BY created_at, id"),
            ),
            user_by_email: statement(
                schema,
                &format!("SELECT {USER_COLUMNS}, password_hash FROM {{schema}}.users WHERE email = $1"),
            ),
            user: statement(
                schema,
                &format!("SELECT {USER_COLUMNS} FROM {{schema}}.users WHERE id = $1"),
            ),
            set_role: statement(
                schema,
                &format!("UPDATE {{schema}}.users SET role = $2 WHERE id = $1 RETURNING {USER_COLUMNS}"),
            ),
            // A second disabling keeps the first time.
            disable: ending_sessions("UPDATE {schema}.users SET disabled_at = coalesce(disabled_at, now())"),
            set_password: ending_sessions("UPDATE {schema}.users SET password_hash = $2"),
            add_key: statement(
                schema,
                &format!(
                    "INSERT INTO {{schema}}.api_keys (id, name, prefix, hash, role, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {KEY_COLUMNS}"
                ),
            ),
            key_name_taken: statement(
                schema,
                "SELECT EXISTS (SELECT 1 FROM {schema}.api_keys WHERE name = $1)",
            ),
            keys: statement(
                schema,
                &format!("SELECT {KEY_COLUMNS} FROM {{schema}}.api_keys ORDER BY created_at, id"),
            ),
            key_by_prefix: statement(
                schema,
                &format!("SELECT {KEY_COLUMNS}, hash FROM {{schema}}.api_keys WHERE prefix = $1"),
            ),
            revoke: statement(
                schema,
                &format!(
                    "UPDATE {{schema}}.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 \
                     RETURNING {KEY_COLUMNS}"
                ),
            ),
            // The person's sessions past their absolute expiry go as a new one begins.
            start_session: statement(
                schema,
                "WITH purged AS (DELETE FROM {schema}.sessions WHERE user_id = $2 AND expires_at <= now()) \
                 INSERT INTO {schema}.sessions (id_hash, user_id, csrf_token, expires_at) \
                 SELECT $1, id, $3, $4 FROM {schema}.users WHERE id = $2 AND disabled_at IS NULL \
                 ON CONFLICT (id_hash) DO NOTHING",
            ),
            // $2 the idle time, $3 how old a recorded use may be before this one is recorded.
            session: statement(
                schema,
                "WITH found AS ( \
                     SELECT u.id, u.email, u.name, u.role, u.created_at, u.disabled_at, s.csrf_token, \
                            s.created_at AS session_created_at, s.expires_at, s.last_seen_at \
                     FROM {schema}.sessions s JOIN {schema}.users u ON u.id = s.user_id \
                     WHERE s.id_hash = $1 AND s.expires_at > now() \
                       AND s.last_seen_at > now() - make_interval(secs => $2) AND u.disabled_at IS NULL), \
                 touched AS ( \
                     UPDATE {schema}.sessions s SET last_seen_at = now() FROM found f \
                     WHERE s.id_hash = $1 AND f.last_seen_at <= now() - make_interval(secs => $3)) \
                 SELECT id, email, name, role, created_at, disabled_at, csrf_token, session_created_at, expires_at \
                 FROM found",
            ),
            end_session: statement(schema, "DELETE FROM {schema}.sessions WHERE id_hash = $1"),
            audit: statement(
                schema,
                "INSERT INTO {schema}.audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)",
            ),
            audit_page: statement(
                schema,
                &format!("SELECT {AUDIT_COLUMNS} FROM {{schema}}.audit_log ORDER BY id DESC LIMIT $1 OFFSET $2"),
            ),
            audit_count: statement(schema, "SELECT count(*) FROM {schema}.audit_log"),
        }
    }
}

#[async_trait]
impl PeopleStore for PgStore {
    async fn has_people(&self) -> Result<bool, StoreError> {
        Ok(self
            .db
            .fetch_one(sqlx::query(self.sql.people.has_people.clone()))
            .await?
            .try_get(0)?)
    }

    async fn add_user(&self, new: NewUser) -> Result<User, StoreError> {
        let (email, name) = valid_user(&new)?;
        let row = self
            .db
            .fetch_optional(
                sqlx::query(self.sql.people.add_user.clone())
                    .bind(Uuid::now_v7())
                    .bind(&email)
                    .bind(&name)
                    .bind(new.role.as_str())
                    .bind(&new.password_hash),
            )
            .await?;
        user_of(row)?.ok_or_else(|| email_taken(&email))
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = self.db.fetch_all(sqlx::query(self.sql.people.users.clone())).await?;
        Ok(rows
            .iter()
            .map(|r| UserRow::from_row(r).map(User::from))
            .collect::<Result<_, _>>()?)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.people.user_by_email.clone()).bind(normalized_email(email)))
            .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((UserRow::from_row(&r)?.into(), r.try_get("password_hash")?)))
            .transpose()?)
    }

    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        user_of(
            self.db
                .fetch_optional(sqlx::query(self.sql.people.user.clone()).bind(id))
                .await?,
        )
    }

    async fn set_user_role(&self, id: Uuid, role: Role) -> Result<Option<User>, StoreError> {
        user_of(
            self.db
                .fetch_optional(
                    sqlx::query(self.sql.people.set_role.clone())
                        .bind(id)
                        .bind(role.as_str()),
                )
                .await?,
        )
    }

    async fn disable_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        user_of(
            self.db
                .fetch_optional(sqlx::query(self.sql.people.disable.clone()).bind(id))
                .await?,
        )
    }

    async fn set_password(&self, id: Uuid, password_hash: &str) -> Result<Option<User>, StoreError> {
        user_of(
            self.db
                .fetch_optional(
                    sqlx::query(self.sql.people.set_password.clone())
                        .bind(id)
                        .bind(password_hash),
                )
                .await?,
        )
    }

    async fn add_api_key(&self, new: NewApiKey) -> Result<ApiKey, StoreError> {
        let name = valid_name(&new.name)?;
        let row = self
            .db
            .fetch_optional(
                sqlx::query(self.sql.people.add_key.clone())
                    .bind(Uuid::now_v7())
                    .bind(&name)
                    .bind(&new.prefix)
                    .bind(&new.hash)
                    .bind(new.role.as_str())
                    .bind(new.expires_at),
            )
            .await?;
        if let Some(key) = key_of(row)? {
            return Ok(key);
        }
        let name_taken: bool = self
            .db
            .fetch_one(sqlx::query(self.sql.people.key_name_taken.clone()).bind(&name))
            .await?
            .try_get(0)?;
        Err(if name_taken {
            key_taken("name", &name)
        } else {
            key_taken("prefix", &new.prefix)
        })
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = self.db.fetch_all(sqlx::query(self.sql.people.keys.clone())).await?;
        Ok(rows
            .iter()
            .map(|r| KeyRow::from_row(r).map(ApiKey::from))
            .collect::<Result<_, _>>()?)
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<(ApiKey, String)>, StoreError> {
        let row = self
            .db
            .fetch_optional(sqlx::query(self.sql.people.key_by_prefix.clone()).bind(prefix))
            .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((KeyRow::from_row(&r)?.into(), r.try_get("hash")?)))
            .transpose()?)
    }

    async fn revoke_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        key_of(
            self.db
                .fetch_optional(sqlx::query(self.sql.people.revoke.clone()).bind(id))
                .await?,
        )
    }

    async fn start_session(&self, new: NewSession) -> Result<(), StoreError> {
        let started = self
            .db
            .execute(
                sqlx::query(self.sql.people.start_session.clone())
                    .bind(&new.id_hash)
                    .bind(new.user_id)
                    .bind(&new.csrf_token)
                    .bind(new.expires_at),
            )
            .await?
            .rows_affected();
        if started > 0 {
            return Ok(());
        }
        match self.user(new.user_id).await? {
            Some(user) if user.disabled_at.is_none() => Err(StoreError::Validation {
                field: "id_hash",
                message: "is another session's".into(),
            }),
            _ => Err(no_such_person(new.user_id)),
        }
    }

    async fn session(&self, id_hash: &str, idle: Duration) -> Result<Option<Session>, StoreError> {
        let idle = idle.min(MAX_IDLE);
        let row = self
            .db
            .fetch_optional(
                sqlx::query(self.sql.people.session.clone())
                    .bind(id_hash)
                    .bind(idle.as_secs_f64())
                    .bind(touch_after(idle).as_secs_f64()),
            )
            .await?;
        Ok(row.map(|r| SessionRow::from_row(&r).map(Session::from)).transpose()?)
    }

    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.db
            .execute(sqlx::query(self.sql.people.end_session.clone()).bind(id_hash))
            .await?;
        Ok(())
    }

    async fn audit(&self, entry: NewAuditEntry) -> Result<(), StoreError> {
        valid_audit(&entry)?;
        self.db
            .execute(
                sqlx::query(self.sql.people.audit.clone())
                    .bind(&entry.actor)
                    .bind(&entry.action)
                    .bind(entry.target.as_deref())
                    .bind(&entry.detail),
            )
            .await?;
        Ok(())
    }

    async fn audit_log(&self, page: u32, page_size: u32) -> Result<AuditPage, StoreError> {
        let page_size = page_size.clamp(1, 100);
        let page = page.max(1);
        let rows = self
            .db
            .fetch_all(
                sqlx::query(self.sql.people.audit_page.clone())
                    .bind(i64::from(page_size))
                    .bind(i64::from(page - 1) * i64::from(page_size)),
            )
            .await?;
        let total: i64 = self
            .db
            .fetch_one(sqlx::query(self.sql.people.audit_count.clone()))
            .await?
            .try_get(0)?;
        Ok(AuditPage {
            entries: rows
                .iter()
                .map(|r| AuditRow::from_row(r).map(AuditEntry::from))
                .collect::<Result<_, _>>()?,
            total,
            page,
            page_size,
        })
    }
}
