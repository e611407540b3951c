//! People, named keys, sessions and the audit trail in SQLite (migration 0010).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::{SqliteStore, now, timestamp};
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
    id: Hyphenated,
    email: String,
    name: String,
    role: Role,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id.into_uuid(),
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
    id: Hyphenated,
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
            id: r.id.into_uuid(),
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
    last_seen_at: String,
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

fn user_of(row: Option<sqlx::sqlite::SqliteRow>) -> Result<Option<User>, StoreError> {
    Ok(row.map(|r| UserRow::from_row(&r).map(User::from)).transpose()?)
}

fn key_of(row: Option<sqlx::sqlite::SqliteRow>) -> Result<Option<ApiKey>, StoreError> {
    Ok(row.map(|r| KeyRow::from_row(&r).map(ApiKey::from)).transpose()?)
}

/// `at` less `delay`, as stored.
fn before(at: DateTime<Utc>, delay: Duration) -> String {
    timestamp(at - chrono::Duration::from_std(delay.min(MAX_IDLE)).unwrap_or(chrono::Duration::zero()))
}

impl SqliteStore {
    /// Changes the person `id` with `update` (`?1` the id, `?2` its one value) and ends their
    /// sessions, in one transaction.
    async fn change_ending_sessions(
        &self,
        id: Uuid,
        update: &'static str,
        value: &str,
    ) -> Result<Option<User>, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{update} WHERE id = ?1 RETURNING {USER_COLUMNS}"
        )))
        .bind(id.hyphenated())
        .bind(value)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(id.hyphenated())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        user_of(row)
    }
}

#[async_trait]
impl PeopleStore for SqliteStore {
    async fn has_people(&self) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM api_keys)")
                .fetch_one(&self.read)
                .await?
                .try_get(0)?,
        )
    }

    async fn add_user(&self, new: NewUser) -> Result<User, StoreError> {
        let (email, name) = valid_user(&new)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (email) DO NOTHING RETURNING {USER_COLUMNS}"
        )))
        .bind(Uuid::now_v7().hyphenated())
        .bind(&email)
        .bind(&name)
        .bind(new.role.as_str())
        .bind(&new.password_hash)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        user_of(row)?.ok_or_else(|| email_taken(&email))
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"
        )))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| UserRow::from_row(r).map(User::from))
            .collect::<Result<_, _>>()?)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?"
        )))
        .bind(normalized_email(email))
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((UserRow::from_row(&r)?.into(), r.try_get("password_hash")?)))
            .transpose()?)
    }

    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        user_of(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = ?"
            )))
            .bind(id.hyphenated())
            .fetch_optional(&self.read)
            .await?,
        )
    }

    async fn set_user_role(&self, id: Uuid, role: Role) -> Result<Option<User>, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE users SET role = ?2 WHERE id = ?1 RETURNING {USER_COLUMNS}"
        )))
        .bind(id.hyphenated())
        .bind(role.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        user_of(row)
    }

    async fn disable_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let at = now();
        // A second disabling keeps the first time.
        self.change_ending_sessions(id, "UPDATE users SET disabled_at = coalesce(disabled_at, ?2)", &at)
            .await
    }

    async fn set_password(&self, id: Uuid, password_hash: &str) -> Result<Option<User>, StoreError> {
        self.change_ending_sessions(id, "UPDATE users SET password_hash = ?2", password_hash)
            .await
    }

    async fn add_api_key(&self, new: NewApiKey) -> Result<ApiKey, StoreError> {
        let name = valid_name(&new.name)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_keys (id, name, prefix, hash, role, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING {KEY_COLUMNS}"
        )))
        .bind(Uuid::now_v7().hyphenated())
        .bind(&name)
        .bind(&new.prefix)
        .bind(&new.hash)
        .bind(new.role.as_str())
        .bind(now())
        .bind(new.expires_at.map(timestamp))
        .fetch_optional(&mut *tx)
        .await?;
        let name_taken = match row {
            Some(_) => false,
            None => sqlx::query("SELECT EXISTS (SELECT 1 FROM api_keys WHERE name = ?)")
                .bind(&name)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?,
        };
        tx.commit().await?;
        match key_of(row)? {
            Some(key) => Ok(key),
            None if name_taken => Err(key_taken("name", &name)),
            None => Err(key_taken("prefix", &new.prefix)),
        }
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
        )))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| KeyRow::from_row(r).map(ApiKey::from))
            .collect::<Result<_, _>>()?)
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<(ApiKey, String)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS}, hash FROM api_keys WHERE prefix = ?"
        )))
        .bind(prefix)
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((KeyRow::from_row(&r)?.into(), r.try_get("hash")?)))
            .transpose()?)
    }

    async fn revoke_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1 RETURNING {KEY_COLUMNS}"
        )))
        .bind(id.hyphenated())
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        key_of(row)
    }

    async fn start_session(&self, new: NewSession) -> Result<(), StoreError> {
        let at = now();
        let user = new.user_id.hyphenated();
        let mut tx = self.begin().await?;
        // The person's sessions past their absolute expiry go as a new one begins.
        sqlx::query("DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2")
            .bind(user)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        let started = sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) \
             SELECT ?1, id, ?3, ?4, ?4, ?5 FROM users WHERE id = ?2 AND disabled_at IS NULL \
             ON CONFLICT (id_hash) DO NOTHING",
        )
        .bind(&new.id_hash)
        .bind(user)
        .bind(&new.csrf_token)
        .bind(&at)
        .bind(timestamp(new.expires_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let enabled = match started {
            0 => Some(
                sqlx::query("SELECT EXISTS (SELECT 1 FROM users WHERE id = ? AND disabled_at IS NULL)")
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get::<bool, _>(0)?,
            ),
            _ => None,
        };
        tx.commit().await?;
        match enabled {
            None => Ok(()),
            Some(true) => Err(StoreError::Validation {
                field: "id_hash",
                message: "is another session's".into(),
            }),
            Some(false) => Err(no_such_person(new.user_id)),
        }
    }

    async fn session(&self, id_hash: &str, idle: Duration) -> Result<Option<Session>, StoreError> {
        let at = Utc::now();
        let row = sqlx::query(
            "SELECT u.id, u.email, u.name, u.role, u.created_at, u.disabled_at, s.csrf_token, \
                    s.created_at AS session_created_at, s.expires_at, s.last_seen_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3 AND u.disabled_at IS NULL",
        )
        .bind(id_hash)
        .bind(timestamp(at))
        .bind(before(at, idle))
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let found = SessionRow::from_row(&row)?;
        // Only a use older than `touch_after` is replaced: most lookups need not queue for
        // the one writer.
        if found.last_seen_at <= before(at, touch_after(idle)) {
            let mut tx = self.begin().await?;
            sqlx::query("UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1 AND last_seen_at < ?2")
                .bind(id_hash)
                .bind(timestamp(at))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(Some(found.into()))
    }

    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit(&self, entry: NewAuditEntry) -> Result<(), StoreError> {
        valid_audit(&entry)?;
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)")
            .bind(now())
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(entry.target.as_deref())
            .bind(entry.detail.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self, page: u32, page_size: u32) -> Result<AuditPage, StoreError> {
        let page_size = page_size.clamp(1, 100);
        let page = page.max(1);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?1 OFFSET ?2"
        )))
        .bind(i64::from(page_size))
        .bind(i64::from(page - 1) * i64::from(page_size))
        .fetch_all(&self.read)
        .await?;
        let total: i64 = sqlx::query("SELECT count(*) FROM audit_log")
            .fetch_one(&self.read)
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
