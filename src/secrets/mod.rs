//! Where secrets live (refresh tokens, private keys): behind [`SecretStore`], with the
//! embedded default sealing them with AES-256-GCM into the database column
//! ([`sealed::SealedStore`]). What the database keeps is a sealed value or, with an
//! external store, a reference; never the secret in plain text.

pub mod sealed;
pub mod vault;

use async_trait::async_trait;

/// Failures of the secrets store.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The store cannot be reached (answer 503, write nothing).
    #[error("the secrets store is unavailable: {0}")]
    Unavailable(String),
    /// A stored value cannot be opened (wrong key, corrupted).
    #[error("a stored secret cannot be read: {0}")]
    Corrupt(String),
}

/// Keeps secrets for users.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores `value` as the secret `name` of the user `owner` (the OIDC subject and
    /// issuer make the path); returns what the database keeps.
    async fn put(&self, owner: &str, name: &str, value: &str) -> Result<String, SecretError>;
    /// Reads back a secret from what the database kept.
    async fn get(&self, stored: &str) -> Result<String, SecretError>;
    /// Forgets a secret (best effort).
    async fn delete(&self, stored: &str) -> Result<(), SecretError>;
    /// Whether the store answers (`None` when there is nothing remote to check).
    async fn probe(&self) -> Option<bool>;
}
