//! People and their access: staff accounts, named API keys, sign-in sessions and the audit
//! trail of who did what. Secrets are never stored in clear: passwords as argon2id hashes,
//! keys and session ids as SHA-256 digests (both are 256-bit random values, so a plain digest
//! is enough), which the callers compute; this store only keeps and finds them.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;

/// What a person or key may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads tickets, events, messages, approvals, stats and streams.
    Viewer,
    /// Also creates tickets, decides approvals, replies and retries.
    Agent,
    /// Also manages people and keys.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Agent, Role::Admin];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    /// True when this role may do what `needed` may.
    pub fn includes(self, needed: Role) -> bool {
        self >= needed
    }
}

stored_as_text!(Role, UnknownRole, "role");

/// The longest e-mail address of a person.
pub const MAX_EMAIL_CHARS: usize = 254;
/// The longest name of a person or a key.
pub const MAX_NAME_CHARS: usize = 200;

/// A staff account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: Uuid,
    /// The sign-in address, lower-cased; unique.
    pub email: String,
    /// The name shown.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// When it was disabled (a disabled person cannot sign in; their sessions end).
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A staff account to add.
#[derive(Clone)]
pub struct NewUser {
    /// The sign-in address (stored lower-cased and trimmed).
    pub email: String,
    /// The name shown.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// The password's argon2id hash, in PHC string form.
    pub password_hash: String,
}

/// A named API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Its id.
    pub id: Uuid,
    /// Its name; unique.
    pub name: String,
    /// The clear part of the key that identifies it (shown in lists).
    pub prefix: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// True when the key authenticates at `now`: neither revoked nor expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// An API key to add.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Its name; unique.
    pub name: String,
    /// The clear part that identifies it; unique.
    pub prefix: String,
    /// The SHA-256 digest of the whole key, hex.
    pub hash: String,
    /// What it may do.
    pub role: Role,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A signed-in session, as found by its id.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Who is signed in.
    pub user: User,
    /// The CSRF token bound to this session.
    pub csrf_token: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it ends whatever happens (the absolute expiry).
    pub expires_at: DateTime<Utc>,
}

/// A session to begin.
#[derive(Clone)]
pub struct NewSession {
    /// The SHA-256 digest of the session id, hex.
    pub id_hash: String,
    /// Who signed in.
    pub user_id: Uuid,
    /// The CSRF token bound to it.
    pub csrf_token: String,
    /// The absolute expiry.
    pub expires_at: DateTime<Utc>,
}

// Debug without the secrets: a password hash, a session's digest or CSRF token never reaches a
// log line through `{:?}`.
impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its id (increasing).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: a person's e-mail, `key:<name>` for a named key, `api-key-<n>` for one of `API_KEYS`.
    pub actor: String,
    /// What: `ticket.created`, `approval.decided`, `ticket.replied`, `ticket.retried`,
    /// `user.added`, `user.role_changed`, `user.disabled`, `user.password_reset`,
    /// `key.created`, `key.revoked`, `webhook.retried`.
    pub action: String,
    /// What it was done to (a ticket, approval, person or key id), if anything.
    pub target: Option<String>,
    /// The particulars (a new role, a decision), never a secret.
    pub detail: serde_json::Value,
}

/// An audit line to write.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// The particulars.
    pub detail: serde_json::Value,
}

/// A page of the audit trail, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Entries in all.
    pub total: i64,
    /// The page (from 1).
    pub page: u32,
    /// Entries per page.
    pub page_size: u32,
}

/// People, keys, sessions and the audit trail.
#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// True once any person or named key was ever added (disabled and revoked ones count): the
    /// API is then closed to anonymous callers.
    async fn has_people(&self) -> Result<bool, StoreError>;

    /// Adds a person. `Taken { field: "email" }` when the address has an account,
    /// `Validation { field: "email" }` when it is not an address, `field: "name"` when the name is empty or too long.
    async fn add_user(&self, new: NewUser) -> Result<User, StoreError>;

    /// Every person, oldest first.
    async fn users(&self) -> Result<Vec<User>, StoreError>;

    /// The person with this address (compared lower-cased and trimmed) and their password
    /// hash.
    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError>;

    /// The person with this id.
    async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError>;

    /// Changes a person's role; `None` when there is no such person.
    async fn set_user_role(&self, id: Uuid, role: Role) -> Result<Option<User>, StoreError>;

    /// Disables a person and ends their sessions; `None` when there is no such person.
    async fn disable_user(&self, id: Uuid) -> Result<Option<User>, StoreError>;

    /// Replaces a person's password hash and ends their sessions; `None` when there is no such
    /// person.
    async fn set_password(&self, id: Uuid, password_hash: &str) -> Result<Option<User>, StoreError>;

    /// Adds a named key. `Taken { field: "name" }` when the name is taken (`"prefix"` for a
    /// prefix), `Validation { field: "name" }` when it is empty or too long.
    async fn add_api_key(&self, new: NewApiKey) -> Result<ApiKey, StoreError>;

    /// Every named key, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;

    /// The key whose clear prefix is `prefix`, and its digest (live or not: the caller checks).
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<(ApiKey, String)>, StoreError>;

    /// Revokes the key with this id (a second revocation keeps the first time); `None` when
    /// there is no such key.
    async fn revoke_api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError>;

    /// Begins a session.
    async fn start_session(&self, new: NewSession) -> Result<(), StoreError>;

    /// The live session whose id digest is `id_hash`: not past its absolute expiry, used within
    /// `idle`, its person not disabled. Finding it counts as using it.
    async fn session(&self, id_hash: &str, idle: Duration) -> Result<Option<Session>, StoreError>;

    /// Ends a session (no error when there is none).
    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// Writes an audit line.
    async fn audit(&self, entry: NewAuditEntry) -> Result<(), StoreError>;

    /// A page of the audit trail, newest first (`page` from 1, `page_size` 1–100).
    async fn audit_log(&self, page: u32, page_size: u32) -> Result<AuditPage, StoreError>;
}

