//! Bearer-token authentication against the trusted OIDC issuers (`TRUSTED_IDP_LIST`).
//!
//! A JWT is checked locally: its algorithm must be asymmetric, its issuer trusted, its
//! signature valid for a key of the issuer's JWKS (fetched once and refetched once
//! when an unknown `kid` appears, which is how key rotation is picked up), `exp` and
//! `nbf` within a small leeway, and `aud` when the issuer entry sets an audience.
//! Claims the token lacks (name, e-mail, username, groups) are read from the issuer's
//! userinfo endpoint. An opaque token is resolved by userinfo alone. The resulting
//! [`Identity`] is cached by the token's hash until the token expires, so a repeated
//! token costs a hash and a map lookup.

pub mod dev_issuer;
pub mod oidc;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::TrustedIdp;
use oidc::{Discovery, IdentityProvider, IdpError};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// How long an opaque token's identity is trusted without asking userinfo again.
const OPAQUE_TTL: Duration = Duration::from_secs(60);
/// An unknown `kid` makes us refetch the issuer's JWKS (key rotation), but one that
/// stays unknown is not asked about again for this long...
const MISSING_KID_TTL: Duration = Duration::from_secs(60);
/// ...and refetches are at least this far apart per issuer, so a stream of forged
/// `kid`s cannot turn us into a load generator against the issuer. A refetch asked
/// for sooner waits for its turn rather than failing: a key the issuer has just
/// rotated in must work on its first token.
const JWKS_MIN_REFETCH: Duration = Duration::from_millis(200);
/// Asymmetric algorithms accepted; `none` and HMAC never are (an HMAC "signed" with
/// a public key is a classic forgery).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Who the caller is, according to a trusted issuer.
#[derive(Debug, Clone)]
pub struct Identity {
    /// OIDC subject.
    pub sub: String,
    /// The trusted issuer, as configured.
    pub issuer: String,
    /// Display name (`name`), empty when the issuer gives none.
    pub name: String,
    /// `preferred_username`.
    pub username: String,
    /// `email`.
    pub email: String,
    /// Values of the issuer's group claim.
    pub groups: Vec<String>,
    /// Token claims merged with userinfo: the `user_info` the policy sees.
    pub claims: Map<String, Value>,
    /// When the token expires (seconds since the epoch), if known.
    pub expires_at: Option<u64>,
}

/// Why a token was not accepted. The text never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is unusable; the client must get another (401 invalid_token).
    #[error("{0}")]
    InvalidToken(String),
    /// The issuer could not be asked (503).
    #[error("{0}")]
    IssuerUnavailable(String),
}

struct IssuerState {
    discovery: Option<Discovery>,
    jwks: Option<Arc<JwkSet>>,
    last_jwks_fetch: Option<Instant>,
    /// `kid`s still unknown after a refetch, and when that was found.
    missing_kids: HashMap<String, Instant>,
    /// Held while the JWKS is refetched: one refetch at a time per issuer, and the
    /// requests that waited find the new keys instead of fetching again.
    refetch: Arc<tokio::sync::Mutex<()>>,
}

struct CachedIdentity {
    identity: Arc<Identity>,
    /// Opaque tokens have no `exp`; their identity is re-checked after a while.
    valid_until: Option<Instant>,
}

/// Authenticates bearer tokens.
pub struct Authenticator {
    idps: Vec<TrustedIdp>,
    provider: Arc<dyn IdentityProvider>,
    issuers: RwLock<HashMap<String, IssuerState>>,
    identities: moka::sync::Cache<[u8; 32], Arc<CachedIdentity>>,
}

fn normalize(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn b64_json(segment: &str) -> Option<Map<String, Value>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn claim_str(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_string)
}

fn claim_groups(claims: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    match claims.get(name)? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        ),
        Value::String(one) => Some(vec![one.clone()]),
        _ => None,
    }
}

fn invalid(message: impl Into<String>) -> AuthError {
    AuthError::InvalidToken(message.into())
}

impl Authenticator {
    /// An authenticator for the configured issuers.
    pub fn new(idps: Vec<TrustedIdp>, provider: Arc<dyn IdentityProvider>) -> Self {
        Self {
            idps,
            provider,
            issuers: RwLock::new(HashMap::new()),
            identities: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
        }
    }

    /// The configured issuers.
    pub fn trusted(&self) -> &[TrustedIdp] {
        &self.idps
    }

    /// The trusted issuer entry matching an `iss` value (trailing slashes ignored).
    pub fn trusted_issuer(&self, iss: &str) -> Option<&TrustedIdp> {
        self.idps
            .iter()
            .find(|idp| normalize(&idp.issuer) == normalize(iss))
    }

