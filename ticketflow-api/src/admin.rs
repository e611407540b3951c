//! The admin operations: people, named keys and the audit trail (role: admin). The CLI's
//! `users` and `keys` commands do the same through [`People`].

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::{ExposeSecret, SecretString};
use ticketflow_core::store::{AuditEntry, Role};
use uuid::Uuid;

use crate::auth::{Access, Caller};
use crate::error::{ApiError, body};
use crate::model::{ApiKeyView, RoleName, Text, UserView};
use crate::people::{People, PeopleError};

/// The admin operations.
pub struct AdminApi {
    pub(crate) access: Access,
    pub(crate) people: People,
}

/// A person to add. "Blank" and "white space" are Unicode White_Space, spelled out so that
/// every regex dialect reading the schema agrees with the server's check.
// No Debug: it holds a password.
#[derive(Clone, Object)]
pub struct NewUserRequest {
    /// Their sign-in address: `local@domain`, no white space or control characters inside.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\x00-\x1f\x7f-\x9f]+@[^@\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\x00-\x1f\x7f-\x9f]+[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    ))]
    pub email: Text,
    /// The name shown: 1 to 200 characters, not blank, no NUL.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    ))]
    pub name: Text,
    /// What they may do.
    pub role: RoleName,
    /// Their password: 12 to 256 characters.
    #[oai(validator(min_length = 12, max_length = 256))]
    pub password: Text,
}

/// Changes to a person; each given one is made (and audited).
// No Debug: it holds a password.
#[derive(Clone, Object)]
pub struct UserChange {
    /// A new role.
    #[oai(nullable)]
    pub role: Option<RoleName>,
    /// `true` disables the account (and ends its sessions); a disabled account is not enabled
    /// again (`false` for one is a 409).
    #[oai(nullable)]
    pub disabled: Option<bool>,
    /// A new password, 12 to 256 characters (ends the sessions).
    #[oai(nullable, validator(min_length = 12, max_length = 256))]
    pub password: Option<Text>,
}

/// A key to make.
#[derive(Debug, Clone, Object)]
pub struct NewKeyRequest {
    /// Its name; unique: 1 to 200 characters, not blank, no NUL.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    ))]
    pub name: Text,
    /// What it may do.
    pub role: RoleName,
    /// When it stops working (absent or null: never).
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new key: the only time the key itself is shown.
// No Debug: it holds the key.
#[derive(Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedKeyView {
    /// The key, as stored.
    pub key: ApiKeyView,
    /// The key itself: `Authorization: Bearer <secret>`. Keep it; it cannot be shown again.
    pub secret: String,
}

/// One line of the audit trail.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditView {
    /// Its id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: an e-mail, `key:<name>`, `api-key-<n>`, or `cli`.
    pub actor: String,
    /// What (`ticket.created`, `approval.decided`, `user.role_changed`, `key.revoked`, ...).
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// The particulars.
    pub detail: serde_json::Value,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail,
        }
    }
}

/// A page of the audit trail, newest first.
#[derive(Debug, Clone, Object)]
pub struct AuditList {
    /// The entries.
    pub entries: Vec<AuditView>,
    /// Entries in all.
    pub total: i64,
    /// The page.
    pub page: u32,
    /// Entries per page.
    pub page_size: u32,
}

#[derive(Debug, ApiResponse)]
enum UserAdded {
    /// Added.
    #[oai(status = 201)]
    Created(Json<UserView>),
}

// No Debug: it holds the key.
#[derive(ApiResponse)]
enum KeyCreated {
    /// Made.
    #[oai(status = 201)]
    Created(Json<CreatedKeyView>),
}

impl From<PeopleError> for ApiError {
    fn from(error: PeopleError) -> Self {
        match error {
            PeopleError::Password(error) => {
                ApiError::Unprocessable(body("validation_error", error.to_string(), Some("password".into())))
            }
            PeopleError::NoSuchUser(who) => ApiError::NotFound(body("not_found", format!("no account {who}"), None)),
            PeopleError::NoSuchKey(which) => ApiError::NotFound(body("not_found", format!("no API key {which}"), None)),
            PeopleError::NoRandomness(error) => ApiError::Unavailable(body("no_randomness", error.to_string(), None)),
            PeopleError::Store(error) => error.into(),
        }
    }
}

fn actor_name(actor: &crate::auth::Actor) -> &str {
    // Admin operations are never anonymous (`require_named`).
    actor.0.as_deref().unwrap_or("unknown")
}

#[OpenApi]
impl AdminApi {
    /// Every person.
    ///
    /// Role: admin.
    #[oai(path = "/admin/users", method = "get", operation_id = "list_users")]
    async fn list_users(&self, caller: Caller) -> Result<Json<Vec<UserView>>, ApiError> {
        caller.require_named(&self.access, Role::Admin).await?;
        Ok(Json(self.people.users().await?.into_iter().map(Into::into).collect()))
    }

