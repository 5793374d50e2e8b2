//! Secrets in Vault (or OpenBao) KV version 2 (`VAULT_ENABLE`): the database keeps
//! only a reference `vault:<path>`, the secret lives at
//! `<VAULT_SECRETS_PATH>/data/<owner>/<name>` under the key `value`.
//!
//! The orchestrator authenticates to Vault as itself, because it reads secrets in the
//! background (the engine refreshing a user's access token when that user is long
//! gone): with `VAULT_TOKEN`, or through the JWT auth method (`VAULT_ROLE`) with a
//! token of its own OIDC client, obtained from the first trusted issuer that has client
//! credentials with the client-credentials grant and `audience=VAULT_BOUND_AUDIENCE`.
//! The Vault token is kept until shortly before its lease ends and renewed by logging
//! in again. A hand-written client of four KV calls keeps one HTTP stack in the build
//! (the `vaultrs` crate would bring a second major version of reqwest).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::{SecretError, SecretStore};
use crate::auth::oidc::{HttpIdentityProvider, IdentityProvider};
use crate::config::{Secret, TrustedIdp};

const PREFIX: &str = "vault:";
/// Characters kept as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'@');

/// How the orchestrator logs in to Vault.
#[derive(Debug, Clone)]
pub enum VaultLogin {
    /// A fixed token.
    Token(Secret),
    /// The JWT auth method with a client-credentials token of this issuer.
    Jwt {
        /// Where the JWT auth method is mounted (`jwt`).
        mount: String,
        /// The Vault role.
        role: String,
        /// The audience the token must carry.
        audience: Option<String>,
        /// The issuer with the orchestrator's client credentials.
        issuer: TrustedIdp,
    },
}

/// Settings of the Vault store.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `VAULT_URL`.
    pub url: String,
    /// `VAULT_SECRETS_PATH`: the KV v2 mount.
    pub mount: String,
    /// How to log in.
    pub login: VaultLogin,
    /// Request timeout.
    pub timeout: Duration,
}

/// The Vault KV v2 store.
pub struct VaultStore {
    config: VaultConfig,
    http: reqwest::Client,
    idp: HttpIdentityProvider,
    token: Mutex<Option<(Secret, Instant)>>,
}