    /// Validates a bearer token and returns who it belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(cached) = self.identities.get(&key) {
            if cached
                .valid_until
                .is_none_or(|until| Instant::now() <= until)
            {
                check_not_expired(&cached.identity)?;
                return Ok(cached.identity.clone());
            }
            // An opaque token's identity is re-checked with userinfo after a while.
            self.identities.invalidate(&key);
        }
        let (identity, valid_until) = if token.split('.').count() == 3 {
            (self.authenticate_jwt(token).await?, None)
        } else {
            (
                self.authenticate_opaque(token).await?,
                Some(Instant::now() + OPAQUE_TTL),
            )
        };
        let identity = Arc::new(identity);
        self.identities.insert(
            key,
            Arc::new(CachedIdentity {
                identity: identity.clone(),
                valid_until,
            }),
        );
        Ok(identity)
    }

    async fn authenticate_jwt(&self, token: &str) -> Result<Identity, AuthError> {
        let mut parts = token.split('.');
        let (Some(head), Some(body)) = (parts.next(), parts.next()) else {
            return Err(invalid("the token is not a well-formed JWT"));
        };
        let header = b64_json(head)
            .ok_or_else(|| invalid("the token is not a well-formed JWT: unreadable header"))?;
        let unverified = b64_json(body)
            .ok_or_else(|| invalid("the token is not a well-formed JWT: unreadable payload"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("none");
        let alg = ALGORITHMS
            .iter()
            .copied()
            .find(|a| format!("{a:?}") == alg_name)
            .ok_or_else(|| invalid(format!("tokens signed with '{alg_name}' are not accepted; use an asymmetric algorithm (RS256, ES256, PS256...)")))?;
        let iss = claim_str(&unverified, "iss")
            .ok_or_else(|| invalid("the token has no issuer (iss)"))?;
        let idp = self
            .trusted_issuer(&iss)
            .ok_or_else(|| invalid(format!("the token issuer '{iss}' is not trusted")))?
            .clone();
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_string);
        let jwk = self.signing_key(&idp.issuer, kid.as_deref(), alg).await?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| {
            AuthError::IssuerUnavailable(format!("the issuer publishes an unusable key: {e}"))
        })?;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &idp.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &decoding, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".to_string(),
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
                    ErrorKind::InvalidSignature => "the token signature is invalid".to_string(),
                    ErrorKind::InvalidAudience => format!(
                        "the token audience does not include '{}'",
                        idp.audience.as_deref().unwrap_or_default()
                    ),
                    ErrorKind::MissingRequiredClaim(claim) => {
                        format!("the token has no '{claim}' claim")
                    }
                    other => format!("the token is invalid: {other:?}"),
                })
            })?;
        let claims = data.claims;
        let needs_userinfo = [
            "name",
            "email",
            "preferred_username",
            idp.group_claim.as_str(),
        ]
        .iter()
        .any(|c| !claims.contains_key(*c));
        let mut merged = claims.clone();
        if needs_userinfo {
            let info = self.userinfo(&idp.issuer, token).await?;
            if info
                .get("sub")
                .and_then(Value::as_str)
                .is_some_and(|s| Some(s) != claims.get("sub").and_then(Value::as_str))
            {
                return Err(invalid("the issuer's userinfo describes another subject"));
            }
            for (k, v) in info {
                merged.entry(k).or_insert(v);
            }
        }
        let expires_at = claims.get("exp").and_then(Value::as_u64);
        Ok(identity_from(&idp, merged, expires_at))
    }

    async fn authenticate_opaque(&self, token: &str) -> Result<Identity, AuthError> {
        let mut unavailable = None;
        for idp in &self.idps {
            match self.userinfo(&idp.issuer, token).await {
                Ok(info) if info.get("sub").and_then(Value::as_str).is_some() => {
                    return Ok(identity_from(idp, info, None));
                }
                Ok(_) | Err(AuthError::InvalidToken(_)) => {}
                Err(err @ AuthError::IssuerUnavailable(_)) => unavailable = Some(err),
            }
        }
        Err(unavailable.unwrap_or_else(|| {
            invalid("the token is not a JWT and no trusted issuer's userinfo endpoint accepted it")
        }))
    }

    async fn userinfo(&self, issuer: &str, token: &str) -> Result<Map<String, Value>, AuthError> {
        let discovery = self.discovery(issuer).await?;
        let endpoint = discovery.userinfo_endpoint.ok_or_else(|| {
            AuthError::IssuerUnavailable(format!("issuer '{issuer}' has no userinfo endpoint"))
        })?;
        self.provider
            .userinfo(&endpoint, token)
            .await
            .map_err(|e| match e {
                IdpError::Refused(_) => invalid(format!(
                    "the issuer's userinfo endpoint rejected the token ({e})"
                )),
                IdpError::Unavailable(m) => {
                    AuthError::IssuerUnavailable(format!("issuer '{issuer}': {m}"))
                }
            })
    }

    /// The issuer's discovery document, fetched once.
    pub async fn discovery(&self, issuer: &str) -> Result<Discovery, AuthError> {
        if let Some(d) = self.read_state(issuer, |s| s.discovery.clone()) {
            return Ok(d);
        }
        let discovery = self
            .provider
            .discover(issuer)
            .await
            .map_err(|e| AuthError::IssuerUnavailable(format!("issuer '{issuer}': {e}")))?;
        self.write_state(issuer, |s| s.discovery = Some(discovery.clone()));
        Ok(discovery)
    }

    /// The provider used for issuer calls (token refresh reuses it).
    pub fn provider(&self) -> &Arc<dyn IdentityProvider> {
        &self.provider
    }

    async fn signing_key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Jwk, AuthError> {
        if let Some(jwk) = self.cached_key(issuer, kid, alg) {
            return Ok(jwk);
        }
        let not_found = || {
            invalid(match kid {
                Some(kid) => format!("the issuer has no signing key '{kid}'"),
                None => "the token names no key (kid) and the issuer has no single matching key"
                    .to_string(),
            })
        };
        // Unknown kid (or nothing cached yet): the issuer may have rotated its keys.
        if self.known_missing(issuer, kid) {
            return Err(not_found());
        }
        self.write_state(issuer, |_| {});
        let Some(lock) = self.read_state(issuer, |s| Some(s.refetch.clone())) else {
            return Err(not_found());
        };
        let _turn = lock.lock().await;
        // Whoever held the lock before us may have fetched what we need.
        if let Some(jwk) = self.cached_key(issuer, kid, alg) {
            return Ok(jwk);
        }
        if self.known_missing(issuer, kid) {
            return Err(not_found());
        }
        if let Some(at) = self.read_state(issuer, |s| s.last_jwks_fetch) {
            if let Some(wait) = JWKS_MIN_REFETCH.checked_sub(at.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let discovery = self.discovery(issuer).await?;
        let jwks = Arc::new(
            self.provider
                .jwks(&discovery.jwks_uri)
                .await
                .map_err(|e| AuthError::IssuerUnavailable(format!("issuer '{issuer}': {e}")))?,
        );
        self.write_state(issuer, |s| {
            s.jwks = Some(jwks.clone());
            s.last_jwks_fetch = Some(Instant::now());
        });
        if let Some(jwk) = find_key(&jwks, kid, alg) {
            return Ok(jwk);
        }
        if let Some(kid) = kid {
            self.write_state(issuer, |s| {
                if s.missing_kids.len() > 1000 {
                    s.missing_kids.clear();
                }
                s.missing_kids.insert(kid.to_string(), Instant::now());
            });
        }
        Err(not_found())
    }

    fn cached_key(&self, issuer: &str, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
        self.read_state(issuer, |s| s.jwks.clone())
            .and_then(|jwks| find_key(&jwks, kid, alg))
    }

    /// A `kid` a recent refetch did not find: not worth asking the issuer again yet.
    fn known_missing(&self, issuer: &str, kid: Option<&str>) -> bool {
        kid.is_some_and(|kid| {
            self.read_state(issuer, |s| s.missing_kids.get(kid).copied())
                .is_some_and(|at| at.elapsed() < MISSING_KID_TTL)
        })
    }

    fn read_state<T>(&self, issuer: &str, f: impl FnOnce(&IssuerState) -> Option<T>) -> Option<T> {
        let map = self.issuers.read().unwrap_or_else(|e| e.into_inner());
        map.get(normalize(issuer)).and_then(f)
    }

    fn write_state(&self, issuer: &str, f: impl FnOnce(&mut IssuerState)) {
        let mut map = self.issuers.write().unwrap_or_else(|e| e.into_inner());
        let state = map
            .entry(normalize(issuer).to_string())
            .or_insert(IssuerState {
                discovery: None,
                jwks: None,
                last_jwks_fetch: None,
                missing_kids: HashMap::new(),
                refetch: Arc::new(tokio::sync::Mutex::new(())),
            });
        f(state);
    }
}

fn check_not_expired(identity: &Identity) -> Result<(), AuthError> {
    match identity.expires_at {
        Some(exp) if now_secs() > exp + LEEWAY_SECS => Err(invalid("the token has expired")),
        _ => Ok(()),
    }
}

fn find_key(jwks: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    use jsonwebtoken::jwk::AlgorithmParameters;
    let family_ok = |jwk: &&Jwk| {
        matches!(
            (&jwk.algorithm, alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256 | Algorithm::ES384
            )
        )
    };
    match kid {
        Some(kid) => jwks
            .keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .filter(|k| family_ok(k))
            .cloned(),
        None => {
            let mut candidates = jwks.keys.iter().filter(family_ok);
            let first = candidates.next()?;
            candidates.next().is_none().then(|| first.clone())
        }
    }
}

fn identity_from(
    idp: &TrustedIdp,
    mut claims: Map<String, Value>,
    expires_at: Option<u64>,
) -> Identity {
    // The policy compares `iss` with the configured issuer: use the configured spelling.
    claims.insert("iss".into(), Value::String(idp.issuer.clone()));
    let sub = claim_str(&claims, "sub").unwrap_or_default();
    let username = claim_str(&claims, "preferred_username").unwrap_or_else(|| sub.clone());
    Identity {
        name: claim_str(&claims, "name").unwrap_or_else(|| username.clone()),
        email: claim_str(&claims, "email").unwrap_or_default(),
        groups: claim_groups(&claims, &idp.group_claim).unwrap_or_default(),
        issuer: idp.issuer.clone(),
        sub,
        username,
        claims,
        expires_at,
    }
}
