//! Managing people and keys — what `ticketflow-api users …` / `keys …` and the `/admin`
//! routes both do, with the same checks and the same audit lines.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use ticketflow_core::store::{ApiKey, NewApiKey, NewUser, Role, Store, StoreError, User};
use uuid::Uuid;

use crate::auth::{Actor, NoRandomness, PasswordError, Passwords, api_key, digest};

/// Why managing people or keys failed.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    /// The password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// No person with this e-mail address or id.
    #[error("no account {0}")]
    NoSuchUser(String),
    /// No key with this name or id.
    #[error("no API key {0}")]
    NoSuchKey(String),
    /// No randomness for a key.
    #[error(transparent)]
    NoRandomness(#[from] NoRandomness),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// People and keys, managed.
#[derive(Clone)]
pub struct People {
    store: Arc<dyn Store>,
    passwords: Passwords,
}

impl std::fmt::Debug for People {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("People").finish_non_exhaustive()
    }
}

impl People {
    /// People and keys in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            passwords: Passwords::default(),
        }
    }

    /// Writes the audit line of a change already made: logged when it cannot be written,
    /// never failing the change.
    async fn audit(&self, actor: &str, action: &str, target: String, detail: serde_json::Value) {
        let actor = Actor(Some(actor.to_owned()));
        crate::audit::record(self.store.as_ref(), &actor, action, Some(target), detail).await;
    }

    async fn hash(&self, password: SecretString) -> Result<String, PeopleError> {
        Passwords::check_policy(&password)?;
        let passwords = self.passwords.clone();
        // Deliberately slow work: off the async threads.
        tokio::task::spawn_blocking(move || passwords.hash(&password))
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
            .map_err(PeopleError::from)
    }

    /// Adds a person, `actor` doing it.
    pub async fn add_user(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password: SecretString,
        actor: &str,
    ) -> Result<User, PeopleError> {
        let password_hash = self.hash(password).await?;
        let user = self
            .store
            .add_user(NewUser {
                email: email.to_owned(),
                name: name.to_owned(),
                role,
                password_hash,
            })
            .await?;
        let detail = serde_json::json!({ "email": user.email, "role": user.role.as_str() });
        self.audit(actor, "user.added", user.id.to_string(), detail).await;
        Ok(user)
    }

    /// Every person, oldest first.
    pub async fn users(&self) -> Result<Vec<User>, PeopleError> {
        Ok(self.store.users().await?)
    }

    /// The person with this e-mail address.
    pub async fn user_by_email(&self, email: &str) -> Result<User, PeopleError> {
        match self.store.user_by_email(email).await? {
            Some((user, _)) => Ok(user),
            None => Err(PeopleError::NoSuchUser(email.to_owned())),
        }
    }

    /// Changes a person's role.
    pub async fn set_role(&self, id: Uuid, role: Role, actor: &str) -> Result<User, PeopleError> {
        let before = self
            .store
            .user(id)
            .await?
            .ok_or_else(|| PeopleError::NoSuchUser(id.to_string()))?;
        let user = self
            .store
            .set_user_role(id, role)
            .await?
            .ok_or_else(|| PeopleError::NoSuchUser(id.to_string()))?;
        let detail = serde_json::json!({ "email": user.email, "from": before.role.as_str(), "to": role.as_str() });
        self.audit(actor, "user.role_changed", id.to_string(), detail).await;
        Ok(user)
    }

    /// Disables a person (their sessions end).
    pub async fn disable(&self, id: Uuid, actor: &str) -> Result<User, PeopleError> {
        let user = self
            .store
            .disable_user(id)
            .await?
            .ok_or_else(|| PeopleError::NoSuchUser(id.to_string()))?;
        let detail = serde_json::json!({ "email": user.email });
        self.audit(actor, "user.disabled", id.to_string(), detail).await;
        Ok(user)
    }

    /// Sets a person's password (their sessions end).
    pub async fn reset_password(&self, id: Uuid, password: SecretString, actor: &str) -> Result<User, PeopleError> {
        let hash = self.hash(password).await?;
        let user = self
            .store
            .set_password(id, &hash)
            .await?
            .ok_or_else(|| PeopleError::NoSuchUser(id.to_string()))?;
        let detail = serde_json::json!({ "email": user.email });
        self.audit(actor, "user.password_reset", id.to_string(), detail).await;
        Ok(user)
    }

    /// Makes a named key; the key itself is in the answer, and nowhere else ever again.
    pub async fn create_key(
        &self,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<(ApiKey, SecretString), PeopleError> {
        let (secret, prefix) = api_key()?;
        let key = self
            .store
            .add_api_key(NewApiKey {
                name: name.to_owned(),
                prefix,
                hash: digest(&secret),
                role,
                expires_at,
            })
            .await?;
        let detail = serde_json::json!({ "name": key.name, "role": key.role.as_str(), "expires_at": key.expires_at });
        self.audit(actor, "key.created", key.id.to_string(), detail).await;
        Ok((key, SecretString::from(secret)))
    }

    /// Every named key, oldest first.
    pub async fn keys(&self) -> Result<Vec<ApiKey>, PeopleError> {
        Ok(self.store.api_keys().await?)
    }

    /// The key with this name.
    pub async fn key_by_name(&self, name: &str) -> Result<ApiKey, PeopleError> {
        self.store
            .api_keys()
            .await?
            .into_iter()
            .find(|key| key.name == name)
            .ok_or_else(|| PeopleError::NoSuchKey(name.to_owned()))
    }

    /// Revokes a key.
    pub async fn revoke_key(&self, id: Uuid, actor: &str) -> Result<ApiKey, PeopleError> {
        let key = self
            .store
            .revoke_api_key(id)
            .await?
            .ok_or_else(|| PeopleError::NoSuchKey(id.to_string()))?;
        let detail = serde_json::json!({ "name": key.name });
        self.audit(actor, "key.revoked", id.to_string(), detail).await;
        Ok(key)
    }
}
