//! A registered user: an OIDC subject at an issuer.

use uuid::Uuid;

use super::Timestamp;

/// A user as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Our id.
    pub id: Uuid,
    /// OIDC subject.
    pub sub: String,
    /// OIDC issuer URL.
    pub issuer: String,
    /// Display name.
    pub name: String,
    /// Preferred username.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Avatar URL.
    pub picture: Option<String>,
    /// OpenSSH public key installed on the user's VMs.
    pub public_ssh_key: Option<String>,
    /// The stored refresh token, as kept by the secrets store (never plain text
    /// once secrets are configured; never shown to anyone but its owner).
    pub refresh_token: Option<String>,
    /// Registration time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}
