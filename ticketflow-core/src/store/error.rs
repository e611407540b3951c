//! Why a store operation failed.

use uuid::Uuid;

/// An error from a store's backend, boxed so that the traits do not name any database crate.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A field of the input (or a setting) is invalid.
    #[error("invalid `{field}`: {message}")]
    Validation {
        /// The field, or the setting's name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The value of `field` is taken (an account's address, a key's name).
    #[error("`{field}` is taken: {message}")]
    Taken {
        /// The field.
        field: &'static str,
        /// What is taken.
        message: String,
    },
    /// No ticket with this id.
    #[error("ticket {0} not found")]
    NotFound(Uuid),
    /// The ticket changed since it was read (optimistic lock), or is not in the status the
    /// change requires.
    #[error("ticket {id} was changed concurrently or is not in the expected state: {message}")]
    Conflict {
        /// The ticket.
        id: Uuid,
        /// What did not match.
        message: String,
    },
    /// The run no longer holds the ticket's lease (it was taken over): its writes are refused.
    #[error("write fenced off: {0}")]
    Fenced(String),
    /// No tool call with this id.
    #[error("tool call {0} not found")]
    UnknownCall(Uuid),
    /// No approval request with this id.
    #[error("approval {0} not found")]
    UnknownApproval(Uuid),
    /// The idempotency key was used before for a ticket with other content.
    #[error("idempotency key already used for a different ticket {0}")]
    IdempotencyConflict(Uuid),
    /// The database is unreachable or failed; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BackendError),
    /// Stored data could not be decoded (a bug or manual tampering).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] BackendError),
}

impl StoreError {
    /// True when the database is unreachable (worth waiting for), as opposed to an error that
    /// retrying will not fix.
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // SQLSTATE class 22 (data exception: invalid text, NUL bytes, out-of-range values) is
        // the input's fault, not an outage.
        if let sqlx::Error::Database(db) = &error
            && db.code().is_some_and(|code| code.starts_with("22"))
        {
            return StoreError::Validation {
                field: "input",
                message: db.message().to_owned(),
            };
        }
        match error {
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                StoreError::Corrupt(error.to_string())
            }
            other => StoreError::Unavailable(Box::new(other)),
        }
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(Box::new(error))
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl StoreError {
    /// `NotFound(ticket_id)` for a foreign-key violation (a row for a ticket that does not
    /// exist), the usual conversion otherwise.
    pub(crate) fn for_ticket(error: sqlx::Error, ticket_id: Uuid) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(ticket_id),
            _ => error.into(),
        }
    }
}