    /// Add a person.
    ///
    /// Role: admin.
    #[oai(path = "/admin/users", method = "post", operation_id = "add_user")]
    async fn add_user(&self, user: Json<NewUserRequest>, caller: Caller) -> Result<UserAdded, ApiError> {
        let actor = caller.require_named(&self.access, Role::Admin).await?;
        let Json(user) = user;
        let added = self
            .people
            .add_user(
                &user.email.0,
                &user.name.0,
                user.role.into(),
                SecretString::from(user.password.0),
                actor_name(&actor),
            )
            .await?;
        self.access.close();
        Ok(UserAdded::Created(Json(added.into())))
    }

    /// Change a person's role, disable them, or set their password.
    ///
    /// Role: admin.
    #[oai(path = "/admin/users/:id", method = "patch", operation_id = "change_user")]
    async fn change_user(
        &self,
        id: Path<Uuid>,
        change: Json<UserChange>,
        caller: Caller,
    ) -> Result<Json<UserView>, ApiError> {
        let actor = caller.require_named(&self.access, Role::Admin).await?;
        let Json(change) = change;
        if change.disabled == Some(false) {
            let user = self
                .access
                .store
                .user(id.0)
                .await?
                .ok_or_else(|| PeopleError::NoSuchUser(id.0.to_string()))?;
            if user.disabled_at.is_some() {
                return Err(ApiError::Conflict(body(
                    "conflict",
                    "a disabled account is not enabled again",
                    Some("disabled".into()),
                )));
            }
        }
        if let Some(password) = &change.password {
            crate::auth::Passwords::check_policy(&SecretString::from(password.0.clone())).map_err(PeopleError::from)?;
        }
        let actor = actor_name(&actor);
        let mut user = None;
        if let Some(role) = change.role {
            user = Some(self.people.set_role(id.0, role.into(), actor).await?);
        }
        if let Some(password) = change.password {
            user = Some(
                self.people
                    .reset_password(id.0, SecretString::from(password.0), actor)
                    .await?,
            );
        }
        if change.disabled == Some(true) {
            user = Some(self.people.disable(id.0, actor).await?);
        }
        let user = match user {
            Some(user) => user,
            None => self
                .access
                .store
                .user(id.0)
                .await?
                .ok_or_else(|| PeopleError::NoSuchUser(id.0.to_string()))?,
        };
        Ok(Json(user.into()))
    }

    /// Every named key (never the keys themselves).
    ///
    /// Role: admin.
    #[oai(path = "/admin/keys", method = "get", operation_id = "list_keys")]
    async fn list_keys(&self, caller: Caller) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
        caller.require_named(&self.access, Role::Admin).await?;
        Ok(Json(self.people.keys().await?.into_iter().map(Into::into).collect()))
    }

    /// Make a named key; the answer is the only time it is shown.
    ///
    /// Role: admin.
    #[oai(path = "/admin/keys", method = "post", operation_id = "create_key")]
    async fn create_key(&self, key: Json<NewKeyRequest>, caller: Caller) -> Result<KeyCreated, ApiError> {
        let actor = caller.require_named(&self.access, Role::Admin).await?;
        let Json(key) = key;
        let (key, secret) = self
            .people
            .create_key(&key.name.0, key.role.into(), key.expires_at, actor_name(&actor))
            .await?;
        self.access.close();
        Ok(KeyCreated::Created(Json(CreatedKeyView {
            key: key.into(),
            secret: secret.expose_secret().to_owned(),
        })))
    }

    /// Revoke a named key: it stops working at once.
    ///
    /// Role: admin.
    #[oai(path = "/admin/keys/:id/revoke", method = "post", operation_id = "revoke_key")]
    async fn revoke_key(&self, id: Path<Uuid>, caller: Caller) -> Result<Json<ApiKeyView>, ApiError> {
        let actor = caller.require_named(&self.access, Role::Admin).await?;
        Ok(Json(self.people.revoke_key(id.0, actor_name(&actor)).await?.into()))
    }

    /// The audit trail, newest first: who created, decided, replied, retried, added people,
    /// changed roles, made or revoked keys.
    ///
    /// Role: admin.
    #[oai(path = "/admin/audit", method = "get", operation_id = "audit_log")]
    async fn audit_log(
        &self,
        /// 1-based page.
        #[oai(
            default = "crate::api::default_page",
            validator(minimum(value = "1"), maximum(value = "1000000"))
        )]
        page: Query<u32>,
        /// 1 to 100.
        #[oai(
            default = "crate::api::default_page_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        page_size: Query<u32>,
        caller: Caller,
    ) -> Result<Json<AuditList>, ApiError> {
        caller.require_named(&self.access, Role::Admin).await?;
        let found = self.access.store.audit_log(page.0, page_size.0).await?;
        Ok(Json(AuditList {
            entries: found.entries.into_iter().map(Into::into).collect(),
            total: found.total,
            page: found.page,
            page_size: found.page_size,
        }))
    }
}
