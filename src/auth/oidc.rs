//! The HTTP side of trusted identity providers: discovery, JWKS, userinfo and the
//! token endpoint, behind the [`IdentityProvider`] trait so the authenticator can be
//! tested against any issuer. Errors say what the caller does next: a refused token
//! is the client's problem (401), an unreachable issuer is ours (503).

use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::{Map, Value};

/// What an issuer publishes at `/.well-known/openid-configuration` that we use.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// The issuer identifier.
    pub issuer: String,
    /// Where the signing keys are.
    pub jwks_uri: String,
    /// Where claims of a token can be read.
    pub userinfo_endpoint: Option<String>,
    /// Where tokens are refreshed.
    pub token_endpoint: Option<String>,
}

/// Failures of calls to an issuer.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// The issuer refused the token (401/403 from userinfo, `invalid_grant`).
    #[error("the issuer refused the token: {0}")]
    Refused(String),
    /// The issuer could not be reached or answered garbage.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// A token endpoint answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The new access token.
    pub access_token: String,
    /// A rotated refresh token, when the issuer rotates them.
    pub refresh_token: Option<String>,
    /// Lifetime of the access token in seconds.
    pub expires_in: Option<i64>,
}

/// Calls to OIDC issuers.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Reads the discovery document of an issuer.
    async fn discover(&self, issuer: &str) -> Result<Discovery, IdpError>;
    /// Fetches a JWKS.
    async fn jwks(&self, jwks_uri: &str) -> Result<JwkSet, IdpError>;
    /// Calls userinfo with a bearer token.
    async fn userinfo(&self, endpoint: &str, token: &str) -> Result<Map<String, Value>, IdpError>;
    /// Posts a form to a token endpoint with client credentials (refresh, exchange).
    async fn token(
        &self,
        endpoint: &str,
        client_id: &str,
        client_secret: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, IdpError>;
}

/// The reqwest implementation.
pub struct HttpIdentityProvider {
    http: reqwest::Client,
}

impl HttpIdentityProvider {
    /// A client whose calls time out after `timeout` (`IDP_TIMEOUT`).
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, IdpError> {
        let response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| IdpError::Unavailable(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(IdpError::Unavailable(format!(
                "GET {url}: HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| IdpError::Unavailable(format!("GET {url}: unreadable answer: {e}")))
    }
}

#[async_trait]
impl IdentityProvider for HttpIdentityProvider {
    async fn discover(&self, issuer: &str) -> Result<Discovery, IdpError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        self.get_json(&url).await
    }

    async fn jwks(&self, jwks_uri: &str) -> Result<JwkSet, IdpError> {
        self.get_json(jwks_uri).await
    }

    async fn userinfo(&self, endpoint: &str, token: &str) -> Result<Map<String, Value>, IdpError> {
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| IdpError::Unavailable(format!("userinfo: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(IdpError::Refused(format!(
                "userinfo answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(IdpError::Unavailable(format!(
                "userinfo answered HTTP {status}"
            )));
        }
        response
            .json()
            .await
            .map_err(|e| IdpError::Unavailable(format!("userinfo: unreadable answer: {e}")))
    }

    async fn token(
        &self,
        endpoint: &str,
        client_id: &str,
        client_secret: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, IdpError> {
        let response = self
            .http
            .post(endpoint)
            .basic_auth(client_id, Some(client_secret))
            .form(form)
            .send()
            .await
            .map_err(|e| IdpError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        if status.is_client_error() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let reason = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("refused")
                .to_string();
            return Err(IdpError::Refused(format!("HTTP {status}: {reason}")));
        }
        if !status.is_success() {
            return Err(IdpError::Unavailable(format!(
                "token endpoint answered HTTP {status}"
            )));
        }
        response
            .json()
            .await
            .map_err(|e| IdpError::Unavailable(format!("token endpoint: unreadable answer: {e}")))
    }
}
