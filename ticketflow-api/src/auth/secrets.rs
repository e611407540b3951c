//! The random secrets of access — API keys, session ids, CSRF tokens — and their digests.
//! Each is 256 bits from the operating system's generator, so a plain SHA-256 digest is what
//! is stored: nobody can search a 256-bit space, and a lookup by digest costs nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What every named API key starts with.
pub const KEY_PREFIX: &str = "tfk_";

/// Characters of a key's clear identifying part (after [`KEY_PREFIX`]).
const KEY_ID_CHARS: usize = 12;

/// No randomness was available.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no random bytes: {0}")]
pub struct NoRandomness(String);

fn random_text(bytes: usize) -> Result<String, NoRandomness> {
    let mut random = vec![0u8; bytes];
    getrandom::fill(&mut random).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(random))
}

/// The hex SHA-256 digest of a secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new session id or CSRF token: 256 random bits, base64url.
pub fn token() -> Result<String, NoRandomness> {
    random_text(32)
}

/// A new API key, `tfk_<12 characters that identify it>_<256 random bits>` (letters, digits,
/// `_` and `-` only), and the identifying part.
pub fn api_key() -> Result<(String, String), NoRandomness> {
    let mut id = [0u8; KEY_ID_CHARS / 2];
    getrandom::fill(&mut id).map_err(|e| NoRandomness(e.to_string()))?;
    let id = hex::encode(id);
    Ok((format!("{KEY_PREFIX}{id}_{}", random_text(32)?), id))
}

/// The identifying part of something presented as a named key, if it has the shape of one.
pub fn key_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let id = rest.get(..KEY_ID_CHARS)?;
    (rest.as_bytes().get(KEY_ID_CHARS) == Some(&b'_') && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_id_and_only_safe_characters() {
        let (key, id) = api_key().unwrap();
        assert_eq!(key_id(&key), Some(id.as_str()));
        assert!(key.len() > 50, "{key}");
        assert!(
            key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{key}"
        );
        assert_ne!(api_key().unwrap().0, key);
        assert_eq!(key_id("tfk_short"), None);
        assert_eq!(key_id("Bearer tfk_0123456789ab_x"), None);
        assert_eq!(key_id("tfk_0123456789abX"), None);
        assert_eq!(digest("a").len(), 64);
        assert_ne!(token().unwrap(), token().unwrap());
    }
}