impl VaultStore {
    /// A store; nothing is contacted until first use.
    pub fn new(config: VaultConfig) -> Result<Self, SecretError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| SecretError::Unavailable(format!("cannot build the Vault client: {e}")))?;
        Ok(Self {
            idp: HttpIdentityProvider::new(config.timeout),
            http,
            token: Mutex::new(None),
            config,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.config.url.trim_end_matches('/'), path)
    }

    fn unavailable(what: &str, e: impl std::fmt::Display) -> SecretError {
        SecretError::Unavailable(format!("Vault {what}: {e}"))
    }

    /// A valid Vault token, logging in when needed.
    async fn token(&self) -> Result<Secret, SecretError> {
        let mut held = self.token.lock().await;
        if let Some((token, until)) = held.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let (token, ttl) = match &self.config.login {
            VaultLogin::Token(t) => (t.clone(), Duration::from_secs(24 * 3600)),
            VaultLogin::Jwt {
                mount,
                role,
                audience,
                issuer,
            } => {
                self.jwt_login(mount, role, audience.as_deref(), issuer)
                    .await?
            }
        };
        // Log in again a little before the lease ends.
        let until = Instant::now() + ttl.mul_f64(0.8);
        *held = Some((token.clone(), until));
        Ok(token)
    }

    async fn jwt_login(
        &self,
        mount: &str,
        role: &str,
        audience: Option<&str>,
        issuer: &TrustedIdp,
    ) -> Result<(Secret, Duration), SecretError> {
        let (Some(client_id), Some(client_secret)) = (&issuer.client_id, &issuer.client_secret)
        else {
            return Err(SecretError::Unavailable(format!(
                "the issuer {} has no client credentials to log in to Vault",
                issuer.issuer
            )));
        };
        let discovery = self
            .idp
            .discover(&issuer.issuer)
            .await
            .map_err(|e| Self::unavailable("login", e))?;
        let endpoint = discovery.token_endpoint.ok_or_else(|| {
            SecretError::Unavailable(format!(
                "the issuer {} has no token endpoint",
                issuer.issuer
            ))
        })?;
        let mut form = vec![("grant_type", "client_credentials"), ("scope", "openid")];
        if let Some(aud) = audience {
            form.push(("audience", aud));
        }
        let jwt = self
            .idp
            .token(&endpoint, client_id, client_secret.expose(), &form)
            .await
            .map_err(|e| Self::unavailable("login", e))?
            .access_token;
        let answer = self
            .http
            .post(self.url(&format!("auth/{}/login", mount.trim_matches('/'))))
            .json(&json!({"jwt": jwt, "role": role}))
            .send()
            .await
            .map_err(|e| Self::unavailable("login", e))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(SecretError::Unavailable(format!(
                "Vault refused the login with role '{role}' ({status}): {}",
                errors(&body)
            )));
        }
        let token = body["auth"]["client_token"]
            .as_str()
            .ok_or_else(|| Self::unavailable("login", "no client_token in the answer"))?;
        let ttl = body["auth"]["lease_duration"]
            .as_u64()
            .unwrap_or(300)
            .max(10);
        Ok((Secret::new(token), Duration::from_secs(ttl)))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(reqwest::StatusCode, Value), SecretError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .header("X-Vault-Token", token.expose());
            if let Some(b) = &body {
                request = request.json(b);
            }
            let answer = request
                .send()
                .await
                .map_err(|e| Self::unavailable("is unreachable", e))?;
            let status = answer.status();
            // An expired token: log in again once.
            if status == reqwest::StatusCode::FORBIDDEN && attempt == 0 {
                *self.token.lock().await = None;
                continue;
            }
            let value = answer.json().await.unwrap_or(Value::Null);
            return Ok((status, value));
        }
        Err(SecretError::Unavailable(
            "Vault refused the orchestrator's token".into(),
        ))
    }

    fn path_of(owner: &str, name: &str) -> String {
        format!(
            "{}/{}",
            utf8_percent_encode(owner, SEGMENT),
            utf8_percent_encode(name, SEGMENT)
        )
    }

    fn mount(&self) -> &str {
        self.config.mount.trim_matches('/')
    }
}

fn errors(body: &Value) -> String {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

#[async_trait]
impl SecretStore for VaultStore {
    async fn put(&self, owner: &str, name: &str, value: &str) -> Result<String, SecretError> {
        let path = Self::path_of(owner, name);
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("{}/data/{path}", self.mount()),
                Some(json!({"data": {"value": value}})),
            )
            .await?;
        if !status.is_success() {
            return Err(SecretError::Unavailable(format!(
                "Vault refused to store a secret ({status}): {}",
                errors(&body)
            )));
        }
        Ok(format!("{PREFIX}{path}"))
    }

    async fn get(&self, stored: &str) -> Result<String, SecretError> {
        let path = stored
            .strip_prefix(PREFIX)
            .ok_or_else(|| SecretError::Corrupt("not a Vault reference".into()))?;
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("{}/data/{path}", self.mount()),
                None,
            )
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(SecretError::Corrupt(format!(
                "Vault has no secret at {path}"
            )));
        }
        if !status.is_success() {
            return Err(SecretError::Unavailable(format!(
                "Vault refused to read a secret ({status}): {}",
                errors(&body)
            )));
        }
        body["data"]["data"]["value"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| SecretError::Corrupt(format!("the secret at {path} has no value")))
    }

    async fn delete(&self, stored: &str) -> Result<(), SecretError> {
        let Some(path) = stored.strip_prefix(PREFIX) else {
            return Ok(());
        };
        let (status, body) = self
            .call(
                reqwest::Method::DELETE,
                &format!("{}/metadata/{path}", self.mount()),
                None,
            )
            .await?;
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(SecretError::Unavailable(format!(
                "Vault refused to delete a secret ({status}): {}",
                errors(&body)
            )))
        }
    }

    async fn probe(&self) -> Option<bool> {
        let answer = self.http.get(self.url("sys/health")).send().await;
        Some(answer.is_ok_and(|a| a.status().is_success()) && self.token().await.is_ok())
    }
}
