//! Passwords: hashed with argon2id at the crate's recommended parameters (OWASP's: 19 MiB,
//! two passes, one lane), checked against the stored PHC string. A sign-in with an unknown
//! e-mail checks the password against a dummy hash, so both take the same work and the time
//! taken does not say whether the address has an account.

use std::sync::{Arc, LazyLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password accepted, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The longest password accepted, in bytes (longer is refused before any hashing, so a huge
/// password cannot make the server work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Under [`MIN_PASSWORD_CHARS`].
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Over [`MAX_PASSWORD_CHARS`] or [`MAX_PASSWORD_BYTES`].
    #[error("a password may have at most {MAX_PASSWORD_CHARS} characters and {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The hasher failed (no randomness for a salt).
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
}

/// Hashes and checks passwords.
#[derive(Clone, Default)]
pub struct Passwords {
    /// Counts every check, real or dummy (tests read it to see that both do the work).
    checks: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

/// A hash of a random password nobody knows, made once.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).ok()?;
    hash_with_salt(&hex::encode(random)).ok()
});

fn hash_with_salt(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

impl Passwords {
    /// Makes the dummy hash now (one hash's work), so that the first sign-in with an unknown
    /// address does not take longer than the others.
    pub fn warm(&self) {
        LazyLock::force(&DUMMY_HASH);
    }

    /// Checks a new password against the policy.
    pub fn check_policy(password: &SecretString) -> Result<(), PasswordError> {
        let password = password.expose_secret();
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        let chars = password.chars().count();
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        Ok(())
    }

    /// The argon2id hash (PHC string) of a password that meets the policy.
    pub fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        Self::check_policy(password)?;
        hash_with_salt(password.expose_secret())
    }

    /// True when `password` is the one `stored` was made from. With no stored hash (an
    /// unknown or disabled account) the dummy hash is checked instead, and the answer is false.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("password_checks_total").increment(1);
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let (hash, real) = match stored {
            Some(hash) => (Some(hash), true),
            None => (DUMMY_HASH.as_deref(), false),
        };
        let Some(parsed) = hash.and_then(|hash| PasswordHash::new(hash).ok()) else {
            return false;
        };
        let matched = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        matched && real
    }

    /// Password checks made so far, real and dummy.
    pub fn checks(&self) -> u64 {
        self.checks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::default();
        let hash = passwords.hash(&SecretString::from("correct horse battery")).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(passwords.verify("correct horse battery", Some(&hash)));
        assert!(!passwords.verify("correct horse batterY", Some(&hash)));
        assert!(!passwords.verify("anything at all", None), "the dummy never matches");
        assert_eq!(passwords.checks(), 3, "the dummy is checked too");
    }

    #[test]
    fn the_policy_bounds_length() {
        assert_eq!(
            Passwords::check_policy(&SecretString::from("short")),
            Err(PasswordError::TooShort)
        );
        assert_eq!(
            Passwords::check_policy(&SecretString::from("é".repeat(12))),
            Ok(()),
            "characters, not bytes"
        );
        assert!(Passwords::check_policy(&SecretString::from("x".repeat(MAX_PASSWORD_CHARS))).is_ok());
        assert_eq!(
            Passwords::check_policy(&SecretString::from("x".repeat(MAX_PASSWORD_CHARS + 1))),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            Passwords::check_policy(&SecretString::from("x".repeat(MAX_PASSWORD_BYTES + 1))),
            Err(PasswordError::TooLong)
        );
    }
}