/// An e-mail address as stored and compared: trimmed and lower-cased.
pub fn normalized_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// How long a session's last use may lag before finding it records a new one: finding a
/// session writes only when the use recorded is older than this, so a session may end up to
/// this much before `idle` after its last use (never later). At most 10 s, and a tenth of
/// `idle` for shorter ones.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn touch_after(idle: Duration) -> Duration {
    (idle / 10).min(Duration::from_secs(10))
}

/// The address and name of a person to add, as stored, or why they cannot be.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn valid_user(new: &NewUser) -> Result<(String, String), StoreError> {
    let email = normalized_email(&new.email);
    let at = email.rsplit_once('@');
    if email.chars().count() > MAX_EMAIL_CHARS
        || at.is_none_or(|(local, domain)| local.is_empty() || domain.is_empty())
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(StoreError::Validation {
            field: "email",
            message: format!("must be an e-mail address (local@domain) of at most {MAX_EMAIL_CHARS} characters"),
        });
    }
    Ok((email, valid_name(&new.name)?))
}

/// A person's or key's name as stored (trimmed), or why it cannot be.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn valid_name(name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.contains('\0') {
        return Err(StoreError::Validation {
            field: "name",
            message: format!("must be 1 to {MAX_NAME_CHARS} characters without NUL"),
        });
    }
    Ok(name.to_owned())
}

/// The longest idle time a session lookup honours (beyond it, time arithmetic overflows).
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Checks an audit line: an actor and an action, neither empty nor overlong, without NUL.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn valid_audit(entry: &NewAuditEntry) -> Result<(), StoreError> {
    let max = super::MAX_ACTOR_CHARS;
    for (field, value, max) in [
        ("actor", Some(&entry.actor), max),
        ("action", Some(&entry.action), 100),
        ("target", entry.target.as_ref(), max),
    ] {
        if let Some(value) = value
            && (value.is_empty() || value.chars().count() > max || value.contains('\0'))
        {
            return Err(StoreError::Validation {
                field,
                message: format!("must be 1 to {max} characters without NUL"),
            });
        }
    }
    if entry.detail.to_string().contains("\\u0000") {
        return Err(StoreError::Validation {
            field: "detail",
            message: "must not contain NUL characters".into(),
        });
    }
    Ok(())
}

/// The error of an address that already has an account.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn email_taken(email: &str) -> StoreError {
    StoreError::Taken {
        field: "email",
        message: format!("{email} already has an account"),
    }
}

/// The error of a key name (or prefix) that is taken.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn key_taken(field: &'static str, value: &str) -> StoreError {
    StoreError::Taken {
        field,
        message: format!("a key with {field} `{value}` already exists"),
    }
}

/// The error of a session for a person who is missing or disabled.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn no_such_person(id: Uuid) -> StoreError {
    StoreError::Validation {
        field: "user_id",
        message: format!("no enabled person has id {id}"),
    }
}

#[cfg(all(test, any(feature = "postgres", feature = "sqlite")))]
mod tests {
    use super::*;

    fn user(email: &str, name: &str) -> NewUser {
        NewUser {
            email: email.into(),
            name: name.into(),
            role: Role::Agent,
            password_hash: "$argon2id$x".into(),
        }
    }

    #[test]
    fn addresses_and_names_are_normalized_and_checked() {
        assert_eq!(
            valid_user(&user("  Ana@Example.COM ", " Ana ")).unwrap(),
            ("ana@example.com".to_owned(), "Ana".to_owned())
        );
        for bad in [
            "",
            "ana",
            "@example.com",
            "ana@",
            "an a@example.com",
            "ana@exa\0mple.com",
        ] {
            assert!(
                matches!(
                    valid_user(&user(bad, "Ana")),
                    Err(StoreError::Validation { field: "email", .. })
                ),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
        assert!(matches!(
            valid_user(&user(&long, "Ana")),
            Err(StoreError::Validation { field: "email", .. })
        ));
        for bad in [String::new(), "   ".into(), "x".repeat(MAX_NAME_CHARS + 1)] {
            assert!(matches!(
                valid_user(&user("ana@example.com", &bad)),
                Err(StoreError::Validation { field: "name", .. })
            ));
        }
        assert!(Role::Admin.includes(Role::Agent) && !Role::Viewer.includes(Role::Agent));
        assert_eq!("agent".parse::<Role>(), Ok(Role::Agent));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_session_is_touched_at_most_every_ten_seconds() {
        assert_eq!(touch_after(Duration::from_secs(3600)), Duration::from_secs(10));
        assert_eq!(touch_after(Duration::from_secs(20)), Duration::from_secs(2));
    }
}
